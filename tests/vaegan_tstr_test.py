"""Tests for TSTR / TRTR / TSTR_N (mlts/vaegan/tstr.py)."""

import chex
import jax
import numpy as np
import pytest

from mlts.vaegan import tstr

N, LENGTH = 120, 32  # tiny toy set: 30 abnormal windows, split 60 / 60
SEED = 0


def toy(n=N, length=LENGTH, seed=0, abnormal=0.25):
  """Noisy sines [n, length, 1]: normal at 2 cycles per window, abnormal at 6; labels [n]."""
  rng = np.random.default_rng(seed)
  y = np.zeros(n, np.int8)
  y[rng.choice(n, int(n * abnormal), replace=False)] = 1
  t = np.arange(length)[None, :]
  phase = rng.uniform(0, 2 * np.pi, (n, 1))
  freq = np.where(y[:, None] == 1, 6.0, 2.0) * 2 * np.pi / length
  x = 0.5 + 0.4 * np.sin(freq * t + phase) + 0.05 * rng.standard_normal((n, length))
  return x[..., None].astype(np.float32), y


@pytest.fixture(scope="module")
def data():
  return toy()


@pytest.fixture(scope="module")
def identity_scores(data):
  x, y = data
  return tstr.tstr_scores(x, y, lambda a: a, tstr.default_config(), seed=SEED)


# ---------------------------------------------------------------- config and network


def test_default_config():
  config = tstr.default_config()
  assert tuple(config.hidden) == (16, 32)
  assert (config.kernel, config.dense, config.batch_size, config.epochs) == (5, 32, 32, 30)
  assert config.lr == 1e-3 and config.test_fraction == 0.5 and config.min_steps == 500


@pytest.mark.parametrize("length", [32, 33, 3])
def test_classifier_shapes(length):
  net = tstr.ConvClassifier(hidden=(4, 8), kernel=3, dense=8)
  x = np.zeros((5, length, 2), np.float32)
  variables = net.init(jax.random.key(0), x)
  logits = net.apply(variables, x)
  chex.assert_shape(logits, (5,))
  chex.assert_tree_all_finite(logits)


# ---------------------------------------------------------------- split


def test_split_disjoint_covering_stratified(data):
  _, y = data
  tr, te = tstr.split_indices(y, 0.5, seed=3)
  assert np.intersect1d(tr, te).size == 0
  np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(N))
  assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
  for c in (0, 1):
    n_c = int(np.sum(y == c))
    assert abs(int(np.sum(y[te] == c)) - 0.5 * n_c) <= 1
    assert abs(int(np.sum(y[tr] == c)) - 0.5 * n_c) <= 1


def test_split_uneven_fraction_keeps_both_classes():
  y = np.array([0] * 10 + [1] * 2)
  tr, te = tstr.split_indices(y, 0.2, seed=0)
  assert set(y[tr]) == {0, 1} and set(y[te]) == {0, 1}
  assert int(np.sum(y[te] == 0)) == 2  # round(10 * 0.2)


def test_split_reproducible_by_seed(data):
  _, y = data
  a = tstr.split_indices(y, 0.5, seed=7)
  b = tstr.split_indices(y, 0.5, seed=7)
  c = tstr.split_indices(y, 0.5, seed=8)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("labels, fraction, match", [
    ([0, 0, 0, 1], 0.5, "class 1 has 1 member"),
    ([0, 0, 0, 0], 0.5, "class 1 has 0 member"),
    ([0, 0, 1, 1], 0.0, "test_fraction"),
    ([0, 0, 1, 1], 1.0, "test_fraction"),
    ([0, 2, 1, 1], 0.5, "labels"),
])
def test_split_errors(labels, fraction, match):
  with pytest.raises(ValueError, match=match):
    tstr.split_indices(np.array(labels), fraction, seed=0)


# ---------------------------------------------------------------- classifier


