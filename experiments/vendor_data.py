r"""Builds the data files shipped in `mlts/data/assets/` from the source folder.

This script owns the vendoring step: it checks the source copies against their
`SHA256SUMS`, writes the compressed assets, checks that every asset decodes
back to exactly the source bytes/arrays, and writes `README.md` and
`MANIFEST.sha256` (which `mlts.data.assets` verifies on load).

Output is deterministic: zip entries and gzip members carry fixed timestamps,
no file names or OS-dependent attributes, and a fixed compression level, so a
rerun gives the same bytes (with the same zlib build; a different zlib may
compress differently, which only changes the manifest, never the content).

  * `nasa_smap.npz`, `nasa_msl.npz`: zip archives (deflate, level 9) whose
    entries `train/<chan>.npy` and `test/<chan>.npy` are the source `.npy`
    files byte for byte; `np.load(...)['train/A-1']` reads them. T-10
    (unlabelled, 55 features) goes into the MSL archive.
  * `labeled_anomalies.csv`: byte copy.
  * `<name>.txt.gz`, `<name>.csv.gz`: gzip (level 9, mtime 0, no file name) of
    the UCR text files and the generation csv files. Text gzips smaller than a
    float64 npz of the parsed values and keeps the source bytes.

Usage (from the repository root):

  python experiments/vendor_data.py [--source=../shared/data] [--dest=mlts/data/assets]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pathlib
import sys
import zipfile

import numpy as np
from absl import app, flags, logging

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
  # Run as a script from a checkout: make `mlts` importable without installing.
  sys.path.insert(0, str(REPO_ROOT))

from mlts.data import assets as assets_lib  # noqa: E402
from mlts.data import nasa  # noqa: E402

_SOURCE = flags.DEFINE_string(
    "source", str(REPO_ROOT.parent / "shared" / "data"),
    "Source data folder (nasa/, wafer/, ecg/, generation/, each with SHA256SUMS).")
_DEST = flags.DEFINE_string(
    "dest", str(REPO_ROOT / "mlts" / "data" / "assets"), "Where to write the shipped files.")

# Fixed zip metadata: the earliest date zip can store, Unix attributes rw-r--r--.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_LEVEL = 9

# (source folder, source file, shipped file) for the gzipped text files.
GZIP_FILES = (
    ("wafer", "Wafer_TRAIN.txt", "Wafer_TRAIN.txt.gz"),
    ("ecg", "ECG200_TRAIN.txt", "ECG200_TRAIN.txt.gz"),
    ("ecg", "ECG200_TEST.txt", "ECG200_TEST.txt.gz"),
    ("ecg", "TwoLeadECG_TRAIN.txt", "TwoLeadECG_TRAIN.txt.gz"),
    ("ecg", "TwoLeadECG_TEST.txt", "TwoLeadECG_TEST.txt.gz"),
    ("generation", "stock_data.csv", "stock_data.csv.gz"),
    ("generation", "energy_data.csv", "energy_data.csv.gz"),
    ("generation", "ETTh1.csv", "ETTh1.csv.gz"),
)
SOURCE_FOLDERS = ("nasa", "wafer", "ecg", "generation")


def sha256_file(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_source(source: pathlib.Path) -> dict[str, str]:
  """Checks every source folder against its SHA256SUMS.

  Returns:
    {'<folder>/<file>': sha256} for every checked file.

  Raises:
    FileNotFoundError: a folder, SHA256SUMS or listed file is missing.
    ValueError: a hash mismatch, or a data file not listed in SHA256SUMS.
  """
  checked = {}
  for folder in SOURCE_FOLDERS:
    sums_path = source / folder / "SHA256SUMS"
    if not sums_path.is_file():
      raise FileNotFoundError(f"missing {sums_path}")
    sums = assets_lib.parse_manifest(sums_path.read_text(encoding="utf-8"), source=str(sums_path))
    for name, expected in sums.items():
      path = source / folder / name
      if not path.is_file():
        raise FileNotFoundError(f"{path} is listed in {sums_path} but missing")
      actual = sha256_file(path)
      if actual != expected:
        raise ValueError(f"{path}: sha256 {actual} does not match {expected} in {sums_path}")
      checked[f"{folder}/{name}"] = actual
    on_disk = {p.relative_to(source / folder).as_posix()
               for p in (source / folder).rglob("*") if p.is_file()} - {"SHA256SUMS", "README.md"}
    unlisted = sorted(on_disk - set(sums))
    if unlisted:
      raise ValueError(f"{source / folder}: files not listed in SHA256SUMS: {unlisted[:5]}")
  return checked


def deterministic_gzip(data: bytes) -> bytes:
  buf = io.BytesIO()
  # filename='' keeps the source path out of the header; mtime=0 fixes the time.
  with gzip.GzipFile(filename="", mode="wb", compresslevel=_LEVEL, fileobj=buf, mtime=0) as f:
    f.write(data)
  return buf.getvalue()


def deterministic_zip(entries: list[tuple[str, bytes]]) -> bytes:
  """Returns a deflate zip of (name, data) entries with fixed metadata."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
    for name, data in entries:
      info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
      info.compress_type = zipfile.ZIP_DEFLATED
      info.create_system = 3  # Unix, whatever the host: the default depends on the OS.
      info.external_attr = 0o644 << 16
      zf.writestr(info, data, compresslevel=_LEVEL)
  return buf.getvalue()


