"""Tests for mlts.scan_fit: the scanned training loop against a Python loop of optax steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlts import scan_fit


def test_permutation_batches_visit_every_row_once_per_epoch():
  idx = np.asarray(scan_fit.permutation_batches(jax.random.key(0), 12, 4, 7))
  assert idx.shape == (7, 4)
  flat = idx.reshape(-1)
  for epoch in range(2):  # 28 draws: two whole permutations of 12, then a partial third
    assert sorted(flat[12 * epoch:12 * (epoch + 1)]) == list(range(12))
  assert len(set(flat[24:])) == 4


def _regression():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(40, 3)), jnp.float32)
  y = x @ jnp.asarray([1.0, -2.0, 0.5]) + 0.3
  return x, y


def test_fit_equals_a_python_loop_of_optax_steps():
  x, y = _regression()

  def loss_fn(p, idx):
    return jnp.mean((x[idx] @ p["w"] + p["b"] - y[idx]) ** 2)

  params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
  tx = optax.adam(0.05)
  batches = scan_fit.permutation_batches(jax.random.key(1), 40, 8, 50)
  fitted = jax.jit(lambda p, b: scan_fit.fit(loss_fn, p, tx, b))(params, batches)

  p, state = params, tx.init(params)
  for idx in batches:  # the reference: one optax step per batch
    updates, state = tx.update(jax.grad(loss_fn)(p, idx), state, p)
    p = optax.apply_updates(p, updates)
  np.testing.assert_allclose(fitted["w"], p["w"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(fitted["b"], p["b"], rtol=1e-5, atol=1e-6)


def test_fit_passes_tuple_batches_as_separate_arguments_and_converges():
  x, y = _regression()

  def loss_fn(p, i, j):  # two index streams, as the discriminative score's real / fake
    return (jnp.mean((x[i] @ p["w"] + p["b"] - y[i]) ** 2)
            + jnp.mean((x[j] @ p["w"] + p["b"] - y[j]) ** 2))

  params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
  ki, kj = jax.random.split(jax.random.key(2))
  batches = (scan_fit.permutation_batches(ki, 40, 8, 400),
             scan_fit.permutation_batches(kj, 40, 8, 400))
  fitted = scan_fit.fit(loss_fn, params, optax.adam(0.05), batches)
  np.testing.assert_allclose(fitted["w"], [1.0, -2.0, 0.5], atol=1e-2)
  np.testing.assert_allclose(fitted["b"], 0.3, atol=1e-2)