def test_train_deterministic_and_predict(data):
  x, y = data
  config = tstr.default_config()  # the TSTR tests' config and train size: one compilation
  key = jax.random.key(1)
  a = tstr.train_classifier(x[:60], y[:60], config, key)
  b = tstr.train_classifier(x[:60], y[:60], config, key)
  chex.assert_trees_all_equal(a, b)
  preds = tstr.predict(a, x, config)
  assert preds.shape == (N,) and preds.dtype == np.int8
  assert set(np.unique(preds)) <= {0, 1}


def test_predict_chunks_agree(data, monkeypatch):
  x, y = data
  config = tstr.default_config()
  params = tstr.train_classifier(x[:60], y[:60], config, jax.random.key(2))
  whole = tstr.predict(params, x, config)
  monkeypatch.setattr(tstr, "_PREDICT_CHUNK", 7)  # 120 = 17 * 7 + 1: padding path
  np.testing.assert_array_equal(tstr.predict(params, x, config), whole)


def test_train_needs_both_classes(data):
  x, _ = data
  with pytest.raises(ValueError, match="y: needs both classes"):
    tstr.train_classifier(x[:8], np.zeros(8, np.int8), tstr.default_config(), jax.random.key(0))


# ---------------------------------------------------------------- TSTR


def test_learnable_toy_problem(identity_scores):
  assert identity_scores["trtr"] > 0.8
  assert identity_scores["num_train"] + identity_scores["num_test"] == N
  assert identity_scores["num_train"] == identity_scores["num_test"] == N // 2


def test_identity_synth_equals_real(identity_scores):
  assert identity_scores["tstr"] == identity_scores["trtr"]
  assert identity_scores["tstr_n"] == 1.0


def test_label_independent_synth_scores_low(data, identity_scores):
  x, y = data
  scores = tstr.tstr_scores(x, y, np.zeros_like, tstr.default_config(), seed=SEED)
  assert scores["trtr"] == identity_scores["trtr"]  # same split, same key, same real data
  assert scores["tstr"] < scores["trtr"] - 0.4
  assert scores["tstr_n"] < 0.6


def test_synth_fn_sees_only_classifier_train_windows(data):
  x, y = data
  x = x.copy()
  x[:, 0, 0] = 10.0 + np.arange(N)  # a unique tag per window
  seen = []

  def recording(windows):
    seen.append(np.rint(windows[:, 0, 0] - 10.0).astype(int))
    return windows

  config = tstr.default_config()
  scores = tstr.tstr_scores(x, y, recording, config, seed=SEED)
  tr, te = tstr.split_indices(y, config.test_fraction, SEED)
  assert len(seen) == 1
  np.testing.assert_array_equal(seen[0], tr)
  assert np.intersect1d(seen[0], te).size == 0
  assert scores["num_test"] == len(te)


def test_trtr_zero_gives_nan_ratio(data, monkeypatch):
  x, y = data
  monkeypatch.setattr(tstr, "predict", lambda params, xs, config: np.zeros(len(xs), np.int8))
  config = tstr.default_config()
  scores = tstr.tstr_scores(x, y, lambda a: a, config, seed=SEED)
  assert scores["trtr"] == 0.0 and np.isnan(scores["tstr_n"])


def _with_nan(x):
  x = x.copy()
  x[3, 5, 0] = np.nan
  return x


@pytest.mark.parametrize("case, match", [
    ("nan_x", "real_x: 1 non-finite"),
    ("rank_x", "real_x: expected rank 3"),
    ("label_2", "labels: values must be 0 or 1"),
    ("lengths", "real_x has length 120 but labels has length 119"),
    ("synth_shape", "synth_fn output: expected shape"),
    ("synth_nan", "synth_fn output: 1 non-finite"),
])
def test_bad_inputs(data, case, match):
  x, y = data
  synth = lambda a: a
  if case == "nan_x":
    x = _with_nan(x)
  elif case == "rank_x":
    x = x[..., 0]
  elif case == "label_2":
    y = y.copy()
    y[0] = 2
  elif case == "lengths":
    y = y[:-1]
  elif case == "synth_shape":
    synth = lambda a: a[:, :-1]
  elif case == "synth_nan":
    synth = _with_nan
  with pytest.raises(ValueError, match=match):
    tstr.tstr_scores(x, y, synth, tstr.default_config(), seed=SEED)