def build_nasa(source: pathlib.Path) -> dict[str, bytes]:
  """Returns {'nasa_smap.npz': ..., 'nasa_msl.npz': ...} from `source/nasa`."""
  nasa_dir = source / "nasa"
  index = nasa.parse_labeled_anomalies(
      (nasa_dir / nasa.CSV_NAME).read_text(encoding="utf-8"), source=str(nasa_dir / nasa.CSV_NAME))
  craft_of = {name: info.spacecraft for name, info in index.items()}
  on_disk = sorted(p.stem for p in (nasa_dir / "train").glob("*.npy"))
  test_names = sorted(p.stem for p in (nasa_dir / "test").glob("*.npy"))
  if on_disk != test_names:
    raise ValueError(f"{nasa_dir}: train/ and test/ hold different channels: "
                     f"{sorted(set(on_disk) ^ set(test_names))}")
  for name in on_disk:
    if name not in craft_of:
      if name not in nasa.UNLABELLED_CHANNELS:
        raise ValueError(f"{nasa_dir}: channel {name} has arrays but no csv row and is not a "
                         "known unlabelled channel")
      craft_of[name] = nasa.UNLABELLED_CHANNELS[name]
  missing = sorted(set(craft_of) - set(on_disk))
  if missing:
    raise FileNotFoundError(f"{nasa_dir}: csv channels without arrays: {missing}")

  out = {}
  for craft in nasa.SPACECRAFT:
    entries = []
    for name in sorted(n for n, c in craft_of.items() if c == craft):
      for split in ("train", "test"):
        entries.append((f"{split}/{name}.npy", (nasa_dir / split / f"{name}.npy").read_bytes()))
    out[f"nasa_{craft.lower()}.npz"] = deterministic_zip(entries)
  return out


def check_round_trip(source: pathlib.Path, built: dict[str, bytes]) -> None:
  """Checks that every built asset decodes to exactly its source content."""
  for folder, src, dst in GZIP_FILES:
    if gzip.decompress(built[dst]) != (source / folder / src).read_bytes():
      raise AssertionError(f"{dst} does not decompress to {source / folder / src}")
  if built[nasa.CSV_NAME] != (source / "nasa" / nasa.CSV_NAME).read_bytes():
    raise AssertionError(f"{nasa.CSV_NAME} is not a byte copy")
  seen = set()
  for craft in nasa.SPACECRAFT:
    name = f"nasa_{craft.lower()}.npz"
    with zipfile.ZipFile(io.BytesIO(built[name])) as zf:
      for entry in zf.namelist():
        src = source / "nasa" / entry
        if zf.read(entry) != src.read_bytes():
          raise AssertionError(f"{name}:{entry} differs from {src}")
        seen.add(entry)
    archive = np.load(io.BytesIO(built[name]), allow_pickle=False)
    for key in archive.files:
      got, want = archive[key], np.load(source / "nasa" / f"{key}.npy", allow_pickle=False)
      if got.dtype != want.dtype or not np.array_equal(got, want):
        raise AssertionError(f"{name}[{key}] does not load equal to the source array")
  expected = {p.relative_to(source / "nasa").as_posix()
              for p in (source / "nasa").glob("*/*.npy")}
  if seen != expected:
    raise AssertionError(f"npz entries differ from the source files: {sorted(seen ^ expected)}")


