"""Sliding windows over one series and the fixed-buffer aggregator that inverts them.

Windows are cut per channel (per series): callers window each series on its own
and concatenate the windows, so no window ever spans two channels. The
aggregator maps per-window values (reconstructions, errors) back to time steps:
each time step gets the mean over all windows that cover it.
"""

from __future__ import annotations

import numpy as np

from mlts import checks


def window_starts(length_of_series: int, window: int, stride: int) -> np.ndarray:
  """Start indices of the windows of a series.

  Windows start at 0, stride, 2*stride, ...; if the last one stops short of the
  series end, one more window aligned to the end is added so every time step is
  covered.

  Args:
    length_of_series: T, the number of time steps.
    window: L, the window length (1 <= L <= T).
    stride: the step between window starts (>= 1).

  Returns:
    int64 array [N] of start indices, increasing.
  """
  if window < 1 or stride < 1:
    raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
  if window > length_of_series:
    raise ValueError(
        f"window length {window} is longer than the series ({length_of_series} steps); "
        "pass pad=True to sliding_windows to pad short series")
  starts = np.arange(0, length_of_series - window + 1, stride, dtype=np.int64)
  if starts[-1] + window < length_of_series:
    starts = np.append(starts, length_of_series - window)
  return starts


def sliding_windows(series, window: int, stride: int = 1, *, pad: bool = False,
                    name: str = "series", keep: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Cuts a [T, C] series into windows [N, L, C].

  Args:
    series: [T, C] (or [T], treated as one channel) finite values.
    window: L, the window length.
    stride: step between window starts.
    pad: if True, a series shorter than L is padded at the end by repeating its
      last value (edge replication) up to L; the returned mask marks the padded
      steps as 0 so they can be left out of every score and metric.
    name: what the series is, for error messages.
    keep: indices of the windows to cut (of the N in order); only these are
      copied. None: all N.

  Returns:
    windows: [N, L, C] array (a copy, same dtype as the input), or [len(keep), L, C].
    starts: [N] (or [len(keep)]) start index of each window.
    mask: [T_padded] 1 for real steps, 0 for padded ones (T_padded = max(T, L)).

  Raises:
    ValueError: non-finite values, wrong rank, empty series, or a series shorter
      than the window with pad=False.
  """
  x = checks.finite_array(series, name=name, ndim=(1, 2))
  if x.ndim == 1:
    x = x[:, None]
  length = x.shape[0]
  if window > length:
    if not pad:
      raise ValueError(
          f"{name}: window length {window} is longer than the series ({length} steps); "
          "use pad=True or a shorter window")
    x = np.concatenate([x, np.repeat(x[-1:], window - length, axis=0)], axis=0)
  mask = np.zeros(x.shape[0], dtype=np.int8)
  mask[:length] = 1
  starts = window_starts(x.shape[0], window, stride)
  if keep is not None:
    starts = starts[np.asarray(keep, np.int64)]
  index = starts[:, None] + np.arange(window)[None, :]  # [N, L]
  return x[index], starts, mask


def aggregate(values, starts, length_of_series: int) -> np.ndarray:
  """Fixed-buffer aggregator: per-time-step mean over all covering windows.

  Args:
    values: [N, L, ...] per-window values (e.g. reconstructions [N, L, C] or
      errors [N, L]).
    starts: [N] start index of each window, as from `window_starts`.
    length_of_series: T; every step in [0, T) must be covered by a window.

  Returns:
    [T, ...] float64 array: for each step the mean of the values of the windows
    that cover it.
  """
  values = np.asarray(values, dtype=np.float64)
  starts = np.asarray(starts, dtype=np.int64)
  if values.ndim < 2 or values.shape[0] != starts.shape[0]:
    raise ValueError(
        f"values must be [N, L, ...] with N = len(starts) = {starts.shape[0]}, "
        f"got shape {values.shape}")
  num_windows, window = values.shape[:2]
  trailing = values.shape[2:]
  index = (starts[:, None] + np.arange(window)[None, :]).reshape(-1)  # [N * L]
  if index.size and (index.min() < 0 or index.max() >= length_of_series):
    raise ValueError(
        f"windows reach index {index.max()} but the series has {length_of_series} steps")
  counts = np.bincount(index, minlength=length_of_series)
  if (counts == 0).any():
    raise ValueError(
        f"time step {int(np.argmax(counts == 0))} is covered by no window")
  flat = values.reshape(num_windows * window, -1)  # [N * L, D]
  sums = np.stack(
      [np.bincount(index, weights=flat[:, d], minlength=length_of_series)
       for d in range(flat.shape[1])], axis=1)  # [T, D]; loop over features only
  return (sums / counts[:, None]).reshape((length_of_series,) + trailing)
