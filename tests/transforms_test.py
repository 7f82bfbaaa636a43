"""Tests for train-only normalization, RevIN and the validation split."""

import jax.numpy as jnp
import numpy as np
import pytest

from mlts.data import transforms


def test_zscore_uses_train_statistics_only():
  train = np.array([[1.0, 10.0], [3.0, 10.0]])  # column 1 constant
  norm = transforms.fit_normalizer(train, "zscore", min_scale=1e-3)
  np.testing.assert_allclose(norm.shift, [2.0, 10.0])
  np.testing.assert_allclose(norm.scale, [1.0, 1.0])  # constant column keeps its units
  np.testing.assert_allclose(norm.apply(np.array([[5.0, 11.0]])), [[3.0, 1.0]])
  test = np.array([[7.0, 11.0]])
  np.testing.assert_allclose(norm.invert(norm.apply(test)), test)


def test_minmax_maps_train_to_unit_interval():
  train = np.array([[-2.0], [0.0], [6.0]])
  norm = transforms.fit_normalizer(train, "minmax")
  np.testing.assert_allclose(norm.apply(train)[:, 0], [0.0, 0.25, 1.0])


def test_unknown_method_and_nan():
  with pytest.raises(ValueError, match="unknown normalization"):
    transforms.fit_normalizer(np.zeros((3, 1)), "robust")
  with pytest.raises(ValueError, match="A-1 train: 1 non-finite"):
    transforms.fit_normalizer(np.array([[0.0], [np.inf]]), name="A-1 train")


def test_split_is_last_fraction():
  x = np.arange(10)
  fit, val = transforms.split_train_val(x, 0.2)
  np.testing.assert_array_equal(fit, np.arange(8))
  np.testing.assert_array_equal(val, [8, 9])
  fit, val = transforms.split_train_val(np.arange(3), 0.2)  # rounds to at least one step
  assert len(val) == 1 and len(fit) == 2


def test_revin_roundtrip_and_statistics():
  x = jnp.asarray(np.random.default_rng(0).normal(3.0, 2.0, size=(4, 64, 2)))
  y, stats = transforms.revin_normalize(x)
  np.testing.assert_allclose(jnp.mean(y, axis=1), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.std(y, axis=1), 1.0, atol=1e-4)
  np.testing.assert_allclose(transforms.revin_denormalize(y, stats), x, atol=1e-5)
