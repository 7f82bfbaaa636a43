"""SMAP / MSL telemetry cut into labelled windows: the protocol of the window-level studies.

Two views of the same data, both per channel min–max scaled with that
channel's training statistics (no clipping, so out-of-range test values stay
visible):

`nasa_windows` (the β-VAEGAN protocol, papers/001): windows of the training
series (stride `train_stride`) train the model; the test series is cut at
`val_fraction` (30 %): the first part is the labelled validation split, the
rest the evaluation split. Both are cut into non-overlapping windows (plus one
aligned to the end), a window is anomalous if any of its points is, and
`point_scores` maps window scores back to points with the fixed-buffer
aggregator.

`load` (the telemetry generation and OOD studies) adds a held-out part of each
training series:

* train: windows (stride `stride`) of the first 1 − `holdout` of each
  channel's training series, with the channel index of every window;
* held-out: non-overlapping windows of the rest of the training series
  (none from a channel whose rest is shorter than one window)
  (never trained on: the real-data floor of the generation metrics);
* val / test: as `nasa_windows`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import logging

from mlts.data import nasa, series, transforms
from mlts.data import windows as windows_lib


@dataclasses.dataclass(frozen=True)
class ChannelWindows:
  """Windows of one channel's labelled test part (validation or evaluation).

  Attributes:
    name: channel name.
    windows: [N, L, C] scaled windows.
    labels: [N] int8, 1 if any point of the window is anomalous.
    starts: [N] window starts within the part.
    point_labels: [T] int8 point labels of the part.
  """
  name: str
  windows: np.ndarray
  labels: np.ndarray
  starts: np.ndarray
  point_labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class TelemetryData:
  """`nasa_windows` output.

  Attributes:
    train: [N_train, L, C] training windows of all channels, scaled.
    val: per channel, the first `val_fraction` of its test series.
    test: per channel, the rest (the evaluation split).
  """
  train: np.ndarray
  val: list[ChannelWindows]
  test: list[ChannelWindows]


def _part_windows(name: str, x: np.ndarray, labels: np.ndarray, window: int) -> ChannelWindows:
  wins, starts, mask = windows_lib.sliding_windows(x, window, window, pad=True, name=name)
  padded = np.concatenate([labels, np.zeros(mask.size - labels.size, labels.dtype)])
  index = starts[:, None] + np.arange(window)[None, :]
  window_labels = (padded[index] * mask[index]).max(axis=1).astype(np.int8)
  return ChannelWindows(name, wins.astype(np.float32), window_labels, starts,
                        labels.astype(np.int8))


def nasa_windows(spacecraft: str, *, window: int, train_stride: int, val_fraction: float = 0.3,
                 channels: str = "", features: str = "telemetry",
                 root: str | None = None) -> TelemetryData:
  """SMAP/MSL windows for the β-VAEGAN protocol (see the module docstring).

  Args:
    spacecraft: 'smap' or 'msl'.
    window: window length L.
    train_stride: stride of the training windows.
    val_fraction: leading fraction of each test series used as validation.
    channels: comma-separated subset ('' = all).
    features: 'telemetry' (column 0) or 'all'.
    root: None for the shipped data, else a telemanom-layout directory.

  Returns:
    A `TelemetryData`.
  """
  if not 0.0 < val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
  chans = nasa.load_spacecraft(spacecraft, features=features, root=root)
  chans = series.select_channels(chans, series.parse_channels(channels),
                                 what=f"{spacecraft} channel")
  train, val, test = [], [], []
  for c in chans:
    norm = transforms.fit_normalizer(c.train, "minmax", name=f"{c.name} train")
    train_scaled = norm.apply(c.train)
    wins, _, _ = windows_lib.sliding_windows(train_scaled, window, train_stride, pad=True,
                                             name=f"{c.name} train")
    train.append(wins.astype(np.float32))
    test_scaled = norm.apply(c.test)
    cut = int(round(val_fraction * c.test.shape[0]))
    val.append(_part_windows(f"{c.name} val", test_scaled[:cut], c.labels[:cut], window))
    test.append(_part_windows(f"{c.name} test", test_scaled[cut:], c.labels[cut:], window))
  return TelemetryData(np.concatenate(train), val, test)


def point_scores(parts: list[ChannelWindows], window_values) -> np.ndarray:
  """Maps per-window values (concatenated over `parts`) to points, concatenated.

  Args:
    parts: the channels' windows, in the order their values are concatenated.
    window_values: [sum N_k] one value per window.

  Returns:
    [sum T_k] per-point means over the covering windows (padding dropped).
  """
  values = np.asarray(window_values, dtype=np.float64)
  sizes = [p.windows.shape[0] for p in parts]
  if values.shape != (sum(sizes),):
    raise ValueError(f"expected {sum(sizes)} window values, got shape {values.shape}")
  out, begin = [], 0
  for p, n in zip(parts, sizes):
    vals = values[begin:begin + n]
    begin += n
    length = int(p.starts[-1]) + p.windows.shape[1]
    per_step = np.broadcast_to(vals[:, None], (n, p.windows.shape[1]))
    out.append(windows_lib.aggregate(per_step, p.starts, length)[:p.point_labels.size])
  return np.concatenate(out)


@dataclasses.dataclass
class TelemetryWindows:
  """Telemetry windows of one spacecraft (see the module docstring).

  Attributes:
    spacecraft: 'smap' or 'msl'.
    channels: channel names; `*_channel` arrays index this list.
    train: [N, L, 1] float32 training windows.
    train_channel: [N] int32 channel of each training window.
    heldout: [M, L, 1] float32 held-out windows of the training series.
    heldout_channel: [M] int32.
    val: labelled validation windows per channel (`ChannelWindows`).
    test: labelled evaluation windows per channel.
  """
  spacecraft: str
  channels: list[str]
  train: np.ndarray
  train_channel: np.ndarray
  heldout: np.ndarray
  heldout_channel: np.ndarray
  val: list[ChannelWindows]
  test: list[ChannelWindows]

  def labelled(self, part: str) -> tuple[np.ndarray, np.ndarray]:
    """All windows [K, L, 1] and window labels [K] of 'val' or 'test', channels concatenated."""
    parts = {"val": self.val, "test": self.test}[part]
    return (np.concatenate([p.windows for p in parts]),
            np.concatenate([p.labels for p in parts]).astype(np.int8))


def load(spacecraft: str, *, window: int, stride: int, holdout: float = 0.2,
         val_fraction: float = 0.3, channels: str = "", root: str | None = None
         ) -> TelemetryWindows:
  """Loads and windows the telemetry of a spacecraft (see the module docstring).

  Raises:
    ValueError: a holdout outside (0, 1), unknown channels, or bad data files
      (named by the loaders).
  """
  if not 0.0 < holdout < 1.0:
    raise ValueError(f"holdout must be in (0, 1), got {holdout}")
  labelled = nasa_windows(spacecraft, window=window, train_stride=window,
                                   val_fraction=val_fraction, channels=channels, root=root)
  wanted = series.parse_channels(channels)
  chans = nasa.load_spacecraft(spacecraft, features="telemetry", root=root)
  if wanted:
    chans = [c for c in chans if c.name in wanted]  # nasa_windows has checked the names
  train, train_ch, held, held_ch = [], [], [], []
  for k, c in enumerate(chans):
    scaled = transforms.fit_normalizer(c.train, "minmax", name=f"{c.name} train").apply(c.train)
    cut = int(round((1.0 - holdout) * scaled.shape[0]))
    if cut < window:
      raise ValueError(f"{spacecraft} channel {c.name}: a training series of {scaled.shape[0]} "
                       f"steps is too short for window {window} and holdout {holdout}")
    w, _, _ = windows_lib.sliding_windows(scaled[:cut], window, stride, name=f"{c.name} train")
    if scaled.shape[0] - cut >= window:
      h, _, _ = windows_lib.sliding_windows(scaled[cut:], window, window,
                                            name=f"{c.name} held-out")
    else:  # a short series (SMAP D-12: 312 steps) gives training windows but no held-out one
      logging.info("%s channel %s: %d held-out steps, fewer than window %d; no held-out window",
                   spacecraft, c.name, scaled.shape[0] - cut, window)
      h = np.zeros((0,) + w.shape[1:], w.dtype)
    train.append(w)
    held.append(h)
    train_ch.append(np.full(w.shape[0], k, np.int32))
    held_ch.append(np.full(h.shape[0], k, np.int32))
  return TelemetryWindows(spacecraft.lower(), [c.name for c in chans],
                          np.concatenate(train).astype(np.float32), np.concatenate(train_ch),
                          np.concatenate(held).astype(np.float32), np.concatenate(held_ch),
                          labelled.val, labelled.test)
