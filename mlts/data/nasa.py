"""NASA SMAP / MSL spacecraft telemetry anomaly benchmark (Hundman et al., KDD 2018).

This module owns reading the telemanom data: the label file
`labeled_anomalies.csv` and the per-channel `train` / `test` arrays, either from
the copies shipped with mlts (`mlts/data/assets/nasa_{smap,msl}.npz`, verified
against the manifest) or from a user's own copy in the original telemanom
layout (`root/labeled_anomalies.csv`, `root/train/<chan>.npy`,
`root/test/<chan>.npy`).

Conventions, all taken from the data (see `mlts/data/assets/README.md`):
  * Column 0 of every array is the telemetry value; columns 1.. are one-hot
    command features (F = 25 for SMAP, 55 for MSL).
  * Anomaly `[start, end]` pairs index the raw test array and `end` is
    inclusive: `labels[start:end + 1] = 1`.
  * P-2 (SMAP) has two csv rows; they are merged. The usual benchmark setting
    (OmniAnomaly) drops P-2, so spacecraft listings leave it out by default.
  * T-10 has arrays (stored in the MSL archive, 55 features) but no csv row and
    no labels; it is never listed and `load_channel('T-10')` refuses it.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import os
import pathlib
import threading

import numpy as np

from mlts import checks
from mlts.data import assets

SPACECRAFT = ("SMAP", "MSL")
FEATURES = ("telemetry", "all")
CSV_NAME = "labeled_anomalies.csv"
CSV_COLUMNS = ("chan_id", "spacecraft", "anomaly_sequences", "class", "num_values")
# Channels with arrays but no csv row (unlabelled), and where they are stored.
UNLABELLED_CHANNELS = {"T-10": "MSL"}
# The channel the OmniAnomaly-style benchmark setting leaves out of SMAP.
_P2 = "P-2"


@dataclasses.dataclass(frozen=True, eq=False)
class Channel:
  """One telemetry channel with its labels.

  `eq=False` because the fields are arrays: channels compare and hash by
  identity (compare arrays with `np.array_equal` instead).

  Attributes:
    name: the csv `chan_id`, e.g. 'A-1'.
    spacecraft: 'SMAP' or 'MSL'.
    train: [T_train, F] float64 (F = 1 for features='telemetry').
    test: [T_test, F] float64.
    labels: [T_test] int8 in {0, 1}; 1 inside any anomaly sequence (inclusive
      ends), all csv rows of the channel merged.
    anomaly_sequences: inclusive (start, end) pairs in csv order (P-2: the
      pairs of both rows, in row order; they overlap).
  """
  name: str
  spacecraft: str
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray
  anomaly_sequences: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class ChannelInfo:
  """A channel's csv entry, all its rows merged.

  Attributes:
    name: chan_id.
    spacecraft: 'SMAP' or 'MSL'.
    anomaly_sequences: inclusive (start, end) pairs, csv order.
    num_values: the test length stated in the csv.
  """
  name: str
  spacecraft: str
  anomaly_sequences: tuple[tuple[int, int], ...]
  num_values: int


def parse_labeled_anomalies(text: str, *, source: str) -> dict[str, ChannelInfo]:
  """Parses telemanom's `labeled_anomalies.csv`.

  Args:
    text: the csv contents.
    source: where the text came from (a path), for error messages.

  Returns:
    {chan_id: ChannelInfo} in csv order of first occurrence; channels listed on
    several rows (P-2) have their anomaly sequences concatenated in row order.

  Raises:
    ValueError: wrong header, malformed row, unknown spacecraft, a bad
      `anomaly_sequences` literal (not a list of [start, end] integer pairs with
      0 <= start <= end), a non-positive `num_values`, or rows of one channel
      that disagree on spacecraft or `num_values`.
  """
  reader = csv.reader(io.StringIO(text))
  header = next(reader, None)
  if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
    raise ValueError(f"{source}: expected header {','.join(CSV_COLUMNS)}, got {header}")
  merged: dict[str, ChannelInfo] = {}
  for row in reader:
    line = reader.line_num
    if not row or not any(field.strip() for field in row):
      continue
    if len(row) != len(CSV_COLUMNS):
      raise ValueError(f"{source}: line {line} has {len(row)} fields, expected {len(CSV_COLUMNS)}")
    chan, craft, seq_text, _, num_text = (field.strip() for field in row)
    where = f"{source}: line {line} (channel {chan!r})"
    if not chan:
      raise ValueError(f"{source}: line {line} has an empty chan_id")
    if craft not in SPACECRAFT:
      raise ValueError(f"{where}: unknown spacecraft {craft!r}; expected one of {SPACECRAFT}")
    try:
      num_values = int(num_text)
    except ValueError:
      raise ValueError(f"{where}: num_values {num_text!r} is not an integer") from None
    if num_values <= 0:
      raise ValueError(f"{where}: num_values must be positive, got {num_values}")
    sequences = _parse_sequences(seq_text, where)
    if chan in merged:
      prev = merged[chan]
      if (prev.spacecraft, prev.num_values) != (craft, num_values):
        raise ValueError(
            f"{where}: disagrees with an earlier row of the same channel "
            f"(spacecraft {prev.spacecraft} vs {craft}, num_values {prev.num_values} "
            f"vs {num_values})")
      sequences = prev.anomaly_sequences + sequences
    merged[chan] = ChannelInfo(chan, craft, sequences, num_values)
  if not merged:
    raise ValueError(f"{source}: no channel rows")
  return merged


def _parse_sequences(text: str, where: str) -> tuple[tuple[int, int], ...]:
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
    raise ValueError(f"{where}: anomaly_sequences {text!r} is not a Python literal") from None
  if not isinstance(value, (list, tuple)):
    raise ValueError(f"{where}: anomaly_sequences must be a list of [start, end] pairs")
  out = []
  for pair in value:
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
      raise ValueError(f"{where}: anomaly sequence {pair!r} is not an integer [start, end] pair")
    start, end = pair
    if not 0 <= start <= end:
      raise ValueError(f"{where}: anomaly sequence {list(pair)} needs 0 <= start <= end")
    out.append((start, end))
  return tuple(out)


# The shipped csv is parsed once per process (per asset directory, so tests
# that point `assets` elsewhere get their own parse). A user's `root` copy is
# re-read on every call: it is small and the user may be editing it.
_index_lock = threading.Lock()
_shipped_index_cache: dict[str, dict[str, ChannelInfo]] = {}


def _index(root: str | os.PathLike | None) -> tuple[dict[str, ChannelInfo], str]:
  """Returns (the parsed csv, a description of where it came from)."""
  if root is None:
    directory = assets.asset_dir()
    source = str(directory / CSV_NAME)
    key = str(directory)
    with _index_lock:
      cached = _shipped_index_cache.get(key)
    if cached is None:
      cached = parse_labeled_anomalies(assets.read_bytes(CSV_NAME).decode("utf-8"), source=source)
      with _index_lock:
        _shipped_index_cache[key] = cached
    return cached, source
  path = _root_dir(root) / CSV_NAME
  if not path.is_file():
    raise FileNotFoundError(f"NASA label file not found: {path}")
  return parse_labeled_anomalies(path.read_text(encoding="utf-8"), source=str(path)), str(path)


def _root_dir(root: str | os.PathLike) -> pathlib.Path:
  if not isinstance(root, (str, os.PathLike)):
    raise TypeError(f"root must be a path or None, got {type(root).__name__}")
  path = pathlib.Path(root)
  if not path.is_dir():
    raise FileNotFoundError(f"NASA data root is not a directory: {path}")
  return path


def _check_spacecraft(spacecraft: str) -> str:
  if not isinstance(spacecraft, str) or spacecraft.upper() not in SPACECRAFT:
    raise ValueError(f"unknown spacecraft {spacecraft!r}; expected one of {SPACECRAFT} "
                     "(case-insensitive)")
  return spacecraft.upper()


def _check_features(features: str) -> None:
  if features not in FEATURES:
    raise ValueError(f"unknown features {features!r}; expected one of {FEATURES} "
                     "('telemetry' keeps column 0, 'all' keeps every column)")


def list_channels(spacecraft: str, *, include_p2: bool = False,
                  root: str | os.PathLike | None = None) -> list[str]:
  """Lists a spacecraft's labelled channels in csv order (first occurrence).

  Args:
    spacecraft: 'SMAP' or 'MSL' (case-insensitive).
    include_p2: include SMAP's P-2 (excluded by default, as in the
      OmniAnomaly benchmark setting). No effect for MSL.
    root: None for the shipped data, or a directory in telemanom layout.

  Returns:
    chan_ids, e.g. ['P-1', 'S-1', ...]; 53 for SMAP (54 with P-2), 27 for MSL.
    The unlabelled T-10 is never listed.
  """
  craft = _check_spacecraft(spacecraft)
  index, _ = _index(root)
  return [name for name, info in index.items()
          if info.spacecraft == craft and (include_p2 or name != _P2)]


def load_channel(name: str, *, features: str = "telemetry",
                 root: str | os.PathLike | None = None) -> Channel:
  """Loads one labelled channel.

  Args:
    name: chan_id as in the csv, e.g. 'A-1' (case-sensitive).
    features: 'telemetry' keeps column 0 only ([T, 1]); 'all' keeps every
      column ([T, 25] for SMAP, [T, 55] for MSL).
    root: None for the shipped data (checked against the manifest), or a
      directory in telemanom layout: `root/labeled_anomalies.csv`,
      `root/train/<name>.npy`, `root/test/<name>.npy`.

  Returns:
    A Channel with float64 `train` [T_train, F], `test` [T_test, F] and int8
    `labels` [T_test].

  Raises:
    ValueError: unknown `features` or channel (the message lists valid names),
      the unlabelled T-10, a corrupt shipped file, a series that is empty, not
      2-D, non-finite (names the file and first index), train/test feature
      counts that differ, a test length different from the csv's
      `num_values`, or an anomaly index outside the test series.
    FileNotFoundError: a missing csv or array file (names the path).
  """
  _check_features(features)
  if not isinstance(name, str):
    raise ValueError(f"channel name must be a string, got {type(name).__name__}")
  index, source = _index(root)
  if name not in index:
    if name in UNLABELLED_CHANNELS:
      raise ValueError(
          f"channel {name!r} has train/test arrays but no row in {source}: it is unlabelled "
          "and cannot be loaded as a labelled Channel (see mlts/data/assets/README.md)")
    valid = list(index)
    raise ValueError(
        f"unknown NASA channel {name!r} (not in {source}); valid names include "
        f"{', '.join(valid[:6])}, ... ({len(valid)} channels; see list_channels)")
  info = index[name]
  train = _load_array(info, "train", root)
  test = _load_array(info, "test", root)
  if train.shape[1] != test.shape[1]:
    raise ValueError(f"channel {name}: train has {train.shape[1]} features but test has "
                     f"{test.shape[1]}; they must match")
  if test.shape[0] != info.num_values:
    raise ValueError(f"channel {name}: {source} gives num_values {info.num_values} but the test "
                     f"series has length {test.shape[0]}")
  labels = np.zeros(test.shape[0], dtype=np.int8)
  for start, end in info.anomaly_sequences:
    if end >= test.shape[0]:
      raise ValueError(f"channel {name}: anomaly sequence [{start}, {end}] in {source} lies "
                       f"outside the test series (length {test.shape[0]}; ends are inclusive)")
    labels[start:end + 1] = 1
  if features == "telemetry":
    # Copy so the returned array does not keep the full one-hot block alive.
    train, test = train[:, :1].copy(), test[:, :1].copy()
  return Channel(name=name, spacecraft=info.spacecraft, train=train, test=test, labels=labels,
                 anomaly_sequences=info.anomaly_sequences)


def load_spacecraft(spacecraft: str, *, features: str = "telemetry", include_p2: bool = False,
                    root: str | os.PathLike | None = None) -> list[Channel]:
  """Loads every labelled channel of a spacecraft, in csv order.

  Args:
    spacecraft: 'SMAP' or 'MSL' (case-insensitive).
    features: 'telemetry' or 'all', as for `load_channel`.
    include_p2: include SMAP's P-2 (two csv rows, labels merged).
    root: None for the shipped data, or a directory in telemanom layout.

  Returns:
    A list of Channel (53 for SMAP, 54 with P-2, 27 for MSL).

  Raises:
    ValueError, FileNotFoundError: as for `list_channels` and `load_channel`.
  """
  _check_spacecraft(spacecraft)
  _check_features(features)
  return [load_channel(name, features=features, root=root)
          for name in list_channels(spacecraft, include_p2=include_p2, root=root)]


def _load_array(info: ChannelInfo, split: str, root: str | os.PathLike | None) -> np.ndarray:
  """Reads and validates one [T, F] series of a channel."""
  if root is None:
    asset = f"nasa_{info.spacecraft.lower()}.npz"
    archive = assets.load_npz(asset)
    key = f"{split}/{info.name}"
    where = f"{assets.asset_dir() / asset}[{key}]"
    if key not in archive.files:
      raise ValueError(f"{where}: no such entry in the shipped archive (channel {info.name})")
    arr = archive[key]
  else:
    path = _root_dir(root) / split / f"{info.name}.npy"
    where = str(path)
    if not path.is_file():
      raise FileNotFoundError(f"channel {info.name}: {split} file not found: {path}")
    from mlts.data import files  # the .npy reader with clear errors
    arr = files.load_numpy(path, f"{where} (channel {info.name})")
  arr = checks.finite_array(arr, name=f"{where} (channel {info.name})", ndim=2)
  # The telemanom files are float64; a user's float32 copy is widened so that
  # every Channel has one dtype.
  return arr.astype(np.float64, copy=False)
