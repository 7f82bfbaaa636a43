"""Tests for mlts.data.assets (manifest checks) and experiments/vendor_data.py."""

from __future__ import annotations

import configparser
import fnmatch
import gzip
import hashlib
import importlib.util
import io
import pathlib
import shutil
import zipfile

import numpy as np
import pytest

from mlts.data import assets

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT.parent / "shared" / "data"
ASSET_DIR = pathlib.Path(str(assets.asset_dir()))
needs_source = pytest.mark.skipif(not (SOURCE / "nasa" / "SHA256SUMS").is_file(),
                                  reason=f"source data not found at {SOURCE}")


@pytest.fixture(scope="module")
def vendor():
  """The vendor script as a module (loaded once: it defines absl flags)."""
  spec = importlib.util.spec_from_file_location(
      "mlts_vendor_data", REPO_ROOT / "experiments" / "vendor_data.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture
def asset_copy(tmp_path):
  dest = tmp_path / "assets"
  shutil.copytree(ASSET_DIR, dest)
  return dest


def test_manifest_lists_every_shipped_file_and_all_verify():
  manifest = assets.verify_all()
  on_disk = {p.name for p in ASSET_DIR.iterdir() if p.is_file()} - {assets.MANIFEST_NAME}
  assert set(manifest) == on_disk
  for name, digest in manifest.items():
    assert hashlib.sha256((ASSET_DIR / name).read_bytes()).hexdigest() == digest
  expected = {"nasa_smap.npz", "nasa_msl.npz", "labeled_anomalies.csv", "README.md",
              "Wafer_TRAIN.txt.gz", "ECG200_TRAIN.txt.gz", "ECG200_TEST.txt.gz",
              "TwoLeadECG_TRAIN.txt.gz", "TwoLeadECG_TEST.txt.gz", "stock_data.csv.gz",
              "energy_data.csv.gz", "ETTh1.csv.gz"}
  assert set(manifest) == expected


def test_assets_fit_the_size_budget():
  total = sum(p.stat().st_size for p in ASSET_DIR.iterdir() if p.is_file())
  assert total <= 10 * 1024 * 1024, total


def test_package_data_pattern_covers_every_asset():
  cfg = configparser.ConfigParser()
  cfg.read(REPO_ROOT / "setup.cfg")
  patterns = cfg["options.package_data"]["mlts.data"].split()
  for path in ASSET_DIR.rglob("*"):
    rel = path.relative_to(ASSET_DIR.parent).as_posix()
    assert path.is_file(), f"{rel}: subfolders are not covered by 'assets/*'"
    assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_read_bytes_is_cached_per_process():
  first = assets.read_bytes("labeled_anomalies.csv")
  assert assets.read_bytes("labeled_anomalies.csv") is first
  assert assets.load_npz("nasa_msl.npz") is assets.load_npz("nasa_msl.npz")


def test_modified_file_is_rejected_with_both_hashes(asset_copy):
  manifest = assets.parse_manifest((asset_copy / assets.MANIFEST_NAME).read_text(), source="m")
  path = asset_copy / "stock_data.csv.gz"
  data = bytearray(path.read_bytes())
  data[100] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match="corrupt or modified data file") as err:
    assets._read_verified(asset_copy, "stock_data.csv.gz")
  msg = str(err.value)
  assert str(path) in msg
  assert manifest["stock_data.csv.gz"] in msg
  assert hashlib.sha256(bytes(data)).hexdigest() in msg


def test_missing_file_and_missing_manifest(asset_copy):
  (asset_copy / "ECG200_TEST.txt.gz").unlink()
  with pytest.raises(FileNotFoundError, match="ECG200_TEST.txt.gz"):
    assets._read_verified(asset_copy, "ECG200_TEST.txt.gz")
  (asset_copy / assets.MANIFEST_NAME).unlink()
  with pytest.raises(FileNotFoundError, match=assets.MANIFEST_NAME):
    assets._read_verified(asset_copy, "ECG200_TRAIN.txt.gz")


def test_unlisted_file_and_bad_names(asset_copy):
  (asset_copy / "extra.bin").write_bytes(b"x")
  with pytest.raises(ValueError, match="extra.bin.*not listed"):
    assets._read_verified(asset_copy, "extra.bin")
  for bad in ("", "../setup.cfg", assets.MANIFEST_NAME):
    with pytest.raises(ValueError, match="invalid data file name"):
      assets._read_verified(asset_copy, bad)


def test_parse_manifest():
  digest = "ab" * 32
  assert assets.parse_manifest(f"{digest}  a.csv\n{digest} *b.bin\n\n", source="m") == {
      "a.csv": digest, "b.bin": digest}
  with pytest.raises(ValueError, match="m: line 1"):
    assets.parse_manifest("nothex  a.csv\n", source="m")
  with pytest.raises(ValueError, match="second time"):
    assets.parse_manifest(f"{digest}  a\n{digest}  a\n", source="m")


