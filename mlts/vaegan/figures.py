"""Figures for β-VAEGAN (papers/001): χ fit of latent norms, reconstructions, score components.

* `chi_figure`: paper Fig. 4. One panel per β (side by side), each a density
  histogram of the training latent norms ‖z‖₂ with the χ_dim pdf overlaid and the
  KS statistic / p-value of `composition.chi_check` in the title.
* `reconstruction_figure`: paper Fig. 3. Real (solid) and reconstructed (dashed)
  windows, normal class on top, abnormal class below, each titled with its MSE.
* `error_heatmap`: paper Fig. 1. The absolute reconstruction error |x − x̂| of
  channel 0 as an image (window × time step), normal windows beside abnormal
  ones on one colour scale.
* `composition_figure`: the min–max scaled score components (R, D, L) plotted
  pairwise, normal blue and abnormal red (a class histogram for one component).

Every function validates its input (ValueError naming the offending argument),
creates the parent directories of `path`, writes a PNG there and closes the figure.
"""

from __future__ import annotations

import itertools
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from mlts import checks  # noqa: E402
from mlts.vaegan import composition  # noqa: E402

_NORMAL_COLOR = "tab:blue"
_ABNORMAL_COLOR = "tab:red"


def _save(fig, path: str) -> None:
  """Writes `fig` to `path` (creating parent directories) and closes it."""
  parent = os.path.dirname(os.fspath(path))
  if parent:
    os.makedirs(parent, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def _check_dim(dim) -> int:
  if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
    raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
  return int(dim)


# ----------------------------------------------------------------------------
# Fig. 4: χ fit of the latent norms.


def _latent_norms(values, label: str) -> np.ndarray:
  name = f"norms[{label!r}]"
  v = checks.finite_array(values, name=name, ndim=1).astype(np.float64)
  if (v < 0).any():
    first = int(np.argmax(v < 0))
    raise ValueError(f"{name}: latent norms must be >= 0; found {v[first]!r} at index {first}")
  if len(v) < 2:
    raise ValueError(f"{name}: need at least 2 norms for the KS test, got {len(v)}")
  return v


def chi_figure(path: str, norms: dict[str, np.ndarray], dim: int, *,
               bins: int = 50, title: str = "") -> dict[str, dict]:
  """Latent-norm histograms against the χ_dim pdf, one panel per entry (paper Fig. 4).

  Under z ~ N(0, I_dim) the norm ‖z‖₂ follows χ_dim; each panel's title holds the
  label and the KS statistic and p-value of `composition.chi_check`.

  Args:
    path: PNG file to write (parent directories are created).
    norms: {label (e.g. 'β = 1e-4'): [N] latent norms ‖z‖₂ of training windows},
      each finite, non-negative, N >= 2. Panels appear in the dict's order.
    dim: latent dimension (degrees of freedom of χ), >= 1.
    bins: histogram bins per panel, >= 1.
    title: figure title.

  Returns:
    {label: `composition.chi_check` result}: dicts with float `statistic`,
    `pvalue` and int `dim`, `n`.

  Raises:
    ValueError: `norms` empty; a norm vector not 1-D, non-finite, negative or
      shorter than 2 (the message names its label); `dim` or `bins` < 1.
  """
  if not isinstance(norms, dict) or not norms:
    raise ValueError("norms: expected a non-empty dict {label: [N] latent norms}")
  dim = _check_dim(dim)
  if isinstance(bins, bool) or int(bins) < 1:
    raise ValueError(f"bins must be >= 1, got {bins!r}")
  values = {str(label): _latent_norms(v, str(label)) for label, v in norms.items()}
  results = {label: composition.chi_check(v, dim) for label, v in values.items()}

  chi = stats.chi(df=dim)
  fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 3.4), squeeze=False)
  for ax, (label, v) in zip(axes[0], values.items()):
    res = results[label]
    ax.hist(v, bins=int(bins), density=True, color=_NORMAL_COLOR, alpha=0.6,
            label="latent norms")
    hi = max(float(v.max()), float(chi.ppf(0.999)))
    x = np.linspace(0.0, hi, 400)
    ax.plot(x, chi.pdf(x), color=_ABNORMAL_COLOR, lw=1.2, label=f"χ pdf, {dim} dof")
    ax.set_title(f"{label}\nKS = {res['statistic']:.4f}, p = {res['pvalue']:.3g}",
                 fontsize=9)
    ax.set_xlabel("latent norm ‖z‖₂ (latent units)")
    ax.set_ylabel("probability density")
    ax.legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=10)
  _save(fig, path)
  return results


