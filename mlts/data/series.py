"""Labelled series as every detector study sees them: load by name, split, normalize, window.

`load_series(config.data)` turns the `data` config section into a list of
`Series` (raw train / test / labels of one channel, one file, or one synthetic
series); `prepare` splits off the validation part (the last `val_fraction` of
each training series) and normalizes each series with the statistics of its own
fit part; `training_windows` cuts the windows the networks train on, never
across two series.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import ml_collections
import numpy as np

from mlts import checks
from mlts.data import synthetic, transforms
from mlts.data import windows as windows_lib

DATASETS = ("smap", "msl", "synthetic", "csv")


@dataclasses.dataclass(frozen=True)
class Series:
  """One labelled series (a NASA channel, a file, or a synthetic series), raw values.

  Attributes:
    name: channel id or file name.
    train: [T_train, C] normal training data.
    test: [T_test, C] test data.
    labels: [T_test] int8 test labels.
  """
  name: str
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class PreparedSeries:
  """A series split and normalized with statistics of its fit part only.

  Attributes:
    name: channel id.
    fit: [T_fit, C] training part (first 1 - val_fraction of train), normalized.
    val: [T_val, C] validation part (last val_fraction of train), normalized.
    test: [T_test, C] normalized test data.
    labels: [T_test] int8.
  """
  name: str
  fit: np.ndarray
  val: np.ndarray
  test: np.ndarray
  labels: np.ndarray


def validate_config(config: ml_collections.ConfigDict, *, where: str = "data") -> None:
  """Checks the `data` section of the detector studies; ValueError names the field."""
  checks.config_choice(config, "dataset", DATASETS, where=where)
  checks.config_float(config, "val_fraction", where=where, low=0.0, high=1.0, low_open=True,
                      high_open=True)
  checks.config_choice(config, "normalization", transforms.METHODS, where=where)
  for field in ("window", "stride", "eval_stride"):
    checks.config_int(config, field, where=where, minimum=1)
  if config.dataset in ("smap", "msl"):
    checks.config_choice(config, "features", ("telemetry", "all"), where=where)
  if config.dataset == "synthetic":
    syn = config.synthetic
    for field in ("num_series", "num_channels", "train_length", "test_length"):
      checks.config_int(syn, field, where=f"{where}.synthetic", minimum=1)
    checks.config_int(syn, "num_anomalies", where=f"{where}.synthetic", minimum=0)
  if config.dataset == "csv" and not config.get("path"):
    raise ValueError(f"{where}.path is empty: give a CSV / .npy / .npz file or a folder of "
                     "them (--config.data.path=...)")


def parse_channels(text: str) -> list[str]:
  """'A-1, P-1,' -> ['A-1', 'P-1']: the comma-separated channel lists of configs."""
  return [c.strip() for c in (text or "").split(",") if c.strip()]


def select_channels(items: Sequence, wanted: Sequence[str], *, what: str) -> list:
  """The items (anything with a `.name`) named in `wanted`, in `wanted`'s order if given.

  Args:
    items: channels or series.
    wanted: names from `parse_channels`; empty keeps every item in its order.
    what: what the items are, for the error ('SMAP channel').

  Raises:
    ValueError: a wanted name that no item has (all of them listed).
  """
  if not wanted:
    return list(items)
  known = {c.name: c for c in items}
  unknown = [w for w in wanted if w not in known]
  if unknown:
    raise ValueError(f"unknown {what}(s) {unknown} in data.channels; "
                     f"known: {sorted(known)}")
  return [known[w] for w in wanted]


def load_series(config: ml_collections.ConfigDict) -> tuple[str, list[Series]]:
  """Loads the dataset named by `config.dataset` (the `data` section).

  'smap' / 'msl': the shipped NASA telemetry (or `config.root`); 'synthetic':
  seeded synthetic series; 'csv': the user's own files (`config.path`, see
  `mlts.data.files.load`).

  Returns:
    (display name, list of `Series`).
  """
  name = config.dataset.lower()
  if name in ("smap", "msl"):
    from mlts.data import nasa  # local import: synthetic runs need no data files
    channels = nasa.load_spacecraft(name.upper(), features=config.features,
                                    include_p2=config.include_p2, root=config.root)
    wanted = parse_channels(config.channels)
    if wanted:  # the spacecraft's order, as before
      select_channels(channels, wanted, what=f"{name.upper()} channel")
      channels = [c for c in channels if c.name in wanted]
    return name.upper(), [Series(c.name, c.train, c.test, c.labels) for c in channels]
  if name == "synthetic":
    out = []
    for k in range(config.synthetic.num_series):
      s = synthetic.make_series(
          config.synthetic.seed + k, train_length=config.synthetic.train_length,
          test_length=config.synthetic.test_length,
          num_channels=config.synthetic.num_channels,
          num_anomalies=config.synthetic.num_anomalies)
      out.append(Series(f"syn-{k}", s.train, s.test, s.labels))
    return "synthetic", out
  if name == "csv":
    return load_files(config)
  raise ValueError(f"unknown data.dataset {config.dataset!r}; expected one of {DATASETS}")


def load_files(config: ml_collections.ConfigDict) -> tuple[str, list[Series]]:
  """The 'csv' dataset: the user's own CSV / .npy / .npz files (`mlts.data.files`).

  The display name is the file (or folder) name, never a benchmark's name.
  """
  import os

  from mlts.data import files
  if not config.get("path"):
    raise ValueError("data.path is empty: give a CSV / .npy / .npz file or a folder of them "
                     "(--config.data.path=...)")
  loaded = files.load(
      config.path, columns=config.get("columns", ""),
      label_column=config.get("label_column") or None,
      timestamp_column=config.get("timestamp_column") or None,
      train_until=files.parse_train_until(config.get("train_until")),
      test_path=config.get("test_path") or None)
  loaded = select_channels(loaded, parse_channels(config.get("channels", "")), what="file")
  title = os.path.basename(os.path.normpath(config.path))
  return title, [Series(s.name, s.train, s.test, s.labels) for s in loaded]


def prepare(series: Sequence[Series], config: ml_collections.ConfigDict) -> list[PreparedSeries]:
  """Splits off validation and normalizes each series with its own fit-part statistics."""
  out = []
  for s in series:
    fit, val = transforms.split_train_val(s.train, config.val_fraction, name=f"{s.name} train")
    norm = transforms.fit_normalizer(fit, config.normalization, name=f"{s.name} train")
    parts = {}
    for part, values in (("fit", fit), ("val", val), ("test", s.test)):
      with np.errstate(over="ignore", invalid="ignore"):
        parts[part] = norm.apply(values).astype(np.float32)
      checks.finite_array(parts[part], name=f"{s.name} {part} part after normalization "
                          "(values beyond the float32 range of the training statistics)")
    out.append(PreparedSeries(name=s.name, fit=parts["fit"], val=parts["val"],
                              test=parts["test"], labels=np.asarray(s.labels, np.int8)))
  return out


def training_windows(prepared: Sequence[PreparedSeries], window: int, stride: int, *,
                     part: str = "fit", rows: np.ndarray | None = None) -> np.ndarray:
  """Windows [N, L, C] of every series' `part` ('fit' or 'val'), each series on its own.

  Series shorter than the window are edge-padded (see `windows.sliding_windows`).
  `rows`: sorted indices into those N windows (series by series, as they come);
  only these are cut, so a process holding a share of them (`mlts.shards`)
  never holds the rest. Without `rows`, all N.

  Raises:
    ValueError: the window is longer than every series' `part`: every window
      would be mostly edge padding, which the losses would learn.
  """
  longest = max(getattr(p, part).shape[0] for p in prepared)
  if window > longest:
    raise ValueError(
        f"data.window={window} is longer than every training series ({part} parts of at most "
        f"{longest} steps): the training windows would be {1 - longest / window:.0%} or more "
        f"edge padding. Use data.window <= {longest}")
  if rows is not None:
    rows = np.asarray(rows, np.int64)
    total = count_training_windows(prepared, window, stride, part=part)
    if rows.size and (rows.min() < 0 or rows.max() >= total or np.any(np.diff(rows) <= 0)):
      raise ValueError(f"rows must be increasing indices in [0, {total}), the training windows")
  out, offset = [], 0
  for p in prepared:
    x = getattr(p, part)
    count = windows_lib.window_starts(max(x.shape[0], window), window, stride).size
    keep = None if rows is None else rows[(rows >= offset) & (rows < offset + count)] - offset
    out.append(windows_lib.sliding_windows(x, window, stride, pad=True, name=f"{p.name} {part}",
                                           keep=keep)[0])
    offset += count
  return np.concatenate(out, axis=0).astype(np.float32)


def count_training_windows(prepared: Sequence[PreparedSeries], window: int, stride: int, *,
                           part: str = "fit") -> int:
  """N of `training_windows` without cutting any window."""
  return int(sum(windows_lib.window_starts(max(getattr(p, part).shape[0], window), window,
                                           stride).size for p in prepared))
