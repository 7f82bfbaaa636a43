"""UCR-format classification sets and the TimeGAN generation benchmarks.

This module owns reading the gzipped text files shipped in `mlts/data/assets/`
(byte-exact copies of the source files, see the README there):

  * UCR archive (Dau et al. 2019), UCR-2015 text format, one series per line,
    class label first: 'Wafer' (TRAIN split only; the TEST split is not
    shipped), 'ECG200', 'TwoLeadECG'.
  * TimeGAN (Yoon et al., NeurIPS 2019) real-data benchmarks: 'stock' (GOOG
    daily prices) and 'energy' (UCI appliances energy, Candanedo et al. 2017),
    csv with a header row, oldest row first.

Values are returned exactly as written in the files: no normalisation, no
reordering, no windowing (that belongs to the preprocessing code).
"""

from __future__ import annotations

import gzip
import io
import warnings

import numpy as np

from mlts import checks
from mlts.data import assets

# name -> (files by split, series length, class labels).
UCR_DATASETS = {
    "Wafer": ({"train": "Wafer_TRAIN.txt.gz"}, 152, (-1, 1)),
    "ECG200": ({"train": "ECG200_TRAIN.txt.gz", "test": "ECG200_TEST.txt.gz"}, 96, (-1, 1)),
    "TwoLeadECG": ({"train": "TwoLeadECG_TRAIN.txt.gz", "test": "TwoLeadECG_TEST.txt.gz"}, 82,
                   (1, 2)),
}
SPLITS = ("train", "test")
GENERATION_DATASETS = {
    "stock": "stock_data.csv.gz",
    "energy": "energy_data.csv.gz",
    "etth": "ETTh1.csv.gz",  # its leading `date` column is dropped on reading
}


def _gunzip(name: str) -> bytes:
  data = assets.read_bytes(name)
  try:
    return gzip.decompress(data)
  except (OSError, EOFError) as e:
    raise ValueError(f"data file {assets.asset_dir() / name} is not valid gzip: {e}") from e


def _loadtxt(text: bytes, source: str, **kwargs) -> np.ndarray:
  """np.loadtxt with errors that name the source; always returns 2-D float64."""
  try:
    with warnings.catch_warnings():
      # An empty file is reported below as an error, not as a warning.
      warnings.simplefilter("ignore", UserWarning)
      arr = np.loadtxt(io.BytesIO(text), dtype=np.float64, ndmin=2, **kwargs)
  except ValueError as e:
    raise ValueError(f"{source}: cannot parse as a numeric table: {e}") from e
  return arr


def parse_ucr_text(text: bytes, *, source: str, length: int | None = None,
                   classes: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Parses UCR-2015 text: one series per line, the class label first.

  Args:
    text: the file contents (whitespace- or comma-separated numbers).
    source: where the text came from, for error messages.
    length: the expected series length, or None to accept any.
    classes: the allowed class labels, or None to accept any integer.

  Returns:
    (series [N, L] float64, labels [N] int64).

  Raises:
    ValueError: an empty or ragged table, non-finite values, a series length
      other than `length`, or labels that are not integers in `classes`.
  """
  delimiter = "," if b"," in text[:4096] else None
  table = _loadtxt(text, source, delimiter=delimiter)
  table = checks.finite_array(table, name=source, ndim=2)
  if table.shape[1] < 2:
    raise ValueError(f"{source}: expected a label column and at least one value, "
                     f"got shape {table.shape}")
  series, raw_labels = table[:, 1:], table[:, 0]
  if length is not None and series.shape[1] != length:
    raise ValueError(f"{source}: expected series of length {length}, got {series.shape[1]}")
  labels = raw_labels.astype(np.int64)
  bad = labels != raw_labels
  if classes is not None:
    bad |= ~np.isin(labels, classes)
  if bad.any():
    first = int(np.argmax(bad))
    raise ValueError(f"{source}: class label {float(raw_labels[first])!r} on row {first} is not "
                     f"{'one of ' + str(classes) if classes is not None else 'an integer'}")
  return np.ascontiguousarray(series), labels


def load_ucr(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads a shipped UCR dataset split.

  Args:
    name: 'Wafer', 'ECG200' or 'TwoLeadECG'.
    split: 'train' or 'test' ('Wafer' has 'train' only).

  Returns:
    (series [N, L] float64, labels [N] int64), in file order:
      Wafer train 1000 x 152, labels 1 = normal (903), -1 = abnormal (97).
      ECG200 train/test 100 x 96, labels 1 = normal, -1 = myocardial infarction.
      TwoLeadECG train 23 x 82, test 1139 x 82, labels 1 / 2 = lead 0 / lead 1.

  Raises:
    ValueError: unknown name or split, Wafer 'test' (not shipped), or a
      corrupt shipped file.
    FileNotFoundError: the shipped file is missing.
  """
  if name not in UCR_DATASETS:
    raise ValueError(f"unknown UCR dataset {name!r}; expected one of {tuple(UCR_DATASETS)}")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r} for {name}; expected one of {SPLITS}")
  files, length, classes = UCR_DATASETS[name]
  if split not in files:
    raise ValueError(
        f"{name} split {split!r} is not shipped with mlts: the Wafer TEST split (6,164 series) "
        "was not available when the data was vendored (see mlts/data/assets/README.md). "
        "Split the 1,000 'train' series yourself, e.g. fit on part of the normals and hold "
        "out the other normals plus the abnormals.")
  file = files[split]
  return parse_ucr_text(_gunzip(file), source=str(assets.asset_dir() / file), length=length,
                        classes=classes)


