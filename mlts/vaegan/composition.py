"""Anomaly-score components and their composition for β-VAEGAN (papers/001, SPEC §5).

Per-sample score components, each a float vector [N] (higher = more anomalous):

* R(x) = MSE(x, x̂) and D(x) = MSE(f(x), f(x̂)) come from the model;
* L(x), the latent-norm score: ‖z‖₂ minus the mode of the training latent norms
  (`latent_norm_score`, mode = centre of the fullest of 50 histogram bins), or
  ‖z‖₂ − √(dim − 1), the mode of the χ distribution, for a standard Gaussian
  prior (`latent_norm_score_prior`). `chi_check` KS-tests the χ hypothesis.

Each component is min–max scaled with statistics of the validation split
(`MinMax.fit(val).apply(x)`), then composed by one of

* `fit_linear_grid`: A(x) = (1−λ)R + λD, grid over (λ, τ), flag A(x) > τ;
* `fit_linear_grid3`: A*(x) = (1−λ−γ)R + λD + γL with λ + γ ≤ 1;
* `fit_svm`: RBF-kernel SVC on [R, D] (SVM_λ) or [R, D, L] (SVM_γ).

Protocol: every parameter here (min–max statistics, λ, γ, τ, the SVM) is fit on
a LABELLED VALIDATION SPLIT that is disjoint from the evaluation split, and is
then applied unchanged to the evaluation split (`apply_linear`,
`FittedSVM.predict`). The original code fell back to fitting on the test set
when no validation split was given; we never do: the fit functions take only
the validation arrays, and a validation split holding a single class is
rejected (neither F1 maximization nor the SVM is defined without both classes).

Grid search (`fit_linear_grid*`): the weights lie on a uniform grid over [0, 1]
(`num_lambda` values for λ; for the 3-way score a triangular grid of
`num`·(`num`+1)/2 pairs with λ + γ ≤ 1); for each weight vector the thresholds
are `num_tau` values spanning [min A, max A] on the fitting data, and a sample
is flagged when A(x) > τ strictly (the paper: "exceeds"). F1 is 2TP/(2TP+FP+FN)
from integer counts. Tie rule: among (weights, τ) with the maximal F1 (exact
float equality), the FIRST in the order (λ ascending, then γ ascending, then τ
ascending) wins, i.e. the smallest λ, then the smallest γ, then the smallest τ.
Note: the brief fixes 50 λ × 100 τ; the paper's appendix H states the opposite
(100 λ × 50 τ); both are parameters.

Bad input (mismatched lengths, NaN/inf, labels outside {0,1}, a single-class
validation split, negative norms) raises ValueError.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats
from sklearn import svm

from mlts import checks

# Elements of the [chunk, N] score matrices sorted per chunk of weight rows.
_ROW_BUDGET = 1 << 22


# ----------------------------------------------------------------------------
# Validation helpers.


def _scores(x, name: str) -> np.ndarray:
  return checks.finite_array(x, name=name, ndim=1).astype(np.float64)


def _both_classes(labels, name: str = "labels") -> np.ndarray:
  y = checks.binary_vector(labels, name=name)
  n_pos = int(y.sum())
  if n_pos == 0 or n_pos == len(y):
    cls = "0" if n_pos == 0 else "1"
    raise ValueError(
        f"{name}: the validation split holds a single class (all {cls}); fitting the "
        "composition needs both normal and anomalous samples")
  return y


def _aligned(named: dict[str, object]) -> list[np.ndarray]:
  """Validated 1-D score vectors of one common length."""
  arrs = [_scores(v, k) for k, v in named.items()]
  names = list(named)
  for k, a in zip(names[1:], arrs[1:]):
    checks.same_length(arrs[0], a, names=(names[0], k))
  return arrs


# ----------------------------------------------------------------------------
# Scaling and latent-norm scores.


@dataclasses.dataclass(frozen=True)
class MinMax:
  """Min–max scaling with statistics fitted on validation scores.

  `apply` maps `lo` → 0 and `hi` → 1 and does not clip, so evaluation scores
  outside the validation range land outside [0, 1]. A zero range (constant
  validation scores) uses scale 1: values are only shifted by `lo`.
  """

  lo: float
  hi: float

  @classmethod
  def fit(cls, values) -> MinMax:
    """Fits on `values` [N] (finite)."""
    v = _scores(values, "values")
    return cls(lo=float(v.min()), hi=float(v.max()))

  @property
  def scale(self) -> float:
    span = self.hi - self.lo
    return span if span > 0 else 1.0

  def apply(self, values) -> np.ndarray:
    """Returns (values − lo) / (hi − lo) as float64 [N]."""
    v = _scores(values, "values")
    return (v - self.lo) / self.scale


def _norms(x, name: str) -> np.ndarray:
  v = _scores(x, name)
  if (v < 0).any():
    raise ValueError(f"{name}: latent norms must be >= 0; found {v.min()!r}")
  return v


def latent_norm_mode(train_norms, *, bins: int = 50) -> float:
  """Mode of the training latent norms: centre of the fullest histogram bin.

  Args:
    train_norms: [M] ‖z‖₂ of (normal-class) training samples.
    bins: number of equal-width bins over [min, max] (`np.histogram`).

  Returns:
    The centre of the bin with the highest count (the first on ties).
  """
  v = _norms(train_norms, "train_norms")
  if int(bins) < 1:
    raise ValueError(f"bins must be >= 1, got {bins}")
  counts, edges = np.histogram(v, bins=int(bins))
  k = int(np.argmax(counts))
  return float(0.5 * (edges[k] + edges[k + 1]))


def latent_norm_score(z_norms, train_norms, *, bins: int = 50) -> np.ndarray:
  """L(x) = ‖z‖₂ − mode(training latent norms) (paper eq. 6).

  Args:
    z_norms: [N] latent norms of the samples to score.
    train_norms: [M] latent norms of the training samples.
    bins: histogram bins for the mode (`latent_norm_mode`).

  Returns:
    float64 [N]; signed (negative below the mode), as in the paper.
  """
  z = _norms(z_norms, "z_norms")
  return z - latent_norm_mode(train_norms, bins=bins)


def latent_norm_score_prior(z_norms, dim: int) -> np.ndarray:
  """L(x) = ‖z‖₂ − √(dim − 1), the mode of χ_dim (paper eq. 5).

  Args:
    z_norms: [N] latent norms.
    dim: latent dimension, >= 1.

  Returns:
    float64 [N].
  """
  dim = _dim(dim)
  return _norms(z_norms, "z_norms") - np.sqrt(dim - 1.0)


def _dim(dim) -> int:
  if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
    raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
  return int(dim)


def chi_check(train_norms, dim: int) -> dict:
  """KS test of latent norms against the χ distribution with `dim` dof.

  Under z ~ N(0, I_dim), ‖z‖₂ ~ χ_dim; the paper reports KS = 0.0029,
  p = 0.89 for β = 0.1 on MITBIH (dim 6).

  Args:
    train_norms: [M] latent norms (M >= 2).
    dim: latent dimension.

  Returns:
    dict with float `statistic`, `pvalue` and int `dim`, `n`.
  """
  dim = _dim(dim)
  v = _norms(train_norms, "train_norms")
  if len(v) < 2:
    raise ValueError(f"train_norms: need at least 2 values, got {len(v)}")
  res = stats.kstest(v, stats.chi(df=dim).cdf)
  return {"statistic": float(res.statistic), "pvalue": float(res.pvalue),
          "dim": dim, "n": int(len(v))}


# ----------------------------------------------------------------------------
# Linear compositions fit by grid search.


def _grid_search(comps: np.ndarray, weights: np.ndarray, y: np.ndarray,
                 num_tau: int) -> tuple[int, float, float]:
  """Best (weight row, τ, F1) over all weight rows × `num_tau` thresholds.

  Args:
    comps: [k, N] score components.
    weights: [P, k] weight vectors (rows).
    y: [N] int8 labels holding both classes.
    num_tau: thresholds per weight row, spanning [min A, max A].

  Returns:
    (row index, τ, F1) of the first maximum in (row, τ) order.
  """
  if int(num_tau) < 1:
    raise ValueError(f"num_tau must be >= 1, got {num_tau}")
  num_tau = int(num_tau)
  n = comps.shape[1]
  yb = y.astype(bool)
  n_pos = int(yb.sum())
  chunk = max(1, _ROW_BUDGET // n)
  frac = np.linspace(0.0, 1.0, num_tau)
  best = (-1.0, 0, 0.0)  # (f1, flat index, tau)
  for start in range(0, len(weights), chunk):
    w = weights[start:start + chunk]                      # [c, k]
    # Elementwise (not a matmul) so `linear_score` reproduces A bit for bit.
    a = w[:, 0, None] * comps[0]                          # [c, N]
    for j in range(1, comps.shape[0]):
      a = a + w[:, j, None] * comps[j]
    lo, hi = a.min(axis=1), a.max(axis=1)
    taus = lo[:, None] + (hi - lo)[:, None] * frac        # [c, T]
    taus[:, -1] = hi                                      # exact top of the range
    # Counts by sorting, O(N log N) per row instead of O(N T): after sorting A,
    # #{A <= τ} is a searchsorted position and the positives among them a cumsum.
    order = np.argsort(a, axis=1)
    sorted_a = np.take_along_axis(a, order, axis=1)
    pos_below = np.zeros((a.shape[0], n + 1), np.int64)   # positives among the i smallest
    np.cumsum(yb[order], axis=1, out=pos_below[:, 1:])
    at_most = np.stack([np.searchsorted(sorted_a[r], taus[r], side="right")
                        for r in range(a.shape[0])])      # [c, T]; loop over rows only
    n_pred = n - at_most                                  # #{A > τ}
    tp = n_pos - np.take_along_axis(pos_below, at_most, axis=1)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (n_pred + n_pos); n_pos > 0.
    f1 = 2.0 * tp / (n_pred + n_pos)
    k = int(np.argmax(f1))                                # first max in the chunk
    if f1.flat[k] > best[0]:                              # strict: earlier chunk wins ties
      best = (float(f1.flat[k]), start * num_tau + k, float(taus.flat[k]))
  f1, flat, tau = best
  return flat // num_tau, tau, f1


def fit_linear_grid(R, D, labels, *, num_lambda: int = 50, num_tau: int = 100) -> dict:
  """Fits A(x) = (1−λ)R + λD and threshold τ maximizing F1 on validation data.

  λ takes `num_lambda` values `np.linspace(0, 1, num_lambda)`; for each λ, τ
  takes `num_tau` values spanning [min A, max A] on these data; predictions
  are A > τ. Ties: smallest λ, then smallest τ (module docstring).
  Vectorized: all masks of a chunk of λ values are built by broadcasting.

  Args:
    R: [N] (min–max scaled) reconstruction scores of the validation split.
    D: [N] (min–max scaled) discriminator feature scores.
    labels: [N] {0,1} validation labels holding both classes.
    num_lambda: size of the λ grid (>= 1; 1 gives λ = 0).
    num_tau: size of the τ grid per λ.

  Returns:
    dict with float `lambda`, `tau`, `f1` (validation F1 at the optimum).
  """
  r, d = _aligned({"R": R, "D": D})
  y = _both_classes(labels)
  checks.same_length(r, y, names=("R", "labels"))
  if int(num_lambda) < 1:
    raise ValueError(f"num_lambda must be >= 1, got {num_lambda}")
  lam = np.linspace(0.0, 1.0, int(num_lambda)) if num_lambda > 1 else np.zeros(1)
  weights = np.stack([1.0 - lam, lam], axis=1)
  i, tau, f1 = _grid_search(np.stack([r, d]), weights, y, num_tau)
  return {"lambda": float(lam[i]), "tau": tau, "f1": f1}


def triangle_grid(num: int) -> np.ndarray:
  """[P, 2] (λ, γ) pairs on a uniform grid of `num` values with λ + γ ≤ 1.

  Pairs are ordered by λ, then γ; P = num·(num+1)/2.
  """
  if int(num) < 2:
    raise ValueError(f"num must be >= 2, got {num}")
  num = int(num)
  i, j = np.meshgrid(np.arange(num), np.arange(num), indexing="ij")
  keep = (i + j) <= num - 1                                # exact, on indices
  step = 1.0 / (num - 1)
  return np.stack([i[keep] * step, j[keep] * step], axis=1)


def fit_linear_grid3(R, D, L, labels, *, num: int = 50, num_tau: int = 100) -> dict:
  """Fits A*(x) = (1−λ−γ)R + λD + γL, λ + γ ≤ 1, and τ maximizing F1.

  (λ, γ) range over `triangle_grid(num)`; τ and the tie rule as in
  `fit_linear_grid` (smallest λ, then γ, then τ). With γ = 0 the candidates
  are those of `fit_linear_grid(num_lambda=num)`.

  Args:
    R, D, L: [N] (min–max scaled) score components of the validation split.
    labels: [N] {0,1} validation labels holding both classes.
    num: grid values per axis (>= 2).
    num_tau: size of the τ grid per (λ, γ).

  Returns:
    dict with float `lambda`, `gamma`, `tau`, `f1`.
  """
  r, d, l_ = _aligned({"R": R, "D": D, "L": L})
  y = _both_classes(labels)
  checks.same_length(r, y, names=("R", "labels"))
  pairs = triangle_grid(num)
  lam, gam = pairs[:, 0], pairs[:, 1]
  weights = np.stack([np.clip(1.0 - lam - gam, 0.0, None), lam, gam], axis=1)
  i, tau, f1 = _grid_search(np.stack([r, d, l_]), weights, y, num_tau)
  return {"lambda": float(lam[i]), "gamma": float(gam[i]), "tau": tau, "f1": f1}


def linear_score(params: dict, R, D, L=None) -> np.ndarray:
  """A(x) or A*(x) [N] for fitted `params` (with `gamma` when L is used)."""
  gamma = float(params.get("gamma", 0.0))
  lam = float(params["lambda"])
  if "gamma" in params:
    if L is None:
      raise ValueError("params hold 'gamma' (A* composition) but L was not given")
    r, d, l_ = _aligned({"R": R, "D": D, "L": L})
    return max(1.0 - lam - gamma, 0.0) * r + lam * d + gamma * l_
  if L is not None:
    raise ValueError("L was given but params hold no 'gamma' (fit with fit_linear_grid3)")
  r, d = _aligned({"R": R, "D": D})
  return (1.0 - lam) * r + lam * d


def apply_linear(params: dict, R, D, L=None) -> np.ndarray:
  """Predictions A > τ on (evaluation) scores with validation-fit `params`.

  Args:
    params: output of `fit_linear_grid` or `fit_linear_grid3`.
    R, D: [N] score components, scaled with the VALIDATION MinMax statistics.
    L: [N] latent score, required iff `params` has `gamma`.

  Returns:
    int8 [N] predictions in {0,1}.
  """
  return (linear_score(params, R, D, L) > float(params["tau"])).astype(np.int8)


# ----------------------------------------------------------------------------
# SVM compositions.


def _features(features, k: int | None = None) -> np.ndarray:
  x = checks.finite_array(features, name="features", ndim=2).astype(np.float64)
  if k is not None and x.shape[1] != k:
    raise ValueError(f"features: expected {k} columns (as fitted), got shape {x.shape}")
  return x


def stack_features(*components) -> np.ndarray:
  """[N, k] feature matrix from k score vectors [N] (e.g. R, D[, L])."""
  named = {f"component {i}": c for i, c in enumerate(components)}
  if not named:
    raise ValueError("stack_features: need at least one component")
  return np.stack(_aligned(named), axis=1)


@dataclasses.dataclass(frozen=True)
class FittedSVM:
  """An RBF SVC fit on validation features; predicts {0,1} (1 = anomaly)."""

  svc: svm.SVC
  num_features: int

  def predict(self, features) -> np.ndarray:
    """int8 [N] predictions for features [N, k]."""
    x = _features(features, self.num_features)
    return self.svc.predict(x).astype(np.int8)

  def decision_function(self, features) -> np.ndarray:
    """float [N] signed distance to the boundary (> 0 leans anomalous)."""
    x = _features(features, self.num_features)
    return np.asarray(self.svc.decision_function(x), dtype=np.float64)


def fit_svm(features, labels, *, C: float = 1.0, gamma="scale",
            class_weight="balanced") -> FittedSVM:
  """Fits SVC(kernel='rbf') on validation features (SVM_λ: [R, D]; SVM_γ: [R, D, L]).

  Args:
    features: [N, k] (min–max scaled) score components of the validation split.
    labels: [N] {0,1} validation labels holding both classes.
    C, gamma, class_weight: passed to `sklearn.svm.SVC`.

  Returns:
    `FittedSVM` with `predict` and `decision_function`.
  """
  x = _features(features)
  y = _both_classes(labels)
  checks.same_length(x, y, names=("features", "labels"))
  clf = svm.SVC(kernel="rbf", C=C, gamma=gamma, class_weight=class_weight)
  clf.fit(x, y)
  return FittedSVM(svc=clf, num_features=int(x.shape[1]))


def fit_svm_lambda(R, D, labels, **kwargs) -> FittedSVM:
  """SVM_λ: `fit_svm` on [R, D]."""
  return fit_svm(stack_features(R, D), labels, **kwargs)


def fit_svm_gamma(R, D, L, labels, **kwargs) -> FittedSVM:
  """SVM_γ: `fit_svm` on [R, D, L]."""
  return fit_svm(stack_features(R, D, L), labels, **kwargs)
