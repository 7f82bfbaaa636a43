"""Tests for mlts.latent: each score against a known answer, plus bad input.

Known answers: χ²_D for Mahalanobis distances of Gaussian data; unit total
mass of a density; two separated blobs for the Laplacian eigenmap (and a noisy
line, whose first coordinate must order the points along it); hand-computed
energies and norms; perfectly separable and random scores for the OOD report.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from mlts import latent

# --------------------------------------------------------------------------
# Mahalanobis.


@pytest.fixture(scope="module")
def gaussian():
  """A 5-D Gaussian with a non-trivial covariance and mean: (mean, cov, train, fresh)."""
  rng = np.random.default_rng(0)
  d = 5
  a = rng.standard_normal((d, d))
  cov = a @ a.T + 0.5 * np.eye(d)
  mean = 3.0 * rng.standard_normal(d)
  train = rng.multivariate_normal(mean, cov, size=20000)
  fresh = rng.multivariate_normal(mean, cov, size=5000)
  return mean, cov, train, fresh


def test_mahalanobis_follows_chi2(gaussian):
  _, _, train, fresh = gaussian
  model = latent.Mahalanobis().fit(train)
  sq = model.score(fresh)
  d = train.shape[1]
  assert sq.shape == (len(fresh),)
  assert abs(sq.mean() - d) < 0.03 * d
  assert stats.kstest(sq, stats.chi2(d).cdf).pvalue > 0.01
  assert 0.0 <= model.shrinkage_ < 0.01  # N >> D: almost no shrinkage
  np.testing.assert_allclose(model.distance(fresh), np.sqrt(sq))


def test_mahalanobis_matches_true_covariance(gaussian):
  mean, cov, train, fresh = gaussian
  sq = latent.Mahalanobis().fit(train).score(fresh)
  c = fresh - mean
  exact = np.einsum("md,de,me->m", c, np.linalg.inv(cov), c)
  np.testing.assert_allclose(sq, exact, rtol=0.05, atol=0.05)
  assert np.median(np.abs(sq - exact) / exact) < 0.02


def test_mahalanobis_bad_input():
  rng = np.random.default_rng(1)
  train = rng.standard_normal((50, 3))
  with pytest.raises(ValueError, match="non-finite"):
    latent.Mahalanobis().fit(np.where(np.arange(150).reshape(50, 3) == 7, np.nan, train))
  with pytest.raises(ValueError, match="rank 2"):
    latent.Mahalanobis().fit(train[:, 0])
  model = latent.Mahalanobis().fit(train)
  with pytest.raises(ValueError, match="3 features|fit on 3"):
    model.score(rng.standard_normal((4, 2)))
  with pytest.raises(ValueError, match="rank 2"):
    model.score(np.zeros(3))
  with pytest.raises(ValueError, match="non-finite"):
    model.score(np.full((2, 3), np.inf))
  with pytest.raises(ValueError, match="fit"):
    latent.Mahalanobis().score(train)


# --------------------------------------------------------------------------
# KDE.


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.3])
def test_kde_integrates_to_one_1d(bandwidth):
  # Mean 5, std 3: the Jacobian term must undo the standardization.
  x = 5.0 + 3.0 * np.random.default_rng(2).standard_normal((1000, 1))
  kde = latent.KDE(bandwidth).fit(x)
  grid = np.linspace(-20.0, 30.0, 5001)
  mass = integrate.trapezoid(np.exp(kde.log_density(grid[:, None])), grid)
  assert abs(mass - 1.0) < 0.02
  np.testing.assert_allclose(kde.score(grid[:5, None]), -kde.log_density(grid[:5, None]))


def test_kde_bandwidth_rules():
  x = np.random.default_rng(3).standard_normal((1000, 1))
  assert latent.KDE("scott").fit(x).bandwidth_ == pytest.approx(1000 ** (-1 / 5))
  assert latent.KDE("silverman").fit(x).bandwidth_ == pytest.approx((1000 * 3 / 4) ** (-1 / 5))
  assert latent.KDE(0.3).fit(x).bandwidth_ == 0.3


def test_kde_integrates_to_one_2d():
  x = np.array([1.0, -1.0]) + np.array([2.0, 0.5]) * np.random.default_rng(4).standard_normal(
      (500, 2))
  kde = latent.KDE().fit(x)
  gx, gy = np.linspace(-10.0, 12.0, 221), np.linspace(-4.5, 2.5, 141)
  grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
  dens = np.exp(kde.log_density(grid)).reshape(len(gx), len(gy))
  mass = integrate.trapezoid(integrate.trapezoid(dens, gy, axis=1), gx)
  assert abs(mass - 1.0) < 0.02


def test_kde_cv_mode_tails_and_far_points():
  rng = np.random.default_rng(5)
  x = rng.standard_normal((400, 2))
  kde = latent.KDE("cv").fit(x)
  grid = kde.bandwidth_grid_
  assert grid[0] < kde.bandwidth_ < grid[-1]
  assert kde.bandwidth_ in grid
  mode, tails = np.zeros((1, 2)), np.array([[3.0, 0.0], [0.0, -3.0], [-2.5, 2.5]])
  assert np.all(kde.log_density(mode) > kde.log_density(tails))
  inside = rng.standard_normal((100, 2))
  far = 8.0 + rng.standard_normal((100, 2))
  assert kde.score(far).min() > kde.score(inside).max()


def test_kde_bad_input():
  with pytest.raises(ValueError, match="bandwidth"):
    latent.KDE("normal")
  with pytest.raises(ValueError, match="bandwidth"):
    latent.KDE(-1.0)
  kde = latent.KDE().fit(np.random.default_rng(6).standard_normal((20, 2)))
  with pytest.raises(ValueError, match="fit on 2"):
    kde.log_density(np.zeros((3, 3)))
  with pytest.raises(ValueError, match="non-finite"):
    latent.KDE().fit(np.array([[0.0], [np.nan]]))


# --------------------------------------------------------------------------
# Laplacian eigenmap.


def _blobs(rng, n):
  """Two unit Gaussian blobs in 10-D, 10 apart: ([2n, 10] points, [2n] labels)."""
  shift = np.zeros(10)
  shift[0] = 10.0
  x = np.concatenate((rng.standard_normal((n, 10)), shift + rng.standard_normal((n, 10))))
  return x, np.repeat([0, 1], n)


@pytest.fixture(scope="module")
def blobs():
  rng = np.random.default_rng(7)
  train, labels = _blobs(rng, 150)
  held, held_labels = _blobs(rng, 50)
  return latent.LaplacianEigenmap().fit(train), train, labels, held, held_labels


def _accuracy_up_to_flip(coordinate, labels):
  acc = np.mean((coordinate > 0) == labels)
  return max(acc, 1.0 - acc)


def test_eigenmap_separates_blobs(blobs):
  model, train, labels, held, held_labels = blobs
  assert model.embedding_.shape == (300, 2)
  assert model.eigenvalues_[0] == pytest.approx(0.0, abs=1e-8)  # two components
  first = model.embedding_[:, 0]
  assert _accuracy_up_to_flip(first, labels) == 1.0
  # Held-out points land on their blob's side (same orientation as training).
  side = np.sign(first[labels == 0][0])
  held_first = model.transform(held)[:, 0]
  np.testing.assert_array_equal(np.sign(held_first), np.where(held_labels == 0, side, -side))


def test_eigenmap_transform_reproduces_training_embedding(blobs):
  model, train, *_ = blobs
  back = model.transform(train)
  for c in range(2):
    assert np.corrcoef(back[:, c], model.embedding_[:, c])[0, 1] > 0.99
  np.testing.assert_allclose(back, model.embedding_, atol=1e-8)


def test_eigenmap_scores_far_points_higher(blobs):
  model, _, _, held, _ = blobs
  rng = np.random.default_rng(8)
  far = 40.0 * np.eye(10)[3] + rng.standard_normal((20, 10))
  assert model.score(far).min() > model.score(held).max()
  np.testing.assert_allclose(model.transform(far), 0.0, atol=1e-12)  # far -> origin


def test_eigenmap_line_order_and_sparse_solver(monkeypatch):
  # Points along a noisy segment: the first coordinate is the position (cosine mode).
  rng = np.random.default_rng(9)
  t = rng.uniform(0.0, 10.0, 400)
  x = np.stack((t, 0.2 * rng.standard_normal(400)), axis=1)
  dense = latent.LaplacianEigenmap(n_components=2).fit(x)
  assert abs(stats.spearmanr(dense.embedding_[:, 0], t).statistic) > 0.95
  monkeypatch.setattr(latent, "_DENSE_MAX", 0)  # force scipy.sparse.linalg.eigsh
  sparse = latent.LaplacianEigenmap(n_components=2).fit(x)
  np.testing.assert_allclose(sparse.eigenvalues_, dense.eigenvalues_, rtol=1e-6, atol=1e-10)
  for c in range(2):  # eigenvectors up to sign
    a, b = dense.embedding_[:, c], sparse.embedding_[:, c]
    np.testing.assert_allclose(a * np.sign(a @ b), b, atol=1e-6)


def test_eigenmap_bad_input(blobs):
  model, *_ = blobs
  with pytest.raises(ValueError, match="n_neighbors"):
    latent.LaplacianEigenmap(n_neighbors=1)
  with pytest.raises(ValueError, match="n_components"):
    latent.LaplacianEigenmap(n_components=0)
  with pytest.raises(ValueError, match="at least"):
    latent.LaplacianEigenmap().fit(np.zeros((5, 2)))
  with pytest.raises(ValueError, match="duplicate"):
    latent.LaplacianEigenmap().fit(np.zeros((30, 2)))
  with pytest.raises(ValueError, match="fit on 10"):
    model.transform(np.zeros((2, 3)))
  with pytest.raises(ValueError, match="fit"):
    latent.LaplacianEigenmap().transform(np.zeros((2, 3)))


# --------------------------------------------------------------------------
# Closed-form scores.


def test_subspace_energy_by_hand():
  coeffs = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
  np.testing.assert_allclose(latent.subspace_energy(coeffs, [True, False, True]), [10.0, 0.25])
  np.testing.assert_allclose(latent.subspace_energy(coeffs, np.array([0, 1, 0])), [4.0, 1.0])
  np.testing.assert_array_equal(latent.subspace_energy(coeffs, np.zeros(3, bool)), [0.0, 0.0])
  with pytest.raises(ValueError, match="mask has length 2"):
    latent.subspace_energy(coeffs, [True, False])
  with pytest.raises(ValueError, match="mask"):
    latent.subspace_energy(coeffs, [0, 2, 1])


def test_chi_norm_deviation_by_hand():
  z = np.array([[3.0, 4.0], [0.0, 0.0]])  # norms 5 and 0; sqrt(2 - 1/2) = sqrt(1.5)
  np.testing.assert_allclose(latent.chi_norm_deviation(z), [5.0 - np.sqrt(1.5), np.sqrt(1.5)])
  np.testing.assert_allclose(latent.chi_norm_deviation(z, dim=26),
                             [np.sqrt(25.5) - 5.0, np.sqrt(25.5)])
  with pytest.raises(ValueError, match="dim"):
    latent.chi_norm_deviation(z, dim=0)


def test_chi_norm_deviation_of_standard_normal():
  z = np.random.default_rng(10).standard_normal((10000, 16))
  dev = latent.chi_norm_deviation(z)
  assert dev.mean() < 0.6  # E| chi_16 - mean | = 0.56
  # sqrt(dim - 1/2) is the chi mean: signed deviations average to ~0.
  assert abs(np.mean(np.linalg.norm(z, axis=1) - np.sqrt(15.5))) < 0.02


# --------------------------------------------------------------------------
# OOD report and threshold.


def test_ood_report_separable():
  scores_in, scores_out = np.linspace(0.0, 1.0, 50), np.linspace(2.0, 3.0, 20)
  rep = latent.ood_report(scores_in, scores_out, threshold=1.5)
  assert rep["auroc"] == pytest.approx(1.0) and rep["auprc"] == pytest.approx(1.0)
  assert rep["fpr_at_95tpr"] == 0.0
  assert rep["f1"] == 1.0 and rep["accuracy"] == 1.0
  # Threshold 0.5: 25 of 50 in-distribution scores (>= 0.5) become false positives.
  rep = latent.ood_report(scores_in, scores_out, threshold=0.5)
  assert rep["accuracy"] == pytest.approx(45 / 70)
  assert rep["f1"] == pytest.approx(2 * 20 / (2 * 20 + 25))
  assert "f1" not in latent.ood_report(scores_in, scores_out)


def test_ood_report_random_scores():
  rng = np.random.default_rng(11)
  rep = latent.ood_report(rng.standard_normal(5000), rng.standard_normal(5000))
  assert rep["auroc"] == pytest.approx(0.5, abs=0.02)
  assert rep["fpr_at_95tpr"] == pytest.approx(0.95, abs=0.02)


def test_validation_threshold_false_positive_rate():
  rng = np.random.default_rng(12)
  thr = latent.validation_threshold(rng.standard_normal(20000))
  fresh = rng.standard_normal(20000)
  assert np.mean(fresh >= thr) == pytest.approx(0.05, abs=0.005)
  assert latent.validation_threshold(np.arange(101.0), quantile=0.9) == pytest.approx(90.0)
  with pytest.raises(ValueError, match="quantile"):
    latent.validation_threshold(fresh, quantile=1.5)
  with pytest.raises(ValueError, match="non-finite"):
    latent.ood_report([0.0, np.nan], [1.0])


def test_eigenmap_scatter_draws_every_non_empty_group(tmp_path):
  from mlts import plots
  rng = np.random.default_rng(5)
  train = np.concatenate([rng.normal(-3, 0.3, (40, 3)), rng.normal(3, 0.3, (40, 3))])
  eig = latent.LaplacianEigenmap(n_components=2, n_neighbors=8).fit(train)
  path = tmp_path / "eig.png"
  plots.eigenmap_scatter(str(path), eig, {"train": (train, "0.6"),
                                          "new": (rng.normal(3, 0.3, (5, 3)), "tab:red"),
                                          "none": (np.zeros((0, 3)), "tab:blue")}, title="t")
  assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