def render_readme(source_sums: dict[str, str], built: dict[str, bytes]) -> bytes:
  """Returns README.md for the asset folder (deterministic)."""
  rows = []
  origin = {dst: f"{folder}/{src}" for folder, src, dst in GZIP_FILES}
  origin[nasa.CSV_NAME] = f"nasa/{nasa.CSV_NAME}"
  origin["nasa_smap.npz"] = "nasa/{train,test}/<SMAP chan>.npy"
  origin["nasa_msl.npz"] = "nasa/{train,test}/<MSL chan>.npy, T-10"
  for name in sorted(built):
    rows.append(f"| `{name}` | {len(built[name]):,} | `{origin[name]}` |")
  src_rows = [f"| `{k}` | `{v}` |" for k, v in sorted(source_sums.items())
              if not k.endswith(".npy")]
  total = sum(len(b) for b in built.values())
  return _README_TEMPLATE.format(
      file_table="\n".join(rows), total=f"{total:,}",
      source_table="\n".join(src_rows)).encode("utf-8")


_README_TEMPLATE = """\
# mlts/data/assets — shipped datasets

Generated by `experiments/vendor_data.py`; do not edit by hand (edit the
template in that script and rebuild). Every file here is listed with its
SHA-256 in `MANIFEST.sha256`, and `mlts.data.assets` refuses a file whose hash
differs ("corrupt or modified data file"). Load the data through
`mlts.data.nasa` and `mlts.data.ucr`, not by opening these files.

## Files

| file | bytes | made from (source folder) |
| --- | ---: | --- |
{file_table}

Total: {total} bytes (README.md and MANIFEST.sha256 not counted).

Storage choices, all lossless:

- `nasa_smap.npz`, `nasa_msl.npz`: zip archives (deflate level 9) whose
  entries `train/<chan>.npy` and `test/<chan>.npy` are the source `.npy` files
  byte for byte, so `np.load(path)['test/A-1']` returns exactly the original
  float64 `(T, F)` array. The one-hot command columns compress very well: about
  166 MB of arrays become about 2.2 MB.
- `labeled_anomalies.csv`: a byte copy.
- `*.txt.gz`, `*.csv.gz`: gzip (level 9, mtime 0, no stored file name) of the
  source text files. Decompressed, each is byte-identical to its source; the
  text compresses smaller than a float64 `.npz` of the parsed values would.

## NASA SMAP and MSL (`nasa_*.npz`, `labeled_anomalies.csv`)

Spacecraft telemetry with labelled anomalies from the telemanom project:
Hundman, Constantinou, Laporte, Colwell, Soderstrom, "Detecting Spacecraft
Anomalies Using LSTMs and Nonparametric Dynamic Thresholding", KDD 2018.
Please cite it when you use this data.

- Arrays: from GitHub `falihgoz/CGAD` at commit
  `0add136da2b9ab5faea24f4f2f32d0d8c5455ab5` (`data/SMAP_MSL/{{train,test}}`);
  the same git blobs are in `airMeng/mask-time-series-modeling` (commit
  `c52f1649597f426b8d16a6e4a41b9c3638561006`). Together they reproduce the
  `data.zip` the telemanom authors published (now also on Kaggle as
  `patrickfleith/nasa-anomaly-detection-dataset-smap-msl`).
- `labeled_anomalies.csv`: from GitHub `khundman/telemanom` at commit
  `2e6c5b6c3558e7835601519b7bdef37c649bdbdc` (the current, v2.0+ label file,
  whose indices fit the raw test arrays; older versions were shifted by -250).
- Licence: telemanom's `LICENSE.txt` is a Caltech/JPL BSD-style notice
  (Copyright (c) 2018, California Institute of Technology) and its README badge
  says Apache-2.0. The data carries no separate licence.

Format: float64 `(T, F)`; column 0 is the telemetry value (scaled to roughly
[-1, 1], with a few real excursions, e.g. M-6 test up to 258.1); columns 1..
are one-hot command flags. F = 25 (SMAP) and 55 (MSL). The csv columns are
`chan_id, spacecraft, anomaly_sequences, class, num_values`;
`anomaly_sequences` is a Python list of `[start, end]` pairs into the test
array with **inclusive** `end`; `num_values` is the test length.

Pitfalls the loader handles:

- P-2 (SMAP) has two csv rows (`[5350, 6575]` and `[5300, 6420]`); their
  labels are merged. The usual benchmark drops P-2: 53 SMAP channels, train
  135,183 / test 427,617 points, 54,696 anomalous. With P-2: 54 channels,
  138,004 / 435,826 / 55,972. MSL: 27 channels, 58,317 / 73,729 / 7,766.
- T-10 has arrays (55 features, train `(425, 55)`, test `(670, 55)`) but no
  csv row and no labels. It is stored in `nasa_msl.npz` (its feature count
  matches MSL) so the archive holds every source file, but it is never listed
  by spacecraft and `load_channel('T-10')` refuses it.
- `test/P-10.npy` and `test/P-14.npy` are byte-identical in the original data.

## UCR archive sets (`Wafer_TRAIN`, `ECG200_*`, `TwoLeadECG_*` `.txt.gz`)

UCR-2015 text: one series per line, whitespace-separated, the class label
first. Cite Dau et al., "The UCR Time Series Archive", IEEE/CAA Journal of
Automatica Sinica, 2019. Copied from GitHub `rohitvincent/shapeletpy`, commit
`5583736122a77221b8988039fe5550d66a687827` (`Datasets/<name>/`), a CC BY-SA
4.0 repository; Wafer and ECG200 match `mat-analysis/datasets` (commit
`f50572553419e667e0bd89173a3e9cbe5b32a99d`) in values and labels.

- Wafer (R. Olszewski, CMU 2001): TRAIN only, 1000 series of length 152;
  labels 1 = normal (903), -1 = abnormal (97). The TEST split (6,164 series) is
  **not shipped**: no copy could be fetched when the data was vendored. For
  OOD experiments split the training series yourself.
- ECG200 (Olszewski 2001): heartbeats of length 96; labels 1 = normal, -1 =
  myocardial infarction; TRAIN 100 (69/31), TEST 100 (64/36).
- TwoLeadECG: beats of length 82 from PhysioNet's MIT-BIH Long-Term ECG
  Database (record 15814; PhysioNet distributes it under ODC-By 1.0); classes
  1 / 2 are the two leads; TRAIN 23 (12/11), TEST 1139 (569/570).

## Generation benchmarks (`stock_data.csv.gz`, `energy_data.csv.gz`, `ETTh1.csv.gz`)

The real-data benchmarks of TimeGAN (Yoon, Jarrett, van der Schaar,
"Time-series Generative Adversarial Networks", NeurIPS 2019), reused by later
work such as Diffusion-TS (ICLR 2024). Both files run oldest row first.

- `stock_data.csv`: GOOG daily prices from Yahoo Finance, `(3685, 6)`, header
  `Open,High,Low,Close,Adj_Close,Volume`. Byte copy of `data/stock_data.csv`
  in GitHub `jsyoon0823/TimeGAN` (commit
  `8f6181cb9b9d2fa0c930cd902411d9ac8a308e07`). No licence is stated for the
  data (the repository is Apache-2.0).
- `energy_data.csv`: UCI "Appliances energy prediction", `(19735, 28)`
  (10-minute readings, 2016-01-11 to 2016-05-27; `rv2` equals `rv1`). Cite
  Candanedo, Feldheim, Deramaix, "Data driven prediction models of energy use
  of appliances in a low-energy house", Energy and Buildings 140 (2017) 81-97.
  **Rebuilt, not copied**: TimeGAN's own file could not be fetched, so it was
  regenerated from the UCI original (`energydata_complete.csv`, via GitHub
  `sumukhv/Energy-Consumption-Task` commit
  `517defe41a0f61582af873e11e5576f20105e834`) by dropping `date` and matching
  the number formatting of a reference copy (`vtimmerTUD/Diffusion-TS`). It
  has the reference's size and every value is within 5.01e-11 of the UCI
  original, but its git blob differs from TimeGAN's file, so a few last digits
  may differ from that file.

- `ETTh1.csv`: ETDataset's hourly electricity-transformer data (Zhou et al.,
  "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
  Forecasting", AAAI 2021), the "ETTh" of Diffusion-TS's Table 1: 17,420 rows,
  header `date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT`. Byte copy of
  `ETT-small/ETTh1.csv` in GitHub `zhouhaoyi/ETDataset` (commit
  `1d16c8f4f943005d613b5bc962e9eeb06058cf07`), shipped unmodified (gzip is
  lossless) under its licence, CC BY-ND 4.0; `mlts.data.ucr.load_generation`
  drops the `date` column when reading it.

The "sines" benchmark is synthetic and has no file.

## Source checksums

SHA-256 of the source files (from the source folders' `SHA256SUMS`, checked by
the vendor script before building; the 164 `.npy` hashes are in
`nasa/SHA256SUMS`). Each `.gz` decompresses to the file with the hash below.

| source file | sha256 |
| --- | --- |
{source_table}

## Rebuilding

From the repository root, with the source folder `../shared/data` beside the
checkout:

    python experiments/vendor_data.py --source=../shared/data --dest=mlts/data/assets

The script verifies the source `SHA256SUMS`, writes the files above, checks
that each decodes back to the source bytes and arrays, and rewrites this README
and `MANIFEST.sha256`. The output is byte-reproducible with the same zlib
(fixed zip dates and attributes, gzip mtime 0, compression level 9).
"""


