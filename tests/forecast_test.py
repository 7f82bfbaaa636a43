"""The forecasting objective: the future is hidden, and series forecasts aggregate exactly."""

import jax.numpy as jnp
import numpy as np
import pytest

from mlts import detectors, reconstruction


def test_forecast_input_hides_the_horizon():
  x = jnp.arange(2 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 1)
  out = np.asarray(reconstruction.forecast_input(x, 2))
  np.testing.assert_array_equal(out[:, :4], np.asarray(x[:, :4]))
  np.testing.assert_array_equal(out[:, 4:], np.repeat(np.asarray(x[:, 3:4]), 2, axis=1))
  changed = x.at[:, 4:].set(100.0)
  np.testing.assert_array_equal(np.asarray(reconstruction.forecast_input(changed, 2)), out)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_forecast_series_with_an_identity_backbone_is_held_last_values(stride):
  window, horizon = 6, 3
  x = np.arange(1.0, 21.0)[:, None]  # 20 steps

  def run(params, windows):  # the "network" returns its (forecast) input
    return np.asarray(reconstruction.forecast_input(jnp.asarray(windows), horizon))

  got = reconstruction.forecast_series(run, None, [x], window, stride, horizon)[0]
  # By hand: a window starting at original step a (after the front padding of
  # window - horizon steps) forecasts steps a .. a + h - 1 by x[a - 1] (x[0] for a = 0);
  # step t averages the windows with a in (t - h, t] on the stride grid.
  front = window - horizon
  padded_len = len(x) + front
  starts = list(range(0, max(padded_len - window, 0) + 1, stride))
  if starts[-1] + window < padded_len:  # one more window, aligned to the end
    starts.append(padded_len - window)
  expected = []
  for t in range(len(x)):
    values = [x[max(a - 1, 0), 0] for a in starts if a <= t <= a + horizon - 1]
    expected.append(np.mean(values))
  np.testing.assert_allclose(got[:, 0], expected)


def test_forecast_settings_are_checked():
  with pytest.raises(ValueError, match="eval_stride=16 exceeds horizon=8"):
    detectors.create("mlp_ae", objective="forecast", horizon=8, eval_stride=16)
  with pytest.raises(ValueError, match="horizon must be in"):
    detectors.create("mlp_ae", objective="forecast", horizon=128, eval_stride=4)
  with pytest.raises(ValueError, match="loss='mse'"):
    detectors.create("mlp_ae", objective="forecast", horizon=8, eval_stride=4, loss="gwnr")
  with pytest.raises(ValueError, match="score must be"):
    detectors.create("mlp_ae", score="residual+knn")
  with pytest.raises(ValueError, match="bottleneck"):
    detectors.create("dlinear", score="latent_knn")


def test_a_forecaster_flags_a_level_shift_and_reloads_exactly(tmp_path):
  rng = np.random.default_rng(0)
  t = np.arange(1200)
  train = [np.sin(2 * np.pi * t / 50 + c)[:, None] + 0.05 * rng.normal(size=(1200, 1))
           for c in range(2)]
  det = detectors.create(
      "mlp_ae", window=32, stride=2, eval_stride=4, per_series=True, objective="forecast",
      horizon=4, training=dict(num_steps=200, batch_size=16, log_every=100,
                               checkpoint_every=200, eval_every=0))
  det.fit(train)
  test = train[0].copy()
  test[600:640] += 1.0
  scores = det.score(test, series=0)
  assert scores[600:640].mean() > 5 * scores[700:].mean()
  loaded = detectors.load(det.save(str(tmp_path / "det")))
  np.testing.assert_array_equal(loaded.score(test, series=0), scores)


def test_score_components_and_their_validation_standardized_sum(tmp_path):
  from scipy.spatial import distance

  from mlts.data import windows as windows_lib
  from mlts.detectors import base
  rng = np.random.default_rng(1)
  train = [rng.normal(size=(600, 1)), 2.0 + rng.normal(size=(500, 1))]
  common = dict(window=16, stride=2, eval_stride=4, per_series=True,
                training=dict(num_steps=20, batch_size=8, log_every=10, checkpoint_every=20,
                              eval_every=0))
  det = detectors.create("mlp_ae", score="window_error+window_knn", **common).fit(train)
  x = rng.normal(size=(300, 1))
  z = (x - det._shift[1]) / det._scale[1]
  w, starts, _ = windows_lib.sliding_windows(z.astype(np.float32), 16, 4, pad=True)
  params = det._params_of(1)
  recon = np.asarray(det._run(params, w), np.float64)
  err = base.window_scores_to_steps(np.mean(np.square(recon - w), axis=(1, 2)), starts, 16, 300)
  fit = (train[1][:400] - det._shift[1]) / det._scale[1]  # fit part: first 80 %
  ref = windows_lib.sliding_windows(fit.astype(np.float32), 16, 2, pad=True)[0].reshape(-1, 16)
  knn = base.window_scores_to_steps(
      distance.cdist(w.reshape(-1, 16), ref).min(axis=1), starts, 16, 300)
  (m0, s0), (m1, s1) = det._fusion_stats[1]
  raw = det._score_normalized(z, 1)
  np.testing.assert_allclose(raw, (err - m0) / s0 + (knn - m1) / s1, rtol=1e-6, atol=1e-6)
  # The standardization statistics are those of the validation part (last 20 %).
  val = (train[1][400:] - det._shift[1]) / det._scale[1]
  val_err = det._window_error(val, 1)
  assert m0 == pytest.approx(val_err.mean()) and s0 == pytest.approx(val_err.std())


def test_recommended_is_a_registered_detector_with_its_settings():
  settings_name, settings = detectors.RECOMMENDED
  assert settings_name in detectors.available() and "recommended" in detectors.available()
  det = detectors.create("recommended")
  assert det.name == settings_name
  for key, value in settings.items():
    if not isinstance(value, dict):
      assert det.config[key] == (tuple(value) if isinstance(value, list) else value), key
  # The caller's overrides go on top, sections merged field by field.
  other = detectors.create("recommended", seed=3)
  assert other.config.seed == 3
  assert detectors.default_config("recommended").to_dict() == det.config.to_dict()
