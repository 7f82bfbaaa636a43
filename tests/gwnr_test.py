"""Tests of the GWNR loss (mlts/cognos/gwnr.py): mask, Haar, spectral, MMD, balancing."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlts import reconstruction
from mlts.cognos import gwnr
from mlts.models.conv_ae import ConvAutoencoder

SIGMAS = (0.5, 1.0, 2.0, 4.0)
B, L, C = 64, 128, 2


def _ar1(rng, phi, shape=(B, L, C), burn=200):
  e = rng.standard_normal((shape[0], shape[1] + burn, shape[2]))
  y = np.zeros_like(e)
  for t in range(1, e.shape[1]):
    y[:, t] = phi * y[:, t - 1] + e[:, t]
  return y[:, burn:]


def _residuals():
  rng = np.random.default_rng(0)
  return {
      "white": rng.standard_normal((B, L, C)),
      "ar0.5": _ar1(rng, 0.5),
      "ar0.9": _ar1(rng, 0.9),
      "laplace": rng.laplace(size=(B, L, C)),
      "uniform": rng.uniform(-1.0, 1.0, (B, L, C)),
  }


@jax.jit
def _jit_terms(r):
  mask = jnp.ones_like(r)
  return gwnr.spectral_flatness(r, mask), gwnr.wavelet_mmd(r, mask)


def _terms(r):
  spec, mmd = _jit_terms(jnp.asarray(r, jnp.float32))
  return float(spec), float(mmd)


def _direct_mmd(residual, mask, reference=None, sigmas=SIGMAS):
  """NumPy O(N²) V-statistic MMD² of the pooled standardized details, for reference."""
  r = np.asarray(residual, np.float64) * mask
  n = r.shape[1] // 2
  d = (r[:, 0:2 * n:2] - r[:, 1:2 * n:2]) / np.sqrt(2.0)
  w = mask[:, 0:2 * n:2] * mask[:, 1:2 * n:2]
  zs = []
  for b in range(r.shape[0]):
    for c in range(r.shape[2]):
      sel = d[b, :, c][w[b, :, c] > 0]
      if sel.size >= 2 and sel.var() > 0:
        zs.append((sel - sel.mean()) / sel.std())
  z = np.concatenate(zs)
  kern = lambda a, b: sum(np.exp(-np.square(a[:, None] - b[None, :]) / (2 * s * s))
                          for s in sigmas)
  if reference is None:
    cross = sum(s / np.sqrt(s * s + 1) * np.exp(-z * z / (2 * (s * s + 1))) for s in sigmas)
    return kern(z, z).mean() - 2 * cross.mean() + sum(s / np.sqrt(s * s + 2) for s in sigmas)
  g = np.asarray(reference, np.float64)
  return kern(z, z).mean() - 2 * kern(z, g).mean() + kern(g, g).mean()


# --- activity mask -------------------------------------------------------------------------


def test_activity_mask_hand_computed():
  x = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2], np.float32)
  # Δ = [Δ_1=0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]: changes at t = 4 and t = 11.
  want = {
      0: [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1],
      1: [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1],
      2: [0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1],
  }
  for width, expected in want.items():
    got = gwnr.activity_mask(x[None, :, None], width=width)
    chex.assert_shape(got, (1, 12, 1))
    np.testing.assert_array_equal(np.asarray(got)[0, :, 0], expected, err_msg=f"width={width}")


def test_activity_mask_first_step_and_channels():
  # Δ_0 := Δ_1: a change between t = 0 and t = 1 marks both points even without dilation.
  x = np.zeros((2, 6, 2), np.float32)
  x[0, 1:, 0] = 1.0  # channel 0 of window 0 jumps at t = 1
  x[1, :, 1] = 1e-7 * np.arange(6)  # steps below eps: inactive
  got = np.asarray(gwnr.activity_mask(x, width=0, eps=1e-6))
  np.testing.assert_array_equal(got[0, :, 0], [1, 1, 0, 0, 0, 0])
  assert not got[0, :, 1].any() and not got[1].any()


# --- Haar transform ------------------------------------------------------------------------


def test_haar_matches_pywavelets():
  pywt = pytest.importorskip("pywt")
  r = np.random.default_rng(1).standard_normal((3, 16, 2))
  np.testing.assert_allclose(gwnr.haar_detail(r), pywt.dwt(r, "haar", axis=1)[1], atol=1e-6)
  np.testing.assert_allclose(gwnr.haar_detail(r[:, :, 0], axis=-1),
                             pywt.dwt(r[:, :, 0], "haar")[1], atol=1e-6)
  # Same sign convention as PyWavelets: d_0 = (r_0 - r_1) / sqrt(2).
  np.testing.assert_allclose(pywt.dwt([1.0, 3.0], "haar")[1], [-np.sqrt(2.0)])
  np.testing.assert_allclose(gwnr.haar_detail(np.array([1.0, 3.0, 7.0]), axis=0),
                             [-np.sqrt(2.0)], atol=1e-6)  # odd trailing sample dropped


# --- the two auxiliary terms on known residuals --------------------------------------------


def test_white_residuals_flat_coloured_not():
  spec = {name: _terms(r)[0] for name, r in _residuals().items()}
  # White: about (K - 1) / (2 B K) = 0.0077 for B = K = 64 (measured 0.0069).
  assert spec["white"] < 0.015, spec
  # Measured ratios: AR(1) phi = 0.5 -> 42x, phi = 0.9 -> 227x.
  assert spec["ar0.5"] > 10 * spec["white"], spec
  assert spec["ar0.9"] > 100 * spec["white"], spec
  assert spec["ar0.9"] > 3 * spec["ar0.5"], spec


def test_gaussian_residuals_near_zero_mmd_others_not():
  mmd = {name: _terms(r)[1] for name, r in _residuals().items()}
  # Gaussian: the V-statistic floor 1.33 / (B C L / 2) = 1.6e-4 (measured 9.7e-5).
  assert mmd["white"] < 5e-4, mmd
  # Haar details of Laplace / uniform noise are differences of two draws, closer to Gaussian
  # than the draws themselves; measured ratios 69x (Laplace) and 18x (uniform).
  assert mmd["laplace"] > 20 * mmd["white"], mmd
  assert mmd["uniform"] > 5 * mmd["white"], mmd
  # Colour does not change the marginal shape: Gaussian AR(1) stays near zero.
  assert mmd["ar0.9"] < 5e-4, mmd


def test_mmd_equals_direct_v_statistic():
  rng = np.random.default_rng(2)
  r = rng.standard_t(3, (4, 32, 2))
  r[0, 5, 0] = 40.0  # an outlier: standardized details reach the largest differences
  mask = np.ones_like(r)
  mask[1, 10:20, 1] = 0.0
  mask[2, :, 0] = 0.0  # a fully masked instance
  mask[3, 3:, 1] = 0.0  # one active detail only: left out
  got = gwnr.wavelet_mmd(jnp.asarray(r, jnp.float32), jnp.asarray(mask, jnp.float32))
  np.testing.assert_allclose(float(got), _direct_mmd(r, mask), rtol=5e-4, atol=1e-6)


def test_sampled_reference_equals_direct_v_statistic():
  rng = np.random.default_rng(3)
  r = rng.standard_normal((4, 32, 2))
  mask = np.ones_like(r)
  key = jax.random.key(7)
  got = gwnr.wavelet_mmd(jnp.asarray(r, jnp.float32), jnp.asarray(mask, jnp.float32), key,
                         num_reference=64)
  g = np.asarray(jax.random.normal(key, (64,), jnp.float32))
  np.testing.assert_allclose(float(got), _direct_mmd(r, mask, g), rtol=5e-4, atol=1e-6)


# --- masking --------------------------------------------------------------------------------


def _frozen_batch(rng):
  x = rng.standard_normal((8, 64, 2)).astype(np.float32)
  x[:, 20:40, 0] = 0.5  # frozen stretch in channel 0: mask is 0 on 23..36 (width 2)
  x[3, :, 1] = -1.0  # a frozen instance
  return x


def test_masked_stretches_contribute_nothing():
  rng = np.random.default_rng(4)
  x = _frozen_batch(rng)
  mask = np.asarray(gwnr.activity_mask(x))
  assert not mask[:, 23:37, 0].any() and mask[:, 18, 0].all() and not mask[3, :, 1].any()
  x_hat = x + 0.3 * rng.standard_normal(x.shape).astype(np.float32)
  x_hat2 = np.where(mask > 0, x_hat, x_hat + 5.0 * rng.standard_normal(x.shape))
  terms = jax.jit(lambda xh: gwnr.gwnr_terms(x, xh, None, gwnr.default_config()))
  a = terms(x_hat)
  b = terms(x_hat2.astype(np.float32))
  assert float(a["mse"]) != pytest.approx(float(b["mse"]))
  np.testing.assert_allclose(float(a["spec"]), float(b["spec"]), rtol=1e-6)
  np.testing.assert_allclose(float(a["mmd"]), float(b["mmd"]), rtol=1e-6)


def test_constant_batch_gives_zero_terms_weights_and_gradient():
  x = jnp.full((4, 32, 2), 0.7)
  x_hat = x + 0.1 * jax.random.normal(jax.random.key(0), x.shape)
  cfg = gwnr.default_config()
  terms = jax.jit(lambda xh: gwnr.gwnr_terms(x, xh, None, cfg))(x_hat)
  assert float(terms["spec"]) == 0.0 and float(terms["mmd"]) == 0.0
  loss, weights = gwnr.balance(terms, 1.0, 1.0, cfg.delta)
  assert float(weights["w_spec"]) == 0.0 and float(weights["w_mmd"]) == 0.0
  assert float(loss) == float(terms["mse"])
  for name in ("spec", "mmd"):
    grad = jax.jit(jax.grad(lambda xh, n=name: gwnr.gwnr_terms(x, xh, None, cfg)[n]))(x_hat)
    assert np.all(np.asarray(grad) == 0.0), name


def test_zero_residual_is_gradient_safe():
  x = jax.random.normal(jax.random.key(1), (4, 32, 2))
  cfg = gwnr.default_config()
  grads = jax.jit(jax.grad(lambda xh: gwnr.balance(gwnr.gwnr_terms(x, xh, None, cfg), 1.0, 1.0,
                                                   cfg.delta)[0]))(x)
  assert np.all(np.isfinite(np.asarray(grads)))


# --- gradient balancing ---------------------------------------------------------------------


def test_balancing_weights_carry_no_gradient():
  rng = np.random.default_rng(5)
  x = jnp.asarray(_frozen_batch(rng))
  x_hat = x + jnp.asarray(0.3 * _ar1(rng, 0.7, x.shape), jnp.float32)
  cfg = gwnr.default_config()
  alpha_spec, alpha_mmd = 0.7, 1.3

  def total(xh):
    return gwnr.balance(gwnr.gwnr_terms(x, xh, None, cfg), alpha_spec, alpha_mmd, cfg.delta)[0]

  _, weights = jax.jit(lambda xh: gwnr.balance(gwnr.gwnr_terms(x, xh, None, cfg), alpha_spec,
                                                alpha_mmd, cfg.delta))(x_hat)
  w_spec, w_mmd = float(weights["w_spec"]), float(weights["w_mmd"])
  assert w_spec > 0 and w_mmd > 0

  def fixed(xh):
    t = gwnr.gwnr_terms(x, xh, None, cfg)
    return t["mse"] + w_spec * t["spec"] + w_mmd * t["mmd"]

  def no_stop_gradient(xh):  # the weights differentiated: a different gradient
    t = gwnr.gwnr_terms(x, xh, None, cfg)
    return t["mse"] * (1 + alpha_spec * t["spec"] / (t["spec"] + cfg.delta)
                       + alpha_mmd * t["mmd"] / (t["mmd"] + cfg.delta))

  g_total = np.asarray(jax.jit(jax.grad(total))(x_hat))
  g_fixed = np.asarray(jax.jit(jax.grad(fixed))(x_hat))
  # Same function up to float32 rounding (amplified by the large w_mmd = mse / mmd).
  np.testing.assert_allclose(g_total, g_fixed, rtol=1e-4, atol=1e-5 * np.abs(g_fixed).max())
  g_naive = np.asarray(jax.jit(jax.grad(no_stop_gradient))(x_hat))
  assert np.abs(g_naive - g_fixed).max() > 0.1 * np.abs(g_fixed).max()


# --- the loss factory -----------------------------------------------------------------------


@functools.cache
def _model_and_batch():
  model = ConvAutoencoder(num_features=2, hidden=(8, 8), latent=2)
  batch = jax.random.normal(jax.random.key(0), (8, 32, 2))
  params = jax.jit(model.init)(jax.random.key(1), batch)["params"]
  return model, params, batch


def test_make_gwnr_loss_jits_with_finite_gradients():
  model, params, batch = _model_and_batch()
  loss_fn = gwnr.make_gwnr_loss(model.apply, gwnr.default_config())
  value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)
  grad_fn = jax.jit(chex.assert_max_traces(lambda *args: value_and_grad(*args), n=1))
  for step in range(2):
    (loss, metrics), grads = grad_fn(params, batch, jax.random.key(step))
  assert set(metrics) == {"mse", "spec", "mmd", "w_spec", "w_mmd"}
  assert np.isfinite(float(loss)) and float(metrics["w_spec"]) > 0 and float(metrics["w_mmd"]) > 0
  np.testing.assert_allclose(float(loss), 3 * float(metrics["mse"]), rtol=1e-4)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


def test_make_gwnr_loss_reduces_to_mse_without_auxiliary_weights():
  model, params, batch = _model_and_batch()
  cfg = gwnr.default_config()
  cfg.alpha_spec = cfg.alpha_mmd = 0.0
  key = jax.random.key(0)
  (loss, metrics), grads = jax.jit(jax.value_and_grad(
      gwnr.make_gwnr_loss(model.apply, cfg), has_aux=True))(params, batch, key)
  (mse, _), mse_grads = jax.jit(jax.value_and_grad(
      reconstruction.make_mse_loss(model.apply), has_aux=True))(params, batch, key)
  np.testing.assert_allclose(float(loss), float(mse), rtol=1e-6)
  assert float(metrics["spec"]) > 0 and float(metrics["w_spec"]) == 0.0
  chex.assert_trees_all_close(grads, mse_grads, rtol=1e-5, atol=1e-8)


def test_sampled_reference_loss_uses_key():
  model, params, batch = _model_and_batch()
  cfg = gwnr.default_config()
  cfg.num_reference = 64
  loss_fn = jax.jit(gwnr.make_gwnr_loss(model.apply, cfg))
  a = loss_fn(params, batch, jax.random.key(0))[1]["mmd"]
  b = loss_fn(params, batch, jax.random.key(1))[1]["mmd"]
  assert float(a) != float(b)


def test_default_config_matches_project_config_fields():
  from configs import default as default_configs
  assert set(gwnr.default_config()) == set(default_configs.get_config().gwnr)
