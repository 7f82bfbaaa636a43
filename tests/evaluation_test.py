"""Tests for thresholds fit on validation scores and the metric report."""

import ml_collections
import numpy as np
import pytest

from mlts import evaluation, metrics


def _config(**overrides):
  c = ml_collections.ConfigDict(dict(
      score_normalization="none", threshold="quantile", threshold_quantile=0.99,
      threshold_sigma=3.0, min_score_scale=1e-6, range_window=4, vus_max_window=4))
  c.update(overrides)
  return c


def test_quantile_threshold_from_validation_only():
  val = np.arange(101, dtype=float)  # 0..100: the 0.9 quantile is 90
  cal = evaluation.calibrate(val, _config(threshold_quantile=0.9))
  assert cal.threshold == pytest.approx(90.0)
  np.testing.assert_array_equal(cal.normalize([1.0, 2.0]), [1.0, 2.0])  # no normalization


def test_sigma_threshold_and_validation_normalization():
  val = np.array([1.0, 3.0, 1.0, 3.0])  # mean 2, std 1
  cal = evaluation.calibrate(val, _config(threshold="sigma", threshold_sigma=2.0))
  assert cal.threshold == pytest.approx(4.0)  # mean + 2 std on the raw scale
  cal = evaluation.calibrate(val, _config(threshold="sigma", threshold_sigma=2.0,
                                          score_normalization="validation"))
  assert cal.threshold == pytest.approx(2.0)  # the same threshold in std units
  np.testing.assert_allclose(cal.normalize([2.0, 4.0]), [0.0, 2.0])


def test_bad_calibration_input():
  with pytest.raises(ValueError, match="A-1 val: 1 non-finite"):
    evaluation.calibrate(np.array([0.0, np.nan]), _config(), name="A-1 val")
  with pytest.raises(ValueError, match="unknown threshold rule"):
    evaluation.calibrate(np.ones(3), _config(threshold="otsu"))


def test_evaluate_matches_metric_functions():
  rng = np.random.default_rng(0)
  labels = np.zeros(200, np.int8)
  labels[50:70] = 1
  labels[150:155] = 1
  scores = rng.random(200) + labels
  preds = (scores > 1.2).astype(np.int8)
  report = evaluation.evaluate(labels, scores, preds, _config())
  assert report["auroc"] == pytest.approx(metrics.auroc(labels, scores))
  assert report["pointwise"] == pytest.approx(metrics.pointwise(labels, preds))
  assert report["point_adjusted"]["f1"] == pytest.approx(
      metrics.pointwise(labels, metrics.point_adjust(labels, preds))["f1"])
  assert report["vus"] == pytest.approx(metrics.vus(labels, scores, max_window=4))
  row = evaluation.summary_row(report)
  assert row["AUROC"] == report["auroc"] and row["Aff-F1"] == report["affiliation"]["f1"]


def test_one_class_labels_skip_ranking_metrics():
  report = evaluation.evaluate(np.zeros(10), np.arange(10.0), np.zeros(10), _config())
  assert report["auroc"] is None and "one class" in report["skipped"]
  assert report["pointwise"]["fpr"] == 0.0


def test_evaluate_rejects_bad_input():
  with pytest.raises(ValueError, match="labels has length 3 but scores has length 2"):
    evaluation.evaluate([0, 1, 0], [0.1, 0.2], [0, 1, 0], _config())
  with pytest.raises(ValueError, match="labels: values must be 0 or 1"):
    evaluation.evaluate([0, 2, 0], [0.1, 0.2, 0.3], [0, 1, 0], _config())


def test_mean_rows_skips_undefined():
  rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": 2.0}]
  assert evaluation.mean_rows(rows) == {"a": 2.0, "b": 2.0}
  assert evaluation.mean_rows([]) == {}
