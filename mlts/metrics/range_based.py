"""Range-AUC and VUS (Paparrizos et al., "Volume Under the Surface", VLDB 2022).

This module owns the range-based ranking metrics. Both soften the label
vector: every anomaly segment is extended by h = window // 2 points on each
side with weights sqrt(1 - d / window) at distance d, overlapping extensions
are summed and capped at 1, and anomalous points keep weight 1. Both read 250
thresholds from the descending-sorted scores at positions
`linspace(0, n - 1, 250).astype(int)` (prediction = score >= threshold) and
close the ROC curve at (0, 0) and (1, 1). The numbers agree with the authors'
PyPI package `vus` (0.0.6): `metricor().RangeAUC(labels, score, window=w,
plot_ROC=True)[:2]` and `get_metrics(score, labels, metric='vus',
slidingWindow=w, version='opt', thre=250)`. Neither normalizes the scores, so
neither does this module.

Range-AUC (one window):
  TP = sum(ext * pred), P_new = (P + sum(ext)) / 2, TPR = min(TP / P_new, 1)
  times the fraction of extended ranges holding a prediction (runs of nonzero
  extended labels, so ranges that touch are merged), FPR = (#pred - TP) /
  (n - P_new), precision = TP / #pred; ROC and PR areas by trapezoids, the PR
  curve starting at (TPR 0, precision 1).

VUS (`RangeAUC_volume_opt`): the mean over windows w = 0, 1, ..., max_window of
  the same areas with three differences taken from the reference: the extended
  weights only count where predicted, so P_new = P + sum(ext * pred) / 2 and
  TP = (#predicted anomalous points) + sum(ext * pred) depend on the threshold;
  extended ranges merge only when they overlap (touching ranges stay apart);
  and the PR area is a sum of right-endpoint rectangles, not trapezoids.

The reference loops in Python over windows, thresholds and segments
(O(windows * 250 * n)). Here every threshold is handled at once by counting on
sorted scores: cumulative sums of extension weights over points sorted by
score, and per-range maximum scores sorted once per window. The extension
weights of one window take O(h * K) for K segments (one scattered entry per
segment and offset) or, when segments are dense, O(h * n) by convolution. So
Range-AUC costs O(n log n + h * min(K, n)) and VUS the same per window plus
O(n) per window, in memory O(n) (the scatter works in bounded blocks).
"""

from __future__ import annotations

import numpy as np

from mlts.metrics.pointwise import _labels_and_scores, _runs

_N_THRESHOLDS = 250  # the reference's `thre`
_CHUNK = 1 << 21  # elements per block when scattering extension weights
# Above this many segments per point the extension weights are built by
# convolving start/end indicators (O(n * h), fast C loop) instead of scattering
# one entry per (segment, offset) (O(K * h) gathers, ~20x slower per entry).
_DENSE_SEGMENTS_PER_POINT = 1 / 16


def _check_window(w, name: str) -> int:
  if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 0:
    raise ValueError(f"{name}: expected a non-negative integer, got {w!r}")
  return int(w)


