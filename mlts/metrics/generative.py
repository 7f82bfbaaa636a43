"""Generation-quality metrics on embeddings, ensembles and windows (SPEC §4).

This module owns the numbers that say how close generated data is to real data:

* distribution distances on embeddings: `frechet_distance` (the FID formula),
  `kernel_inception_distance` (KID, unbiased MMD² with the cubic polynomial
  kernel), `mmd_rbf` (unbiased MMD² with a Gaussian kernel), `inception_score`
  (on class probabilities) and `alpha_precision_beta_recall_authenticity`
  (Alaa et al., ICML 2022);
* conditional-generation errors: `mse`, `mae` (optionally masked) and
  `crps_ensemble` (the empirical-ensemble CRPS, sort-based);
* pairwise similarity of series: `euclidean`, `pearson`, `cosine`, `dtw`
  (Sakoe–Chiba band) and `cid` (complexity-invariant distance).

Every function takes NumPy-compatible arrays, validates them at the boundary
(rank, finiteness, matching shapes) with a ValueError that names the argument,
never modifies them, and is vectorized: kernel matrices, sorted ensembles and
one NumPy pass per time step of DTW (vectorized over pairs and the other time
axis) — no Python loop over samples.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.spatial import distance as sp_distance
from sklearn import neighbors

from mlts import checks

# --------------------------------------------------------------------------
# Helpers.


def _pair_2d(x, y, names: tuple[str, str], *, same_dim: bool = True
             ) -> tuple[np.ndarray, np.ndarray]:
  """Validated float64 [N, D] and [M, D] arrays (same D when `same_dim`)."""
  a = checks.finite_array(x, name=names[0], ndim=2).astype(np.float64)
  b = checks.finite_array(y, name=names[1], ndim=2).astype(np.float64)
  if same_dim and a.shape[1] != b.shape[1]:
    raise ValueError(
        f"{names[0]} has {a.shape[1]} features but {names[1]} has {b.shape[1]}; they must match")
  return a, b


def _same_shape_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
  """Validated float64 x, y of equal shape [N, L]."""
  a, b = _pair_2d(x, y, ("x", "y"))
  if a.shape != b.shape:
    raise ValueError(f"x has shape {a.shape} but y has shape {b.shape}; they must match")
  return a, b


def _unbiased_mmd2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> np.ndarray:
  """Unbiased MMD² from kernel blocks, batched over leading axes.

  Args:
    kxx: [..., n, n] kernel between the first sample and itself (n >= 2).
    kyy: [..., m, m] kernel between the second sample and itself (m >= 2).
    kxy: [..., n, m] cross kernel.

  Returns:
    [...] sum_{i != j} k(x_i, x_j) / (n (n-1)) + the same for y - 2 mean k(x, y).
  """
  n, m = kxx.shape[-1], kyy.shape[-1]
  sxx = kxx.sum(axis=(-2, -1)) - np.trace(kxx, axis1=-2, axis2=-1)
  syy = kyy.sum(axis=(-2, -1)) - np.trace(kyy, axis1=-2, axis2=-1)
  return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * kxy.mean(axis=(-2, -1))


def _at_least(arr: np.ndarray, count: int, name: str) -> None:
  if len(arr) < count:
    raise ValueError(f"{name}: need at least {count} samples, got {len(arr)}")


# --------------------------------------------------------------------------
# Distribution distances on embeddings.


def frechet_distance_from_moments(mu1, cov1, mu2, cov2, *, eps: float = 1e-6) -> float:
  """Fréchet distance between two Gaussians given by their moments.

  d² = ||mu1 - mu2||² + Tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2}), with the real part
  of `scipy.linalg.sqrtm`; when the square root is not finite (singular
  product) `eps * I` is added to both covariances and it is recomputed.
  scipy's singular-matrix warning is silenced: with fewer samples than
  dimensions the product is singular, yet the root is still accurate.

  Args:
    mu1: [D] first mean.
    cov1: [D, D] first covariance (symmetric positive semi-definite).
    mu2: [D] second mean.
    cov2: [D, D] second covariance.
    eps: diagonal offset used only when the plain square root fails.

  Returns:
    The squared Fréchet distance as a float (>= 0 up to rounding).
  """
  m1 = checks.finite_array(mu1, name="mu1", ndim=1).astype(np.float64)
  m2 = checks.finite_array(mu2, name="mu2", ndim=1).astype(np.float64)
  s1 = checks.finite_array(cov1, name="cov1", ndim=2).astype(np.float64)
  s2 = checks.finite_array(cov2, name="cov2", ndim=2).astype(np.float64)
  d = len(m1)
  for name, arr, shape in (("mu2", m2, (d,)), ("cov1", s1, (d, d)), ("cov2", s2, (d, d))):
    if arr.shape != shape:
      raise ValueError(f"{name}: expected shape {shape} to match mu1, got {arr.shape}")
  with warnings.catch_warnings():
    # A singular product (fewer samples than dimensions) warns but is usually
    # still accurate; only a non-finite root triggers the offset.
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(s1 @ s2)
  if not np.all(np.isfinite(covmean)):
    offset = eps * np.eye(d)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", linalg.LinAlgWarning)
      covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
  covmean = np.real(covmean)
  diff = m1 - m2
  return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_distance(real, fake) -> float:
  """Fréchet (FID) distance between Gaussians fitted to two embedding sets.

  The means and unbiased (ddof=1) covariances of each set go into
  `frechet_distance_from_moments`; this is the FID formula applied to whatever
  embedding is given.

  Args:
    real: [N, D] real embeddings, N >= 2.
    fake: [M, D] generated embeddings, M >= 2.

  Returns:
    ||mu_r - mu_f||² + Tr(S_r + S_f - 2 (S_r S_f)^{1/2}) as a float.
  """
  r, f = _pair_2d(real, fake, ("real", "fake"))
  _at_least(r, 2, "real")
  _at_least(f, 2, "fake")
  cov_r = np.atleast_2d(np.cov(r, rowvar=False))
  cov_f = np.atleast_2d(np.cov(f, rowvar=False))
  return frechet_distance_from_moments(r.mean(axis=0), cov_r, f.mean(axis=0), cov_f)


def kernel_inception_distance(real, fake, *, num_subsets: int = 10, subset_size: int = 1000,
                              seed: int = 0) -> dict:
  """KID: unbiased MMD² with the cubic polynomial kernel, over random subsets.

  k(x, y) = (x·y / D + 1)³ (Bińkowski et al., 2018). Each subset draws
  `min(subset_size, N, M)` rows of `real` and of `fake` without replacement
  (independent draws per subset); the unbiased MMD² of every subset is computed
  at once on batched kernel matrices.

  Args:
    real: [N, D] real embeddings.
    fake: [M, D] generated embeddings.
    num_subsets: number of random subsets (>= 1).
    subset_size: rows per subset, clipped to min(N, M); must end up >= 2.
    seed: seed of the NumPy generator that draws the subsets.

  Returns:
    {'mean': float, 'std': float}: mean and population standard deviation
    (ddof=0) of the per-subset MMD² values. The mean can be slightly negative
    (the estimator is unbiased).
  """
  r, f = _pair_2d(real, fake, ("real", "fake"))
  if num_subsets < 1:
    raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
  m = min(int(subset_size), len(r), len(f))
  if m < 2:
    raise ValueError(f"subset size must be >= 2 (min of subset_size, N, M), got {m}")
  rng = np.random.default_rng(seed)
  # [S, m] indices without replacement: argsort of uniform keys per subset.
  idx_r = np.argsort(rng.random((num_subsets, len(r))), axis=1)[:, :m]
  idx_f = np.argsort(rng.random((num_subsets, len(f))), axis=1)[:, :m]
  xs, ys = r[idx_r], f[idx_f]                                # [S, m, D]
  d = r.shape[1]
  kernel = lambda a, b: (a @ np.swapaxes(b, 1, 2) / d + 1.0) ** 3
  mmds = _unbiased_mmd2(kernel(xs, xs), kernel(ys, ys), kernel(xs, ys))
  return {"mean": float(mmds.mean()), "std": float(mmds.std())}


def inception_score(probs, *, num_splits: int = 10) -> dict:
  """Inception score exp(E_x KL(p(y|x) || p(y))) per split of the rows.

  The rows are cut into `num_splits` contiguous, near-equal parts (as
  `np.array_split`); within each part p(y) is the mean of its rows and
  0·log 0 = 0.

  Args:
    probs: [N, K] class probabilities, non-negative, rows summing to 1
      (tolerance 1e-4).
    num_splits: number of parts, 1 <= num_splits <= N.

  Returns:
    {'mean': float, 'std': float} over the splits (std with ddof=0). IS is 1 for
    a constant classifier and K for confident predictions spread evenly over K
    classes.
  """
  p = checks.finite_array(probs, name="probs", ndim=2).astype(np.float64)
  n = len(p)
  if not 1 <= num_splits <= n:
    raise ValueError(f"num_splits must lie in [1, {n}] (number of rows), got {num_splits}")
  if (p < 0).any():
    raise ValueError(f"probs: {int((p < 0).sum())} negative value(s)")
  row_err = np.abs(p.sum(axis=1) - 1.0)
  if (row_err > 1e-4).any():
    first = int(np.argmax(row_err > 1e-4))
    raise ValueError(
        f"probs: rows must sum to 1 (tolerance 1e-4); row {first} sums to {p[first].sum():.6g}")
  sizes = np.full(num_splits, n // num_splits)
  sizes[: n % num_splits] += 1
  split = np.repeat(np.arange(num_splits), sizes)                  # [N]
  onehot = (split[None, :] == np.arange(num_splits)[:, None]).astype(np.float64)  # [S, N]
  marginal = onehot @ p / sizes[:, None]                            # [S, K]
  q = marginal[split]                                               # [N, K]
  safe = np.where(p > 0, p, 1.0)
  kl = np.sum(np.where(p > 0, p * (np.log(safe) - np.log(np.where(p > 0, q, 1.0))), 0.0),
              axis=1)                                               # [N]
  scores = np.exp(onehot @ kl / sizes)                              # [S]
  return {"mean": float(scores.mean()), "std": float(scores.std())}


def mmd_rbf(x, y, *, bandwidth: float | None = None) -> float:
  """Unbiased MMD² with the Gaussian RBF kernel k(a, b) = exp(-||a - b||² / (2 h²)).

  Args:
    x: [N, D] first sample, N >= 2.
    y: [M, D] second sample, M >= 2.
    bandwidth: h > 0; None uses the median heuristic, h = median of the
      Euclidean distances over all distinct pairs of the pooled sample
      (N + M rows).

  Returns:
    The unbiased MMD² as a float (can be slightly negative).
  """
  a, b = _pair_2d(x, y, ("x", "y"))
  _at_least(a, 2, "x")
  _at_least(b, 2, "y")
  if bandwidth is None:
    h = float(np.median(sp_distance.pdist(np.concatenate([a, b]))))
    if h <= 0:
      raise ValueError("median heuristic gave bandwidth 0 (mostly duplicate points); "
                       "pass bandwidth explicitly")
  else:
    h = float(bandwidth)
    if not (np.isfinite(h) and h > 0):
      raise ValueError(f"bandwidth must be a positive finite number, got {bandwidth}")
  kernel = lambda u, v: np.exp(-sp_distance.cdist(u, v, "sqeuclidean") / (2.0 * h * h))
  return float(_unbiased_mmd2(kernel(a, a), kernel(b, b), kernel(a, b)))


def median_distance(z: np.ndarray) -> float:
  """Median Euclidean distance over the distinct pairs of the rows of z [n, D] (n >= 2).

  When more than half the pairs tie at 0 (repeated points), the mean over the
  pairs at a positive distance; 1.0 when all points coincide.
  """
  pairs = sp_distance.pdist(z)
  median = float(np.median(pairs))
  if median > 0:
    return median
  positive = pairs[pairs > 0]
  return float(positive.mean()) if positive.size else 1.0


def mmd_permutation_test(x, y, *, num_permutations: int = 200, seed: int = 0,
                         labels: np.ndarray | None = None) -> tuple[float, float]:
  """Unbiased RBF MMD² of two samples and its permutation p-value.

  Kernel k(a, b) = exp(−||a − b||² / (2σ²)) with σ = `median_distance` of the
  pooled sample. All permutations are evaluated with one matrix product.

  Args:
    x: [n] or [n, D] first sample, n >= 2.
    y: [m] or [m, D] second sample, m >= 2.
    num_permutations: P >= 1 random relabellings (ignored when `labels` is given).
    seed: seed of the relabellings.
    labels: optional [P, n + m] 0/1 rows with n ones each (1 = the x side), to share
      the same permutations across calls (e.g. over the features of a set).

  Returns:
    (MMD², p) with p = (1 + #{permuted MMD² >= observed}) / (1 + P); the smallest
    attainable p is 1 / (1 + P).
  """
  a = np.asarray(x, np.float64)
  b = np.asarray(y, np.float64)
  a = a[:, None] if a.ndim == 1 else a
  b = b[:, None] if b.ndim == 1 else b
  _at_least(a, 2, "x")
  _at_least(b, 2, "y")
  z = np.concatenate([a, b])
  n, n_x, n_y = z.shape[0], a.shape[0], b.shape[0]
  if labels is None:
    if int(num_permutations) < 1:
      raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
    order = np.random.default_rng(seed).random((int(num_permutations), n)).argsort(axis=1)
    labels = (order < n_x).astype(np.float64)
  elif labels.ndim != 2 or labels.shape[1] != n:
    raise ValueError(f"labels must be [P, {n}], got shape {labels.shape}")
  sigma = median_distance(z)
  k = np.exp(-sp_distance.cdist(z, z, "sqeuclidean") / (2.0 * sigma * sigma))
  np.fill_diagonal(k, 0.0)  # the unbiased estimator drops the i == j terms
  total = k.sum()

  def statistic(s: np.ndarray) -> np.ndarray:
    """MMD² for each row of the [P, n] 0/1 matrix `s` (1 marks the x side)."""
    ks = s @ k
    xx = np.einsum("pn,pn->p", ks, s)
    xy = ks.sum(axis=1) - xx
    yy = total - 2.0 * ks.sum(axis=1) + xx
    return xx / (n_x * (n_x - 1)) + yy / (n_y * (n_y - 1)) - 2.0 * xy / (n_x * n_y)

  observed_labels = np.zeros((1, n))
  observed_labels[0, :n_x] = 1.0
  observed = float(statistic(observed_labels)[0])
  permuted = statistic(np.asarray(labels, np.float64))
  # A tiny tolerance so that permutations equal to the observed value up to rounding count.
  count = int(np.sum(permuted >= observed - 1e-12 * max(abs(observed), 1e-12)))
  return observed, (1.0 + count) / (1.0 + labels.shape[0])


def alpha_precision_beta_recall_authenticity(real, fake, *, num_alphas: int = 20,
                                             k: int = 5) -> dict:
  """α-precision, β-recall and authenticity (Alaa et al., ICML 2022), Euclidean version.

  The embedding is used as given (no learned one-class map), with
  alphas = betas = linspace(0, 1, num_alphas) and quantiles by
  `np.quantile` (linear interpolation). Exactly:

  * α-support of real: the ball around c_r = mean(real) with radius
    r_α = α-quantile of ||real_i - c_r||. P_α = fraction of fake rows with
    ||fake_j - c_r|| <= r_α.
  * β-support of fake: the ball around c_f = mean(fake) with radius
    s_β = β-quantile of ||fake_j - c_f||. As in the paper's estimator, real
    point i is recalled at β when the fake point nearest to it *among those in
    the β-support* lies within its k-NN ball, i.e. at distance <= NND_k(i), the
    distance from real_i to its k-th nearest other real point. R_β = fraction of
    real points recalled.
  * Δ-precision = 1 - 2 mean_α |P_α - α|; Δ-recall = 1 - 2 mean_β |R_β - β|
    (the mean over the grid stands for the integral over [0, 1]).
  * authenticity = fraction of fake rows whose distance to their nearest real
    row i* is strictly larger than NND_1(i*), the distance from i* to its
    nearest other real row (a copy of a real row is never authentic).

  Cost: nearest-neighbour queries by scikit-learn, and the β-recall pass over a
  real-by-fake distance matrix in row chunks (cumulative minimum over fake rows
  sorted by their distance to c_f), so memory stays bounded.

  Args:
    real: [N, D] real embeddings, N > k.
    fake: [M, D] generated embeddings, M >= 1.
    num_alphas: A, number of grid points (>= 2).
    k: neighbour rank of the real k-NN ball used by β-recall (>= 1).

  Returns:
    {'alphas': [A], 'alpha_precision': [A], 'beta_recall': [A] (NumPy arrays),
     'delta_precision': float, 'delta_recall': float, 'authenticity': float}.
  """
  r, f = _pair_2d(real, fake, ("real", "fake"))
  if num_alphas < 2:
    raise ValueError(f"num_alphas must be >= 2, got {num_alphas}")
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  _at_least(r, k + 1, "real")
  alphas = np.linspace(0.0, 1.0, num_alphas)

  # α-precision.
  c_r = r.mean(axis=0)
  radius_r = np.quantile(np.linalg.norm(r - c_r, axis=1), alphas)          # [A]
  fake_to_cr = np.linalg.norm(f - c_r, axis=1)                              # [M]
  precision = (fake_to_cr[None, :] <= radius_r[:, None]).mean(axis=1)       # [A]

  # Real k-NN radii (excluding the point itself).
  real_nn = neighbors.NearestNeighbors(n_neighbors=k).fit(r)
  real_knn = real_nn.kneighbors(return_distance=True)[0]                    # [N, k]
  nnd_k, nnd_1 = real_knn[:, k - 1], real_knn[:, 0]

  # β-recall: β-supports are prefixes of the fake rows sorted by distance to c_f.
  fake_to_cf = np.linalg.norm(f - f.mean(axis=0), axis=1)                   # [M]
  order = np.argsort(fake_to_cf, kind="stable")
  f_sorted = f[order]
  radius_f = np.quantile(fake_to_cf, alphas)                                # [A]
  count = np.searchsorted(fake_to_cf[order], radius_f, side="right")        # [A], >= 1
  chunk = max(1, 4_000_000 // len(f))
  recalled = np.concatenate([
      np.minimum.accumulate(sp_distance.cdist(r[s:s + chunk], f_sorted), axis=1)[:, count - 1]
      <= nnd_k[s:s + chunk, None]
      for s in range(0, len(r), chunk)
  ])                                                                        # [N, A]
  recall = recalled.mean(axis=0)

  # Authenticity.
  dist_fr, idx_fr = real_nn.kneighbors(f, n_neighbors=1)
  authenticity = float(np.mean(dist_fr[:, 0] > nnd_1[idx_fr[:, 0]]))

  return {
      "alphas": alphas,
      "alpha_precision": precision,
      "beta_recall": recall,
      "delta_precision": float(1.0 - 2.0 * np.mean(np.abs(precision - alphas))),
      "delta_recall": float(1.0 - 2.0 * np.mean(np.abs(recall - alphas))),
      "authenticity": authenticity,
  }


# --------------------------------------------------------------------------
# Conditional-generation errors.


def crps_ensemble(observations, ensemble) -> np.ndarray:
  """CRPS of an empirical ensemble, per point: E|X - y| - ½ E|X - X'|.

  Exact for the empirical distribution of the S members (the 1/S² "plain"
  estimator, not the fair 1/(S(S-1)) one). The pair term uses the sorted
  members x_(1) <= ... <= x_(S): Σ_{i,j} |x_i - x_j| = 2 Σ_i (2i - S - 1) x_(i),
  so the cost is O(S log S) per point. With one member CRPS = |x - y|.

  Args:
    observations: [...] observed values y.
    ensemble: [S, ...] ensemble members, S >= 1, trailing shape equal to
      `observations.shape`.

  Returns:
    [...] CRPS per point (float64, >= 0).
  """
  y = checks.finite_array(observations, name="observations").astype(np.float64)
  ens = checks.finite_array(ensemble, name="ensemble").astype(np.float64)
  if ens.ndim < 1 or ens.shape[1:] != y.shape:
    raise ValueError(f"ensemble: expected shape [S, *{y.shape}] to match observations, "
                     f"got {ens.shape}")
  s = ens.shape[0]
  spread_to_obs = np.abs(ens - y).mean(axis=0)
  weights = (2.0 * np.arange(1, s + 1) - s - 1).reshape((s,) + (1,) * y.ndim)
  half_pair = (weights * np.sort(ens, axis=0)).sum(axis=0) / (s * s)
  return spread_to_obs - half_pair


def _masked_mean(err: np.ndarray, mask) -> float:
  """Mean of `err` over all entries, or over entries where `mask` is true."""
  if mask is None:
    return float(err.mean())
  m = np.asarray(mask)
  if m.dtype == object or not (np.issubdtype(m.dtype, np.number) or m.dtype == bool):
    raise ValueError(f"mask: expected a boolean or 0/1 array, got dtype {m.dtype}")
  if not np.isin(m, (0, 1)).all():
    raise ValueError("mask: values must be 0/1 or boolean")
  try:
    m = np.broadcast_to(m.astype(bool), err.shape)
  except ValueError:
    raise ValueError(f"mask of shape {np.shape(mask)} does not broadcast to {err.shape}") from None
  if not m.any():
    raise ValueError("mask selects no entry")
  return float(err[m].mean())


def _error_pair(a, b) -> np.ndarray:
  x = checks.finite_array(a, name="a").astype(np.float64)
  y = checks.finite_array(b, name="b").astype(np.float64)
  if x.shape != y.shape:
    raise ValueError(f"a has shape {x.shape} but b has shape {y.shape}; they must match")
  return x - y


def mse(a, b, *, mask=None) -> float:
  """Mean squared error, optionally over masked entries only.

  Args:
    a: [...] prediction.
    b: [...] target, same shape as `a`.
    mask: None, or a boolean / 0-1 array broadcastable to `a.shape`; the mean
      runs over entries where it is true (at least one).

  Returns:
    mean (a - b)² as a float.
  """
  return _masked_mean(_error_pair(a, b) ** 2, mask)


def mae(a, b, *, mask=None) -> float:
  """Mean absolute error, optionally over masked entries only.

  Args:
    a: [...] prediction.
    b: [...] target, same shape as `a`.
    mask: None, or a boolean / 0-1 array broadcastable to `a.shape`; the mean
      runs over entries where it is true (at least one).

  Returns:
    mean |a - b| as a float.
  """
  return _masked_mean(np.abs(_error_pair(a, b)), mask)


# --------------------------------------------------------------------------
# Pairwise similarity of series (row i of x against row i of y).


def euclidean(x, y) -> np.ndarray:
  """Euclidean distance between paired series.

  Args:
    x: [N, L] series.
    y: [N, L] series.

  Returns:
    [N] ||x_i - y_i||₂.
  """
  a, b = _same_shape_pairs(x, y)
  return np.linalg.norm(a - b, axis=1)


def pearson(x, y) -> np.ndarray:
  """Pearson correlation between paired series.

  Args:
    x: [N, L] series.
    y: [N, L] series.

  Returns:
    [N] correlation in [-1, 1]; NaN for a pair where either series is constant.
  """
  a, b = _same_shape_pairs(x, y)
  a = a - a.mean(axis=1, keepdims=True)
  b = b - b.mean(axis=1, keepdims=True)
  return _normalized_dot(a, b)


def cosine(x, y) -> np.ndarray:
  """Cosine similarity between paired series.

  Args:
    x: [N, L] series.
    y: [N, L] series.

  Returns:
    [N] x_i·y_i / (||x_i|| ||y_i||); NaN for a pair where either series is 0.
  """
  a, b = _same_shape_pairs(x, y)
  return _normalized_dot(a, b)


def _normalized_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
  dot = np.einsum("nl,nl->n", a, b)
  out = np.full(len(a), np.nan)
  ok = denom > 0
  out[ok] = np.clip(dot[ok] / denom[ok], -1.0, 1.0)
  return out


def dtw(x, y, *, band: int | None = None) -> np.ndarray:
  """Dynamic time warping distance between paired series.

  Local cost c(i, j) = |x_i - y_j|; accumulated cost
  D(i, j) = c(i, j) + min(D(i-1, j), D(i, j-1), D(i-1, j-1)) with D(-1, -1) = 0,
  and the distance is D(L-1, L2-1): the sum of absolute differences along the
  best warping path (no normalization by path length). The Sakoe–Chiba band
  keeps only cells with |i - j| <= band (unscaled, so with L != L2 it needs
  band >= |L - L2|).

  One NumPy step per index i, vectorized over the N pairs and over j: the row
  recursion D(i, j) = c(i, j) + min(m_j, D(i, j-1)), m_j = min(D(i-1, j),
  D(i-1, j-1)), unrolls to D(i, j) = C_j + min_{k<=j}(m_k - C_{k-1}) with C the
  cumulative sum of the row costs, i.e. a cumulative minimum.

  Args:
    x: [N, L] series.
    y: [N, L2] series.
    band: half-width of the Sakoe–Chiba band (>= 0), or None for no constraint.

  Returns:
    [N] DTW distances (>= 0; 0 for identical series; <= sum |x - y| when L == L2).
  """
  a, b = _pair_2d(x, y, ("x", "y"), same_dim=False)
  if len(a) != len(b):
    raise ValueError(f"x has {len(a)} series but y has {len(b)}; they must match")
  n, len_x = a.shape
  len_y = b.shape[1]
  if band is not None:
    if int(band) != band or band < 0:
      raise ValueError(f"band must be a non-negative integer or None, got {band}")
    if abs(len_x - len_y) > band:
      raise ValueError(
          f"band {band} is narrower than the length difference |{len_x} - {len_y}|; "
          "no warping path exists")
  cols = np.arange(len_y)
  # prev[:, j + 1] = D(i-1, j); prev[:, 0] = D(i-1, -1).
  prev = np.full((n, len_y + 1), np.inf)
  prev[:, 0] = 0.0
  for i in range(len_x):
    inside = np.ones(len_y, bool) if band is None else np.abs(cols - i) <= band
    cost = np.where(inside, np.abs(a[:, i, None] - b), 0.0)          # [N, L2]
    csum = np.cumsum(cost, axis=1)
    m = np.where(inside, np.minimum(prev[:, 1:], prev[:, :-1]), np.inf)
    before = csum - cost                                              # C_{k-1}
    row = csum + np.minimum.accumulate(m - before, axis=1)
    prev = np.concatenate([np.full((n, 1), np.inf), np.where(inside, row, np.inf)], axis=1)
  return prev[:, -1]


def cid(x, y) -> np.ndarray:
  """Complexity-invariant distance (Batista et al., 2011).

  CID = ED · max(CE_x, CE_y) / min(CE_x, CE_y), with ED the Euclidean distance
  and CE = sqrt(Σ_t (s_{t+1} - s_t)²) the complexity estimate. When both series
  are constant the factor is 1; when exactly one is, CID is inf.

  Args:
    x: [N, L] series, L >= 2.
    y: [N, L] series.

  Returns:
    [N] CID distances.
  """
  a, b = _same_shape_pairs(x, y)
  if a.shape[1] < 2:
    raise ValueError(f"cid needs series of length >= 2, got length {a.shape[1]}")
  ce_a = np.linalg.norm(np.diff(a, axis=1), axis=1)
  ce_b = np.linalg.norm(np.diff(b, axis=1), axis=1)
  hi, lo = np.maximum(ce_a, ce_b), np.minimum(ce_a, ce_b)
  with np.errstate(divide="ignore", invalid="ignore"):
    factor = np.where(hi == 0, 1.0, hi / lo)
  return np.linalg.norm(a - b, axis=1) * factor
