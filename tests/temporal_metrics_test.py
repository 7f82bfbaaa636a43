"""Tests for the time-series generation benchmark (mlts/metrics/temporal.py).

The scores train small GRUs, so the tests use short budgets (300 / 200 steps)
and one input shape per score, so each score's jitted function compiles once.
"""

import chex
import jax
import numpy as np
import pytest

from mlts.data import ucr
from mlts.metrics import temporal

N = 500  # sequences per set
SEED = 0


def small_config():
  config = temporal.default_config()
  config.discriminative_steps = 300
  config.predictive_steps = 200
  return config


@pytest.fixture(scope="module")
def sets():
  """Two independent halves of a sine set and uniform noise, each [N, 24, 5]."""
  x = temporal.sines(2 * N, seed=SEED)
  noise = np.random.default_rng(1).uniform(size=(N, 24, 5)).astype(np.float32)
  return x[:N], x[N:], noise


# ---------------------------------------------------------------- config and networks


def test_default_config():
  config = temporal.default_config()
  assert config.hidden is None
  assert (config.lr, config.batch_size) == (1e-3, 128)
  assert (config.discriminative_steps, config.predictive_steps) == (2000, 5000)
  assert config.train_fraction == 0.8
  config.hidden = 8  # the placeholder accepts an int override
  assert config.hidden == 8


def test_network_shapes():
  x = np.zeros((3, 7, 2), np.float32)
  clf = temporal.GRUClassifier(hidden=1)
  chex.assert_shape(clf.apply(clf.init(jax.random.key(0), x), x), (3,))
  pred = temporal.GRUPredictor(hidden=4)
  out = pred.apply(pred.init(jax.random.key(0), x), x)
  chex.assert_shape(out, (3, 7))
  assert np.all((np.asarray(out) > 0) & (np.asarray(out) < 1))


# ---------------------------------------------------------------- data


def test_sines_shape_range_and_seed():
  x = temporal.sines(64, seq_len=30, dim=3, seed=5)
  assert x.shape == (64, 30, 3) and x.dtype == np.float32
  assert x.min() >= 0.0 and x.max() <= 1.0
  np.testing.assert_array_equal(x, temporal.sines(64, seq_len=30, dim=3, seed=5))
  assert not np.allclose(x, temporal.sines(64, seq_len=30, dim=3, seed=6))
  # Default shape of the benchmark; every sample and feature is its own sine: sin(f t + p).
  d = temporal.sines(4)
  assert d.shape == (4, 24, 5)
  s = 2.0 * d.astype(np.float64) - 1.0
  phase = np.arcsin(s[:, 0])  # t = 0: sin(phase), phase in [0, 0.1]
  assert np.all((phase >= -1e-6) & (phase <= 0.1 + 1e-6))
  assert np.all(np.abs(np.diff(s, axis=1)) <= 0.1 + 1e-6)  # |d/dt sin(f t + p)| <= f <= 0.1


def test_sines_rejects_bad_sizes():
  with pytest.raises(ValueError, match="num"):
    temporal.sines(0)
  with pytest.raises(ValueError, match="dim"):
    temporal.sines(3, dim=0)


def test_real_windows_equal_scaled_slices():
  rng = np.random.default_rng(0)
  series = rng.normal(size=(50, 3)) * np.array([1.0, 10.0, 100.0]) + np.array([0.0, 5.0, -7.0])
  w = temporal.real_windows(series, seq_len=8)
  assert w.shape == (43, 8, 3) and w.dtype == np.float32
  scaled = (series - series.min(0)) / (series.max(0) - series.min(0))
  for i in (0, 1, 17, 42):
    np.testing.assert_allclose(w[i], scaled[i:i + 8], rtol=0, atol=1e-6)
  # Per column over the whole series: min exactly 0 and max exactly 1.
  np.testing.assert_array_equal(w.min(axis=(0, 1)), 0.0)
  np.testing.assert_array_equal(w.max(axis=(0, 1)), 1.0)
  # Chronological, stride 1: window i + 1 is window i shifted by one step.
  np.testing.assert_array_equal(w[1:, :-1], w[:-1, 1:])


def test_real_windows_constant_column_and_full_length():
  series = np.stack([np.arange(5.0), np.full(5, 3.0)], axis=1)
  w = temporal.real_windows(series, seq_len=5)
  assert w.shape == (1, 5, 2)
  np.testing.assert_array_equal(w[0, :, 0], np.arange(5) / 4)
  np.testing.assert_array_equal(w[0, :, 1], 0.0)  # constant column -> 0 (sklearn's convention)


