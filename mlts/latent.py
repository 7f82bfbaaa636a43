"""Out-of-distribution scores and metrics on latent embeddings.

This module owns the OOD metrics of SPEC §3 that read any embedding array
[N, D] (diffusion latents, VAE means, raw windows flattened):

* `Mahalanobis`: squared Mahalanobis distance to the training distribution
  (Ledoit–Wolf shrinkage covariance);
* `KDE`: Gaussian kernel density (Scott / Silverman rule, cross-validation, or
  a fixed bandwidth) on standardized data, reported as a density of the
  original space;
* `LaplacianEigenmap`: spectral embedding of a kNN heat-kernel graph, the
  Nyström extension to new points, and the distance to the nearest training
  embeddings as a score;
* `subspace_energy` and `chi_norm_deviation`: closed-form latent scores;
* `ood_report` and `validation_threshold`: OOD-as-positive-class metrics and a
  threshold fit on in-distribution validation scores only.

Every score is "higher = more anomalous". Estimators follow the scikit-learn
convention: `fit` returns `self`, fitted attributes end in an underscore.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse
from scipy.sparse import linalg as sparse_linalg
from scipy.spatial import distance
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity, NearestNeighbors

from mlts import checks, metrics

# Largest training set for which the eigenproblem is solved densely.
_DENSE_MAX = 2000
# Distance-matrix chunks hold at most this many entries (128 MiB of float64).
_CHUNK_ELEMENTS = 1 << 24
# Standard deviations below this are floored (constant features).
_STD_FLOOR = 1e-12


def _fitted(obj, attr: str) -> None:
  if not hasattr(obj, attr):
    raise ValueError(f"{type(obj).__name__}: call fit(train) before using it")


def _check_train(train, *, name: str = "train", min_rows: int = 2) -> np.ndarray:
  x = checks.finite_array(train, name=name, ndim=2)
  if len(x) < min_rows:
    raise ValueError(f"{name}: need at least {min_rows} rows, got shape {x.shape}")
  return x


def _check_query(x, n_features: int, *, name: str = "x") -> np.ndarray:
  x = checks.finite_array(x, name=name, ndim=2)
  if x.shape[1] != n_features:
    raise ValueError(
        f"{name}: has {x.shape[1]} features but the model was fit on {n_features}")
  return x


class Mahalanobis:
  """Squared Mahalanobis distance to a Ledoit–Wolf Gaussian fit of the training set.

  For in-distribution Gaussian data in D dimensions the squared distances of
  fresh samples follow χ²_D.

  Attributes (after `fit`):
    location_: [D] training mean.
    covariance_: [D, D] shrunk covariance.
    precision_: [D, D] its inverse.
    shrinkage_: Ledoit–Wolf shrinkage coefficient in [0, 1].
  """

  def fit(self, train) -> Mahalanobis:
    """Fits mean and shrunk covariance.

    Args:
      train: [N, D] finite training embeddings, N >= 2.

    Returns:
      self.
    """
    x = _check_train(train)
    lw = LedoitWolf().fit(x)
    self.location_ = lw.location_
    self.covariance_ = lw.covariance_
    self.precision_ = lw.precision_
    self.shrinkage_ = float(lw.shrinkage_)
    return self

  def score(self, x) -> np.ndarray:
    """Squared Mahalanobis distances (x - μ)ᵀ Σ⁻¹ (x - μ).

    Args:
      x: [M, D] embeddings.

    Returns:
      [M] squared distances (>= 0).
    """
    _fitted(self, "precision_")
    c = _check_query(x, len(self.location_)) - self.location_
    return np.maximum(np.einsum("md,de,me->m", c, self.precision_, c), 0.0)

  def distance(self, x) -> np.ndarray:
    """Mahalanobis distances, the square root of `score`.

    Args:
      x: [M, D] embeddings.

    Returns:
      [M] distances (>= 0).
    """
    return np.sqrt(self.score(x))


class KDE:
  """Gaussian kernel density estimate on standardized data.

  Each feature is standardized with the training mean and standard deviation
  (floored at 1e-12), a Gaussian `sklearn.neighbors.KernelDensity` is fit
  there, and its log-density is shifted by the Jacobian -Σ_d log std_d so that
  `log_density` is a density of the original space (it integrates to 1 there).

  Bandwidths are in standardized units:
    * 'scott': n^(-1/(D+4));
    * 'silverman': (n (D+2) / 4)^(-1/(D+4));
    * 'cv': the best held-out log-likelihood (5-fold, shuffled with a fixed
      seed, `GridSearchCV`) over 21 log-spaced values from 0.1x to 10x Scott's;
    * a positive float: used as given.

  Attributes (after `fit`):
    bandwidth_: the chosen bandwidth (standardized units).
    bandwidth_grid_: [21] the candidate grid ('cv' only, else None).
    mean_, std_: [D] training standardization.
  """

  def __init__(self, bandwidth: float | str = "scott"):
    if isinstance(bandwidth, str):
      if bandwidth not in ("scott", "silverman", "cv"):
        raise ValueError(
            f"bandwidth: expected 'scott', 'silverman', 'cv' or a positive float, "
            f"got {bandwidth!r}")
    elif not (np.isfinite(bandwidth) and bandwidth > 0):
      raise ValueError(f"bandwidth: must be a positive finite float, got {bandwidth!r}")
    self.bandwidth = bandwidth

  def fit(self, train) -> KDE:
    """Standardizes, picks the bandwidth and fits the density.

    Args:
      train: [N, D] finite training embeddings, N >= 2 (N >= 5 for 'cv').

    Returns:
      self.
    """
    x = _check_train(train, min_rows=5 if self.bandwidth == "cv" else 2)
    n, d = x.shape
    self.mean_ = x.mean(axis=0)
    self.std_ = np.maximum(x.std(axis=0), _STD_FLOOR)
    z = (x - self.mean_) / self.std_
    scott = n ** (-1.0 / (d + 4))
    self.bandwidth_grid_ = None
    if self.bandwidth == "scott":
      bw = scott
    elif self.bandwidth == "silverman":
      bw = (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    elif self.bandwidth == "cv":
      self.bandwidth_grid_ = scott * np.geomspace(0.1, 10.0, 21)
      search = GridSearchCV(
          KernelDensity(kernel="gaussian"), {"bandwidth": self.bandwidth_grid_},
          cv=KFold(n_splits=5, shuffle=True, random_state=0)).fit(z)
      bw = search.best_params_["bandwidth"]
    else:
      bw = self.bandwidth
    self.bandwidth_ = float(bw)
    self.kde_ = KernelDensity(kernel="gaussian", bandwidth=self.bandwidth_).fit(z)
    self.log_jacobian_ = -float(np.log(self.std_).sum())
    return self

  def log_density(self, x) -> np.ndarray:
    """Log-density in the original (unstandardized) space.

    Args:
      x: [M, D] embeddings.

    Returns:
      [M] log p(x).
    """
    _fitted(self, "kde_")
    z = (_check_query(x, len(self.mean_)) - self.mean_) / self.std_
    return self.kde_.score_samples(z) + self.log_jacobian_

  def score(self, x) -> np.ndarray:
    """Negative log-density (higher = more anomalous).

    Args:
      x: [M, D] embeddings.

    Returns:
      [M] -log p(x).
    """
    return -self.log_density(x)


class LaplacianEigenmap:
  """Laplacian eigenmap of a kNN heat-kernel graph, with a Nyström extension.

  Graph. Let r_j be the distance from training point x_j to its k-th nearest
  training point, itself included (k = `n_neighbors`; x_j is its own nearest, so
  the graph carries unit self-loops). Any point x (training or new) is joined to
  training point x_j when x_j is among its k nearest training points or x would
  be among x_j's (|x - x_j| <= r_j): the symmetrized (union) kNN graph, whose
  row for a training point is the same whether it is built in `fit` or in
  `transform`. Edge weights are the heat kernel w = exp(-|x - x_j|² / σ²), with
  σ the median distance from training points to their k - 1 nearest others.

  Embedding. With the training graph W, degrees d_j = Σ_i W_ij and
  S = D^{-1/2} W D^{-1/2}, the normalized Laplacian is L = I - S. Its trivial
  eigenvector v₀ = √d / |√d| (λ = 0) is deflated: the `n_components`
  eigenvectors v_c of S - v₀v₀ᵀ with the largest eigenvalues μ_c = 1 - λ_c (the
  smallest non-trivial λ_c of L) form `embedding_` = √N [v_1 ... v_m] (unit mean
  square per coordinate; each column's sign is fixed so that its
  largest-magnitude entry is positive). Deflating rather than dropping the
  first eigenvector keeps a disconnected graph right: its zero eigenspace has
  one dimension per connected component and only v₀ is removed.
  Dense `scipy.linalg.eigh` for N <= 2000, else `scipy.sparse.linalg.eigsh`.

  Nyström extension. For a point x with graph row w_j = w(x, x_j) (zero off
  the row) and degree d(x) = Σ_j w_j,

      e_c(x) = (1 / μ_c) Σ_j  w_j / √(d(x) d_j) · e_c(x_j),

  i.e. the row of S for x applied to the training eigenvectors, divided by the
  eigenvalue. At a training point this is (S e_c)_i / μ_c = e_c(x_i) exactly.
  It is evaluated stably (weights relative to the nearest neighbour), so a far
  point, whose row holds only its k nearest with vanishing weights, maps to the
  origin: w_j / √d(x) ~ √w_j -> 0.

  Cost: exact (brute-force) distances, O(N² D) to fit and O(M N D) to
  transform, in row chunks of bounded memory.

  Attributes (after `fit`):
    embedding_: [N, n_components] training embedding.
    eigenvalues_: [n_components] λ_c of the normalized Laplacian (ascending).
    sigma_: heat-kernel bandwidth σ.
    degrees_: [N] training degrees d_j.
    radii_: [N] kNN radii r_j.
  """

  def __init__(self, n_components: int = 2, n_neighbors: int = 10):
    if int(n_components) != n_components or n_components < 1:
      raise ValueError(f"n_components: must be a positive integer, got {n_components!r}")
    if int(n_neighbors) != n_neighbors or n_neighbors < 2:
      raise ValueError(f"n_neighbors: must be an integer >= 2, got {n_neighbors!r}")
    self.n_components = int(n_components)
    self.n_neighbors = int(n_neighbors)

  def _distance_chunks(self, x: np.ndarray):
    """Yields (rows, [m, N] exact distances from x[rows] to the training points)."""
    step = max(1, _CHUNK_ELEMENTS // len(self.train_))
    for start in range(0, len(x), step):
      rows = slice(start, min(start + step, len(x)))
      yield rows, distance.cdist(x[rows], self.train_)

  def _kth(self, d: np.ndarray) -> np.ndarray:
    """[m, 1] distance to the k-th nearest training point of each row of `d`."""
    k = self.n_neighbors
    return np.partition(d, k - 1, axis=1)[:, k - 1:k]

  def fit(self, train) -> LaplacianEigenmap:
    """Builds the graph and solves the eigenproblem.

    Args:
      train: [N, D] finite training embeddings, N >= max(n_neighbors, n_components + 2).

    Returns:
      self.
    """
    x = _check_train(train, min_rows=max(self.n_neighbors, self.n_components + 2))
    n, k, m = len(x), self.n_neighbors, self.n_components
    self.train_ = x.copy()
    near = np.empty((n, k))
    for rows, d in self._distance_chunks(x):
      near[rows] = np.sort(np.partition(d, k - 1, axis=1)[:, :k], axis=1)
    self.radii_ = near[:, -1]
    sigma = float(np.median(near[:, 1:]))
    if sigma <= 0:
      raise ValueError("train: median neighbour distance is 0 (too many duplicate rows)")
    self.sigma_ = sigma
    parts = []
    for rows, d in self._distance_chunks(x):
      i, j = np.nonzero((d <= self.radii_[rows, None]) | (d <= self.radii_[None, :]))
      parts.append((i + rows.start, j, np.exp(-(d[i, j] / sigma) ** 2)))
    i, j, w = (np.concatenate(p) for p in zip(*parts))
    graph = sparse.csr_matrix((w, (i, j)), shape=(n, n))
    deg = np.asarray(graph.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(deg)
    s = sparse.diags(inv_sqrt) @ graph @ sparse.diags(inv_sqrt)
    v0 = np.sqrt(deg) / np.linalg.norm(np.sqrt(deg))
    if n <= _DENSE_MAX:
      mu, vecs = linalg.eigh(s.toarray() - np.outer(v0, v0), subset_by_index=(n - m, n - 1))
    else:
      op = sparse_linalg.LinearOperator(
          (n, n), matvec=lambda u: s @ u - v0 * (v0 @ u), dtype=np.float64)
      start = np.random.default_rng(0).standard_normal(n)
      mu, vecs = sparse_linalg.eigsh(op, k=m, which="LA", v0=start)
    order = np.argsort(mu)[::-1][:m]
    mu, vecs = mu[order], vecs[:, order]
    if np.any(mu <= 1e-10):
      raise ValueError(
          f"n_components={m}: eigenvalue 1 - λ of the graph reaches {mu.min():.3g} <= 0; "
          "ask for fewer components")
    peak = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(m)]
    self.embedding_ = np.sqrt(n) * vecs * np.sign(peak)
    self.eigenvalues_ = 1.0 - mu
    self.degrees_ = deg
    self._mu = mu
    self._embedding_nn = NearestNeighbors(n_neighbors=k).fit(self.embedding_)
    return self

  def transform(self, x) -> np.ndarray:
    """Nyström extension of the embedding to new points (formula in the class docstring).

    Args:
      x: [M, D] embeddings.

    Returns:
      [M, n_components] embedded points.
    """
    _fitted(self, "embedding_")
    x = _check_query(x, self.train_.shape[1])
    # Training eigenvectors divided by √d_j and μ_c: [N, n_components].
    basis = self.embedding_ / np.sqrt(self.degrees_)[:, None] / self._mu
    out = np.empty((len(x), self.n_components))
    for rows, d in self._distance_chunks(x):
      in_row = (d <= self._kth(d)) | (d <= self.radii_[None, :])
      # w_j / √d(x) with w_j = exp(-d_j²/σ²): shifted by the nearest distance d₀,
      # w_j = e^{-d₀²/σ²} u_j with u_j <= 1 = u_nearest, so w_j / √d(x)
      # = u_j e^{-d₀²/(2σ²)} / √Σu, which underflows to 0, never to 0/0.
      sq = (d / self.sigma_) ** 2
      sq0 = sq.min(axis=1, keepdims=True)
      u = np.where(in_row, np.exp(sq0 - sq), 0.0)
      coef = u * (np.exp(-0.5 * sq0) / np.sqrt(u.sum(axis=1, keepdims=True)))
      out[rows] = coef @ basis
    return out

  def score(self, x) -> np.ndarray:
    """Mean distance from the embedded points to their k nearest training embeddings.

    A training point passed here counts itself among its neighbours.

    Args:
      x: [M, D] embeddings.

    Returns:
      [M] scores (>= 0), k = n_neighbors.
    """
    dist, _ = self._embedding_nn.kneighbors(self.transform(x))
    return dist.mean(axis=1)


def subspace_energy(coeffs, mask) -> np.ndarray:
  """Energy Σ_{i ∈ mask} c_i² in a subset of coordinates.

  Args:
    coeffs: [M, D] coefficients (e.g. latents in the basis U).
    mask: [D] bool (or 0/1) selecting the coordinates.

  Returns:
    [M] energies (>= 0).
  """
  c = checks.finite_array(coeffs, name="coeffs", ndim=2)
  sel = checks.binary_vector(mask, name="mask").astype(bool)
  if len(sel) != c.shape[1]:
    raise ValueError(f"mask has length {len(sel)} but coeffs has {c.shape[1]} columns")
  return np.square(c[:, sel]).sum(axis=1)


def chi_norm_deviation(z, dim: int | None = None) -> np.ndarray:
  """Deviation of the latent norm from the mean of a χ_dim distribution.

  For z ~ N(0, I_dim), |z| is χ_dim distributed with mean ≈ √(dim - 1/2).

  Args:
    z: [M, D] latents.
    dim: degrees of freedom; defaults to D.

  Returns:
    [M] | |z| - √(dim - 1/2) |.
  """
  z = checks.finite_array(z, name="z", ndim=2)
  dim = z.shape[1] if dim is None else dim
  if int(dim) != dim or dim < 1:
    raise ValueError(f"dim: must be a positive integer, got {dim!r}")
  return np.abs(np.linalg.norm(z, axis=1) - np.sqrt(dim - 0.5))


def ood_report(scores_in, scores_out, *, threshold: float | None = None) -> dict:
  """OOD detection metrics with OOD as the positive class.

  Args:
    scores_in: [N] scores of in-distribution samples.
    scores_out: [M] scores of OOD samples (higher = more anomalous).
    threshold: if given, score >= threshold is predicted OOD.

  Returns:
    dict with float `auroc`, `auprc`, `fpr_at_95tpr`, and, with a threshold,
    `threshold`, `f1`, `accuracy`, `precision`, `recall`.
  """
  s_in = checks.finite_array(scores_in, name="scores_in", ndim=1)
  s_out = checks.finite_array(scores_out, name="scores_out", ndim=1)
  labels = np.concatenate((np.zeros(len(s_in), np.int8), np.ones(len(s_out), np.int8)))
  scores = np.concatenate((s_in, s_out))
  report = {
      "auroc": metrics.auroc(labels, scores),
      "auprc": metrics.auprc(labels, scores),
      "fpr_at_95tpr": metrics.fpr_at_tpr(labels, scores, 0.95),
  }
  if threshold is not None:
    if not np.isfinite(threshold):
      raise ValueError(f"threshold: must be finite, got {threshold!r}")
    pw = metrics.pointwise(labels, (scores >= threshold).astype(np.int8))
    report.update(threshold=float(threshold), f1=pw["f1"], accuracy=pw["accuracy"],
                  precision=pw["precision"], recall=pw["recall"])
  return report


def validation_threshold(scores_val_in, quantile: float = 0.95) -> float:
  """Threshold from in-distribution validation scores only.

  The `quantile` of the validation scores (linear interpolation), so about
  1 - quantile of fresh in-distribution scores reach it (false positives).

  Args:
    scores_val_in: [N] in-distribution validation scores.
    quantile: in [0, 1].

  Returns:
    The threshold (score >= threshold -> OOD).
  """
  s = checks.finite_array(scores_val_in, name="scores_val_in", ndim=1)
  if not 0.0 <= quantile <= 1.0:
    raise ValueError(f"quantile: must be in [0, 1], got {quantile!r}")
  return float(np.quantile(s, quantile))