def _parse_header(header: bytes, source: str) -> tuple[str, ...]:
  columns = tuple(c.strip() for c in header.decode("utf-8", errors="replace").strip().split(","))
  if not all(columns) or any(_is_number(c) for c in columns):
    raise ValueError(f"{source}: missing or malformed header row {header[:200]!r}")
  return columns


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def parse_csv_table(text: bytes, *, source: str) -> tuple[np.ndarray, tuple[str, ...]]:
  """Parses a numeric csv with one header row.

  Args:
    text: the file contents.
    source: where the text came from, for error messages.

  Returns:
    (values [T, F] float64 in file order, column names (F,)).

  Raises:
    ValueError: no header, a header/row width mismatch, an empty table or
      non-finite values.
  """
  header, _, body = text.partition(b"\n")
  columns = _parse_header(header, source)
  values = _loadtxt(body, source, delimiter=",")
  values = checks.finite_array(values, name=source, ndim=2)
  if values.shape[1] != len(columns):
    raise ValueError(f"{source}: header has {len(columns)} columns but rows have "
                     f"{values.shape[1]}")
  return values, columns


def _generation_text(name: str) -> tuple[bytes, str]:
  if name not in GENERATION_DATASETS:
    raise ValueError(
        f"unknown generation dataset {name!r}; expected one of {tuple(GENERATION_DATASETS)} "
        "('sines' is synthetic and has no file)")
  file = GENERATION_DATASETS[name]
  text = _gunzip(file)
  if text.startswith(b"date,"):  # ETTh1: timestamps are not a feature (Diffusion-TS drops them)
    text = b"\n".join(line.partition(b",")[2] for line in text.split(b"\n"))
  return text, str(assets.asset_dir() / file)


def load_generation(name: str) -> np.ndarray:
  """Loads a TimeGAN generation benchmark as stored: no reversal, no scaling.

  Args:
    name: 'stock', 'energy' or 'etth'.

  Returns:
    [T, F] float64 in file order (oldest row first): stock (3685, 6), energy
    (19735, 28), etth (17420, 7; ETTh1 without its `date` column). Column
    names: `generation_columns(name)`.

  Raises:
    ValueError: unknown name or a corrupt shipped file.
    FileNotFoundError: the shipped file is missing.
  """
  text, source = _generation_text(name)
  return parse_csv_table(text, source=source)[0]


def generation_columns(name: str) -> tuple[str, ...]:
  """Returns the column names of `load_generation(name)`, from the csv header.

  stock: ('Open', 'High', 'Low', 'Close', 'Adj_Close', 'Volume');
  energy: ('Appliances', 'lights', 'T1', 'RH_1', ..., 'rv1', 'rv2').

  Raises:
    ValueError, FileNotFoundError: as for `load_generation`.
  """
  text, source = _generation_text(name)
  return _parse_header(text.partition(b"\n")[0], source)
