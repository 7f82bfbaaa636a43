"""telemanom's dynamic threshold on hand-made score series, and its use by detectors."""

import numpy as np
import pytest

from mlts import evaluation, metrics, thresholds


def _config(**kw):
  config = thresholds.default_config()
  config.update(kw)
  return config


def test_ewma_matches_the_recurrence():
  rng = np.random.default_rng(0)
  x = rng.normal(size=500)
  span = 7
  alpha = 2.0 / (span + 1)
  num = den = 0.0
  expected = []
  for v in x:  # the definition, one step at a time
    num = (1 - alpha) * num + v
    den = (1 - alpha) * den + 1.0
    expected.append(num / den)
  np.testing.assert_allclose(thresholds.ewma(x, span), expected, rtol=1e-10, atol=1e-12)
  # A long series crosses the internal blocks.
  long = rng.normal(size=5000)
  got = thresholds.ewma(long, 300)
  num = den = 0.0
  a = 2.0 / 301
  for t, v in enumerate(long):
    num = (1 - a) * num + v
    den = (1 - a) * den + 1.0
    if t in (0, 999, 2500, 4999):
      assert got[t] == pytest.approx(num / den, rel=1e-9)
  np.testing.assert_array_equal(thresholds.ewma(x, 1), x)


def test_one_clear_spike_is_flagged_with_its_buffer():
  scores = np.ones(400)
  scores[::2] = 1.2  # a regular normal pattern: mean 1.1, std 0.1
  scores[200:205] = 5.0
  pred = thresholds.dynamic_predict(scores, _config(buffer=3))
  expected = np.zeros(400, np.int8)
  expected[197:208] = 1  # 200..204 widened by 3 on both sides
  np.testing.assert_array_equal(pred, expected)


def test_hand_computed_choice_of_z():
  # 98 points at 0 / 2 alternating, 2 points at 20: mean, std by hand.
  e = np.array([0.0, 2.0] * 49 + [20.0, 20.0])
  mean, std = e.mean(), e.std()
  eps, z = thresholds._choose(e, _config(buffer=0))
  # Every z on the grid whose ε lies below 20 flags exactly the two points at 20
  # (one run): the criterion is the same for all of them and the first (z=2.5)
  # is kept; 20 = mean + z std at z ≈ 6.96, so z ≤ 6.5 flag them.
  assert (20 - mean) / std > 6.5
  assert z == 2.5 and eps == pytest.approx(mean + 2.5 * std)


def test_pruning_removes_runs_that_do_not_stand_out():
  e = np.ones(100)
  e[::3] = 1.25  # normal maximum 1.25
  flagged = np.zeros(100, bool)
  e[10:13], flagged[10:13] = 10.0, True  # run A, max 10
  e[50:52], flagged[50:52] = 1.3, True  # run B, max 1.3: 1.3 -> 1.25 is a 4 % drop
  e[80], flagged[80] = 5.0, True  # run C, max 5
  # Sorted maxima 10, 5, 1.3, then 1.25: drops 50 %, 74 %, 4 %; the last drop above
  # p = 0.13 is after C, so A and C stay and B is un-flagged.
  out = thresholds._prune(e, flagged, 0.13)
  expected = flagged.copy()
  expected[50:52] = False
  np.testing.assert_array_equal(out, expected)
  # A drop below p between two large maxima does not prune the first (only runs
  # after the last significant drop go): 10 -> 9.5 (5 %), 9.5 -> 1.25 (87 %).
  e2, f2 = e.copy(), flagged.copy()
  e2[80], e2[50:52], f2[50:52] = 9.5, 1.0, False
  np.testing.assert_array_equal(thresholds._prune(e2, f2, 0.13), f2)
  # p = 0 keeps every run.
  np.testing.assert_array_equal(thresholds._prune(e, flagged, 0.0), flagged)


def test_pure_noise_or_constant_flags_little():
  assert thresholds.dynamic_predict(np.full(100, 3.0)).sum() == 0
  noise = np.random.default_rng(2).standard_normal(20000)
  # Gaussian noise: only a handful of extreme points (with their buffers) at most.
  assert thresholds.dynamic_predict(noise).mean() < 0.01


def test_blocks_are_thresholded_separately():
  scores = np.concatenate([np.tile([1.0, 1.2], 100), np.tile([10.0, 10.2], 100)])
  scores[50] = 4.0
  scores[350] = 30.0
  whole = thresholds.dynamic_predict(scores, _config(buffer=0))
  blocks = thresholds.dynamic_predict(scores, _config(buffer=0, window=200))
  assert blocks[50] == 1 and blocks[350] == 1 and blocks.sum() == 2
  assert whole[50] == 0  # against the whole series the first spike is not extreme


def test_validation_names_the_field():
  with pytest.raises(ValueError, match="dynamic.smoothing"):
    thresholds.validate_config(_config(smoothing=0))
  with pytest.raises(ValueError, match="z_max"):
    thresholds.validate_config(_config(z_min=5.0, z_max=3.0))


def test_evaluation_predictions_with_the_dynamic_rule():
  scores = np.ones(300)
  scores[::2] = 1.5
  scores[100:104] = 9.0
  cal = evaluation.ScoreCalibration(center=0.0, scale=1.0, threshold=100.0)
  import ml_collections
  config = ml_collections.ConfigDict(dict(threshold="dynamic",
                                          dynamic=_config(buffer=0).to_dict()))
  pred = evaluation.predictions(scores, cal, config)
  assert pred[100:104].all() and pred.sum() == 4
  config.threshold = "quantile"
  assert evaluation.predictions(scores, cal, config).sum() == 0  # above 100: none


def test_event_counting_on_hand_made_segments():
  labels = np.zeros(40, np.int8)
  labels[5:10] = 1  # event A
  labels[20:25] = 1  # event B
  labels[30:32] = 1  # event C
  preds = np.zeros(40, np.int8)
  preds[7:12] = 1  # overlaps A (counted once even if long)
  preds[8] = 1
  preds[21] = 1  # a second detection inside B -> one TP
  preds[23] = 1
  preds[14:16] = 1  # overlaps nothing: one FP
  preds[36] = 1  # overlaps nothing: one FP
  out = metrics.event_pr(labels, preds)
  assert (out["tp"], out["fp"], out["fn"]) == (2, 2, 1)
  assert out["precision"] == pytest.approx(0.5)
  assert out["recall"] == pytest.approx(2 / 3)
  assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
