"""Tests of the GWNR loss (mlts/cognos/gwnr.py): mask, Haar, spectral, MMD, balancing."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

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


def _standardized_gaussian_law(n, nodes=400):
  """Atoms and weights of one of n Gaussians standardized by their own mean and std.

  Independent of the module's closed form: z = √(n − 1) sin θ with density ∝ cos^(n−3) θ on
  (−π/2, π/2), integrated by Gauss-Legendre; n = 2: ±1.
  """
  if n == 2:
    return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
  theta, w = np.polynomial.legendre.leggauss(nodes)
  theta = theta * np.pi / 2
  w = w * np.cos(theta) ** (n - 3)
  return np.sqrt(n - 1.0) * np.sin(theta), w / w.sum()


def _direct_mmd(residual, mask, sigmas=SIGMAS):
  """NumPy O(N²) V-statistic MMD² of the pooled standardized details against their law."""
  r = np.asarray(residual, np.float64) * mask
  n = r.shape[1] // 2
  d = (r[:, 0:2 * n:2] - r[:, 1:2 * n:2]) / np.sqrt(2.0)
  w = mask[:, 0:2 * n:2] * mask[:, 1:2 * n:2]
  zs, ref_atoms, ref_weights = [], [], []
  for b in range(r.shape[0]):
    for c in range(r.shape[2]):
      sel = d[b, :, c][w[b, :, c] > 0]
      if sel.size >= 2 and sel.var() > 0:
        zs.append((sel - sel.mean()) / sel.std())
        atoms, weights = _standardized_gaussian_law(sel.size)
        ref_atoms.append(atoms)
        ref_weights.append(weights * sel.size)
  z = np.concatenate(zs)
  g, q = np.concatenate(ref_atoms), np.concatenate(ref_weights)
  p, q = np.full(z.size, 1.0 / z.size), q / q.sum()
  kern = lambda a, b: sum(np.exp(-np.square(a[:, None] - b[None, :]) / (2 * s * s))
                          for s in sigmas)
  return p @ kern(z, z) @ p - 2 * p @ kern(z, g) @ q + q @ kern(g, g) @ q


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
  # Gaussian: the V-statistic floor 1.33 / (B C L / 2) = 1.6e-4 (measured 7.4e-5).
  assert mmd["white"] < 5e-4, mmd
  # Haar details of Laplace / uniform noise are differences of two draws, closer to Gaussian
  # than the draws themselves; measured ratios 105x (Laplace) and 18x (uniform).
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
  mask[2, 4:, 1] = 0.0  # two details
  mask[0, 6:, 1] = 0.0  # three details
  got = jax.jit(gwnr.wavelet_mmd)(jnp.asarray(r, jnp.float32), jnp.asarray(mask, jnp.float32))
  np.testing.assert_allclose(float(got), _direct_mmd(r, mask), rtol=5e-4, atol=1e-6)


def test_sampled_reference_agrees_with_exact_reference():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((16, 32, 2)).astype(np.float32)
  x[:, 16:, 0] = 0.0  # frozen: instances of 9 details in channel 0, 16 in channel 1
  x_hat = x - rng.laplace(size=x.shape).astype(np.float32)
  exact = float(jax.jit(lambda x, xh: gwnr.gwnr_terms(x, xh, None, gwnr.default_config())["mmd"])(
      x, x_hat))
  cfg = gwnr.default_config()
  cfg.num_reference = 50000
  sampled = jax.jit(lambda x, xh, key: gwnr.gwnr_terms(x, xh, key, cfg)["mmd"])
  a, b = (float(sampled(x, x_hat, jax.random.key(k))) for k in (7, 8))
  assert a != b
  assert abs(a - exact) < 3e-4 and abs(b - exact) < 3e-4, (a, b, exact)


def test_short_active_stretches_keep_gaussian_noise_near_zero():
  # Isolated changes give short active stretches (2-8 details per instance); the finite-n
  # reference keeps Gaussian white residuals at the V-statistic floor (against N(0, 1)
  # these would score 0.02-0.3).
  rng = np.random.default_rng(8)
  r = rng.standard_normal((B, L, C)).astype(np.float32)
  mask = np.zeros((B, L, C), np.float32)
  for b in range(B):
    for c in range(C):
      length = 2 * rng.integers(2, 9)
      mask[b, :length, c] = 1.0
  mmd = float(jax.jit(gwnr.wavelet_mmd)(jnp.asarray(r), jnp.asarray(mask)))
  floor = 1.33 / (mask[:, 0::2] * mask[:, 1::2]).sum()
  assert mmd < 3 * floor, (mmd, floor)


def test_linear_binning_gradient_matches_autodiff_of_plain_formula():
  grid = np.linspace(-3.0, 3.0, 61)
  rng = np.random.default_rng(6)
  values = jnp.asarray(rng.uniform(-2.9, 2.9, 50), jnp.float32)
  weights = jnp.asarray(rng.integers(0, 2, 50), jnp.float32)
  probe = jnp.asarray(rng.standard_normal(grid.size), jnp.float32)

  def plain(v):  # two scatters, differentiated by JAX
    pos = (v - grid[0]) / (grid[1] - grid[0])
    left = jnp.floor(lax.stop_gradient(pos))
    frac = pos - left
    left = left.astype(jnp.int32)
    hist = jnp.zeros(grid.size).at[left].add(weights * (1 - frac))
    return hist.at[left + 1].add(weights * frac)

  ours = lambda v: gwnr._linear_binning(v, weights, grid)
  np.testing.assert_allclose(jax.jit(ours)(values), jax.jit(plain)(values), atol=1e-6)
  grad = lambda f: jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(f(v)) * probe)))(values)
  np.testing.assert_allclose(grad(ours), grad(plain), rtol=1e-5, atol=1e-5)


# --- masking --------------------------------------------------------------------------------


def _frozen_batch(rng):
  x = rng.standard_normal((8, 64, 2)).astype(np.float32)
  x[:, 20:40, 0] = 0.5  # frozen stretch in channel 0: mask is 0 on 23..37 (width 2)
  x[3, :, 1] = -1.0  # a frozen instance
  return x


def test_masked_stretches_contribute_nothing():
  rng = np.random.default_rng(4)
  x = _frozen_batch(rng)
  mask = np.asarray(gwnr.activity_mask(x))
  assert not mask[:, 23:38, 0].any() and mask[:, 18, 0].all() and not mask[3, :, 1].any()
  x_hat = x + 0.3 * rng.standard_normal(x.shape).astype(np.float32)
  x_hat2 = np.where(mask > 0, x_hat, x_hat + 5.0 * rng.standard_normal(x.shape))
  terms = jax.jit(lambda x, xh: gwnr.gwnr_terms(x, xh, None, gwnr.default_config()))
  a = terms(x, x_hat)
  b = terms(x, x_hat2.astype(np.float32))
  assert float(a["mse"]) != pytest.approx(float(b["mse"]))
  np.testing.assert_allclose(float(a["spec"]), float(b["spec"]), rtol=1e-6)
  np.testing.assert_allclose(float(a["mmd"]), float(b["mmd"]), rtol=1e-6)


def _terms_and_aux_grads(x_hat, x):
  cfg = gwnr.default_config()
  terms = gwnr.gwnr_terms(x, x_hat, None, cfg)
  grads = {n: jax.grad(lambda xh, n=n: gwnr.gwnr_terms(x, xh, None, cfg)[n])(x_hat)
           for n in ("spec", "mmd")}
  return terms, gwnr.balance(terms, 1.0, 1.0, cfg.delta), grads


def test_constant_batch_gives_zero_terms_weights_and_gradient():
  x = jnp.full((4, 32, 2), 0.7)
  x_hat = x + 0.1 * jax.random.normal(jax.random.key(0), x.shape)
  terms, (loss, weights), grads = jax.jit(_terms_and_aux_grads)(x_hat, x)
  assert float(terms["spec"]) == 0.0 and float(terms["mmd"]) == 0.0
  assert float(weights["w_spec"]) == 0.0 and float(weights["w_mmd"]) == 0.0
  assert float(loss) == float(terms["mse"])
  for name, grad in grads.items():
    assert np.all(np.asarray(grad) == 0.0), name


def test_zero_residual_is_gradient_safe():
  x = jax.random.normal(jax.random.key(1), (4, 32, 2))
  terms, _, grads = jax.jit(_terms_and_aux_grads)(x, x)
  assert float(terms["spec"]) == 0.0 and float(terms["mmd"]) == 0.0
  for name, grad in grads.items():
    assert np.all(np.asarray(grad) == 0.0), name


# --- gradient balancing ---------------------------------------------------------------------


def test_balancing_weights_carry_no_gradient():
  rng = np.random.default_rng(5)
  x = jnp.asarray(_frozen_batch(rng))
  x_hat = x + jnp.asarray(0.3 * _ar1(rng, 0.7, x.shape), jnp.float32)
  cfg = gwnr.default_config()
  alpha_spec, alpha_mmd = 0.7, 1.3

  def total(xh, x):
    return gwnr.balance(gwnr.gwnr_terms(x, xh, None, cfg), alpha_spec, alpha_mmd, cfg.delta)

  def fixed(xh, x, w_spec, w_mmd):  # the weights enter as constants
    t = gwnr.gwnr_terms(x, xh, None, cfg)
    return t["mse"] + w_spec * t["spec"] + w_mmd * t["mmd"]

  def no_stop_gradient(xh, x):  # the weights differentiated: a different gradient
    t = gwnr.gwnr_terms(x, xh, None, cfg)
    return t["mse"] * (1 + alpha_spec * t["spec"] / (t["spec"] + cfg.delta)
                       + alpha_mmd * t["mmd"] / (t["mmd"] + cfg.delta))

  @jax.jit
  def gradients(xh, x):
    (_, weights), g_total = jax.value_and_grad(total, has_aux=True)(xh, x)
    w_spec, w_mmd = weights["w_spec"], weights["w_mmd"]
    g_fixed = jax.grad(fixed)(xh, x, w_spec, w_mmd)
    return w_spec, w_mmd, g_total, g_fixed, jax.grad(no_stop_gradient)(xh, x)

  w_spec, w_mmd, g_total, g_fixed, g_naive = map(np.asarray, gradients(x_hat, x))
  assert w_spec > 0 and w_mmd > 0
  # Same function up to float32 rounding (amplified by the large w_mmd = mse / mmd).
  np.testing.assert_allclose(g_total, g_fixed, rtol=1e-4, atol=1e-5 * np.abs(g_fixed).max())
  assert np.abs(g_naive - g_fixed).max() > 0.1 * np.abs(g_fixed).max()


# --- the loss factory -----------------------------------------------------------------------


def _linear_model_and_batch():
  """A per-step linear map across channels: the cheapest `apply_fn` with parameters."""
  apply_fn = lambda variables, x: x @ variables["params"]["w"] + variables["params"]["b"]
  params = {"w": jnp.array([[0.9, 0.1], [-0.2, 0.7]]), "b": jnp.array([0.05, -0.1])}
  batch = jax.random.normal(jax.random.key(0), (8, 32, 2))
  return apply_fn, params, batch


def test_make_gwnr_loss_jits_with_finite_gradients():
  model = ConvAutoencoder(num_features=2, hidden=(8,), latent=2)
  batch = jax.random.normal(jax.random.key(0), (8, 32, 2))
  params = jax.jit(model.init)(jax.random.key(1), batch)["params"]
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
  apply_fn, params, batch = _linear_model_and_batch()
  cfg = gwnr.default_config()
  cfg.alpha_spec = cfg.alpha_mmd = 0.0
  key = jax.random.key(0)
  (loss, metrics), grads = jax.jit(jax.value_and_grad(
      gwnr.make_gwnr_loss(apply_fn, cfg), has_aux=True))(params, batch, key)
  (mse, _), mse_grads = jax.jit(jax.value_and_grad(
      reconstruction.make_mse_loss(apply_fn), has_aux=True))(params, batch, key)
  np.testing.assert_allclose(float(loss), float(mse), rtol=1e-6)
  assert float(metrics["spec"]) > 0 and float(metrics["w_spec"]) == 0.0
  chex.assert_trees_all_close(grads, mse_grads, rtol=1e-5, atol=1e-8)


def test_default_config_matches_project_config_fields():
  from configs import default as default_configs
  assert set(gwnr.default_config()) == set(default_configs.get_config().gwnr)
