"""Tests for mlts.vaegan.composition: scaling, latent scores, χ check, grids, SVMs."""

from __future__ import annotations

import numpy as np
import pytest

from mlts import metrics
from mlts.vaegan import composition as comp

# ----------------------------------------------------------------------------
# MinMax and latent-norm scores.


def test_minmax_hand_values():
  mm = comp.MinMax.fit([2.0, 4.0, 6.0])
  assert (mm.lo, mm.hi) == (2.0, 6.0)
  np.testing.assert_allclose(mm.apply([2.0, 4.0, 6.0, 8.0, 0.0]), [0, 0.5, 1, 1.5, -0.5])


def test_minmax_zero_range_only_shifts():
  mm = comp.MinMax.fit([3.0, 3.0, 3.0])
  np.testing.assert_allclose(mm.apply([3.0, 4.0]), [0.0, 1.0])
  assert np.isfinite(mm.apply([1e9])).all()


def test_latent_norm_mode_hand_histogram():
  # bins=5 over [0, 5]: edges 0..5; counts [1, 5, 2, 0, 1] -> fullest bin [1, 2), centre 1.5.
  train = [0.0] + [1.0] * 5 + [2.0] * 2 + [5.0]
  assert comp.latent_norm_mode(train, bins=5) == pytest.approx(1.5)
  np.testing.assert_allclose(comp.latent_norm_score([1.5, 3.5, 0.5], train, bins=5),
                             [0.0, 2.0, -1.0])


def test_latent_norm_mode_default_50_bins():
  # 50 bins over [0, 10] are 0.2 wide; the mass at 3.05 sits in [3.0, 3.2).
  train = np.concatenate([np.linspace(0, 10, 51), np.full(20, 3.05)])
  assert comp.latent_norm_mode(train) == pytest.approx(3.1)


def test_latent_norm_score_prior():
  np.testing.assert_allclose(comp.latent_norm_score_prior([2.0, 0.0, 3.0], 5), [0, -2, 1])
  np.testing.assert_allclose(comp.latent_norm_score_prior([0.5], 1), [0.5])


def test_chi_check_accepts_standard_normal_and_rejects_scaled():
  rng = np.random.default_rng(0)
  d, n = 8, 5000
  good = comp.chi_check(np.linalg.norm(rng.standard_normal((n, d)), axis=1), d)
  bad = comp.chi_check(np.linalg.norm(2.0 * rng.standard_normal((n, d)), axis=1), d)
  assert good["pvalue"] > 0.01 and good["statistic"] < 0.03
  assert bad["pvalue"] < 1e-6
  assert (good["dim"], good["n"]) == (d, n)


# ----------------------------------------------------------------------------
# Grid searches.


def _f1_counts(y, pred):
  tp = int((pred & (y == 1)).sum())
  return 2.0 * tp / (int(pred.sum()) + int(y.sum()))


def _taus(a, num_tau):
  lo, hi = a.min(), a.max()
  t = lo + (hi - lo) * np.linspace(0.0, 1.0, num_tau)
  t[-1] = hi
  return t


def _brute_force(comps, weights, y, num_tau):
  """Double Python loop; first strict maximum in (weights, τ) order."""
  best = (-1.0, None, None)
  for i, w in enumerate(weights):
    a = w[0] * comps[0]
    for j in range(1, len(comps)):
      a = a + w[j] * comps[j]
    for tau in _taus(a, num_tau):
      f1 = _f1_counts(y, a > tau)
      if f1 > best[0]:
        best = (f1, i, tau)
  return best


def _noisy_problem(seed, n=80):
  rng = np.random.default_rng(seed)
  y = (rng.random(n) < 0.3).astype(int)
  y[:2] = [0, 1]
  r = rng.random(n) + 0.4 * y
  d = rng.random(n) + 0.3 * y
  l_ = rng.random(n) + 0.2 * y
  return r, d, l_, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_linear_grid_matches_brute_force(seed):
  r, d, _, y = _noisy_problem(seed)
  num_lambda, num_tau = 9, 13
  got = comp.fit_linear_grid(r, d, y, num_lambda=num_lambda, num_tau=num_tau)
  lam = np.linspace(0, 1, num_lambda)
  f1, i, tau = _brute_force([r, d], np.stack([1 - lam, lam], 1), y, num_tau)
  assert got["f1"] == f1
  assert got["lambda"] == lam[i]
  assert got["tau"] == tau
  # The fitted params reproduce the validation F1 through apply_linear and metrics.
  preds = comp.apply_linear(got, r, d)
  assert metrics.pointwise(y, preds)["f1"] == pytest.approx(got["f1"])