def test_real_windows_stock():
  raw = ucr.load_generation("stock")
  w = temporal.real_windows(raw)
  assert w.shape == (raw.shape[0] - 23, 24, 6) == (3662, 24, 6)
  np.testing.assert_array_equal(w.min(axis=(0, 1)), 0.0)
  np.testing.assert_array_equal(w.max(axis=(0, 1)), 1.0)
  np.testing.assert_allclose(w[-1, -1], (raw[-1] - raw.min(0)) / np.ptp(raw, axis=0),
                             atol=1e-6)


def test_real_windows_rejects_bad_input():
  with pytest.raises(ValueError, match="seq_len"):
    temporal.real_windows(np.zeros((5, 2)), seq_len=6)
  with pytest.raises(ValueError, match="rank"):
    temporal.real_windows(np.zeros(5), seq_len=2)
  bad = np.zeros((5, 2))
  bad[3, 1] = np.nan
  with pytest.raises(ValueError, match="non-finite"):
    temporal.real_windows(bad, seq_len=2)


def test_shuffle_permutes_rows_reproducibly():
  x = np.arange(20).reshape(10, 2)
  a = temporal.shuffle(x, seed=3)
  np.testing.assert_array_equal(a, temporal.shuffle(x, seed=3))
  assert not np.array_equal(a, x)
  np.testing.assert_array_equal(np.sort(a[:, 0]), x[:, 0])
  np.testing.assert_array_equal(a[:, 1], a[:, 0] + 1)  # rows move whole
  np.testing.assert_array_equal(x, np.arange(20).reshape(10, 2))  # input untouched


# ---------------------------------------------------------------- discriminative score


@pytest.fixture(scope="module")
def noise_score(sets):
  real, _, noise = sets
  return temporal.discriminative_score(real, noise, seed=SEED, config=small_config())


def test_discriminative_same_distribution_is_small(sets):
  real, held_out, _ = sets
  score = temporal.discriminative_score(real, held_out, seed=SEED, config=small_config())
  assert 0.0 <= score < 0.15


def test_discriminative_noise_is_large(noise_score):
  assert 0.35 < noise_score <= 0.5


def test_discriminative_deterministic(sets, noise_score):
  real, _, noise = sets
  again = temporal.discriminative_score(real, noise, seed=SEED, config=small_config())
  assert again == noise_score


# ---------------------------------------------------------------- predictive score


def test_predictive_real_beats_noise(sets):
  real, held_out, noise = sets
  config = small_config()
  on_real = temporal.predictive_score(real, held_out, seed=SEED, config=config)
  on_noise = temporal.predictive_score(real, noise, seed=SEED, config=config)
  assert np.isfinite(on_real) and on_real > 0
  assert on_real < on_noise
  assert temporal.predictive_score(real, held_out, seed=SEED, config=config) == on_real


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("score", [temporal.discriminative_score, temporal.predictive_score])
def test_scores_reject_bad_inputs(score):
  x = np.full((10, 6, 3), 0.5, np.float32)
  nan = x.copy()
  nan[2, 3, 1] = np.nan
  with pytest.raises(ValueError, match="real: 1 non-finite"):
    score(nan, x)
  with pytest.raises(ValueError, match="fake: 1 non-finite"):
    score(x, nan)
  with pytest.raises(ValueError, match="rank 3"):
    score(x[0], x)
  with pytest.raises(ValueError, match="rank 3"):
    score(x, x[..., None])
  with pytest.raises(ValueError, match="must match"):
    score(x, x[:, :5])  # L differs
  with pytest.raises(ValueError, match="must match"):
    score(x, x[..., :2])  # F differs
  config = small_config()
  config.batch_size = 0
  with pytest.raises(ValueError, match="batch_size"):
    score(x, x, config=config)
  config = small_config()
  config.hidden = 0
  with pytest.raises(ValueError, match="hidden"):
    score(x, x, config=config)


def test_discriminative_rejects_unsplittable_set():
  x = np.full((10, 6, 3), 0.5, np.float32)
  with pytest.raises(ValueError, match="fake: 1 sequence"):
    temporal.discriminative_score(x, x[:1])


def test_predictive_univariate_forecasts_the_series_itself(sets):
  """F = 1: next-step forecasting of the single feature; real training data beats noise."""
  real, held_out, noise = (x[..., :1] for x in sets)
  config = small_config()
  on_real = temporal.predictive_score(real, held_out, seed=SEED, config=config)
  on_noise = temporal.predictive_score(real, noise, seed=SEED, config=config)
  assert 0 < on_real < on_noise


def test_predictive_rejects_a_single_step():
  x = np.full((10, 6, 3), 0.5, np.float32)
  with pytest.raises(ValueError, match="L >= 2"):
    temporal.predictive_score(x[:, :1], x[:, :1])
