"""Affiliation precision/recall (Huet, Navarro and Rossi, KDD 2022).

This module owns the affiliation metrics. The time axis is continuous: index i
of a vector is the interval [i, i+1) and the series covers [0, n). Each
ground-truth event J owns an affiliation zone E (the points closer to J than
to any other ground-truth event, cut at the midpoints between events and at 0
and n). Inside a zone:

* individual precision: the mean over the predicted time in E of the survival
  function Fbar(d) = P(dist(X, J) >= d) of the distance from a uniform X in E
  to J, evaluated at each predicted point's distance to J;
* individual recall: the mean over J of the analogous survival function of the
  distance from each ground-truth point to the nearest predicted piece (the
  predicted pieces in E split E again at their midpoints).

Precision is the mean of the individual precisions over the zones that hold a
prediction (NaN when no zone does); recall is the mean of the individual
recalls over all zones (0 where a zone has no prediction). The numbers agree
with the authors' `pr_from_events(convert_vector_to_events(preds),
convert_vector_to_events(labels), (0, n))`.

The integrands are piecewise linear in the position, so each integral is
computed exactly by the trapezoid rule over the integrand's breakpoints; all
(zone, predicted piece) pairs are handled at once with arrays, with no Python
loop over events.
"""

from __future__ import annotations

import numpy as np

from mlts.metrics.pointwise import _labels_and_preds, _runs


def _pwl_integral(f, lo: np.ndarray, hi: np.ndarray, breaks: np.ndarray) -> np.ndarray:
  """Exact integral of a continuous piecewise-linear integrand per row.

  Args:
    f: maps positions [P, B+2] to integrand values [P, B+2] (row-wise params
      are closed over as [P, 1] arrays).
    lo, hi: [P] integration bounds with hi >= lo.
    breaks: [P, B] positions where f may change slope; those outside [lo, hi]
      are clipped to it and then contribute nothing.

  Returns:
    [P] integrals.
  """
  lo2, hi2 = lo[:, None], hi[:, None]
  pts = np.sort(np.concatenate([lo2, np.clip(breaks, lo2, hi2), hi2], axis=1), axis=1)
  vals = f(pts)
  return np.sum(np.diff(pts, axis=1) * (vals[:, 1:] + vals[:, :-1]) * 0.5, axis=1)


def _precision_outside(lo, hi, ja, jb, m, before: bool) -> np.ndarray:
  """Integral of min(d, m) + d over [lo, hi] lying before (or after) J=(ja, jb).

  d is the distance to J (ja - x before J, x - jb after it); m is the distance
  from J to the nearer end of its zone, beyond which the survival function's
  min(d, m) term saturates.
  """
  if before:
    ja2, m2 = ja[:, None], m[:, None]
    return _pwl_integral(lambda x: np.minimum(ja2 - x, m2) + (ja2 - x), lo, hi,
                         (ja - m)[:, None])
  jb2, m2 = jb[:, None], m[:, None]
  return _pwl_integral(lambda x: np.minimum(x - jb2, m2) + (x - jb2), lo, hi,
                       (jb + m)[:, None])


def _recall_outside(lo, hi, pivot, e0, e1) -> np.ndarray:
  """Survival-function integral over a ground-truth part [lo, hi] lying on one
  side of a predicted piece whose nearest end is `pivot`, in zone (e0, e1).

  For a ground-truth point t at distance d = |t - pivot| the probability that a
  uniform point of the zone is at least as far from t is
  1 - (min(d, t - e0, e1 - t) + d) / |E|; the authors define it as 0 when the
  pivot is not strictly inside the zone.
  """
  p2, e02, e12 = pivot[:, None], e0[:, None], e1[:, None]

  def penalty(t):
    d = np.abs(t - p2)
    return np.minimum(d, np.minimum(t - e02, e12 - t)) + d

  # Slopes change where d meets t - e0 or e1 - t, and where those two cross.
  breaks = np.stack([(e0 + e1) * 0.5, (e0 + pivot) * 0.5, (e1 + pivot) * 0.5], axis=1)
  value = (hi - lo) - _pwl_integral(penalty, lo, hi, breaks) / (e1 - e0)
  return np.where((pivot <= e0) | (pivot >= e1), 0.0, value)


