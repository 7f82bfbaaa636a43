"""Tests for mlts.metrics.generative: closed forms, brute-force references, sanity, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlts.metrics import generative as gm


def _rng(seed=0):
  return np.random.default_rng(seed)


# --------------------------------------------------------------------------
# Fréchet distance.


def _psd_sqrt(s):
  w, v = np.linalg.eigh(s)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _frechet_closed_form(mu1, s1, mu2, s2):
  """Symmetric form Tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½), by eigendecomposition."""
  r1 = _psd_sqrt(s1)
  cross = _psd_sqrt(r1 @ s2 @ r1)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * cross))


def _random_cov(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_moments_diagonal_closed_form():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
  got = gm.frechet_distance_from_moments(mu1, np.diag(v1), mu2, np.diag(v2))
  assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_moments_general_closed_form():
  rng = _rng(1)
  d = 6
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
  got = gm.frechet_distance_from_moments(mu1, s1, mu2, s2)
  assert got == pytest.approx(_frechet_closed_form(mu1, s1, mu2, s2), rel=1e-7)


def test_frechet_identical_sets_is_zero():
  x = _rng(2).normal(size=(300, 5))
  assert gm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-7)


def test_frechet_monte_carlo_matches_closed_form():
  rng = _rng(3)
  d = 3
  mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.25])
  s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
  x = rng.multivariate_normal(mu1, s1, size=200_000)
  y = rng.multivariate_normal(mu2, s2, size=200_000)
  expected = _frechet_closed_form(mu1, s1, mu2, s2)
  assert gm.frechet_distance(x, y) == pytest.approx(expected, rel=0.03, abs=0.01)


def test_frechet_held_out_small_noise_large():
  rng = _rng(4)
  d = 8
  real = rng.normal(size=(2000, d)) @ np.diag(np.linspace(0.5, 2, d))
  held_out = rng.normal(size=(2000, d)) @ np.diag(np.linspace(0.5, 2, d))
  noise = rng.uniform(-6, 6, size=(2000, d)) + 3.0
  near, far = gm.frechet_distance(real, held_out), gm.frechet_distance(real, noise)
  assert near < 0.1
  assert far > 50 * near


def test_frechet_singular_covariance_is_finite():
  rng = _rng(5)
  z = rng.normal(size=(100, 2))
  real = np.concatenate([z, z[:, :1]], axis=1)          # rank-2 covariance in 3-D
  fake = np.concatenate([z + 0.1, np.zeros((100, 1))], axis=1)
  expected = _frechet_closed_form(real.mean(0), np.cov(real.T), fake.mean(0), np.cov(fake.T))
  assert gm.frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)


def test_frechet_offset_when_root_not_finite(monkeypatch):
  real_sqrtm = gm.linalg.sqrtm
  calls = []

  def flaky_sqrtm(a):
    calls.append(a)
    return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

  monkeypatch.setattr(gm.linalg, "sqrtm", flaky_sqrtm)
  s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
  got = gm.frechet_distance_from_moments(np.zeros(2), s1, np.zeros(2), s2, eps=1e-6)
  assert len(calls) == 2
  np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
  assert got == pytest.approx(2.0, abs=1e-5)


def test_frechet_bad_input():
  with pytest.raises(ValueError, match="features"):
    gm.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError, match="non-finite"):
    gm.frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))
  with pytest.raises(ValueError, match="at least 2"):
    gm.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


# --------------------------------------------------------------------------
# KID and MMD.


def _brute_unbiased_mmd2(x, y, kernel):
  n, m = len(x), len(y)
  sxx = sum(kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
  syy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  sxy = sum(kernel(x[i], y[j]) for i in range(n) for j in range(m))
  return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)


def test_kid_matches_brute_force_on_full_sets():
  rng = _rng(6)
  x, y = rng.normal(size=(20, 4)), rng.normal(0.3, 1.2, size=(20, 4))
  poly = lambda a, b: (a @ b / 4 + 1) ** 3
  # subset_size >= N = M: every subset is a permutation of the full sets.
  got = gm.kernel_inception_distance(x, y, num_subsets=3, subset_size=100)
  assert got["mean"] == pytest.approx(_brute_unbiased_mmd2(x, y, poly), rel=1e-10)
  assert got["std"] == pytest.approx(0.0, abs=1e-10)


def test_kid_same_distribution_near_zero_shifted_positive():
  rng = _rng(7)
  a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
  same = gm.kernel_inception_distance(a, b, num_subsets=10, subset_size=300)
  assert abs(same["mean"]) < max(3 * same["std"] / math.sqrt(10), 0.01)
  shifted = gm.kernel_inception_distance(a, b + 1.0, num_subsets=10, subset_size=300)
  assert shifted["mean"] > 10 * max(abs(same["mean"]), same["std"])


def test_kid_deterministic_in_seed():
  rng = _rng(8)
  a, b = rng.normal(size=(50, 3)), rng.normal(size=(60, 3))
  one = gm.kernel_inception_distance(a, b, subset_size=20, seed=4)
  two = gm.kernel_inception_distance(a, b, subset_size=20, seed=4)
  assert one == two
  with pytest.raises(ValueError, match="subset size"):
    gm.kernel_inception_distance(a[:1], b)


def test_mmd_matches_brute_force():
  rng = _rng(9)
  x, y = rng.normal(size=(15, 3)), rng.normal(0.5, 1.0, size=(12, 3))
  pooled = np.concatenate([x, y])
  dists = [np.linalg.norm(pooled[i] - pooled[j])
           for i in range(len(pooled)) for j in range(i + 1, len(pooled))]
  h = float(np.median(dists))
  rbf = lambda a, b: math.exp(-np.sum((a - b) ** 2) / (2 * h * h))
  assert gm.mmd_rbf(x, y) == pytest.approx(_brute_unbiased_mmd2(x, y, rbf), rel=1e-10)
  rbf2 = lambda a, b: math.exp(-np.sum((a - b) ** 2) / 8.0)
  assert gm.mmd_rbf(x, y, bandwidth=2.0) == pytest.approx(
      _brute_unbiased_mmd2(x, y, rbf2), rel=1e-10)


def test_mmd_same_near_zero_shifted_positive():
  rng = _rng(10)
  a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
  same, shifted = gm.mmd_rbf(a, b), gm.mmd_rbf(a, b + 1.0)
  assert abs(same) < 0.005
  assert shifted > 0.05
  with pytest.raises(ValueError, match="bandwidth"):
    gm.mmd_rbf(a, b, bandwidth=0.0)
  with pytest.raises(ValueError, match="bandwidth 0"):
    gm.mmd_rbf(np.zeros((5, 2)), np.zeros((5, 2)))


def test_mmd_permutation_test_statistic_and_p_values():
  rng = _rng(11)
  x, y = rng.normal(size=(15, 3)), rng.normal(0.5, 1.0, size=(12, 3))
  h = gm.median_distance(np.concatenate([x, y]))
  mmd2, _ = gm.mmd_permutation_test(x, y, num_permutations=10)
  assert mmd2 == pytest.approx(gm.mmd_rbf(x, y, bandwidth=h), rel=1e-10)
  # 1-D input is one feature; a shift is detected, equal distributions are not.
  a, b = rng.normal(size=200), rng.normal(size=200)
  _, p_same = gm.mmd_permutation_test(a, b, num_permutations=200, seed=1)
  _, p_shift = gm.mmd_permutation_test(a, b + 0.5, num_permutations=200, seed=1)
  assert p_same > 0.05 and p_shift == pytest.approx(1 / 201)
  # Shared relabellings give the same answer as the seed that drew them.
  order = np.random.default_rng(3).random((50, 400)).argsort(axis=1)
  labels = (order < 200).astype(np.float64)
  assert gm.mmd_permutation_test(a, b, labels=labels) == \
      gm.mmd_permutation_test(a, b, num_permutations=50, seed=3)
  # Over many equal-distribution pairs the p-value is about uniform: P(p <= 0.1) ~ 0.1.
  ps = [gm.mmd_permutation_test(rng.normal(size=30), rng.normal(size=30), num_permutations=99,
                                seed=s)[1] for s in range(200)]
  assert 0.03 < np.mean(np.asarray(ps) <= 0.1) < 0.18
  with pytest.raises(ValueError, match="labels must be"):
    gm.mmd_permutation_test(a, b, labels=labels[:, :10])
  # Mostly repeated points: σ falls back to the mean positive distance, never 0.
  assert gm.median_distance(np.r_[np.zeros((9, 1)), np.ones((1, 1))]) == 1.0
  assert gm.median_distance(np.zeros((4, 2))) == 1.0


# --------------------------------------------------------------------------
# Inception score.


def test_is_constant_classifier_is_one():
  probs = np.tile([0.2, 0.5, 0.3], (40, 1))
  got = gm.inception_score(probs, num_splits=4)
  assert got["mean"] == pytest.approx(1.0, abs=1e-12)
  assert got["std"] == pytest.approx(0.0, abs=1e-12)


def test_is_confident_uniform_is_k():
  k = 7
  probs = np.eye(k)[np.arange(10 * k * 3) % k]          # each split holds every class 3x
  got = gm.inception_score(probs, num_splits=10)
  assert got["mean"] == pytest.approx(k, rel=1e-12)
  assert got["std"] == pytest.approx(0.0, abs=1e-9)


def test_is_matches_direct_formula_on_uneven_splits():
  rng = _rng(11)
  logits = rng.normal(size=(23, 5))
  probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  scores = []
  for part in np.array_split(probs, 4):
    py = part.mean(axis=0)
    scores.append(math.exp(np.mean(np.sum(part * np.log(part / py), axis=1))))
  got = gm.inception_score(probs, num_splits=4)
  assert got["mean"] == pytest.approx(np.mean(scores), rel=1e-10)
  assert got["std"] == pytest.approx(np.std(scores), rel=1e-8)


def test_is_bad_input():
  with pytest.raises(ValueError, match="sum to 1"):
    gm.inception_score(np.full((4, 3), 0.3), num_splits=2)
  with pytest.raises(ValueError, match="negative"):
    gm.inception_score(np.array([[1.5, -0.5], [0.5, 0.5]]), num_splits=1)
  with pytest.raises(ValueError, match="num_splits"):
    gm.inception_score(np.eye(3), num_splits=4)


# --------------------------------------------------------------------------
# α-precision, β-recall, authenticity.


def test_alpha_beta_held_out_real_near_one():
  rng = _rng(12)
  real, held_out = rng.normal(size=(1500, 2)), rng.normal(size=(1500, 2))
  got = gm.alpha_precision_beta_recall_authenticity(real, held_out)
  assert got["alphas"].shape == got["alpha_precision"].shape == got["beta_recall"].shape == (20,)
  assert got["delta_precision"] > 0.8
  assert got["delta_recall"] > 0.8
  assert 0.0 <= got["authenticity"] <= 1.0


def test_alpha_precision_far_noise_is_zero():
  rng = _rng(13)
  real = rng.normal(size=(500, 3))
  noise = rng.uniform(-1, 1, size=(400, 3)) + 50.0
  got = gm.alpha_precision_beta_recall_authenticity(real, noise, num_alphas=11)
  np.testing.assert_array_equal(got["alpha_precision"], 0.0)
  np.testing.assert_array_equal(got["beta_recall"], 0.0)
  assert got["authenticity"] == 1.0


def test_authenticity_of_copy_is_zero():
  real = _rng(14).normal(size=(200, 4))
  got = gm.alpha_precision_beta_recall_authenticity(real, real.copy(), k=3)
  assert got["authenticity"] == 0.0
  assert got["alpha_precision"][-1] == 1.0


def test_beta_recall_matches_direct_definition():
  rng = _rng(15)
  real, fake = rng.normal(size=(60, 2)), rng.normal(0.3, 1.3, size=(45, 2))
  k, alphas = 3, np.linspace(0, 1, 6)
  got = gm.alpha_precision_beta_recall_authenticity(real, fake, num_alphas=6, k=k)
  rr = np.linalg.norm(real[:, None] - real[None], axis=2)
  np.fill_diagonal(rr, np.inf)
  nnd_k = np.sort(rr, axis=1)[:, k - 1]
  rf = np.linalg.norm(real[:, None] - fake[None], axis=2)
  fake_r = np.linalg.norm(fake - fake.mean(0), axis=1)
  real_r = np.linalg.norm(real - real.mean(0), axis=1)
  fake_to_cr = np.linalg.norm(fake - real.mean(0), axis=1)
  for a, beta in enumerate(alphas):
    support = fake_r <= np.quantile(fake_r, beta)
    expect = np.mean(rf[:, support].min(axis=1) <= nnd_k)
    assert got["beta_recall"][a] == pytest.approx(expect)
    assert got["alpha_precision"][a] == pytest.approx(
        np.mean(fake_to_cr <= np.quantile(real_r, beta)))
  nearest = rf.argmin(axis=0)
  expect_auth = np.mean(rf[nearest, np.arange(len(fake))] > rr.min(axis=1)[nearest])
  assert got["authenticity"] == pytest.approx(expect_auth)


def test_alpha_beta_bad_input():
  with pytest.raises(ValueError, match="at least 6"):
    gm.alpha_precision_beta_recall_authenticity(np.zeros((5, 2)), np.zeros((5, 2)))


# --------------------------------------------------------------------------
# CRPS, MSE, MAE.


def _brute_crps(y, ens):
  s = ens.shape[0]
  term1 = np.abs(ens - y).mean(axis=0)
  term2 = np.abs(ens[:, None] - ens[None, :]).sum(axis=(0, 1)) / (2 * s * s)
  return term1 - term2


def test_crps_one_member_is_absolute_error():
  rng = _rng(16)
  y, x = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
  np.testing.assert_allclose(gm.crps_ensemble(y, x[None]), np.abs(x - y), rtol=1e-14)
  assert gm.crps_ensemble(y, x[None]).mean() == pytest.approx(gm.mae(x, y))


def test_crps_matches_brute_force():
  rng = _rng(17)
  y, ens = rng.normal(size=(3, 7)), rng.normal(size=(25, 3, 7))
  np.testing.assert_allclose(gm.crps_ensemble(y, ens), _brute_crps(y, ens), rtol=1e-12)
  assert gm.crps_ensemble(1.0, np.array([0.0, 2.0])) == pytest.approx(0.5)


def test_crps_gaussian_closed_form():
  rng = _rng(18)
  mu, sigma = 0.5, 2.0
  y = np.array([-3.0, 0.0, 0.5, 1.7, 6.0])
  ens = rng.normal(mu, sigma, size=(20_000, len(y)))
  z = (y - mu) / sigma
  expected = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z)
                      - 1 / math.sqrt(math.pi))
  np.testing.assert_allclose(gm.crps_ensemble(y, ens), expected, rtol=0.02)


def test_crps_bad_shape():
  with pytest.raises(ValueError, match="ensemble"):
    gm.crps_ensemble(np.zeros(3), np.zeros((5, 4)))


def test_mse_mae_with_mask():
  a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  b = np.array([[1.0, 0.0, 3.0], [0.0, 5.0, 9.0]])
  assert gm.mse(a, b) == pytest.approx((4 + 16 + 9) / 6)
  assert gm.mae(a, b) == pytest.approx((2 + 4 + 3) / 6)
  mask = np.array([[True, True, False], [False, False, True]])
  assert gm.mse(a, b, mask=mask) == pytest.approx((0 + 4 + 9) / 3)
  assert gm.mae(a, b, mask=mask.astype(int)) == pytest.approx((0 + 2 + 3) / 3)
  col = np.array([0, 1, 1])                                   # broadcasts over rows
  assert gm.mae(a, b, mask=col) == pytest.approx((2 + 0 + 0 + 3) / 4)
  with pytest.raises(ValueError, match="no entry"):
    gm.mse(a, b, mask=np.zeros(3))
  with pytest.raises(ValueError, match="broadcast"):
    gm.mse(a, b, mask=np.ones(2))
  with pytest.raises(ValueError, match="shape"):
    gm.mae(a, b[:, :2])


# --------------------------------------------------------------------------
# Similarity measures.


def _dtw_reference(x, y, band=None):
  n, m = len(x), len(y)
  d = np.full((n + 1, m + 1), np.inf)
  d[0, 0] = 0.0
  for i in range(1, n + 1):
    for j in range(1, m + 1):
      if band is not None and abs(i - j) > band:
        continue
      d[i, j] = abs(x[i - 1] - y[j - 1]) + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
  return d[n, m]


@pytest.mark.parametrize("band", [None, 0, 2])
def test_dtw_matches_reference(band):
  rng = _rng(19)
  x, y = rng.normal(size=(6, 9)), rng.normal(size=(6, 9))
  expect = [_dtw_reference(a, b, band) for a, b in zip(x, y)]
  np.testing.assert_allclose(gm.dtw(x, y, band=band), expect, rtol=1e-12)


def test_dtw_unequal_lengths():
  rng = _rng(20)
  x, y = rng.normal(size=(4, 7)), rng.normal(size=(4, 10))
  np.testing.assert_allclose(gm.dtw(x, y), [_dtw_reference(a, b) for a, b in zip(x, y)],
                             rtol=1e-12)
  np.testing.assert_allclose(gm.dtw(x, y, band=3),
                             [_dtw_reference(a, b, 3) for a, b in zip(x, y)], rtol=1e-12)
  with pytest.raises(ValueError, match="band"):
    gm.dtw(x, y, band=2)


def test_dtw_properties():
  rng = _rng(21)
  x, y = rng.normal(size=(5, 30)), rng.normal(size=(5, 30))
  np.testing.assert_allclose(gm.dtw(x, x), 0.0, atol=1e-12)
  l1 = np.abs(x - y).sum(axis=1)
  assert np.all(gm.dtw(x, y) <= l1 + 1e-12)
  np.testing.assert_allclose(gm.dtw(x, y, band=0), l1, rtol=1e-12)
  assert np.all(gm.dtw(x, y) <= gm.dtw(x, y, band=3) + 1e-12)
  # A shifted copy warps onto the original at little cost.
  t = np.linspace(0, 4 * np.pi, 60)
  s = np.sin(t)[None]
  assert gm.dtw(s, np.roll(s, 3, axis=1))[0] < 0.2 * np.abs(s - np.roll(s, 3, axis=1)).sum()


def test_euclidean_pearson_cosine_known_values():
  x = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
  y = np.array([[2.0, 4.0, 6.0], [0.0, 1.0, 0.0], [1.0, 2.0, 3.0]])
  np.testing.assert_allclose(gm.euclidean(x, y), [math.sqrt(14), math.sqrt(2), math.sqrt(5)])
  np.testing.assert_allclose(gm.cosine(x, y), [1.0, 0.0, 6 / math.sqrt(3 * 14)])
  p = gm.pearson(x, y)
  np.testing.assert_allclose(p[:2], [1.0, -0.5])
  assert np.isnan(p[2])                                       # constant series
  np.testing.assert_allclose(gm.pearson(x[:1], -x[:1] + 7), [-1.0])


def test_cid_equal_complexity_is_euclidean():
  rng = _rng(22)
  x = rng.normal(size=(4, 20))
  y = -x[:, ::-1] + 3.0                                       # same CE, different series
  np.testing.assert_allclose(gm.cid(x, y), gm.euclidean(x, y), rtol=1e-12)
  a = np.array([[0.0, 1.0, 0.0, 1.0]])
  b = np.array([[0.0, 0.5, 1.0, 1.5]])
  ce_a, ce_b = math.sqrt(3), math.sqrt(3 * 0.25)
  np.testing.assert_allclose(gm.cid(a, b), gm.euclidean(a, b) * ce_a / ce_b)
  assert np.isinf(gm.cid(a, np.ones((1, 4)))[0])
  np.testing.assert_allclose(gm.cid(np.ones((1, 4)), np.zeros((1, 4))), [2.0])


def test_pairwise_bad_input():
  with pytest.raises(ValueError, match="shape"):
    gm.euclidean(np.zeros((2, 3)), np.zeros((3, 3)))
  with pytest.raises(ValueError, match="rank"):
    gm.cosine(np.zeros(3), np.zeros(3))
  with pytest.raises(ValueError, match="series"):
    gm.dtw(np.zeros((2, 3)), np.zeros((3, 3)))
