"""Metrics on binary predictions, and the label-segment helpers they share.

This module owns the threshold-free bookkeeping on {0,1} vectors: the runs of
1s in a label or prediction vector (`segments`), point-wise confusion-matrix
metrics (`pointwise`), the classic point adjustment of Xu et al. (2018)
(`point_adjust`) and telemanom-style event-level precision/recall
(`event_pr`). It also holds the input validation shared by the other metric
modules (`_labels_and_scores`, `_labels_and_preds`), so every metric rejects bad
input with the same messages.

Everything is vectorized: runs are found with `np.diff`, per-run counts with
cumulative sums, so cost is O(n) with no Python loop over time steps.
"""

from __future__ import annotations

import numpy as np

from mlts import checks


def _binary(x, name: str) -> np.ndarray:
  return checks.binary_vector(x, name=name)


def _labels_and_preds(labels, preds) -> tuple[np.ndarray, np.ndarray]:
  """Validated (labels, preds) as int8 vectors of equal length."""
  y = _binary(labels, "labels")
  p = _binary(preds, "preds")
  checks.same_length(y, p, names=("labels", "preds"))
  return y, p


def _labels_and_scores(labels, scores, *, need_both: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
  """Validated (labels int8, scores float) of equal length.

  Args:
    labels: [n] {0,1}.
    scores: [n] finite numbers.
    need_both: raise unless labels hold at least one anomaly and one normal
      point (every ranking metric is undefined otherwise).

  Returns:
    (labels as int8 [n], scores as float [n]); the inputs are not modified.
  """
  y = _binary(labels, "labels")
  s = checks.finite_array(scores, name="scores", ndim=1)
  checks.same_length(y, s, names=("labels", "scores"))
  if need_both:
    n_pos = int(y.sum())
    if n_pos == 0:
      raise ValueError("labels: no anomaly (all 0); this ranking metric is undefined")
    if n_pos == len(y):
      raise ValueError("labels: no normal point (all 1); this ranking metric is undefined")
  return y, s


def _runs(x: np.ndarray) -> np.ndarray:
  """[K, 2] (start, stop) of runs of 1s of an already validated 0/1 vector."""
  d = np.diff(np.concatenate(([0], x.astype(np.int8, copy=False), [0])))
  starts = np.flatnonzero(d == 1)
  stops = np.flatnonzero(d == -1)
  return np.stack([starts, stops], axis=1).astype(np.int64)


def segments(labels) -> np.ndarray:
  """Maximal runs of 1s in a {0,1} vector.

  Args:
    labels: [n] {0,1} values (any integer, bool or float dtype).

  Returns:
    int64 array [K, 2]; row k is (start, stop) of the k-th run, start inclusive
    and stop exclusive, so `labels[start:stop]` is all 1s. Rows are in time
    order; K = 0 gives shape [0, 2].
  """
  return _runs(_binary(labels, "labels"))


def _counts(y: np.ndarray, p: np.ndarray) -> tuple[int, int, int, int]:
  # Python ints: the MCC numerator/denominator products overflow int64 on long
  # series otherwise.
  tp = int(np.count_nonzero(y & p))
  fp = int(np.count_nonzero(p)) - tp
  fn = int(np.count_nonzero(y)) - tp
  tn = len(y) - tp - fp - fn
  return tp, fp, fn, tn


def _ratio(num: float, den: float) -> float:
  return float(num / den) if den > 0 else 0.0


def _f1(precision: float, recall: float) -> float:
  s = precision + recall
  return 2.0 * precision * recall / s if s > 0 else 0.0


def pointwise(labels, preds) -> dict:
  """Point-wise confusion-matrix metrics of binary predictions.

  Undefined ratios are 0, as scikit-learn with `zero_division=0` (precision
  with nothing predicted, recall with no anomaly, MCC with an empty row or
  column of the confusion matrix, FPR with no normal point).

  Args:
    labels: [n] {0,1} ground truth (1 = anomaly).
    preds: [n] {0,1} predictions.

  Returns:
    dict with float `precision`, `recall`, `f1`, `mcc`, `accuracy` and `fpr`
    (= FP / (FP + TN)).
  """
  y, p = _labels_and_preds(labels, preds)
  tp, fp, fn, tn = _counts(y, p)
  precision = _ratio(tp, tp + fp)
  recall = _ratio(tp, tp + fn)
  den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
  mcc = float((tp * tn - fp * fn) / np.sqrt(float(den))) if den > 0 else 0.0
  return {
      "precision": precision,
      "recall": recall,
      "f1": _f1(precision, recall),
      "mcc": mcc,
      "accuracy": (tp + tn) / len(y),
      "fpr": _ratio(fp, fp + tn),
  }


def point_adjust(labels, preds) -> np.ndarray:
  """Point adjustment of Xu et al. (2018).

  Every true segment (run of 1s in `labels`) that contains at least one
  predicted point becomes fully predicted, the segment starting at index 0
  included; predictions outside true segments are kept as they are.

  Args:
    labels: [n] {0,1} ground truth.
    preds: [n] {0,1} predictions.

  Returns:
    int8 array [n], the adjusted predictions (a new array).
  """
  y, p = _labels_and_preds(labels, preds)
  seg = _runs(y)
  csum = np.concatenate(([0], np.cumsum(p, dtype=np.int64)))
  hit = seg[(csum[seg[:, 1]] - csum[seg[:, 0]]) > 0]
  # +1 at each hit segment's start, -1 at its stop; the running sum is >0
  # exactly inside hit segments.
  marks = np.zeros(len(y) + 1, dtype=np.int64)
  marks[hit[:, 0]] += 1
  marks[hit[:, 1]] -= 1
  inside = np.cumsum(marks[:-1]) > 0
  return (p.astype(bool) | inside).astype(np.int8)


def event_pr(labels, preds) -> dict:
  """Event-level precision/recall, as in telemanom (Hundman et al., 2018).

  A true event (run of 1s in `labels`) is a true positive if any predicted
  point falls inside it, else a false negative. A predicted event (run of 1s in
  `preds`) is a false positive if it overlaps no true event. Precision =
  tp / (tp + fp), recall = tp / (tp + fn), 0 when undefined.

  Args:
    labels: [n] {0,1} ground truth.
    preds: [n] {0,1} predictions.

  Returns:
    dict with float `precision`, `recall`, `f1` and int `tp`, `fp`, `fn`.
  """
  y, p = _labels_and_preds(labels, preds)
  true_seg, pred_seg = _runs(y), _runs(p)
  cp = np.concatenate(([0], np.cumsum(p, dtype=np.int64)))
  cy = np.concatenate(([0], np.cumsum(y, dtype=np.int64)))
  tp = int(np.count_nonzero(cp[true_seg[:, 1]] - cp[true_seg[:, 0]]))
  fn = len(true_seg) - tp
  fp = int(np.count_nonzero((cy[pred_seg[:, 1]] - cy[pred_seg[:, 0]]) == 0))
  precision = _ratio(tp, tp + fp)
  recall = _ratio(tp, tp + fn)
  return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
          "tp": tp, "fp": fp, "fn": fn}