def test_fit_linear_grid_tie_rule_across_chunks(monkeypatch):
  # Equal scores: every λ gives the same A, so all rows tie; the smallest λ and τ win,
  # also when the λ grid is split into many chunks.
  r, _, _, y = _noisy_problem(3)
  ref = comp.fit_linear_grid(r, r, y, num_lambda=10, num_tau=20)
  monkeypatch.setattr(comp, "_ROW_BUDGET", 1)
  chunked = comp.fit_linear_grid(r, r, y, num_lambda=10, num_tau=20)
  assert ref == chunked
  assert ref["lambda"] == 0.0


def test_fit_linear_grid_default_sizes_and_chunking_agree(monkeypatch):
  r, d, _, y = _noisy_problem(4, n=300)
  ref = comp.fit_linear_grid(r, d, y)
  monkeypatch.setattr(comp, "_ROW_BUDGET", 3 * 300)
  assert comp.fit_linear_grid(r, d, y) == ref


def test_fit_linear_grid_perfect_d_noise_r():
  rng = np.random.default_rng(5)
  n = 200
  y = (rng.random(n) < 0.2).astype(int)
  r = rng.random(n)
  d = np.where(y == 1, 0.8 + 0.2 * rng.random(n), 0.2 * rng.random(n))
  got = comp.fit_linear_grid(r, d, y)
  assert got["f1"] == 1.0
  assert got["lambda"] > 0.5
  # R alone (λ = 0) cannot separate.
  assert comp.fit_linear_grid(r, d, y, num_lambda=1)["f1"] < 1.0
  np.testing.assert_array_equal(comp.apply_linear(got, r, d), y)


def test_triangle_grid():
  g = comp.triangle_grid(5)
  assert g.shape == (15, 2)
  assert (g.sum(1) <= 1.0 + 1e-12).all() and (g >= 0).all()
  assert {(0.0, 1.0), (1.0, 0.0), (0.0, 0.0)} <= {tuple(p) for p in g}
  # Ordered by λ, then γ.
  assert (np.lexsort((g[:, 1], g[:, 0])) == np.arange(len(g))).all()


def test_fit_linear_grid3_matches_brute_force():
  r, d, l_, y = _noisy_problem(6)
  num, num_tau = 6, 11
  got = comp.fit_linear_grid3(r, d, l_, y, num=num, num_tau=num_tau)
  pairs = comp.triangle_grid(num)
  w = np.stack([np.clip(1 - pairs.sum(1), 0, None), pairs[:, 0], pairs[:, 1]], 1)
  f1, i, tau = _brute_force([r, d, l_], w, y, num_tau)
  assert (got["f1"], got["lambda"], got["gamma"], got["tau"]) == (
      f1, pairs[i, 0], pairs[i, 1], tau)
  assert got["lambda"] + got["gamma"] <= 1.0 + 1e-12
  preds = comp.apply_linear(got, r, d, l_)
  assert metrics.pointwise(y, preds)["f1"] == pytest.approx(got["f1"])


def test_fit_linear_grid3_only_l_separates():
  rng = np.random.default_rng(7)
  n = 200
  y = (rng.random(n) < 0.25).astype(int)
  r, d = rng.random(n), rng.random(n)
  l_ = np.where(y == 1, 0.7 + 0.3 * rng.random(n), 0.3 * rng.random(n))
  got = comp.fit_linear_grid3(r, d, l_, y, num=21)
  assert got["f1"] == 1.0
  assert got["gamma"] > 0.5
  assert got["lambda"] + got["gamma"] <= 1.0 + 1e-12
  np.testing.assert_array_equal(comp.apply_linear(got, r, d, l_), y)
  # Without L the 2-way grid cannot reach 1.
  assert comp.fit_linear_grid(r, d, y)["f1"] < 1.0


# ----------------------------------------------------------------------------
# SVMs.


def _blobs(rng, n, k):
  y = (rng.random(n) < 0.3).astype(int)
  y[:2] = [0, 1]
  x = rng.normal(0.2, 0.05, (n, k)) + 0.6 * y[:, None]
  return x, y


