"""Threshold-free metrics of continuous anomaly scores (higher = more anomalous).

This module owns the point-wise ranking metrics: AUROC and average precision
(delegated to scikit-learn so the numbers are the community's), the oracle
best F1 over all thresholds (optionally with point adjustment at every
threshold), and the FPR at a target TPR.

Every threshold is evaluated at once by counting on sorted scores
(`np.searchsorted` against the distinct score values), so each metric costs
O(n log n) with no Python loop over thresholds or time steps.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk_metrics

from mlts.metrics.pointwise import _labels_and_scores, _runs


def auroc(labels, scores) -> float:
  """Area under the ROC curve (scikit-learn `roc_auc_score`).

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores.

  Returns:
    AUROC as a float in [0, 1].
  """
  y, s = _labels_and_scores(labels, scores)
  return float(sk_metrics.roc_auc_score(y, s))


def auprc(labels, scores) -> float:
  """Average precision (scikit-learn `average_precision_score`).

  This is the step-wise sum of precisions weighted by recall increments, not a
  trapezoid under the PR curve (the trapezoid is optimistic).

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores.

  Returns:
    Average precision as a float in [0, 1].
  """
  y, s = _labels_and_scores(labels, scores)
  return float(sk_metrics.average_precision_score(y, s))


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """Number of `sorted_values` (ascending) that are >= each threshold."""
  return len(sorted_values) - np.searchsorted(sorted_values, thresholds, side="left")


def _f1_from_pr(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
  total = precision + recall
  safe = np.where(total > 0, total, 1.0)
  return np.where(total > 0, 2.0 * precision * recall / safe, 0.0)


def best_f1(labels, scores, point_adjusted: bool = False) -> dict:
  """Oracle F1: the best F1 over every threshold.

  Every distinct score value τ is a candidate; the prediction is score >= τ.
  With `point_adjusted=True` the point adjustment of Xu et al. (2018) is applied
  at each candidate before counting: a true segment is then fully detected at τ
  iff τ <= the maximum score inside it, so the adjusted true positives at τ are
  the summed lengths of the segments whose maximum is >= τ, and the false
  positives are the normal points with score >= τ (adjustment never touches
  them). Both counts come from sorted arrays, so all thresholds cost
  O(n log n) together.

  When several thresholds reach the same best F1 the largest one (fewest
  predicted points) is returned.

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores.
    point_adjusted: apply point adjustment at every threshold.

  Returns:
    dict with float `f1` (= 2PR/(P+R), 0 when P+R = 0), `precision`, `recall`
    and `threshold` (a value taken from `scores`).
  """
  y, s = _labels_and_scores(labels, scores)
  pos = y.astype(bool)
  n_pos = int(pos.sum())
  thresholds = np.unique(s)[::-1]  # descending: argmax then picks the largest
  neg_sorted = np.sort(s[~pos])
  fp = _count_at_least(neg_sorted, thresholds)
  if point_adjusted:
    seg = _runs(y)
    lengths = seg[:, 1] - seg[:, 0]
    # Anomalous points laid end to end keep each segment contiguous, so one
    # reduceat over the segment offsets gives every segment's maximum.
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    seg_max = np.maximum.reduceat(s[pos], offsets)
    order = np.argsort(seg_max, kind="stable")
    max_sorted = seg_max[order]
    # suffix[i] = total length of the segments ranked i.. in ascending max.
    suffix = np.concatenate((np.cumsum(lengths[order][::-1])[::-1], [0]))
    tp = suffix[np.searchsorted(max_sorted, thresholds, side="left")]
  else:
    tp = _count_at_least(np.sort(s[pos]), thresholds)
  predicted = tp + fp  # >= 1: each threshold is some point's score
  precision = tp / predicted
  recall = tp / n_pos
  f1 = _f1_from_pr(precision, recall)
  best = int(np.argmax(f1))
  return {"f1": float(f1[best]), "precision": float(precision[best]),
          "recall": float(recall[best]), "threshold": float(thresholds[best])}


def fpr_at_tpr(labels, scores, tpr: float = 0.95) -> float:
  """Smallest false-positive rate over thresholds whose TPR reaches `tpr`.

  All distinct score values are thresholds (prediction = score >= threshold),
  plus +inf (nothing predicted), as scikit-learn `roc_curve(...,
  drop_intermediate=False)`.

  Args:
    labels: [n] {0,1}, with at least one anomaly and one normal point.
    scores: [n] finite anomaly scores.
    tpr: target true-positive rate in [0, 1].

  Returns:
    FPR as a float in [0, 1].
  """
  if not 0.0 <= float(tpr) <= 1.0:
    raise ValueError(f"tpr: must be in [0, 1], got {tpr!r}")
  y, s = _labels_and_scores(labels, scores)
  pos = y.astype(bool)
  thresholds = np.unique(s)
  tps = _count_at_least(np.sort(s[pos]), thresholds)
  fps = _count_at_least(np.sort(s[~pos]), thresholds)
  # Same float division as roc_curve, so a TPR that is exactly the target
  # compares equal here too.
  rates_tp = np.concatenate(([0.0], tps / int(pos.sum())))
  rates_fp = np.concatenate(([0.0], fps / int((~pos).sum())))
  return float(rates_fp[rates_tp >= tpr].min())
