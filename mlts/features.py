"""Feature characterization of latent features: common, real-only, synthetic-only.

Given latent features of a real set R [N, D] and a synthetic set S [M, D] (research proposal,
objective 2; SPEC §3), each feature d is classified from its two marginals R[:, d], S[:, d]:

* 'common': the marginals are not found to differ;
* 'real-only': they differ, and R has mass where S has little (a mode or tail the generator
  misses);
* 'synthetic-only': they differ, and S has mass where R has little.

Decision rule (`characterize`):

1. Per feature, two two-sample tests: Kolmogorov-Smirnov (`scipy.stats.ks_2samp`, two-sided)
   and an RBF-kernel MMD² with a permutation p-value (`two_sample_tests`).
2. Benjamini-Hochberg over all 2·D p-values together (KS and MMD of every feature) at level
   `alpha`. A feature *differs* if BH rejects either of its two tests. This controls the false
   discovery rate over the 2·D hypotheses (BH is valid under independence and positive
   regression dependence, which is the natural case for two tests of the same marginal).
3. Direction, for a feature that differs, by support coverage in the spirit of
   precision/recall for generative models. Each marginal gets a Gaussian KDE (Silverman's
   bandwidth) and its 95 % highest-density region (HDR): the points where its density is at
   least the density at the 5 % least-dense points of its own sample. Then

   real_uncovered = fraction of R outside S's HDR   (1 − recall: real mass S misses),
   fake_uncovered = fraction of S outside R's HDR   (1 − precision: synthetic mass R lacks).

   Both are ≈ 0.05 when the marginals agree. The feature is 'real-only' if
   real_uncovered > fake_uncovered, else 'synthetic-only' (an exact tie goes to
   'synthetic-only'). An HDR, unlike a central quantile range, sees a gap between two modes.

A pure location shift puts about the same mass outside the other set's HDR in both
directions, so its type is then decided by a small, noisy difference; the two coverage
fractions are returned so that a caller can see how clear-cut each call is.

`attribution` explains single samples with robust z-scores against a reference set, and
`report_markdown` / `report_figure` write the results for people.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from mlts.checks import finite_array  # noqa: E402
from mlts.metrics import generative  # noqa: E402

# Level of the highest-density regions used for the direction of a differing feature.
HDR_MASS = 0.95
# The MMD permutation test uses at most this many points of each set (random subsample);
# the kernel matrix is [n, n] with n up to twice this. KS always uses every point.
MMD_MAX_SAMPLES = 1000
# Number of grid points on which the 1-D KDEs are evaluated (then linearly interpolated).
KDE_GRID = 512
# Rows of the "most atypical samples" section of the markdown report.
REPORT_MAX_SAMPLES = 10

_MAD_TO_SIGMA = 1.4826  # 1 / Φ⁻¹(3/4): MAD of a normal sample times this estimates σ.
_MEANAD_TO_SIGMA = 1.2533  # √(π/2): mean absolute deviation of a normal times this is σ.


def _pair(real, fake) -> tuple[np.ndarray, np.ndarray]:
  """Validates a real/synthetic pair: rank 2, finite, same number of features, >= 2 rows."""
  real = finite_array(real, name="real", ndim=2)
  fake = finite_array(fake, name="fake", ndim=2)
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"real has {real.shape[1]} features (shape {real.shape}) but fake has "
                     f"{fake.shape[1]} (shape {fake.shape}); they must match")
  for arr, name in ((real, "real"), (fake, "fake")):
    if arr.shape[0] < 2:
      raise ValueError(f"{name}: need at least 2 samples, got shape {arr.shape}")
  return real.astype(np.float64), fake.astype(np.float64)


# --------------------------------------------------------------------------
# Two-sample tests.


def two_sample_tests(real, fake, *, num_permutations: int = 200, seed: int = 0) -> dict:
  """Per-feature KS and MMD two-sample tests between a real and a synthetic set.

  KS: `scipy.stats.ks_2samp` (two-sided) on all points. MMD: the unbiased MMD² with the RBF
  kernel k(a, b) = exp(−(a − b)² / (2σ²)), σ = median pairwise distance in the pooled 1-D
  sample (median heuristic), and a permutation p-value (1 + #{MMD²_perm >= MMD²}) / (1 + P).
  All P permutations of a feature are evaluated with one matrix product. Each set is randomly
  subsampled to at most `MMD_MAX_SAMPLES` points for the MMD; the same subsample and the same
  permutations serve every feature. The smallest attainable MMD p-value is 1 / (1 + P).

  Args:
    real: [N, D] real features.
    fake: [M, D] synthetic features.
    num_permutations: P >= 1, permutations for the MMD p-value.
    seed: seed of the subsampling and the permutations.

  Returns:
    {'ks_stat', 'ks_p', 'mmd', 'mmd_p'}, each a float64 array [D].

  Raises:
    ValueError: non-finite input, ranks other than 2, different D, fewer than 2 rows, or
      num_permutations < 1.
  """
  real, fake = _pair(real, fake)
  if int(num_permutations) < 1:
    raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
  ks = stats.ks_2samp(real, fake, axis=0)
  rng = np.random.default_rng(seed)
  sub_r = real[rng.choice(real.shape[0], MMD_MAX_SAMPLES, replace=False)] \
      if real.shape[0] > MMD_MAX_SAMPLES else real
  sub_f = fake[rng.choice(fake.shape[0], MMD_MAX_SAMPLES, replace=False)] \
      if fake.shape[0] > MMD_MAX_SAMPLES else fake
  n_x, n = sub_r.shape[0], sub_r.shape[0] + sub_f.shape[0]
  # [P, n] relabellings: the first n_x entries of each random permutation form the x side.
  order = rng.random((int(num_permutations), n)).argsort(axis=1)
  labels = (order < n_x).astype(np.float64)
  mmd = np.empty(real.shape[1])
  mmd_p = np.empty(real.shape[1])
  for d in range(real.shape[1]):
    mmd[d], mmd_p[d] = generative.mmd_permutation_test(sub_r[:, d], sub_f[:, d],
                                                        labels=labels)
  return {"ks_stat": np.asarray(ks.statistic, np.float64),
          "ks_p": np.asarray(ks.pvalue, np.float64), "mmd": mmd, "mmd_p": mmd_p}


# --------------------------------------------------------------------------
# Multiple testing.


def _bh_adjusted(p: np.ndarray) -> np.ndarray:
  """BH-adjusted p-values (q-values) of a 1-D array: min over j >= i of p_(j) K / j, capped 1."""
  k = p.size
  order = np.argsort(p, kind="stable")
  scaled = p[order] * k / np.arange(1, k + 1)
  adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
  out = np.empty(k)
  out[order] = adjusted
  return out


def _check_alpha(alpha: float) -> float:
  alpha = float(alpha)
  if not 0.0 < alpha < 1.0:
    raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
  return alpha


def benjamini_hochberg(pvalues, alpha: float = 0.05) -> np.ndarray:
  """Benjamini-Hochberg step-up procedure.

  With the K p-values sorted, p_(1) <= ... <= p_(K), let k* be the largest k with
  p_(k) <= k·alpha / K; the hypotheses of p_(1), ..., p_(k*) are rejected (none if no such k).

  Args:
    pvalues: [K] p-values in [0, 1].
    alpha: target false discovery rate in (0, 1).

  Returns:
    bool [K], True where the hypothesis is rejected (in the input order).

  Raises:
    ValueError: not 1-D, empty, non-finite, outside [0, 1], or alpha outside (0, 1).
  """
  p = finite_array(pvalues, name="pvalues", ndim=1).astype(np.float64)
  alpha = _check_alpha(alpha)
  if np.any((p < 0) | (p > 1)):
    raise ValueError(f"pvalues must lie in [0, 1]; got min {p.min()}, max {p.max()}")
  k = p.size
  order = np.argsort(p, kind="stable")
  passed = p[order] <= alpha * np.arange(1, k + 1) / k
  reject = np.zeros(k, dtype=bool)
  if passed.any():
    last = int(np.nonzero(passed)[0][-1])
    reject[order[:last + 1]] = True
  return reject


# --------------------------------------------------------------------------
# Direction of a difference: highest-density-region coverage.


def _silverman(x: np.ndarray) -> np.ndarray:
  """Silverman's rule-of-thumb bandwidth per column of x [n, D] -> [D] (positive)."""
  n = x.shape[0]
  std = x.std(axis=0, ddof=1)
  iqr = np.subtract(*np.percentile(x, [75, 25], axis=0)) / 1.349
  scale = np.where(iqr > 0, np.minimum(std, iqr), std)
  h = 0.9 * scale * n ** (-0.2)
  return np.where(h > 0, h, 1e-3 * np.maximum(1.0, np.abs(x).max(axis=0)))


def _kde_on_grid(x: np.ndarray, grid: np.ndarray, h: float) -> np.ndarray:
  """Gaussian KDE of the 1-D sample x [n] at grid [G] with bandwidth h -> [G]."""
  out = np.zeros(grid.size)
  for start in range(0, x.size, 4096):  # bounds the [G, chunk] temporary.
    chunk = x[start:start + 4096]
    out += np.exp(-0.5 * ((grid[:, None] - chunk[None, :]) / h) ** 2).sum(axis=1)
  return out / (x.size * h * math.sqrt(2.0 * math.pi))


def _coverage(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Fractions of each set outside the other's HDR, per feature.

  Args:
    real: [N, D] real features.
    fake: [M, D] synthetic features.

  Returns:
    (real_uncovered [D], fake_uncovered [D]): the fraction of R outside S's `HDR_MASS`
    highest-density region, and of S outside R's.
  """
  h_r, h_f = _silverman(real), _silverman(fake)
  real_uncovered = np.empty(real.shape[1])
  fake_uncovered = np.empty(real.shape[1])
  for d in range(real.shape[1]):
    r, f = real[:, d], fake[:, d]
    pad = 4.0 * max(h_r[d], h_f[d])
    grid = np.linspace(min(r.min(), f.min()) - pad, max(r.max(), f.max()) + pad, KDE_GRID)
    dens_r = _kde_on_grid(r, grid, h_r[d])
    dens_f = _kde_on_grid(f, grid, h_f[d])
    # Density of each set at its own points and at the other set's points.
    r_at_r, f_at_r = np.interp(r, grid, dens_r), np.interp(r, grid, dens_f)
    f_at_f, r_at_f = np.interp(f, grid, dens_f), np.interp(f, grid, dens_r)
    level_r = np.quantile(r_at_r, 1.0 - HDR_MASS)
    level_f = np.quantile(f_at_f, 1.0 - HDR_MASS)
    real_uncovered[d] = np.mean(f_at_r < level_f)
    fake_uncovered[d] = np.mean(r_at_f < level_r)
  return real_uncovered, fake_uncovered


def characterize(real, fake, *, alpha: float = 0.05, seed: int = 0, names=None) -> dict:
  """Classifies every feature as 'common', 'real-only' or 'synthetic-only'.

  The rule (see the module docstring): BH at `alpha` over the 2·D KS and MMD p-values; a
  feature differs if either of its tests is rejected; a differing feature is 'real-only' if
  the fraction of R outside S's 95 % HDR exceeds the fraction of S outside R's, else
  'synthetic-only'.

  Args:
    real: [N, D] real features.
    fake: [M, D] synthetic features.
    alpha: false discovery rate of the BH procedure, in (0, 1).
    seed: seed of the MMD permutation test.
    names: D feature names; default 'f0', 'f1', ...

  Returns:
    A dict with
      'names': list of D str;
      'type': str array [D] of 'common' | 'real-only' | 'synthetic-only';
      'ks_stat', 'ks_p', 'mmd', 'mmd_p': float [D] (see `two_sample_tests`);
      'ks_q', 'mmd_q': float [D] BH-adjusted p-values over the joint family of 2·D tests;
      'ks_reject', 'mmd_reject', 'differs': bool [D] (differs = ks_reject | mmd_reject);
      'real_uncovered', 'fake_uncovered': float [D] HDR coverage fractions;
      'alpha': float.

  Raises:
    ValueError: bad arrays (see `two_sample_tests`), alpha outside (0, 1), or a wrong number
      of names.
  """
  real, fake = _pair(real, fake)
  alpha = _check_alpha(alpha)
  num_features = real.shape[1]
  if names is None:
    names = [f"f{d}" for d in range(num_features)]
  names = [str(n) for n in names]
  if len(names) != num_features:
    raise ValueError(f"names has {len(names)} entries but the data have {num_features} features")
  tests = two_sample_tests(real, fake, seed=seed)
  pvalues = np.concatenate([tests["ks_p"], tests["mmd_p"]])
  reject = benjamini_hochberg(pvalues, alpha)
  q = _bh_adjusted(pvalues)
  ks_reject, mmd_reject = reject[:num_features], reject[num_features:]
  differs = ks_reject | mmd_reject
  real_uncovered, fake_uncovered = _coverage(real, fake)
  kind = np.where(real_uncovered > fake_uncovered, "real-only", "synthetic-only")
  kind = np.where(differs, kind, "common").astype("<U14")
  return {"names": names, "type": kind, **tests,
          "ks_q": q[:num_features], "mmd_q": q[num_features:],
          "ks_reject": ks_reject, "mmd_reject": mmd_reject, "differs": differs,
          "real_uncovered": real_uncovered, "fake_uncovered": fake_uncovered,
          "alpha": alpha}


# --------------------------------------------------------------------------
# Sample-level attribution.


def attribution(x, reference, *, top_k: int = 3) -> dict:
  """Which features make each sample most atypical relative to a reference set.

  Robust z-score per feature: z = (x − median) / scale with the reference's median and
  scale = 1.4826·MAD (σ-consistent for normal data). Where the MAD is 0 (over half the
  reference values tie) the scale falls back to 1.2533 × the mean absolute deviation from the
  median, and then to a floor of 1e-12·max(1, |median|), so z stays finite.

  Args:
    x: [M, D] samples to explain.
    reference: [N, D] reference samples (e.g. the real or the normal training features).
    top_k: features to list per sample, >= 1 (clipped to D).

  Returns:
    {'zscores': [M, D] float, 'top_features': [M, k] int feature indices by |z| descending
    (k = min(top_k, D)), 'atypicality': [M] float, the largest |z| of the sample (so its top
    feature explains it)}.

  Raises:
    ValueError: non-finite input, ranks other than 2, different D, or top_k < 1.
  """
  x = finite_array(x, name="x", ndim=2).astype(np.float64)
  reference = finite_array(reference, name="reference", ndim=2).astype(np.float64)
  if x.shape[1] != reference.shape[1]:
    raise ValueError(f"x has {x.shape[1]} features (shape {x.shape}) but reference has "
                     f"{reference.shape[1]} (shape {reference.shape}); they must match")
  if int(top_k) < 1:
    raise ValueError(f"top_k must be >= 1, got {top_k}")
  median = np.median(reference, axis=0)
  deviation = np.abs(reference - median)
  scale = _MAD_TO_SIGMA * np.median(deviation, axis=0)
  scale = np.where(scale > 0, scale, _MEANAD_TO_SIGMA * deviation.mean(axis=0))
  scale = np.maximum(scale, 1e-12 * np.maximum(1.0, np.abs(median)))
  z = (x - median) / scale
  k = min(int(top_k), x.shape[1])
  top = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :k]
  return {"zscores": z, "top_features": top, "atypicality": np.abs(z).max(axis=1)}


# --------------------------------------------------------------------------
# Reports.


def _fmt(value: float) -> str:
  return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"


def report_markdown(result: dict, *, top_samples: dict | None = None) -> str:
  """A markdown report of a `characterize` result.

  Args:
    result: the dict returned by `characterize`.
    top_samples: optionally the dict returned by `attribution` (with the same features); the
      report then lists its `REPORT_MAX_SAMPLES` most atypical samples with their top
      features and z-scores. An optional 'sample_ids' entry [M] labels the rows (default: the
      row index).

  Returns:
    Markdown text: a table with one row per feature (name, type, KS statistic, KS p with the
    BH decision, MMD², MMD p with the BH decision, and the two coverage fractions).
  """
  names = list(result["names"])
  lines = [
      "## Feature characterization", "",
      f"BH at FDR {result['alpha']:g} over {2 * len(names)} tests (KS and MMD per feature); "
      "a feature differs if either test is rejected. Direction: fraction of R outside S's "
      f"{HDR_MASS:.0%} highest-density region vs fraction of S outside R's.", "",
      "| feature | type | KS stat | KS p (BH decision) | MMD² | MMD p (BH decision) "
      "| R outside S | S outside R |",
      "|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for d, name in enumerate(names):
    ks_p = f"{_fmt(result['ks_p'][d])} ({'reject' if result['ks_reject'][d] else 'keep'})"
    mmd_p = f"{_fmt(result['mmd_p'][d])} ({'reject' if result['mmd_reject'][d] else 'keep'})"
    lines.append(
        f"| {name} | {result['type'][d]} | {result['ks_stat'][d]:.3f} | {ks_p} | "
        f"{_fmt(result['mmd'][d])} | {mmd_p} | {result['real_uncovered'][d]:.3f} | "
        f"{result['fake_uncovered'][d]:.3f} |")
  counts = {t: int(np.sum(np.asarray(result["type"]) == t))
            for t in ("common", "real-only", "synthetic-only")}
  lines += ["", ", ".join(f"{t}: {c}" for t, c in counts.items())]
  if top_samples is not None:
    z = np.asarray(top_samples["zscores"])
    if z.shape[1] != len(names):
      raise ValueError(f"top_samples has {z.shape[1]} features but result has {len(names)}")
    score = np.asarray(top_samples["atypicality"])
    ids = top_samples.get("sample_ids", np.arange(z.shape[0]))
    lines += ["", "## Most atypical samples", "",
              "| sample | atypicality (max abs z) | top features (z) |", "|---|---:|---|"]
    for i in np.argsort(-score, kind="stable")[:REPORT_MAX_SAMPLES]:
      tops = ", ".join(f"{names[j]} ({z[i, j]:+.2f})" for j in top_samples["top_features"][i])
      lines.append(f"| {ids[i]} | {score[i]:.2f} | {tops} |")
  return "\n".join(lines) + "\n"


def report_figure(path: str, real, fake, result: dict, *, max_features: int = 12) -> None:
  """Writes a grid of per-feature histograms of R against S, titled with name and type.

  The differing features come first (most significant KS first), then the common ones, up to
  `max_features` panels; each panel uses bins shared by both sets (density-normalized).

  Args:
    path: PNG file to write.
    real: [N, D] real features.
    fake: [M, D] synthetic features.
    result: the dict returned by `characterize` on the same data.
    max_features: the most panels to draw, >= 1.

  Raises:
    ValueError: bad arrays, a result for a different D, or max_features < 1.
  """
  real, fake = _pair(real, fake)
  names = list(result["names"])
  if len(names) != real.shape[1]:
    raise ValueError(f"result describes {len(names)} features but the data have {real.shape[1]}")
  if int(max_features) < 1:
    raise ValueError(f"max_features must be >= 1, got {max_features}")
  differs = np.asarray(result["differs"], bool)
  order = np.lexsort((np.asarray(result["ks_p"]), ~differs))[:int(max_features)]
  cols = min(4, order.size)
  rows = math.ceil(order.size / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
  for ax in axes.ravel()[order.size:]:
    ax.set_axis_off()
  for ax, d in zip(axes.ravel(), order):
    lo = min(real[:, d].min(), fake[:, d].min())
    hi = max(real[:, d].max(), fake[:, d].max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    ax.hist(real[:, d], bins=bins, density=True, histtype="stepfilled", alpha=0.45,
            color="tab:blue", label="real")
    ax.hist(fake[:, d], bins=bins, density=True, histtype="step", lw=1.2,
            color="tab:orange", label="synthetic")
    ax.set_title(f"{names[d]} ({result['type'][d]})", fontsize=9)
    ax.tick_params(labelsize=7)
  axes[0, 0].legend(fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel("feature value (latent units)", fontsize=7)
  for ax in axes[:, 0]:
    ax.set_ylabel("density", fontsize=7)
  fig.suptitle("Feature characterization, real vs synthetic (proposal's feature-"
               "characterization objective; no published figure)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