@pytest.mark.parametrize("k", [2, 3])
def test_svm_fit_on_validation_generalizes(k):
  rng = np.random.default_rng(8)
  x_val, y_val = _blobs(rng, 200, k)
  if k == 2:
    model = comp.fit_svm_lambda(x_val[:, 0], x_val[:, 1], y_val)
  else:
    model = comp.fit_svm_gamma(x_val[:, 0], x_val[:, 1], x_val[:, 2], y_val)
  # The evaluation split is drawn only after fitting; its labels never reach a fit call.
  x_eval, y_eval = _blobs(rng, 300, k)
  preds = model.predict(x_eval)
  assert preds.dtype == np.int8 and set(np.unique(preds)) <= {0, 1}
  assert metrics.pointwise(y_eval, preds)["f1"] >= 0.99
  scores = model.decision_function(x_eval)
  assert scores.shape == (300,)
  assert metrics.auroc(y_eval, scores) >= 0.99


def test_fit_svm_options_reach_sklearn():
  rng = np.random.default_rng(9)
  x, y = _blobs(rng, 60, 2)
  model = comp.fit_svm(x, y, C=3.0, gamma=0.5, class_weight=None)
  params = model.svc.get_params()
  assert (params["kernel"], params["C"], params["gamma"], params["class_weight"]) == (
      "rbf", 3.0, 0.5, None)


# ----------------------------------------------------------------------------
# Bad input.


def test_bad_inputs_raise():
  r = np.array([0.1, 0.5, 0.9, 0.3])
  y = np.array([0, 1, 1, 0])
  with pytest.raises(ValueError, match="length"):
    comp.fit_linear_grid(r, r[:3], y)
  with pytest.raises(ValueError, match="length"):
    comp.fit_linear_grid(r, r, y[:3])
  with pytest.raises(ValueError, match="non-finite"):
    comp.fit_linear_grid(np.array([0.1, np.nan, 0.2, 0.3]), r, y)
  with pytest.raises(ValueError, match="0 or 1"):
    comp.fit_linear_grid(r, r, np.array([0, 2, 1, 0]))
  with pytest.raises(ValueError, match="single class"):
    comp.fit_linear_grid(r, r, np.zeros(4, int))
  with pytest.raises(ValueError, match="single class"):
    comp.fit_linear_grid3(r, r, r, np.ones(4, int))
  with pytest.raises(ValueError, match="single class"):
    comp.fit_svm(np.stack([r, r], 1), np.zeros(4, int))
  with pytest.raises(ValueError, match="length"):
    comp.fit_svm(np.stack([r, r], 1), y[:3])
  with pytest.raises(ValueError, match="non-finite"):
    comp.fit_svm(np.array([[0.0, np.inf], [1, 1], [0, 1], [1, 0]]), y)
  with pytest.raises(ValueError, match="rank"):
    comp.fit_svm(r, y)
  with pytest.raises(ValueError, match="non-finite"):
    comp.MinMax.fit([1.0, np.nan])
  with pytest.raises(ValueError, match=">= 0"):
    comp.latent_norm_score([1.0], [-1.0, 2.0])
  with pytest.raises(ValueError, match="dim"):
    comp.latent_norm_score_prior([1.0], 0)
  with pytest.raises(ValueError, match="dim"):
    comp.chi_check([1.0, 2.0], 2.5)
  with pytest.raises(ValueError, match="num_lambda"):
    comp.fit_linear_grid(r, r, y, num_lambda=0)
  with pytest.raises(ValueError, match="num_tau"):
    comp.fit_linear_grid(r, r, y, num_tau=0)


def test_apply_mismatch_raises():
  rng = np.random.default_rng(10)
  r, d, l_, y = _noisy_problem(11)
  p3 = comp.fit_linear_grid3(r, d, l_, y, num=5, num_tau=5)
  with pytest.raises(ValueError, match="L was not given"):
    comp.apply_linear(p3, r, d)
  p2 = comp.fit_linear_grid(r, d, y, num_lambda=5, num_tau=5)
  with pytest.raises(ValueError, match="no 'gamma'"):
    comp.apply_linear(p2, r, d, l_)
  x, yb = _blobs(rng, 40, 2)
  model = comp.fit_svm(x, yb)
  with pytest.raises(ValueError, match="columns"):
    model.predict(np.ones((3, 3)))