# ----------------------------------------------------------------------------
# Fig. 3: real and reconstructed windows.


def _windows(x, name: str) -> np.ndarray:
  return checks.finite_array(x, name=name, ndim=3, allow_empty=True).astype(np.float64)


def _paired_windows(real, recon, name: str) -> tuple[np.ndarray, np.ndarray]:
  x = _windows(real, name)
  x_hat = _windows(recon, f"{name}_hat")
  if x.shape != x_hat.shape:
    raise ValueError(
        f"{name} has shape {x.shape} but {name}_hat has shape {x_hat.shape}; they must match")
  return x, x_hat


def reconstruction_figure(path: str, normal: np.ndarray, normal_hat: np.ndarray,
                          abnormal: np.ndarray, abnormal_hat: np.ndarray, *,
                          title: str = "", max_windows: int = 4) -> None:
  """Real and reconstructed windows: normal class on top, abnormal below (paper Fig. 3).

  The first `max_windows` windows of each set are drawn (shuffle beforehand for a
  random selection); only the first channel is plotted, real solid and
  reconstruction dashed. Each subplot is titled with the window's MSE over all
  time steps AND all channels, i.e. the score R(x).

  Args:
    path: PNG file to write (parent directories are created).
    normal: [N, L, C] normal-class windows; N may be 0 ("no windows" note).
    normal_hat: [N, L, C] their reconstructions.
    abnormal: [M, L', C'] abnormal-class windows; M may be 0.
    abnormal_hat: [M, L', C'] their reconstructions.
    title: figure title.
    max_windows: windows per row, >= 1.

  Raises:
    ValueError: an array not 3-D or non-finite; `normal` and `normal_hat` (or
      `abnormal` and `abnormal_hat`) of different shapes; `max_windows` < 1.
  """
  if isinstance(max_windows, bool) or int(max_windows) < 1:
    raise ValueError(f"max_windows must be >= 1, got {max_windows!r}")
  rows = [("normal", *_paired_windows(normal, normal_hat, "normal"), _NORMAL_COLOR),
          ("abnormal", *_paired_windows(abnormal, abnormal_hat, "abnormal"), _ABNORMAL_COLOR)]
  ncols = max(1, min(int(max_windows), max(len(x) for _, x, _, _ in rows)))
  fig, axes = plt.subplots(2, ncols, figsize=(3.2 * ncols, 5.2), squeeze=False)
  for r, (name, x, x_hat, color) in enumerate(rows):
    shown = min(len(x), ncols)
    for c in range(ncols):
      ax = axes[r, c]
      if c >= shown:
        ax.axis("off")
        if c == 0:
          ax.text(0.5, 0.5, f"no {name} windows", ha="center", va="center",
                  transform=ax.transAxes, fontsize=9)
        continue
      mse = float(np.mean((x[c] - x_hat[c]) ** 2))
      t = np.arange(x.shape[1])
      ax.plot(t, x[c, :, 0], color=color, lw=1.0, label="real")
      ax.plot(t, x_hat[c, :, 0], color="0.2", lw=1.0, ls="--", label="reconstruction")
      ax.set_title(f"{name} {c}: MSE = {mse:.4g}", fontsize=8)
      if c == 0:
        ax.set_ylabel(f"{name} (channel 0)", fontsize=8)
        ax.legend(fontsize=6, loc="best")
  if title:
    fig.suptitle(title, fontsize=10)
  _save(fig, path)


