"""Tests for mlts.metrics: hand-worked cases, reference agreement, properties, bad input.

Reference values (the authors' `vus` package for affiliation, Range-AUC and
VUS) live in tests/fixtures/metric_reference.npz, written by
tests/fixtures/make_metric_fixtures.py, so these tests do not need `vus`.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from mlts import metrics

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "metric_reference.npz")
TOL = 1e-6


def _read_only(*arrays):
  """Copies made read-only: any in-place write inside a metric raises."""
  out = []
  for a in arrays:
    a = np.array(a)
    a.setflags(write=False)
    out.append(a)
  return out


# --------------------------------------------------------------------------
# segments / pointwise / point_adjust / event_pr: worked by hand.


def test_segments_by_hand():
  got = metrics.segments([1, 1, 0, 0, 1, 0, 1])
  np.testing.assert_array_equal(got, [[0, 2], [4, 5], [6, 7]])
  assert got.dtype == np.int64
  assert metrics.segments([0, 0, 0]).shape == (0, 2)
  np.testing.assert_array_equal(metrics.segments(np.ones(4, bool)), [[0, 4]])


def test_segments_rebuild_random_vectors():
  rng = np.random.default_rng(0)
  for _ in range(50):
    x = (rng.random(int(rng.integers(1, 40))) < 0.5).astype(int)
    rebuilt = np.zeros_like(x)
    for start, stop in metrics.segments(x):
      rebuilt[start:stop] = 1
    np.testing.assert_array_equal(rebuilt, x)


def test_pointwise_by_hand():
  # labels 1 1 0 0 1 0 / preds 1 0 1 0 1 0: TP=2 (0,4), FP=1 (2), FN=1 (1), TN=2.
  # P = R = F1 = 2/3, acc = 4/6, FPR = 1/3, MCC = (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3.
  got = metrics.pointwise([1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 1, 0])
  expected = {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "mcc": 1 / 3,
              "accuracy": 4 / 6, "fpr": 1 / 3}
  assert got.keys() == expected.keys()
  for k, v in expected.items():
    assert got[k] == pytest.approx(v, abs=1e-12), k


def test_pointwise_nothing_predicted_is_zero_not_nan():
  got = metrics.pointwise([0, 1, 1, 0], [0, 0, 0, 0])
  assert got["precision"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0
  assert got["mcc"] == 0.0  # undefined -> 0, as scikit-learn
  assert got["accuracy"] == 0.5 and got["fpr"] == 0.0


def test_pointwise_matches_sklearn_on_random_input():
  rng = np.random.default_rng(1)
  for _ in range(30):
    n = int(rng.integers(2, 50))
    y = (rng.random(n) < 0.3).astype(int)
    p = (rng.random(n) < 0.4).astype(int)
    got = metrics.pointwise(y, p)
    assert got["precision"] == pytest.approx(
        sk_metrics.precision_score(y, p, zero_division=0), abs=1e-12)
    assert got["recall"] == pytest.approx(sk_metrics.recall_score(y, p, zero_division=0),
                                          abs=1e-12)
    assert got["f1"] == pytest.approx(sk_metrics.f1_score(y, p, zero_division=0), abs=1e-12)
    assert got["mcc"] == pytest.approx(sk_metrics.matthews_corrcoef(y, p), abs=1e-12)
    assert got["accuracy"] == pytest.approx(sk_metrics.accuracy_score(y, p), abs=1e-12)


def test_point_adjust_by_hand():
  # Segments [0,2) (hit at 1), [4,7) (no hit), [8,9) (hit); the prediction at 3
  # lies outside every segment and is kept.
  labels = [1, 1, 0, 0, 1, 1, 1, 0, 1]
  preds = [0, 1, 0, 1, 0, 0, 0, 0, 1]
  got = metrics.point_adjust(labels, preds)
  np.testing.assert_array_equal(got, [1, 1, 0, 1, 0, 0, 0, 0, 1])


def test_point_adjust_segment_at_index_zero_only_hit_at_its_end():
  # A copy of this code that starts scanning at index 1 misses this segment.
  got = metrics.point_adjust([1, 1, 1, 0], [0, 0, 1, 0])
  np.testing.assert_array_equal(got, [1, 1, 1, 0])


def test_event_pr_by_hand():
  # True events [1,3) (hit at 2) and [5,7) (missed): tp=1, fn=1. Predicted
  # events [2,4) (overlaps a true event) and [8,10) (overlaps none): fp=1.
  labels = [0, 1, 1, 0, 0, 1, 1, 0, 0, 0]
  preds = [0, 0, 1, 1, 0, 0, 0, 0, 1, 1]
  got = metrics.event_pr(labels, preds)
  assert (got["tp"], got["fp"], got["fn"]) == (1, 1, 1)
  assert got["precision"] == 0.5 and got["recall"] == 0.5 and got["f1"] == 0.5
  empty = metrics.event_pr([0, 1, 0], [0, 0, 0])
  assert (empty["tp"], empty["fp"], empty["fn"], empty["precision"]) == (0, 0, 1, 0.0)


# --------------------------------------------------------------------------
# Ranking metrics: worked by hand.


def test_auroc_auprc_by_hand():
  # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered -> 0.75.
  # Descending: 0.8(+) 0.4(-) 0.35(+) 0.1(-); AP = 0.5*1 + 0.5*(2/3) = 5/6.
  labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
  assert metrics.auroc(labels, scores) == pytest.approx(0.75)
  assert metrics.auprc(labels, scores) == pytest.approx(5 / 6)


def test_best_f1_by_hand():
  # labels 0 1 1 0 0 1, scores .1 .9 .3 .4 .2 .35. Thresholds (desc):
  # .9: P=1 R=1/3 F=.5; .4: P=1/2 R=1/3 F=.4; .35: P=2/3 R=2/3 F=2/3;
  # .3: P=3/4 R=1 F=6/7 (best); .2: P=3/5 R=1 F=.75; .1: P=1/2 R=1 F=2/3.
  labels = [0, 1, 1, 0, 0, 1]
  scores = [0.1, 0.9, 0.3, 0.4, 0.2, 0.35]
  got = metrics.best_f1(labels, scores)
  assert got == pytest.approx({"f1": 6 / 7, "precision": 0.75, "recall": 1.0,
                               "threshold": 0.3})
  # Point-adjusted: segment [1,3) has max .9, segment [5,6) max .35.
  # .9: TP=2 FP=0 -> F=.8; .4: TP=2 FP=1 -> 2/3; .35: TP=3 FP=1 -> 6/7;
  # .3: TP=3 FP=1 -> 6/7 again: the tie goes to the larger threshold .35.
  got = metrics.best_f1(labels, scores, point_adjusted=True)
  assert got == pytest.approx({"f1": 6 / 7, "precision": 0.75, "recall": 1.0,
                               "threshold": 0.35})


def test_fpr_at_tpr_by_hand():
  # Descending: .9(+) .7(-) .6(+) .5(-) .2(+) .1(-). (TPR, FPR) per threshold:
  # (1/3,0) (1/3,1/3) (2/3,1/3) (2/3,2/3) (1,2/3) (1,1).
  labels = [0, 1, 0, 1, 0, 1]
  scores = [0.1, 0.9, 0.5, 0.6, 0.7, 0.2]
  assert metrics.fpr_at_tpr(labels, scores, tpr=0.5) == pytest.approx(1 / 3)
  assert metrics.fpr_at_tpr(labels, scores, tpr=0.95) == pytest.approx(2 / 3)
  assert metrics.fpr_at_tpr(labels, scores) == pytest.approx(2 / 3)
  assert metrics.fpr_at_tpr(labels, scores, tpr=1 / 3) == 0.0


# --------------------------------------------------------------------------
# Affiliation / Range-AUC / VUS: worked by hand.


def test_affiliation_perfect_prediction():
  labels = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]
  got = metrics.affiliation(labels, labels)
  assert got == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0})


def test_affiliation_by_hand():
  # n=10, one true event J=[4,6), zone E=[0,10), prediction I=[0,1).
  # Precision: for x in I, d = 4 - x in [3,4]; m = min(4-0, 10-6) = 4, so
  # Fbar(d) = 1 - (|J| + min(d,m) + d)/|E| = 0.8 - 0.2 d, mean over d -> 0.1.
  # Recall: pivot 1, d = t - 1 for t in J; the integrand min(d, t, 10-t) + d is
  # 2(t-1) on [4, 5.5] and 9 on [5.5, 6]: integral 11.25 + 4.5 = 15.75, so
  # recall = (2 - 15.75/10) / 2 = 0.2125, F1 = 2*.1*.2125/.3125 = 0.136.
  labels = np.zeros(10, int)
  labels[4:6] = 1
  preds = np.zeros(10, int)
  preds[0] = 1
  got = metrics.affiliation(labels, preds)
  assert got == pytest.approx({"precision": 0.1, "recall": 0.2125, "f1": 0.136})


def test_affiliation_no_prediction_is_nan_precision():
  got = metrics.affiliation([0, 1, 1, 0], [0, 0, 0, 0])
  assert math.isnan(got["precision"]) and math.isnan(got["f1"])
  assert got["recall"] == 0.0


def test_range_auc_and_vus_window_zero_by_hand():
  # n=4 < 250, so the 250 thresholds repeat the sorted scores .9 .3 .2 .1
  # (83, 83, 83 and 1 times). The anomaly (score .2) is found only from .2 on:
  # ROC points (1/3,0) (2/3,0) (2/3,1) (1,1) -> area 1/3 (= AUROC).
  # PR: TPR jumps 0 -> 1 where precision goes 0 -> 1/3: Range-AUC's trapezoid
  # gives 1/6, VUS's right-endpoint rectangle 1/3.
  labels, scores = [0, 1, 0, 0], [0.3, 0.2, 0.9, 0.1]
  assert metrics.range_auc(labels, scores, window=0) == pytest.approx(
      {"roc": 1 / 3, "pr": 1 / 6})
  assert metrics.vus(labels, scores, max_window=0) == pytest.approx(
      {"roc": 1 / 3, "pr": 1 / 3})


def test_range_auc_window_two_by_hand():
  # labels 0 0 1 0 0, window 2: h=1, weight r = sqrt(1 - 1/2) on points 1 and 3.
  # P=1, sum(ext) = 1+2r, P_new = 1+r, N_new = 5-P_new = 4-r, one range [1,3].
  # Thresholds .9 .5 .4 .2 .1 (predicted sets {2} {0,2} {0,2,3} {0,2,3,4} all):
  # TP 1, 1, 1+r, 1+r, 1+2r -> TPR a, a, 1, 1, 1 with a = 1/(1+r);
  # FP 0, 1, 2-r, 3-r, 4-2r -> FPR = FP / (4-r); precision TP / #predicted.
  labels, scores = [0, 0, 1, 0, 0], [0.5, 0.1, 0.9, 0.4, 0.2]
  r = math.sqrt(0.5)
  nn, a = 4 - r, 1 / (1 + r)
  roc = (a / nn + ((1 - r) / nn) * (a + 1) / 2 + 1 / nn + (1 - r) / nn
         + 1 - (4 - 2 * r) / nn)
  pr = a * 1.0 + (1 - a) * (0.5 + (1 + r) / 3) / 2
  assert metrics.range_auc(labels, scores, window=2) == pytest.approx({"roc": roc, "pr": pr})


# --------------------------------------------------------------------------
# Agreement with the authors' code (fixture).


def _fixture_cases():
  with np.load(FIXTURE, allow_pickle=False) as f:
    data = {k: f[k] for k in f.files}
  return data, json.loads(str(data["meta"]))["cases"]


_DATA, _CASES = _fixture_cases()


@pytest.mark.parametrize("case", _CASES)
def test_affiliation_matches_reference(case):
  y, p = _DATA[f"{case}/labels"], _DATA[f"{case}/preds"]
  ref_p, ref_r = _DATA[f"{case}/affiliation"]
  got = metrics.affiliation(y, p)
  if math.isnan(ref_p):
    assert math.isnan(got["precision"])
  else:
    assert abs(got["precision"] - ref_p) < TOL
  assert abs(got["recall"] - ref_r) < TOL


@pytest.mark.parametrize("case", _CASES)
def test_range_auc_matches_reference(case):
  y, s = _DATA[f"{case}/labels"], _DATA[f"{case}/scores"]
  for window, ref_roc, ref_pr in _DATA[f"{case}/range_auc"]:
    got = metrics.range_auc(y, s, window=int(window))
    assert abs(got["roc"] - ref_roc) < TOL, (case, window)
    assert abs(got["pr"] - ref_pr) < TOL, (case, window)


@pytest.mark.parametrize("case", _CASES)
def test_vus_matches_reference(case):
  y, s = _DATA[f"{case}/labels"], _DATA[f"{case}/scores"]
  for window, ref_roc, ref_pr in _DATA[f"{case}/vus"]:
    got = metrics.vus(y, s, max_window=int(window))
    assert abs(got["roc"] - ref_roc) < TOL, (case, window)
    assert abs(got["pr"] - ref_pr) < TOL, (case, window)


@pytest.mark.parametrize("dense", [False, True], ids=["scatter", "convolve"])
def test_both_extension_paths_match_reference(dense, monkeypatch):
  # The extension weights are built one of two ways depending on how many
  # segments there are per point; force each way on every fixture case.
  from mlts.metrics import range_based
  monkeypatch.setattr(range_based, "_DENSE_SEGMENTS_PER_POINT", 0.0 if dense else np.inf)
  for case in _CASES:
    y, s = _DATA[f"{case}/labels"], _DATA[f"{case}/scores"]
    for window, ref_roc, ref_pr in _DATA[f"{case}/vus"]:
      got = metrics.vus(y, s, max_window=int(window))
      assert abs(got["roc"] - ref_roc) < TOL and abs(got["pr"] - ref_pr) < TOL, (case, window)
    for window, ref_roc, ref_pr in _DATA[f"{case}/range_auc"]:
      got = metrics.range_auc(y, s, window=int(window))
      assert abs(got["roc"] - ref_roc) < TOL and abs(got["pr"] - ref_pr) < TOL, (case, window)


@pytest.mark.parametrize("case", _CASES)
def test_auroc_auprc_match_reference(case):
  y, s = _DATA[f"{case}/labels"], _DATA[f"{case}/scores"]
  ref_roc, ref_ap = _DATA[f"{case}/auroc_auprc"]
  assert abs(metrics.auroc(y, s) - ref_roc) < TOL
  assert abs(metrics.auprc(y, s) - ref_ap) < TOL


def test_fixture_cases_cover_the_edges():
  # The reference cases must keep segments touching both ends of the series.
  ends = [(_DATA[f"{c}/labels"][0], _DATA[f"{c}/labels"][-1]) for c in _CASES]
  assert any(first == 1 for first, _ in ends) and any(last == 1 for _, last in ends)


# --------------------------------------------------------------------------
# Properties and brute force.


def _brute_best_f1(y, s, adjusted):
  best = 0.0
  for t in np.unique(s):
    p = (s >= t).astype(int)
    if adjusted:
      p = metrics.point_adjust(y, p)
    tp = int((p & y).sum())
    prec, rec = tp / p.sum(), tp / y.sum()
    best = max(best, 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
  return best


def _random_case(rng, n):
  y = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
  y[int(rng.integers(n))] = 1 - y[int(rng.integers(n))]
  if y.sum() in (0, n):
    y[0], y[-1] = 1, 0
  # Coarse grid: many ties.
  s = np.round(rng.random(n) * rng.choice([3, 8, 1000])) + 0.5 * y * rng.random(n)
  return y, s


def test_best_f1_equals_brute_force_with_ties():
  rng = np.random.default_rng(2)
  for _ in range(60):
    y, s = _random_case(rng, int(rng.integers(2, 40)))
    for adjusted in (False, True):
      got = metrics.best_f1(y, s, point_adjusted=adjusted)
      assert got["f1"] == pytest.approx(_brute_best_f1(y, s, adjusted), abs=1e-12)
      assert got["threshold"] in s
      # The reported precision/recall are those at the reported threshold.
      p = (s >= got["threshold"]).astype(int)
      if adjusted:
        p = metrics.point_adjust(y, p)
      tp = int((p & y).sum())
      assert got["precision"] == pytest.approx(tp / p.sum())
      assert got["recall"] == pytest.approx(tp / y.sum())


def test_best_f1_dominates_any_threshold_and_adjustment_helps():
  rng = np.random.default_rng(3)
  y = np.zeros(500, int)
  for start in (0, 40, 200, 310, 480):
    y[start:start + 15] = 1
  s = rng.normal(size=500) + y
  plain = metrics.best_f1(y, s)
  adjusted = metrics.best_f1(y, s, point_adjusted=True)
  assert adjusted["f1"] >= plain["f1"]
  for t in rng.choice(s, 20):
    assert plain["f1"] >= metrics.pointwise(y, (s >= t).astype(int))["f1"] - 1e-12


def test_fpr_at_tpr_equals_brute_force():
  rng = np.random.default_rng(4)
  for _ in range(60):
    y, s = _random_case(rng, int(rng.integers(2, 40)))
    for target in (0.0, 0.2, 0.5, 0.8, 0.95, 1.0):
      best = 1.0
      for t in np.append(np.unique(s), np.inf):  # inf: nothing predicted
        p = s >= t
        tpr = (p & (y == 1)).sum() / (y == 1).sum()
        if tpr >= target:
          best = min(best, (p & (y == 0)).sum() / (y == 0).sum())
      assert metrics.fpr_at_tpr(y, s, tpr=target) == pytest.approx(best, abs=1e-12)
      fpr, tpr, _ = sk_metrics.roc_curve(y, s, drop_intermediate=False)
      assert metrics.fpr_at_tpr(y, s, tpr=target) == pytest.approx(fpr[tpr >= target].min())


def test_perfect_scores():
  rng = np.random.default_rng(5)
  y = np.zeros(2000, int)
  for start in (0, 300, 900, 1500, 1990):
    y[start:start + 10] = 1
  s = y + 0.01 * rng.random(2000)
  assert metrics.auroc(y, s) == 1.0
  assert metrics.auprc(y, s) == pytest.approx(1.0)
  assert metrics.best_f1(y, s)["f1"] == 1.0
  assert metrics.fpr_at_tpr(y, s, tpr=1.0) == 0.0
  # Only 250 thresholds are read (every ~8th point here), so the curve steps
  # past the exact anomaly/normal cut and even perfect scores land just below 1.
  assert metrics.range_auc(y, s, window=0)["roc"] > 0.999
  assert metrics.vus(y, s, max_window=100)["roc"] > 0.999
  # With a window, points next to a segment count as partly anomalous, so a
  # perfect score there should also decay smoothly away from the segment.
  soft = np.convolve(y, np.ones(41), mode="same") + y + 0.001 * rng.random(2000)
  assert metrics.range_auc(y, soft, window=40)["roc"] > 0.99


def test_label_and_pred_dtypes_are_equivalent():
  rng = np.random.default_rng(6)
  y, s = _random_case(rng, 80)
  p = (s > np.median(s)).astype(int)
  for cast in (lambda v: v.astype(bool), lambda v: v.astype(np.float32),
               lambda v: v.astype(np.uint8), list):
    assert metrics.pointwise(cast(y), cast(p)) == metrics.pointwise(y, p)
    assert metrics.vus(cast(y), s, max_window=6) == metrics.vus(y, s, max_window=6)
    assert metrics.affiliation(cast(y), cast(p)) == metrics.affiliation(y, p)


ALL_CALLS = [
    ("pointwise", lambda y, s, p: metrics.pointwise(y, p)),
    ("point_adjust", lambda y, s, p: metrics.point_adjust(y, p)),
    ("event_pr", lambda y, s, p: metrics.event_pr(y, p)),
    ("segments", lambda y, s, p: metrics.segments(y)),
    ("auroc", lambda y, s, p: metrics.auroc(y, s)),
    ("auprc", lambda y, s, p: metrics.auprc(y, s)),
    ("best_f1", lambda y, s, p: metrics.best_f1(y, s)),
    ("best_f1_pa", lambda y, s, p: metrics.best_f1(y, s, point_adjusted=True)),
    ("fpr_at_tpr", lambda y, s, p: metrics.fpr_at_tpr(y, s)),
    ("affiliation", lambda y, s, p: metrics.affiliation(y, p)),
    ("range_auc", lambda y, s, p: metrics.range_auc(y, s, window=10)),
    ("vus", lambda y, s, p: metrics.vus(y, s, max_window=10)),
]


@pytest.mark.parametrize("name,call", ALL_CALLS, ids=[c[0] for c in ALL_CALLS])
def test_inputs_are_not_modified(name, call):
  rng = np.random.default_rng(7)
  y = np.zeros(300, int)
  y[[0, 1, 2, 50, 51, 140, 299]] = 1
  s = rng.random(300)
  p = (s > 0.8).astype(int)
  before = (y.copy(), s.copy(), p.copy())
  call(y, s, p)  # writable inputs: compare afterwards
  for a, b in zip((y, s, p), before, strict=True):
    np.testing.assert_array_equal(a, b)
  call(*_read_only(y, s, p))  # read-only inputs: a write would raise


# --------------------------------------------------------------------------
# Bad input.

RANKING = [
    ("auroc", lambda y, s: metrics.auroc(y, s)),
    ("auprc", lambda y, s: metrics.auprc(y, s)),
    ("best_f1", lambda y, s: metrics.best_f1(y, s)),
    ("best_f1_pa", lambda y, s: metrics.best_f1(y, s, point_adjusted=True)),
    ("fpr_at_tpr", lambda y, s: metrics.fpr_at_tpr(y, s)),
    ("range_auc", lambda y, s: metrics.range_auc(y, s, window=4)),
    ("vus", lambda y, s: metrics.vus(y, s, max_window=4)),
    ("affiliation", lambda y, s: metrics.affiliation(y, (s > 0.5).astype(int))),
]
_IDS = [c[0] for c in RANKING]


@pytest.mark.parametrize("name,call", RANKING, ids=_IDS)
def test_one_class_labels_raise(name, call):
  s = np.linspace(0, 1, 10)
  with pytest.raises(ValueError, match="labels"):
    call(np.zeros(10, int), s)
  with pytest.raises(ValueError, match="labels"):
    call(np.ones(10, int), s)


@pytest.mark.parametrize("name,call", RANKING, ids=_IDS)
def test_bad_ranking_input_raises(name, call):
  y = np.array([0, 1, 1, 0, 0, 1])
  s = np.linspace(0, 1, 6)
  with pytest.raises(ValueError, match="length"):
    call(y, s[:-1])
  with pytest.raises(ValueError, match="labels"):
    call(np.array([0, 1, 2, 0, 0, 1]), s)
  with pytest.raises(ValueError, match="labels"):
    call(y[None, :], s)
  if name != "affiliation":  # affiliation takes no scores
    with pytest.raises(ValueError, match="scores"):
      call(y, np.where(np.arange(6) == 2, np.nan, s))
    with pytest.raises(ValueError, match="scores"):
      call(y, np.where(np.arange(6) == 2, np.inf, s))
    with pytest.raises(ValueError, match="scores"):
      call(y, s[None, :])


@pytest.mark.parametrize("fn", [metrics.pointwise, metrics.point_adjust, metrics.event_pr,
                                metrics.affiliation])
def test_bad_binary_input_raises(fn):
  y = np.array([0, 1, 1, 0])
  with pytest.raises(ValueError, match="length"):
    fn(y, [0, 1, 0])
  with pytest.raises(ValueError, match="preds"):
    fn(y, [0, 1, 0.5, 0])
  with pytest.raises(ValueError, match="preds"):
    fn(y, np.array([[0, 1, 1, 0]]))
  with pytest.raises(ValueError, match="labels"):
    fn([0, 2, 1, 0], [0, 1, 1, 0])


def test_bad_window_and_tpr_raise():
  y, s = [0, 1, 0, 0], [0.1, 0.9, 0.2, 0.3]
  for bad in (-1, 2.5, None, True):
    with pytest.raises(ValueError, match="window"):
      metrics.range_auc(y, s, window=bad)
    with pytest.raises(ValueError, match="max_window"):
      metrics.vus(y, s, max_window=bad)
  for bad in (-0.1, 1.5):
    with pytest.raises(ValueError, match="tpr"):
      metrics.fpr_at_tpr(y, s, tpr=bad)
  with pytest.raises(ValueError, match="labels"):
    metrics.segments([0, 1, 3])
