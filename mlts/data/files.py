"""A user's own time-series files (.csv, .npy, .npz), split into train and test.

This module owns reading series that do not come with mlts: one file or a
folder of files (one series per file), split in time with `train_until`, or
with a separate test file or folder (`test_path`). No pandas: csv files are
read with the standard library, arrays with `np.load(allow_pickle=False)`, so
loading a file never runs code from it.

Formats:
  * `.csv`: a header row of column names, then one row per time step, comma
    separated. Value columns are numeric (every non-empty cell parses as a
    float); an optional label column holds 0/1 and an optional timestamp
    column holds numbers or ISO-8601 times ('2024-01-01 00:00').
  * `.npy`: one array, [T] or [T, C]; its columns are named 'c0', 'c1', ...
  * `.npz`: key `train` ([T] or [T, C]), optional `test` (same C) and optional
    `labels` (0/1, one per row of `test`, or of `train` when there is no
    `test` and `train_until` splits it).

Training data must be normal: a row labelled 1 in the train part is an error.
`mlts/data/examples/pump.csv` is a small example file (see the README there).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import pathlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from mlts import checks

SUPPORTED_EXTENSIONS = (".csv", ".npy", ".npz")
# The example files shipped with mlts (`pump.csv`, see the README there).
EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent / "examples"
NPZ_KEYS = ("train", "test", "labels")
_LABEL_WORDS = {"false": 0, "true": 1}


@dataclasses.dataclass(frozen=True, eq=False)
class FileSeries:
  """One series from a user's file, split into train and test.

  `eq=False` because the fields are arrays: series compare and hash by
  identity (compare arrays with `np.array_equal` instead).

  Attributes:
    name: the file name, e.g. 'pump.csv' (for a folder, the name inside it).
    train: [T_train, C] float64, T_train >= 2.
    test: [T_test, C] float64, T_test >= 1.
    labels: [T_test] int8 in {0, 1}; all zeros when the file has no labels.
    columns: the C value column names, in order ('c0', 'c1', ... for arrays).
    has_labels: whether `labels` came from the data (a label column or an
      npz `labels` array) rather than being all-zero filler.
  """
  name: str
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray
  columns: tuple[str, ...]
  has_labels: bool


@dataclasses.dataclass
class _Part:
  """A file read but not yet split.

  Attributes:
    source: the path, for error messages.
    values: [T, C] float64, finite.
    columns: C names.
    labels: [T] int8 in {0, 1}, or None without a label column.
    timestamps: [T] float64 or datetime64, non-decreasing; None without a
      timestamp column.
    describe: row index (0-based) -> where that row is, for error messages.
    test: an npz's own test part (its `test` and `labels` arrays), else None.
  """
  source: str
  values: np.ndarray
  columns: tuple[str, ...]
  labels: np.ndarray | None
  timestamps: np.ndarray | None
  describe: Callable[[int], str]
  test: _Part | None = None


def parse_train_until(value: str | int | float | None) -> int | float | str | None:
  """Parses a command-line `train_until`.

  Args:
    value: a string such as '2000' (a row count), '0.7' (a fraction of the
      rows) or '2024-01-05' (a timestamp); None or '' for no split. Numbers
      that are not strings are returned unchanged.

  Returns:
    An int for an integer string, a float for another finite number, else the
    stripped string (a timestamp for `load`); None for None or ''. An integer
    string is always a row count: for numeric timestamps pass a str to `load`.

  Raises:
    TypeError: a bool or a value that is not a str, int, float or None.
  """
  if value is None:
    return None
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"train_until must be a string or number, got {value!r}")
  if isinstance(value, (int, float, np.integer, np.floating)):
    return value
  if not isinstance(value, str):
    raise TypeError(f"train_until must be a string or number, got {type(value).__name__}")
  text = value.strip()
  if not text:
    return None
  if re.fullmatch(r"[+-]?\d+", text):
    return int(text)
  try:
    number = float(text)
  except ValueError:
    return text
  return number if math.isfinite(number) else text


def load(path: str | os.PathLike, *, columns: str | Sequence[str] = "",
         label_column: str | None = None, timestamp_column: str | None = None,
         train_until: int | float | str | None = None,
         test_path: str | os.PathLike | None = None) -> list[FileSeries]:
  """Loads series from a user's file or folder and splits them into train and test.

  Args:
    path: a .csv, .npy or .npz file, or a folder: one series per supported
      file directly inside it (not recursive), sorted by file name; other
      files are skipped.
    columns: the value columns, as a comma-separated string ('a,b') or a
      sequence of names; empty selects every numeric column except the label
      and timestamp columns (a column named 'label' is a value column unless
      it is passed as `label_column`). Arrays name their columns 'c0', 'c1', ...
    label_column: a csv column of 0/1 labels ('0', '1', '0.0', '1.0', 'true',
      'false'); required in the file the test part comes from, optional in a
      separate train file. None: no labels (all zeros, `has_labels` False).
    timestamp_column: a csv column of times, kept out of the values: numbers,
      or ISO-8601 times parsed by `numpy.datetime64` ('2024-01-01 00:00:00',
      '2024-01-01T00:00'; numpy converts times with a UTC offset to UTC, with a
      warning). They must be non-decreasing.
    train_until: how to split each file in time: an int >= 1 (the number of
      train rows), a float in (0, 1) (that fraction of the rows, rounded half
      up), or a str timestamp (needs `timestamp_column`; train is every row
      with a timestamp before it). The split must leave >= 2 train rows and
      >= 1 test row. None with `test_path`, or for an npz with a `test` array.
    test_path: a separate test file (when `path` is a file) or folder (when
      `path` is a folder, holding the same file names); `path` is then train
      data only. Not for .npz files, which hold their own `test` array.

  Returns:
    One FileSeries per file: float64 `train` [T_train, C] and `test`
    [T_test, C], int8 `labels` [T_test].

  Raises:
    FileNotFoundError: `path` or `test_path` does not exist (names it).
    TypeError: an argument of the wrong type (a bool `train_until`, ...).
    ValueError: an unsupported extension (lists the supported ones), a folder
      without supported files, train and test folders whose file names differ
      (lists the missing ones), a csv without a header or with ragged rows,
      an unknown column (lists the available ones), an empty, NaN or inf
      value (names file, column and row), a label other than 0/1, a train
      part holding rows labelled 1, timestamps that are unparseable or
      decreasing, train and test with different value columns, a split
      leaving < 2 train or < 1 test rows, or no way to get test data (neither
      `train_until` nor `test_path`).
  """
  wanted = _column_names(columns)
  label_column = _optional_name(label_column, "label_column")
  timestamp_column = _optional_name(timestamp_column, "timestamp_column")
  if label_column is not None and label_column == timestamp_column:
    raise ValueError(f"label_column and timestamp_column are both {label_column!r}; "
                     "they must be different columns")
  for special in (label_column, timestamp_column):
    if special is not None and special in wanted:
      raise ValueError(f"column {special!r} is the label or timestamp column; it cannot also be "
                       f"a value column (columns={list(wanted)})")
  train_until = _check_train_until(train_until, timestamp_column)
  if test_path is not None and train_until is not None:
    raise ValueError(f"give either train_until ({train_until!r}) or test_path ({test_path}), not "
                     "both: with test_path, path holds train data only")
  read = dict(wanted=wanted, label_column=label_column, timestamp_column=timestamp_column)
  series = []
  for name, train_file, test_file in _file_pairs(path, test_path):
    series.append(_load_one(name, train_file, test_file, train_until, read))
  return series


def _load_one(name: str, train_file: pathlib.Path, test_file: pathlib.Path | None,
              train_until: int | float | str | None, read: dict) -> FileSeries:
  """Reads one file (and its test file) and splits it into a FileSeries."""
  source = str(train_file)
  if test_file is not None:
    for file in (train_file, test_file):
      if file.suffix.lower() == ".npz":
        raise ValueError(f"{file}: an .npz file holds its own test part (key 'test'); test_path "
                         "is for .csv and .npy files")
  part = _read(train_file, need_labels=test_file is None, **read)
  if part.test is not None:
    if train_until is not None:
      raise ValueError(f"{source}: the file has a 'test' array, so train_until must be None "
                       f"(got {train_until!r})")
    train, test = part, part.test
  elif test_file is not None:
    test = _read(test_file, need_labels=True, **read)
    if test.columns != part.columns:
      raise ValueError(f"train file {source} has value columns {list(part.columns)} but test file "
                       f"{test_file} has {list(test.columns)}; they must match")
    _check_normal(part.labels, part, "remove those rows from the train file")
    train = part
  else:
    if train_until is None:
      raise ValueError(f"{source}: no test data: pass train_until (a row count, a fraction or a "
                       "timestamp) to split the file in time, or test_path for a separate test "
                       "file (an .npz may also hold a 'test' array)")
    n_train = _split_index(part, train_until)
    _check_normal(None if part.labels is None else part.labels[:n_train], part,
                  "move train_until before the first anomaly")
    train = dataclasses.replace(part, values=part.values[:n_train])
    test = _Part(source=source, values=part.values[n_train:], columns=part.columns,
                 labels=None if part.labels is None else part.labels[n_train:],
                 timestamps=None, describe=lambda i: part.describe(i + n_train))
  if len(train.values) < 2:
    raise ValueError(f"{source}: the train part has {len(train.values)} row(s); need at least 2")
  has_labels = test.labels is not None
  labels = test.labels if has_labels else np.zeros(len(test.values), dtype=np.int8)
  return FileSeries(name=name, train=train.values, test=test.values, labels=labels,
                    columns=part.columns, has_labels=has_labels)


# ----------------------------------------------------------------------------- arguments


def _column_names(columns: str | Sequence[str]) -> tuple[str, ...]:
  if isinstance(columns, str):
    names = [c.strip() for c in columns.split(",")] if columns.strip() else []
  elif isinstance(columns, Sequence):
    for c in columns:
      if not isinstance(c, str):
        raise TypeError(f"columns must be strings, got {c!r} in {columns!r}")
    names = [c.strip() for c in columns]
  else:
    raise TypeError(f"columns must be a comma-separated string or a sequence of names, got "
                    f"{type(columns).__name__}")
  if any(not c for c in names):
    raise ValueError(f"columns {columns!r} holds an empty name")
  duplicates = sorted({c for c in names if names.count(c) > 1})
  if duplicates:
    raise ValueError(f"columns {columns!r} names {duplicates} more than once")
  return tuple(names)


def _optional_name(value: str | None, what: str) -> str | None:
  if value is None:
    return None
  if not isinstance(value, str):
    raise TypeError(f"{what} must be a column name or None, got {type(value).__name__}")
  return value.strip() or None


def _check_train_until(value, timestamp_column: str | None) -> int | float | str | None:
  """Validates `train_until` on its own; returns it as int, float, str or None."""
  if value is None:
    return None
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"train_until must be an int, float, str or None, got the bool {value!r}")
  if isinstance(value, (int, np.integer)):
    if value < 1:
      raise ValueError(f"train_until as a row count must be >= 1, got {value}")
    return int(value)
  if isinstance(value, (float, np.floating)):
    if not 0.0 < value < 1.0:
      raise ValueError(f"train_until as a float is a fraction of the rows in (0, 1), got {value!r} "
                       "(pass an int for a row count)")
    return float(value)
  if isinstance(value, str):
    text = value.strip()
    if not text:
      raise ValueError("train_until is an empty string; pass None for no split")
    if timestamp_column is None:
      raise ValueError(f"train_until={text!r} is a timestamp, which needs timestamp_column")
    return text
  raise TypeError(f"train_until must be an int, float, str or None, got {type(value).__name__}")


# ----------------------------------------------------------------------------- paths


def _existing(path: str | os.PathLike, what: str) -> pathlib.Path:
  if not isinstance(path, (str, os.PathLike)):
    raise TypeError(f"{what} must be a path, got {type(path).__name__}")
  p = pathlib.Path(path)
  if not p.exists():
    raise FileNotFoundError(f"{what} not found: {p}")
  return p


def _check_extension(path: pathlib.Path) -> None:
  if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
    raise ValueError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
                     f"supported: {', '.join(SUPPORTED_EXTENSIONS)}")


def _supported_files(folder: pathlib.Path) -> list[str]:
  names = sorted(p.name for p in folder.iterdir()
                 if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in SUPPORTED_EXTENSIONS)
  if not names:
    raise ValueError(f"{folder}: no supported data files in this folder "
                     f"({', '.join(SUPPORTED_EXTENSIONS)})")
  return names


def _file_pairs(path, test_path) -> list[tuple[str, pathlib.Path, pathlib.Path | None]]:
  """Returns (name, train file, test file or None) per series."""
  root = _existing(path, "path")
  test_root = None if test_path is None else _existing(test_path, "test_path")
  if test_root is not None and root.is_dir() != test_root.is_dir():
    raise ValueError(f"path {root} and test_path {test_root} must both be folders or both be files")
  if not root.is_dir():
    _check_extension(root)
    if test_root is not None:
      _check_extension(test_root)
    return [(root.name, root, test_root)]
  names = _supported_files(root)
  if test_root is None:
    return [(name, root / name, None) for name in names]
  test_names = _supported_files(test_root)
  no_test = sorted(set(names) - set(test_names))
  no_train = sorted(set(test_names) - set(names))
  if no_test or no_train:
    raise ValueError(f"train folder {root} and test folder {test_root} must hold the same file "
                     f"names; no test file for {no_test}, no train file for {no_train}")
  return [(name, root / name, test_root / name) for name in names]


# ----------------------------------------------------------------------------- reading


def _read(path: pathlib.Path, *, wanted: tuple[str, ...], label_column: str | None,
          timestamp_column: str | None, need_labels: bool) -> _Part:
  suffix = path.suffix.lower()
  if suffix == ".csv":
    return _read_csv(path, wanted=wanted, label_column=label_column,
                     timestamp_column=timestamp_column, need_labels=need_labels)
  if label_column is not None or timestamp_column is not None:
    raise ValueError(f"{path}: label_column and timestamp_column name .csv columns; {suffix} files "
                     "hold values only (an .npz stores test labels under 'labels')")
  if suffix == ".npy":
    arr = _np_load(path)
    if not isinstance(arr, np.ndarray):
      raise ValueError(f"{path}: holds an .npz archive, not a single .npy array")
    values, names = _array_values(arr, str(path), wanted)
    return _Part(str(path), values, names, None, None, _array_row)
  return _read_npz(path, wanted)


def _np_load(path: pathlib.Path):
  return load_numpy(path, str(path))


_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}


def load_numpy(path, where: str):
  """`np.load(path, allow_pickle=False)` with errors that say what the file is.

  Raises:
    ValueError: the file does not start as a .npy / .npz file does (e.g. a
      text file renamed), or it is truncated or unreadable; `where` names it.
  """
  path = pathlib.Path(path)
  magic = _MAGIC.get(path.suffix.lower())
  if magic is not None:
    with open(path, "rb") as f:
      head = f.read(len(magic))
    if head != magic:
      raise ValueError(f"{where}: not a NumPy {path.suffix} file (it does not start with the "
                       f"{path.suffix} signature; a text or CSV file renamed?)")
  try:
    return np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise ValueError(f"{where}: not a readable {path.suffix} file ({e})") from e


def _array_row(i: int) -> str:
  return f"row {i + 1} (index {i})"


def _array_values(arr, source: str, wanted: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
  """Checks an [T] or [T, C] array; returns ([T, C'] float64, C' names) for `wanted`."""
  arr = np.asarray(arr)
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise ValueError(f"{source}: expected a numeric array, got dtype {arr.dtype}")
  if arr.ndim not in (1, 2):
    raise ValueError(f"{source}: expected an array [T] or [T, C], got shape {arr.shape}")
  arr = arr.reshape(len(arr), -1) if arr.ndim == 1 else arr
  names = tuple(f"c{j}" for j in range(arr.shape[1]))
  if wanted:
    _check_known(wanted, names, source)
    arr = arr[:, [names.index(c) for c in wanted]]
    names = wanted
  arr = arr.astype(np.float64)
  _check_finite(arr, names, source, _array_row, None)
  return checks.finite_array(arr, name=source, ndim=2), names


def _read_npz(path: pathlib.Path, wanted: tuple[str, ...]) -> _Part:
  source = str(path)
  archive = _np_load(path)
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise ValueError(f"{source}: holds a single array, not an .npz archive")
  with archive:
    keys = list(archive.files)
    unknown = [k for k in keys if k not in NPZ_KEYS]
    if unknown or "train" not in keys:
      raise ValueError(f"{source}: keys {keys}; an .npz needs 'train' and may hold 'test' and "
                       f"'labels' (labels of the test rows; training data is assumed normal), "
                       f"nothing else (unsupported: {unknown})")
    try:
      arrays = {k: archive[k] for k in keys}
    except (ValueError, OSError, EOFError) as e:
      raise ValueError(f"{source}: an array in the archive is unreadable: {e}") from e
  values, names = _array_values(arrays["train"], f"{source}[train]", wanted)
  labels = None
  if "labels" in arrays:
    labels = checks.binary_vector(arrays["labels"], name=f"{source}[labels]")
  test = None
  if "test" in arrays:
    test_values, test_names = _array_values(arrays["test"], f"{source}[test]", wanted)
    if test_names != names:
      raise ValueError(f"{source}: 'train' has {len(names)} column(s) but 'test' has "
                       f"{len(test_names)}; they must match")
    if labels is not None:
      checks.same_length(test_values, labels, names=(f"{source}[test]", f"{source}[labels]"))
    test = _Part(source, test_values, names, labels, None, _array_row)
    labels = None
  elif labels is not None:
    checks.same_length(values, labels, names=(f"{source}[train] (no 'test' array)",
                                              f"{source}[labels]"))
  return _Part(source, values, names, labels, None, _array_row, test)


def _read_csv(path: pathlib.Path, *, wanted: tuple[str, ...], label_column: str | None,
              timestamp_column: str | None, need_labels: bool) -> _Part:
  source = str(path)
  rows: list[list[str]] = []
  lines: list[int] = []
  try:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f)
      header = next(reader, None)
      for row in reader:
        if any(cell.strip() for cell in row):
          rows.append(row)
          lines.append(reader.line_num)
  except UnicodeDecodeError as e:
    raise ValueError(f"{source}: not UTF-8 text: {e}") from None
  except csv.Error as e:
    raise ValueError(f"{source}: malformed csv: {e}") from None
  header = [h.strip() for h in header] if header else []
  if not any(header):
    raise ValueError(f"{source}: empty file or empty first line; a header row of column names is "
                     "required")
  if all(_is_float(h) for h in header):
    raise ValueError(f"{source}: the first line {header} looks like data; a header row of column "
                     "names is required")
  for j, h in enumerate(header):
    if not h:
      raise ValueError(f"{source}: header column {j + 1} has an empty name (header {header})")
  duplicates = sorted({h for h in header if header.count(h) > 1})
  if duplicates:
    raise ValueError(f"{source}: header names {duplicates} more than once")
  for row, line in zip(rows, lines):
    if len(row) != len(header):
      raise ValueError(f"{source}: line {line} has {len(row)} fields but the header has "
                       f"{len(header)}")
  if not rows:
    raise ValueError(f"{source}: no data rows after the header")

  def describe(i: int) -> str:
    return f"data row {i + 1} (line {lines[i]})"

  cells = dict(zip(header, zip(*rows)))
  if timestamp_column is not None:
    _check_known((timestamp_column,), header, source, what="timestamp_column")
  if label_column is not None and need_labels:
    _check_known((label_column,), header, source, what="label_column")
  special = {label_column, timestamp_column}
  if wanted:
    _check_known(wanted, header, source)
    names = wanted
  else:
    names = tuple(h for h in header
                  if h not in special and all(_is_float(c) for c in cells[h] if c.strip()))
    if not names:
      raise ValueError(f"{source}: no numeric value columns (columns: {header}; label_column "
                       f"{label_column!r}, timestamp_column {timestamp_column!r})")
  values = np.stack([_parse_values(cells[c], c, source, describe) for c in names], axis=1)
  _check_finite(values, names, source, describe, [cells[c] for c in names])
  values = checks.finite_array(values, name=source, ndim=2)
  labels = None
  if label_column is not None and label_column in cells:
    labels = _parse_labels(cells[label_column], label_column, source, describe)
  timestamps = None
  if timestamp_column is not None:
    timestamps = _parse_timestamps(cells[timestamp_column], timestamp_column, source, describe)
  return _Part(source, values, names, labels, timestamps, describe)


def _is_float(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _check_known(names: Sequence[str], available: Sequence[str], source: str,
                 what: str = "column") -> None:
  for name in names:
    if name not in available:
      raise ValueError(f"{source}: unknown {what} {name!r}; available columns: {list(available)}")


def _parse_values(cells: Sequence[str], name: str, source: str,
                  describe: Callable[[int], str]) -> np.ndarray:
  """[T] float64; an empty cell becomes NaN (reported by `_check_finite`)."""
  out = np.empty(len(cells), dtype=np.float64)
  for i, cell in enumerate(cells):
    text = cell.strip()
    try:
      out[i] = float(text) if text else np.nan
    except ValueError:
      raise ValueError(f"{source}: column {name!r}, {describe(i)}: {cell!r} is not a "
                       "number") from None
  return out


def _check_finite(values: np.ndarray, names: Sequence[str], source: str,
                  describe: Callable[[int], str], texts: Sequence[Sequence[str]] | None) -> None:
  """Raises for the first (by row) empty, NaN or inf value of [T, C] `values`."""
  bad = ~np.isfinite(values)
  if not bad.any():
    return
  row, col = (int(i) for i in np.argwhere(bad)[0])
  shown = repr(texts[col][row]) if texts is not None else str(values[row, col])
  raise ValueError(f"{source}: column {names[col]!r} has {int(bad[:, col].sum())} empty or "
                   f"non-finite value(s) (NaN/inf); first at {describe(row)}: {shown}")


def _parse_labels(cells: Sequence[str], name: str, source: str,
                  describe: Callable[[int], str]) -> np.ndarray:
  """[T] int8 from '0'/'1'/'0.0'/'1.0'/'true'/'false' cells."""
  out = np.empty(len(cells), dtype=np.int8)
  for i, cell in enumerate(cells):
    text = cell.strip().lower()
    value = _LABEL_WORDS.get(text)
    if value is None and _is_float(text) and float(text) in (0.0, 1.0):
      value = int(float(text))
    if value is None:
      raise ValueError(f"{source}: label column {name!r}, {describe(i)}: {cell!r} is not a label; "
                       "expected 0 or 1 (or 0.0, 1.0, true, false)")
    out[i] = value
  return out


def _parse_timestamps(cells: Sequence[str], name: str, source: str,
                      describe: Callable[[int], str]) -> np.ndarray:
  """[T] float64 if every cell is a number, else datetime64; checked non-decreasing."""
  texts = [c.strip() for c in cells]
  for i, text in enumerate(texts):
    if not text:
      raise ValueError(f"{source}: timestamp column {name!r}, {describe(i)}: empty cell")
  if all(_is_float(t) for t in texts):
    stamps = np.array([float(t) for t in texts], dtype=np.float64)
    bad = ~np.isfinite(stamps)
  else:
    try:
      stamps = np.array(texts, dtype="datetime64")
    except ValueError:
      for i, text in enumerate(texts):
        try:
          np.datetime64(text)
        except ValueError:
          raise ValueError(f"{source}: timestamp column {name!r}, {describe(i)}: {text!r} is "
                           "neither a number nor an ISO-8601 time such as "
                           "'2024-01-01 00:00'") from None
      raise ValueError(f"{source}: timestamp column {name!r} mixes time formats that numpy "
                       "cannot read as one array; write every time in one ISO-8601 "
                       "format") from None
    bad = np.isnat(stamps)
  if bad.any():
    i = int(np.argmax(bad))
    raise ValueError(f"{source}: timestamp column {name!r}, {describe(i)}: {texts[i]!r} is not a "
                     "time")
  back = np.flatnonzero(stamps[1:] < stamps[:-1])
  if back.size:
    i = int(back[0]) + 1
    raise ValueError(f"{source}: timestamp column {name!r} must be non-decreasing; {describe(i)} "
                     f"has {texts[i]!r} after {texts[i - 1]!r}")
  return stamps


# ----------------------------------------------------------------------------- splitting


def _split_index(part: _Part, train_until: int | float | str) -> int:
  """The number of train rows of `part` for a validated `train_until`."""
  total = len(part.values)
  if isinstance(train_until, str):
    stamps = part.timestamps
    if stamps is None:  # Unreachable: a str needs timestamp_column, which .csv reading enforces.
      raise ValueError(f"{part.source}: train_until={train_until!r} needs a timestamp column")
    if np.issubdtype(stamps.dtype, np.floating):
      if not _is_float(train_until) or not math.isfinite(float(train_until)):
        raise ValueError(f"{part.source}: the timestamps are numbers but train_until "
                         f"{train_until!r} is not")
      cut = float(train_until)
    else:
      try:
        cut = np.datetime64(train_until)
      except ValueError:
        raise ValueError(f"{part.source}: train_until {train_until!r} is not an ISO-8601 time "
                         "such as '2024-01-01 00:00'") from None
      if np.isnat(cut):
        raise ValueError(f"{part.source}: train_until {train_until!r} is not a time")
    # The timestamps are non-decreasing, so the rows before `cut` are a prefix.
    n_train = int(np.count_nonzero(stamps < cut))
  elif isinstance(train_until, int):
    n_train = train_until
  else:
    n_train = int(math.floor(train_until * total + 0.5))
  if n_train < 2 or total - n_train < 1:
    raise ValueError(f"{part.source}: train_until={train_until!r} splits its {total} rows into "
                     f"{min(n_train, total)} train and {max(total - n_train, 0)} test rows; need "
                     "at least 2 train rows and 1 test row")
  return n_train


def _check_normal(train_labels: np.ndarray | None, part: _Part, hint: str) -> None:
  """Raises if a train part holds rows labelled 1."""
  if train_labels is None or not train_labels.any():
    return
  first = int(np.argmax(train_labels))
  raise ValueError(f"{part.source}: the train part has {int(train_labels.sum())} row(s) labelled 1 "
                   f"(first at {part.describe(first)}); training data must be normal: {hint}")