def test_deterministic_writers(vendor):
  data = b"1.0 2.0 3.0\n" * 1000
  gz = vendor.deterministic_gzip(data)
  assert gz == vendor.deterministic_gzip(data)
  assert gzip.decompress(gz) == data
  assert gz[4:8] == b"\0\0\0\0"  # mtime 0
  entries = [("train/X-1.npy", data), ("test/X-1.npy", data[::-1])]
  zipped = vendor.deterministic_zip(entries)
  assert zipped == vendor.deterministic_zip(entries)


def test_nasa_archives_hold_every_channel_once():
  smap = set(assets.load_npz("nasa_smap.npz").files)
  msl = set(assets.load_npz("nasa_msl.npz").files)
  assert not smap & msl
  assert len(smap) == 2 * 54  # 54 distinct SMAP channels (P-2 included) x {train, test}
  assert len(msl) == 2 * 28  # 27 labelled MSL channels + T-10
  assert {"train/T-10", "test/T-10"} <= msl
  with zipfile.ZipFile(ASSET_DIR / "nasa_smap.npz") as zf:
    assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@needs_source
def test_shipped_files_decode_to_the_source_bytes(vendor):
  vendor.verify_source(SOURCE)
  for folder, src, dst in vendor.GZIP_FILES:
    assert gzip.decompress((ASSET_DIR / dst).read_bytes()) == (SOURCE / folder / src).read_bytes()
  assert (ASSET_DIR / "labeled_anomalies.csv").read_bytes() == (
      SOURCE / "nasa" / "labeled_anomalies.csv").read_bytes()
  # The npz entries are the source .npy files byte for byte.
  for name in ("nasa_smap.npz", "nasa_msl.npz"):
    with zipfile.ZipFile(ASSET_DIR / name) as zf:
      for entry in zf.namelist():
        assert zf.read(entry) == (SOURCE / "nasa" / entry).read_bytes(), entry


@needs_source
def test_vendoring_is_reproducible_on_a_small_source(vendor, tmp_path):
  # The full rebuild (about 5 s) is compared by hand; here a three-channel
  # source in telemanom layout is built twice and checked against its inputs.
  nasa_src = tmp_path / "nasa"
  rows = (SOURCE / "nasa" / "labeled_anomalies.csv").read_text().splitlines()
  keep = [rows[0]] + [r for r in rows[1:] if r.split(",")[0] in ("A-1", "C-1")]
  nasa_src.mkdir()
  (nasa_src / "labeled_anomalies.csv").write_text("\n".join(keep) + "\n")
  for split in ("train", "test"):
    (nasa_src / split).mkdir()
    for chan in ("A-1", "C-1", "T-10"):
      shutil.copy(SOURCE / "nasa" / split / f"{chan}.npy", nasa_src / split / f"{chan}.npy")
  first, second = vendor.build_nasa(tmp_path), vendor.build_nasa(tmp_path)
  assert first == second
  with zipfile.ZipFile(io.BytesIO(first["nasa_msl.npz"])) as zf:
    assert sorted(zf.namelist()) == ["test/C-1.npy", "test/T-10.npy", "train/C-1.npy",
                                     "train/T-10.npy"]
    assert zf.read("test/T-10.npy") == (nasa_src / "test" / "T-10.npy").read_bytes()
  smap = np.load(io.BytesIO(first["nasa_smap.npz"]))
  np.testing.assert_array_equal(smap["train/A-1"], np.load(nasa_src / "train" / "A-1.npy"))
  for folder, src, _ in vendor.GZIP_FILES[:3]:
    data = (SOURCE / folder / src).read_bytes()
    assert vendor.deterministic_gzip(data) == vendor.deterministic_gzip(data)


@needs_source
def test_verify_source_rejects_a_modified_source(vendor, tmp_path):
  copy = tmp_path / "data"
  for folder in vendor.SOURCE_FOLDERS[1:]:
    shutil.copytree(SOURCE / folder, copy / folder)
  (copy / "nasa").mkdir()
  (copy / "nasa" / "SHA256SUMS").write_text(
      f"{hashlib.sha256(b'x').hexdigest()}  labeled_anomalies.csv\n")
  (copy / "nasa" / "labeled_anomalies.csv").write_bytes(b"y")
  with pytest.raises(ValueError, match="labeled_anomalies.csv.*does not match"):
    vendor.verify_source(copy)


def test_loaded_npz_arrays_are_float64():
  archive = assets.load_npz("nasa_msl.npz")
  arr = archive["test/T-10"]
  assert arr.dtype == np.float64 and arr.shape == (670, 55)