class _Setup:
  """Threshold-independent quantities shared by Range-AUC and VUS.

  Attributes:
    n, n_pos: series length and number of anomalous points.
    starts, ends: [K] first and last (inclusive) index of each anomaly segment.
    thresholds: [250] score thresholds, as the reference picks them.
    n_pred: [250] number of points with score >= threshold.
    tp_orig: [250] number of anomalous points with score >= threshold.
  """

  def __init__(self, labels: np.ndarray, scores: np.ndarray):
    self.n = len(scores)
    self.scores = scores
    self.anomalous = labels.astype(bool)
    self.n_pos = int(self.anomalous.sum())
    seg = _runs(labels)
    self.starts, self.ends = seg[:, 0], seg[:, 1] - 1
    ascending = np.sort(scores)
    picks = np.linspace(0, self.n - 1, _N_THRESHOLDS).astype(int)
    self.thresholds = ascending[::-1][picks]
    self.n_pred = self._count_at_least(ascending)
    self.tp_orig = self._count_at_least(np.sort(scores[self.anomalous]))
    # Scores padded with -inf so reduceat may take an index equal to n.
    self._padded = np.append(scores, -np.inf)

  def _count_at_least(self, ascending: np.ndarray) -> np.ndarray:
    return len(ascending) - np.searchsorted(ascending, self.thresholds, side="left")

  def extension_support(self, half: int) -> np.ndarray:
    """Sorted indices of normal points within `half` steps of a segment."""
    marks = np.zeros(self.n + 1, dtype=np.int64)
    np.add.at(marks, np.maximum(self.starts - half, 0), 1)
    np.add.at(marks, np.minimum(self.ends + half + 1, self.n), -1)
    near = np.cumsum(marks[:-1]) > 0
    return np.flatnonzero(near & ~self.anomalous)

  def extension_weights(self, support: np.ndarray, slot: np.ndarray, max_half: int,
                        window: int) -> np.ndarray:
    """Capped extension weights of the `support` points for one window.

    Args:
      support: [M] indices of the normal points that any window may reach.
      slot: [n + 2 * max_half] maps position + max_half to its index in
        `support`, or to M (a discard slot) for anomalous, far or out-of-range
        positions, so no bounds checks are needed per offset.
      max_half: the largest half-width `slot` was built for (>= window // 2).
      window: the window w; points at distance d <= w // 2 get sqrt(1 - d / w).

    Returns:
      [M] weights in [0, 1], summed over segments then capped at 1.
    """
    half = window // 2
    if half == 0:
      return np.zeros(len(support))
    n_seg = len(self.starts)
    kernel = np.sqrt(1.0 - np.arange(1, half + 1) / window)  # weight at distance 1..h
    if n_seg > _DENSE_SEGMENTS_PER_POINT * self.n:
      # after[x] = sum_d kernel[d] * [x - d is a segment end];
      # before[x] = sum_d kernel[d] * [x + d is a segment start].
      after = np.convolve(self._indicator(self.ends), np.concatenate(([0.0], kernel)))
      before = np.convolve(self._indicator(self.starts), np.concatenate((kernel[::-1], [0.0])))
      return np.minimum(after[support] + before[support + half], 1.0)
    acc = np.zeros(len(support) + 1)
    rows = max(1, _CHUNK // max(n_seg, 1))
    for lo in range(0, half, rows):
      d = np.arange(lo + 1, min(lo + rows, half) + 1)
      weight = np.repeat(kernel[d - 1], n_seg)
      after = slot[(self.ends[None, :] + d[:, None]).ravel() + max_half]
      before = slot[(self.starts[None, :] - d[:, None]).ravel() + max_half]
      acc += np.bincount(after, weights=weight, minlength=len(acc))
      acc += np.bincount(before, weights=weight, minlength=len(acc))
    return np.minimum(acc[:-1], 1.0)

  def _indicator(self, index: np.ndarray) -> np.ndarray:
    out = np.zeros(self.n)
    out[index] = 1.0
    return out

  def slot_map(self, support: np.ndarray, max_half: int) -> np.ndarray:
    slot = np.full(self.n + 2 * max_half, len(support), dtype=np.int64)
    slot[support + max_half] = np.arange(len(support))
    return slot

  def hits_of_ranges(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """[250] number of ranges [first, last] (inclusive) holding a prediction.

    A range holds a prediction at threshold t iff its maximum score is >= t.
    """
    bounds = np.stack([first, last + 1], axis=1).ravel()
    range_max = np.maximum.reduceat(self._padded, bounds)[::2]
    return self._count_at_least(np.sort(range_max))

  def merged_ranges(self, half: int, touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """Segments widened by `half` on each side, clipped to [0, n-1], merged.

    Args:
      half: the widening.
      touching: merge ranges that touch (Range-AUC, which takes runs of nonzero
        extended labels) or only ranges that overlap (VUS, which follows the
        reference's `new_sequence`: e_i + half < s_{i+1} - half keeps two
        ranges apart).
    """
    first = np.maximum(self.starts - half, 0)
    last = np.minimum(self.ends + half, self.n - 1)
    gap = 1 if touching else 0
    new = np.concatenate(([True], self.ends[:-1] + half + gap < self.starts[1:] - half))
    group_last = np.concatenate((np.flatnonzero(new)[1:] - 1, [len(new) - 1]))
    return first[new], last[group_last]


class _ThresholdSums:
  """Sums of per-point weights over the points whose score reaches each threshold.

  The points (`support`) are sorted by score once; each call is then one
  cumulative sum and one gather, for all 250 thresholds at once.
  """

  def __init__(self, setup: _Setup, support: np.ndarray):
    support_scores = setup.scores[support]
    self._order = np.argsort(-support_scores, kind="stable")
    self._counts = setup._count_at_least(np.sort(support_scores))

  def __call__(self, weights: np.ndarray) -> np.ndarray:
    """[250] sum of `weights` ([M], aligned with `support`) at each threshold."""
    cum = np.concatenate(([0.0], np.cumsum(weights[self._order])))
    return cum[self._counts]


def _roc_area(tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
  """Trapezoid areas of ROC curves [..., 250] closed by (0,0) and (1,1)."""
  pad0 = np.zeros(tpr.shape[:-1] + (1,))
  pad1 = np.ones(tpr.shape[:-1] + (1,))
  t = np.concatenate([pad0, tpr, pad1], axis=-1)
  f = np.concatenate([pad0, fpr, pad1], axis=-1)
  return np.sum(np.diff(f, axis=-1) * (t[..., 1:] + t[..., :-1]) * 0.5, axis=-1)


def range_auc(labels, scores, window: int) -> dict:
  """Range-AUC of ROC and PR (Paparrizos et al., 2022) for one window.

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores (used as given, not rescaled).
    window: non-negative int; segments are widened by window // 2 points per
      side (0 and 1 give no widening).

  Returns:
    dict with float `roc` (the reference's R_AUC_ROC) and `pr` (R_AUC_PR).
  """
  y, s = _labels_and_scores(labels, scores)
  window = _check_window(window, "window")
  setup = _Setup(y, s)
  half = window // 2
  support = setup.extension_support(half)
  ext = setup.extension_weights(support, setup.slot_map(support, half), half, window)
  tp = setup.tp_orig + _ThresholdSums(setup, support)(ext)
  p_new = (setup.n_pos + setup.n_pos + ext.sum()) / 2.0
  first, last = setup.merged_ranges(half, touching=True)
  existence = setup.hits_of_ranges(first, last) / len(first)
  tpr = np.minimum(tp / p_new, 1.0) * existence
  fpr = (setup.n_pred - tp) / (setup.n - p_new)
  precision = tp / setup.n_pred
  t = np.concatenate(([0.0], tpr))
  prec = np.concatenate(([1.0], precision))
  pr = np.sum(np.diff(t) * (prec[1:] + prec[:-1]) * 0.5)
  return {"roc": float(_roc_area(tpr, fpr)), "pr": float(pr)}


def vus(labels, scores, max_window: int) -> dict:
  """Volume under the Range-AUC surfaces for windows 0, 1, ..., max_window.

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores (used as given, not rescaled).
    max_window: non-negative int, the largest window (the reference's
      `slidingWindow`); the result averages max_window + 1 windows.

  Returns:
    dict with float `roc` (the reference's VUS_ROC) and `pr` (VUS_PR).
  """
  y, s = _labels_and_scores(labels, scores)
  max_window = _check_window(max_window, "max_window")
  setup = _Setup(y, s)
  max_half = max_window // 2
  support = setup.extension_support(max_half)
  slot = setup.slot_map(support, max_half)
  sums = _ThresholdSums(setup, support)
  windows = np.arange(max_window + 1)
  extra = np.empty((len(windows), _N_THRESHOLDS))  # sum(ext * pred) per window
  existence = np.empty((len(windows), _N_THRESHOLDS))
  for i, w in enumerate(windows):
    extra[i] = sums(setup.extension_weights(support, slot, max_half, int(w)))
    first, last = setup.merged_ranges(int(w) // 2, touching=False)
    existence[i] = setup.hits_of_ranges(first, last) / len(first)
  # The reference's "labels" vector is 1 on anomalous points and ext * pred on
  # extended ones, so its TP and label mass both grow with the predictions.
  tp = setup.tp_orig + extra
  p_new = setup.n_pos + extra / 2.0
  tpr = np.minimum(tp / p_new, 1.0) * existence
  fpr = (setup.n_pred - tp) / (setup.n - p_new)
  precision = tp / setup.n_pred
  t = np.concatenate([np.zeros((len(windows), 1)), tpr], axis=1)
  # Quirk kept from the reference: right-endpoint rectangles for the PR area
  # here, where Range-AUC uses trapezoids.
  pr = np.sum(np.diff(t, axis=1) * precision, axis=1)
  return {"roc": float(np.mean(_roc_area(tpr, fpr))), "pr": float(np.mean(pr))}