def affiliation(labels, preds) -> dict:
  """Affiliation precision, recall and F1 of binary predictions.

  Args:
    labels: [n] {0,1} ground truth, with at least one anomaly and one normal
      point.
    preds: [n] {0,1} predictions.

  Returns:
    dict with float `precision` (NaN when nothing is predicted: the authors
    leave it undefined), `recall` (0 when nothing is predicted) and `f1` =
    2PR/(P+R) (NaN when precision is NaN, 0 when P+R = 0).
  """
  y, p = _labels_and_preds(labels, preds)
  n = len(y)
  n_pos = int(y.sum())
  if n_pos == 0 or n_pos == n:
    raise ValueError(
        f"labels: affiliation needs at least one anomaly and one normal point, "
        f"got {n_pos} anomalous of {n}")
  gt = _runs(y).astype(np.float64)
  pred = _runs(p).astype(np.float64)
  n_zones = len(gt)
  # Zone boundaries: 0, midpoints between consecutive events, n.
  bounds = np.concatenate(([0.0], (gt[:-1, 1] + gt[1:, 0]) * 0.5, [float(n)]))
  if len(pred) == 0:
    return {"precision": float("nan"), "recall": 0.0, "f1": float("nan")}

  # Cut every predicted event at zone boundaries: event i covers zones
  # first[i]..last[i], each piece is its intersection with one zone.
  first = np.clip(np.searchsorted(bounds, pred[:, 0], side="right") - 1, 0, n_zones - 1)
  last = np.clip(np.searchsorted(bounds, pred[:, 1], side="left") - 1, 0, n_zones - 1)
  count = last - first + 1
  owner = np.repeat(np.arange(len(pred)), count)
  zone = first[owner] + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
  a = np.maximum(pred[owner, 0], bounds[zone])
  b = np.minimum(pred[owner, 1], bounds[zone + 1])
  ja, jb = gt[zone, 0], gt[zone, 1]
  e0, e1 = bounds[zone], bounds[zone + 1]
  width_e = e1 - e0
  len_j = jb - ja

  # --- individual precision: integrate the survival function over each piece.
  m = np.minimum(ja - e0, e1 - jb)
  inside = np.maximum(np.minimum(b, jb) - np.maximum(a, ja), 0.0)
  lo_b, hi_b = a, np.maximum(np.minimum(b, ja), a)
  lo_a, hi_a = np.minimum(np.maximum(a, jb), b), b
  outside = 0.0
  for lo, hi, before in ((lo_b, hi_b, True), (lo_a, hi_a, False)):
    length = hi - lo
    pen = _precision_outside(lo, hi, ja, jb, m, before)
    outside = outside + length - (pen + len_j * length) / width_e
  prec_num = np.bincount(zone, weights=inside + outside, minlength=n_zones)
  prec_den = np.bincount(zone, weights=b - a, minlength=n_zones)
  has_pred = prec_den > 0
  precision = float(np.mean(prec_num[has_pred] / prec_den[has_pred]))

  # --- individual recall: the pieces of a zone split it again at their
  # midpoints; each ground-truth part is scored against its nearest piece.
  same_prev = np.concatenate(([False], zone[1:] == zone[:-1]))
  same_next = np.concatenate((zone[:-1] == zone[1:], [False]))
  sub_lo = np.where(same_prev, (np.roll(b, 1) + a) * 0.5, e0)
  sub_hi = np.where(same_next, (b + np.roll(a, -1)) * 0.5, e1)
  ka = np.maximum(ja, sub_lo)
  kb = np.maximum(np.minimum(jb, sub_hi), ka)  # empty intersection -> zero length
  covered = np.maximum(np.minimum(kb, b) - np.maximum(ka, a), 0.0)
  before_part = _recall_outside(ka, np.maximum(np.minimum(kb, a), ka), a, e0, e1)
  after_part = _recall_outside(np.minimum(np.maximum(ka, b), kb), kb, b, e0, e1)
  rec_num = np.bincount(zone, weights=covered + before_part + after_part, minlength=n_zones)
  recall = float(np.mean(rec_num / (gt[:, 1] - gt[:, 0])))

  total = precision + recall
  f1 = 2.0 * precision * recall / total if total > 0 else 0.0
  return {"precision": precision, "recall": recall, "f1": float(f1)}