def error_heatmap(path: str, normal: np.ndarray, normal_hat: np.ndarray,
                  abnormal: np.ndarray, abnormal_hat: np.ndarray, *, title: str = "",
                  max_windows: int = 32) -> None:
  """|x − x̂| of channel 0 as heat maps, normal windows left, abnormal right (paper Fig. 1).

  Rows are windows (the first `max_windows` of each set), columns time steps; both
  panels share one colour scale, so a brighter abnormal panel is a larger error.

  Args:
    path: PNG file to write (parent directories are created).
    normal, normal_hat: [N, L, C] normal-class windows and their reconstructions.
    abnormal, abnormal_hat: [M, L, C] abnormal-class windows and reconstructions.
    title: figure title.
    max_windows: rows per panel, >= 1.

  Raises:
    ValueError: as `reconstruction_figure`, or both sets empty.
  """
  if isinstance(max_windows, bool) or int(max_windows) < 1:
    raise ValueError(f"max_windows must be >= 1, got {max_windows!r}")
  panels = []
  for name, (x, x_hat) in (("normal", _paired_windows(normal, normal_hat, "normal")),
                           ("abnormal", _paired_windows(abnormal, abnormal_hat, "abnormal"))):
    panels.append((name, np.abs(x[:int(max_windows), :, 0] - x_hat[:int(max_windows), :, 0])))
  if all(e.size == 0 for _, e in panels):
    raise ValueError("error_heatmap: no normal and no abnormal windows")
  vmax = max(float(e.max()) for _, e in panels if e.size)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
  image = None
  for ax, (name, err) in zip(axes[0], panels):
    if err.size == 0:
      ax.axis("off")
      ax.text(0.5, 0.5, f"no {name} windows", ha="center", va="center", transform=ax.transAxes)
      continue
    image = ax.imshow(err, aspect="auto", cmap="magma", vmin=0.0, vmax=vmax,
                      interpolation="nearest")
    ax.set_title(f"{name} test windows: mean |x − x̂| = {err.mean():.3g}", fontsize=9)
    ax.set_xlabel("time step in window")
    ax.set_ylabel("window")
  fig.colorbar(image, ax=axes[0].tolist(), label="|x − x̂| (channel 0, data units)")
  fig.suptitle(title or "absolute reconstruction error (β-VAEGAN paper Fig. 1 counterpart)",
               fontsize=10)
  parent = os.path.dirname(os.fspath(path))
  if parent:
    os.makedirs(parent, exist_ok=True)
  fig.savefig(path, dpi=90)  # no tight_layout: the shared colour bar
  plt.close(fig)


# ----------------------------------------------------------------------------
# Score components.


def composition_figure(path: str, scores: dict[str, np.ndarray], labels: np.ndarray, *,
                       title: str = "") -> None:
  """Pairwise scatter of min–max scaled score components, normal blue / abnormal red.

  Each component is scaled to [0, 1] with its own min and max over the given
  samples (`composition.MinMax`). With k >= 2 components there is one panel per
  pair in the dict's order (R vs D, R vs L, D vs L for {'R', 'D', 'L'}); with one
  component, a histogram of it per class.

  Args:
    path: PNG file to write (parent directories are created).
    scores: {name (e.g. 'R', 'D', 'L'): [N] score component}, non-empty, finite.
    labels: [N] {0, 1} labels (1 = abnormal).
    title: figure title.

  Raises:
    ValueError: `scores` empty; a component not 1-D or non-finite; components or
      `labels` of different lengths; labels outside {0, 1}.
  """
  if not isinstance(scores, dict) or not scores:
    raise ValueError("scores: expected a non-empty dict {name: [N] score component}")
  names = [str(k) for k in scores]
  comps = [checks.finite_array(v, name=f"scores[{k!r}]", ndim=1).astype(np.float64)
           for k, v in zip(names, scores.values())]
  y = checks.binary_vector(labels, name="labels")
  for k, v in zip(names, comps):
    checks.same_length(v, y, names=(f"scores[{k!r}]", "labels"))
  scaled = [composition.MinMax.fit(v).apply(v) for v in comps]
  normal, abnormal = y == 0, y == 1
  classes = [(normal, _NORMAL_COLOR, f"normal ({int(normal.sum())})"),
             (abnormal, _ABNORMAL_COLOR, f"abnormal ({int(abnormal.sum())})")]

  if len(scaled) == 1:
    fig, axes = plt.subplots(1, 1, figsize=(4.6, 3.6), squeeze=False)
    ax = axes[0, 0]
    edges = np.linspace(0.0, 1.0, 31)
    for mask, color, label in classes:
      if mask.any():
        ax.hist(scaled[0][mask], bins=edges, density=True, color=color, alpha=0.5,
                label=label)
    ax.set_xlabel(f"{names[0]} (min–max scaled)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
  else:
    pairs = list(itertools.combinations(range(len(scaled)), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
      for mask, color, label in classes:
        if mask.any():
          ax.scatter(scaled[i][mask], scaled[j][mask], s=6, color=color, alpha=0.6,
                     label=label, edgecolors="none")
      ax.set_xlabel(f"{names[i]} (min–max scaled)")
      ax.set_ylabel(f"{names[j]} (min–max scaled)")
      ax.set_title(f"{names[i]} vs {names[j]}", fontsize=9)
    axes[0, 0].legend(fontsize=7, markerscale=2)
  if title:
    fig.suptitle(title, fontsize=10)
  _save(fig, path)
