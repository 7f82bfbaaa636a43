"""Tests for the channel-classifier embedding (mlts/metrics/embedding.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mlts.metrics import embedding, generative

K = 4  # classes
LENGTH = 32
N_TRAIN, N_TEST = 600, 200
CYCLES = (1.0, 2.5, 4.5, 7.0)  # cycles per window of each class


def toy(n, seed, cyclic=False):
  """Noisy sines [n, LENGTH, 2] whose frequency is set by the class; labels [n].

  Channel 0 is the class's sine with random phase and amplitude plus noise,
  channel 1 is pure noise. With `cyclic` the labels run 0, 1, .., K-1, 0, ..
  so every contiguous block of a multiple of K windows is balanced.
  """
  rng = np.random.default_rng(seed)
  y = np.arange(n) % K if cyclic else rng.integers(0, K, n)
  t = np.arange(LENGTH)[None, :]
  freq = np.asarray(CYCLES)[y][:, None] * 2 * np.pi / LENGTH
  phase = rng.uniform(0, 2 * np.pi, (n, 1))
  amp = rng.uniform(0.7, 1.3, (n, 1))
  sig = amp * np.sin(freq * t + phase) + 0.2 * rng.standard_normal((n, LENGTH))
  x = np.stack([sig, 0.2 * rng.standard_normal((n, LENGTH))], axis=-1)
  return x.astype(np.float32), y.astype(np.int32)


def small_config():
  config = embedding.default_config()
  config.hidden = (8, 16)
  config.features = 16
  config.steps = 200
  config.lr = 3e-3
  return config


@pytest.fixture(scope="module")
def data():
  return toy(N_TRAIN, seed=0), toy(N_TEST, seed=1, cyclic=True)


@pytest.fixture(scope="module")
def trained(data):
  (x, y), _ = data
  return embedding.train_classifier(x, y, K, small_config(), jax.random.key(0))


# ---------------------------------------------------------------- config and network


def test_default_config():
  config = embedding.default_config()
  assert tuple(config.hidden) == (16, 32, 64)
  assert config.kernel == 5 and config.features == 64
  assert config.lr == 1e-3 and config.batch_size == 64 and config.steps == 1500


def test_module_shapes_and_short_windows():
  net = embedding.ChannelClassifier(hidden=(4, 8, 8), kernel=3, features=6, num_classes=5)
  for length in (1, 3, 32):  # the pool is skipped once the length falls below 2
    x = np.zeros((2, length, 3), np.float32)
    params = net.init(jax.random.key(0), x)
    feats, logits = net.apply(params, x)
    assert feats.shape == (2, 6) and logits.shape == (2, 5)
    assert (np.asarray(feats) >= 0).all()


# ---------------------------------------------------------------- training


def stratified_shuffle(y, seed):
  """Labels independent of `y`: each true class gets the K labels in near-equal numbers.

  A plain permutation leaves chance imbalances in the true-by-shuffled class
  table, which a classifier learns and which then match the true classes on
  held-out data by luck; balancing the table removes that signal.
  """
  rng = np.random.default_rng(seed)
  out = np.empty_like(y)
  for c in range(K):
    members = np.flatnonzero(y == c)
    out[members] = rng.permutation(np.arange(len(members)) % K)
  return out


def test_separable_classes_are_learned(data, trained):
  (x, y), (x_test, y_test) = data
  config = small_config()
  assert embedding.accuracy(trained, x_test, y_test, config, K) > 0.9
  # Label-shuffled runs stay near chance (0.25). A single run's held-out accuracy
  # varies (sd ~0.1: the spurious label each true class drifts to is a coin flip),
  # so the mean of three runs is tested.
  shuffled_acc = []
  for seed in range(3):
    params = embedding.train_classifier(x, stratified_shuffle(y, seed), K, config,
                                        jax.random.key(10 + seed))
    shuffled_acc.append(embedding.accuracy(params, x_test, y_test, config, K))
  assert np.mean(shuffled_acc) < 0.5, shuffled_acc


def test_same_key_same_params_different_key_different(data, trained):
  (x, y), _ = data
  config = small_config()
  again = embedding.train_classifier(x, y, K, config, jax.random.key(0))
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.allclose, trained, again))
  other = embedding.train_classifier(x, y, K, config, jax.random.key(1))
  close = jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.allclose, trained, other))
  assert not all(close)


# ---------------------------------------------------------------- embed


def test_embed_shapes_probs_and_chunk_invariance(data, trained):
  _, (x_test, _) = data
  config = small_config()
  feats, probs = embedding.embed(trained, x_test, config, K)
  assert feats.shape == (N_TEST, config.features) and probs.shape == (N_TEST, K)
  assert feats.dtype == np.float64 and probs.dtype == np.float64
  assert np.isfinite(feats).all() and (feats >= 0).all()
  assert (probs >= 0).all()
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
  for chunk in (7, 64, N_TEST + 5):  # padded last chunk, exact division, single chunk
    f2, p2 = embedding.embed(trained, x_test, config, K, chunk=chunk)
    np.testing.assert_allclose(f2, feats, atol=1e-5)
    np.testing.assert_allclose(p2, probs, atol=1e-5)
  f1, p1 = embedding.embed(trained, x_test[:1], config, K)  # one window
  np.testing.assert_allclose(f1, feats[:1], atol=1e-5)
  np.testing.assert_allclose(p1, probs[:1], atol=1e-5)


def test_inception_score_of_trained_classifier(data, trained):
  _, (x_test, _) = data
  _, probs = embedding.embed(trained, x_test, small_config(), K)
  score = generative.inception_score(probs, num_splits=5)  # 40 balanced windows per split
  assert 2.5 < score["mean"] <= K + 1e-6


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("case, match", [
    ("nan", "non-finite"),
    ("label_high", r"class ids must lie in \[0, 4\)"),
    ("label_negative", r"class ids must lie in \[0, 4\)"),
    ("label_float", "must be integers"),
    ("length", "x has length 10 but labels has length 9"),
    ("rank2", "expected rank 3"),
    ("one_window", "at least 2 windows"),
    ("labels_2d", "expected a 1-D array"),
    ("num_classes", "num_classes"),
    ("steps", "config.steps"),
])
def test_bad_inputs_raise(case, match):
  x, y = toy(10, seed=3)
  config, k = small_config(), K
  if case == "nan":
    x[4, 5, 0] = np.nan
  elif case == "label_high":
    y[2] = K
  elif case == "label_negative":
    y[0] = -1
  elif case == "label_float":
    y = y + 0.5
  elif case == "length":
    y = y[:-1]
  elif case == "rank2":
    x = x[..., 0]
  elif case == "one_window":
    x, y = x[:1], y[:1]
  elif case == "labels_2d":
    y = y[:, None]
  elif case == "num_classes":
    k = 1
  elif case == "steps":
    config.steps = 0
  with pytest.raises(ValueError, match=match):
    embedding.train_classifier(x, y, k, config, jax.random.key(0))


def test_embed_and_accuracy_validate(trained):
  config = small_config()
  x, y = toy(8, seed=4)
  with pytest.raises(ValueError, match="non-finite"):
    bad = x.copy()
    bad[0, 0, 1] = np.inf
    embedding.embed(trained, bad, config, K)
  with pytest.raises(ValueError, match="expected rank 3"):
    embedding.embed(trained, x[0], config, K)
  with pytest.raises(ValueError, match="channel"):
    embedding.embed(trained, x[..., :1], config, K)
  with pytest.raises(ValueError, match="chunk"):
    embedding.embed(trained, x, config, K, chunk=0)
  with pytest.raises(ValueError, match="length"):
    embedding.accuracy(trained, x, y[:-1], config, K)
  with pytest.raises(ValueError, match="class ids"):
    embedding.accuracy(trained, x, np.full(8, K), config, K)
