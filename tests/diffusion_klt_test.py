"""The 'klt' representation: a Karhunen–Loève basis over whole windows (mlts/diffusion/basis.py).

Windows whose channels are correlated (Energy's 28 columns are) are the case
it exists for: in the DCT basis along time, channels are separate components,
so the diagonal Gaussian of the training windows there (the Gaussian residual
of the U-Net, the sampler's tail) loses every correlation between channels; in
the KLT basis the training covariance is diagonal, and the diagonal Gaussian
is the full-covariance one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import decomposition

from mlts.diffusion import basis, process, samplers

L, C = 6, 3


def correlated_windows(num: int, seed: int = 0) -> np.ndarray:
  """[num, L, C]: channel 1 = channel 0 + noise, channel 2 = −½ channel 0 + noise."""
  rng = np.random.default_rng(seed)
  base = np.cumsum(rng.normal(size=(num, L)), axis=1) * 0.3 + rng.normal(size=(num, 1))
  noise = 0.1 * rng.normal(size=(num, L, C))
  return np.stack([base, base, -0.5 * base], axis=-1) + noise


def make(representation: str, train: np.ndarray, attenuate: bool = True) -> process.Process:
  config = process.default_config()
  config.representation = representation
  config.num_steps = 200
  config.attenuate = attenuate
  return process.make_process(config, train)


def test_klt_basis_is_the_principal_directions_of_the_flattened_windows():
  x = correlated_windows(400)
  u = basis.klt_matrix(x)
  assert u.shape == (L * C, L * C)
  np.testing.assert_allclose(u.T @ u, np.eye(L * C), atol=1e-12)
  flat = x.reshape(400, -1)
  coef = (flat - flat.mean(0)) @ u
  cov = coef.T @ coef / 400
  np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-10)
  pca = decomposition.PCA().fit(flat)  # scikit-learn's PCA: the same variances, same directions
  np.testing.assert_allclose(np.diag(cov), pca.explained_variance_ * 399 / 400, rtol=1e-8)
  np.testing.assert_allclose(np.abs(u.T @ pca.components_.T)[:5, :5], np.eye(5), atol=1e-6)
  peaks = u[np.argmax(np.abs(u), axis=0), np.arange(L * C)]
  assert np.all(peaks > 0)  # the sign convention: a deterministic function of the data
  np.testing.assert_array_equal(basis.klt_matrix(x.copy()), u)


def test_klt_to_and_from_basis_act_on_the_flattened_window():
  x = correlated_windows(10)
  u = basis.klt_matrix(correlated_windows(200, seed=1))
  c = np.asarray(basis.to_basis(jnp.asarray(x), jnp.asarray(u)))
  np.testing.assert_allclose(c.reshape(10, -1), x.reshape(10, -1) @ u, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(basis.coefficients(x, u), (x.reshape(10, -1) @ u).reshape(x.shape))
  back = np.asarray(basis.from_basis(jnp.asarray(c), jnp.asarray(u)))
  np.testing.assert_allclose(back, x, atol=1e-5)
  assert basis.basis_shape("klt", L, C) == (L * C, L * C)
  assert basis.basis_shape("freq", L, C) == (L, L)
  with pytest.raises(ValueError, match="fits neither the length 6 nor the flattened size 18"):
    basis.to_basis(jnp.zeros((2, L, C)), jnp.eye(7))
  with pytest.raises(ValueError, match="needs training windows"):
    basis.basis_matrix("klt", L)


def test_klt_energy_selection_keeps_the_leading_principal_components():
  train = correlated_windows(500)
  proc = make("klt", train)
  mask = np.asarray(proc.mask, bool).reshape(-1)
  energy = basis.component_energy(train, proc.basis).reshape(-1)
  kept = np.flatnonzero(~mask)
  assert energy[kept].sum() >= 0.95 * energy.sum()
  assert energy[kept].min() >= energy[mask].max()
  # The channels move together: far fewer KLT than DCT components hold 95 % of the energy.
  dct_kept = int((~np.asarray(make("freq", train).mask, bool)).sum())
  assert kept.size < dct_kept


def exact_full_covariance_noise(proc, mean, cov):
  """E[γ ⊙ Uᵀε | x_t] for x_0 ~ N(mean, cov) (flattened windows), by a direct solve."""
  u = np.asarray(proc.basis, np.float64)
  if u.shape[0] == L:  # along time, per channel: kron(U, I_C) on the time-major flat window
    u = np.kron(u, np.eye(C))
  c_mean, c_cov = mean @ u, u.T @ cov @ u

  def fn(x, t):
    c = basis.coefficients(x, u).reshape(x.shape[0], -1)
    a = np.asarray(proc.a(jnp.asarray(t))).reshape(-1)
    sbar = np.asarray(proc.sigma(jnp.asarray(t))).reshape(-1)
    g2 = np.asarray(proc.gamma(jnp.asarray(t))).reshape(x.shape[0], -1) ** 2
    out = [sbar[i] * g2[i] * np.linalg.solve(a[i] ** 2 * c_cov + sbar[i] ** 2 * np.diag(g2[i]),
                                             c[i] - a[i] * c_mean) for i in range(x.shape[0])]
    return np.stack(out).reshape(x.shape)

  return fn


@pytest.mark.parametrize("attenuate", [False, True])
def test_the_diagonal_gaussian_predictor_in_the_klt_basis_is_the_full_covariance_one(attenuate):
  train = correlated_windows(2000)
  flat = train.reshape(2000, -1)
  mean, cov = flat.mean(0), np.cov(flat, rowvar=False, bias=True)
  x = correlated_windows(8, seed=3)
  t = np.array([5.0, 40.0, 90.0, 130.0, 160.0, 185.0, 199.0, 200.0])
  errors = {}
  for rep in ("klt", "freq"):
    proc = make(rep, train, attenuate)
    stats = process.data_stats(proc, train)
    got = np.asarray(process.gaussian_noise_fn(proc, stats)(jnp.asarray(x), jnp.asarray(t)))
    want = exact_full_covariance_noise(proc, mean, cov)(x, t)
    errors[rep] = np.abs(got - want).max() / np.abs(want).max()
  assert errors["klt"] < 1e-4
  assert errors["freq"] > 0.1  # per-channel DCT components: the channels' coupling is lost


def test_the_gaussian_sampler_keeps_the_channel_correlations_only_in_the_klt_basis():
  """With an untrained residual network (n̂ = the Gaussian predictor), as at step 0 of training."""
  train = correlated_windows(3000)
  real_corr = np.corrcoef(train.reshape(-1, C), rowvar=False)
  gaps = {}
  for rep in ("klt", "freq"):
    proc = make(rep, train)
    stats = process.data_stats(proc, train)
    x = np.asarray(samplers.sample_ode(proc, process.gaussian_noise_fn(proc, stats), stats,
                                       jax.random.key(0), 2000, num_steps=50))
    assert np.all(np.isfinite(x))
    gaps[rep] = np.abs(np.corrcoef(x.reshape(-1, C), rowvar=False) - real_corr).max()
  assert gaps["klt"] < 0.05
  assert gaps["freq"] > 0.3  # the DCT's per-channel Gaussian makes the channels independent