def build(source: pathlib.Path, dest: pathlib.Path) -> dict[str, str]:
  """Builds every shipped file into `dest`; returns the manifest {name: sha256}."""
  source_sums = verify_source(source)
  logging.info("verified %d source files against SHA256SUMS", len(source_sums))
  built = build_nasa(source)
  built[nasa.CSV_NAME] = (source / "nasa" / nasa.CSV_NAME).read_bytes()
  for folder, src, dst in GZIP_FILES:
    built[dst] = deterministic_gzip((source / folder / src).read_bytes())
  check_round_trip(source, built)
  built["README.md"] = render_readme(source_sums, {k: v for k, v in built.items()})

  dest.mkdir(parents=True, exist_ok=True)
  for name, data in sorted(built.items()):
    _write_atomic(dest / name, data)
  manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(built.items())}
  _write_atomic(dest / assets_lib.MANIFEST_NAME,
                "".join(f"{h}  {n}\n" for n, h in manifest.items()).encode("ascii"))
  stale = sorted(p.name for p in dest.iterdir()
                 if p.name not in manifest and p.name != assets_lib.MANIFEST_NAME)
  if stale:
    logging.warning("files in %s not produced by this script (not in the manifest, so the "
                    "loaders will refuse them; delete them): %s", dest, stale)
  return manifest


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_bytes(data)
  os.chmod(tmp, 0o644)
  os.replace(tmp, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  source = pathlib.Path(_SOURCE.value).resolve()
  dest = pathlib.Path(_DEST.value).resolve()
  manifest = build(source, dest)
  total = 0
  for name in manifest:
    size = (dest / name).stat().st_size
    total += size
    print(f"{size:>12,}  {name}")
  print(f"{total:>12,}  total ({len(manifest)} files + {assets_lib.MANIFEST_NAME})")


if __name__ == "__main__":
  app.run(main)
