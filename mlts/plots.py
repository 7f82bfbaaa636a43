"""Figures written by the pipeline (matplotlib, headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def score_traces(path: str, arrays, *, num_series: int = 4) -> None:
  """Plots the scores of every method against the labels for a few series.

  Picks the series with labelled anomalies first (in order), up to `num_series`.

  Args:
    path: PNG file to write.
    arrays: the contents of scores.npz (a dict or NpzFile): 'channels',
      'series_lengths', 'labels', 'telemetry', 'scores/<method>'.
    num_series: how many series to show.
  """
  lengths = arrays["series_lengths"]
  names = [str(n) for n in arrays["channels"]]
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  methods = [k.split("/", 1)[1] for k in arrays.keys() if k.startswith("scores/")]
  has_anomaly = [arrays["labels"][offsets[k]:offsets[k + 1]].any() for k in range(len(names))]
  chosen = [k for k, a in enumerate(has_anomaly) if a][:num_series]
  chosen = chosen or list(range(min(num_series, len(names))))
  fig, axes = plt.subplots(len(chosen), 1, figsize=(12, 2.6 * len(chosen)), squeeze=False)
  for ax, k in zip(axes[:, 0], chosen):
    lo, hi = offsets[k], offsets[k + 1]
    t = np.arange(hi - lo)
    labels = arrays["labels"][lo:hi]
    ax.fill_between(t, 0, 1, where=labels > 0, color="tab:red", alpha=0.15,
                    transform=ax.get_xaxis_transform(), label="labelled anomaly")
    ax.plot(t, arrays["telemetry"][lo:hi], color="0.6", lw=0.6, label="telemetry (z)")
    for method in methods:
      s = arrays[f"scores/{method}"][lo:hi]
      if method == "random":
        continue  # noise, shown in the metrics instead
      ax.plot(t, s, lw=0.8, label=f"{method} score")
    ax.set_title(names[k], fontsize=9)
    ax.set_yscale("symlog")
  axes[0, 0].legend(loc="upper left", fontsize=7, ncol=4)
  axes[-1, 0].set_xlabel("test time step")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
  """Sample autocorrelation at lags 1..max_lag of a 1-D series (FFT, biased estimator)."""
  x = np.asarray(x, np.float64) - np.mean(x)
  n = len(x)
  spectrum = np.fft.rfft(x, 2 * n)
  acov = np.fft.irfft(spectrum * np.conj(spectrum))[:max_lag + 1]
  return acov[1:] / max(acov[0], 1e-300)


def residual_diagnostics(path: str, residuals: dict, *, max_lag: int = 50) -> None:
  """COGNOS Fig. 3 style: residual ACF with the white-noise band, and normal Q-Q plots.

  Args:
    path: PNG file to write.
    residuals: {label (e.g. 'MSE', 'GWNR'): list over series of 1-D residuals}. Each
      series is standardized on its own before pooling; the ACF is averaged over
      series and the band is ±1.96/√N for the median series length N.
    max_lag: largest lag shown.
  """
  from scipy import stats

  labels = list(residuals)
  fig, axes = plt.subplots(2, len(labels), figsize=(4.5 * len(labels), 6), squeeze=False)
  for col, label in enumerate(labels):
    series = [np.asarray(r, np.float64) for r in residuals[label] if len(r) > max_lag + 1]
    acf = np.mean([_acf(r, max_lag) for r in series], axis=0)
    band = 1.96 / np.sqrt(np.median([len(r) for r in series]))
    ax = axes[0, col]
    ax.bar(np.arange(1, max_lag + 1), acf, width=0.8, color="tab:blue")
    ax.axhspan(-band, band, color="tab:red", alpha=0.15, label="95% white-noise band")
    ax.set_title(f"{label}: residual ACF (mean over series)", fontsize=9)
    ax.set_xlabel("lag")
    ax.legend(fontsize=7)
    pooled = np.concatenate([(r - r.mean()) / max(r.std(), 1e-12) for r in series])
    if pooled.size > 20000:  # a readable plot; quantiles of a subsample are the same
      pooled = np.sort(pooled)[np.linspace(0, pooled.size - 1, 20000).astype(int)]
    theoretical, ordered = stats.probplot(pooled, dist="norm", fit=False)
    ax = axes[1, col]
    ax.plot(theoretical, ordered, ".", ms=1.5)
    lim = [theoretical.min(), theoretical.max()]
    ax.plot(lim, lim, color="tab:red", lw=0.8)
    ax.set_title(f"{label}: normal Q-Q of standardized residuals", fontsize=9)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("residual quantile")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def score_comparison(path: str, traces: dict, labels: np.ndarray, *, title: str = "",
                     margin: int = 300) -> None:
  """Score traces (e.g. raw r² vs ARKS) around the first labelled anomaly of a series.

  Args:
    path: PNG file to write.
    traces: {label: [T] score}.
    labels: [T] test labels of the series (at least one anomaly).
    title: figure title (e.g. the channel).
    margin: steps shown before and after the anomaly.
  """
  idx = np.flatnonzero(labels)
  first_end = idx[0] + int(np.argmax(np.diff(np.append(idx, idx[-1] + 2)) > 1))
  lo, hi = max(idx[0] - margin, 0), min(first_end + margin + 1, len(labels))
  t = np.arange(lo, hi)
  fig, axes = plt.subplots(len(traces), 1, figsize=(11, 2.2 * len(traces)), squeeze=False,
                           sharex=True)
  for ax, (label, score) in zip(axes[:, 0], traces.items()):
    ax.fill_between(t, 0, 1, where=labels[lo:hi] > 0, color="tab:red", alpha=0.15,
                    transform=ax.get_xaxis_transform(), label="labelled anomaly")
    ax.plot(t, np.asarray(score)[lo:hi], lw=0.8)
    ax.set_ylabel(label, fontsize=8)
  axes[0, 0].set_title(title, fontsize=9)
  axes[0, 0].legend(fontsize=7, loc="upper left")
  axes[-1, 0].set_xlabel("test time step")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def eigenmap_scatter(path: str, eig, groups: dict, *, title: str) -> None:
  """Scatter of a fitted 2-D Laplacian eigenmap, one colour per group of points.

  Args:
    path: PNG file to write.
    eig: a fitted `latent.LaplacianEigenmap` with 2 components; new points go
      through its Nyström extension (`transform`).
    groups: label -> (points [N, D], matplotlib colour), drawn in order; empty
      groups are skipped.
    title: the figure title.
  """
  fig, ax = plt.subplots(figsize=(6.5, 5.5))
  for label, (x, colour) in groups.items():
    if x.shape[0]:
      e = eig.transform(x)
      ax.scatter(e[:, 0], e[:, 1], s=4, c=colour, label=label, alpha=0.6)
  ax.set_xlabel("eigenmap 1")
  ax.set_ylabel("eigenmap 2")
  ax.set_title(title)
  ax.legend(markerscale=3, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def generation_windows(path: str, real: np.ndarray, fakes: dict, *, title: str = "",
                       num_windows: int = 6, max_points: int = 2000) -> None:
  """Real vs generated windows, and a PCA projection of both (Diffusion-TS's Fig. 4 kind).

  Row 1: `num_windows` real windows' first feature; then one row per
  generator (its first windows). Last panel row: the real and each generator's
  windows (flattened [N, L·F]) projected on the first two principal
  components of the real ones (at most `max_points` each).

  Args:
    path: PNG file to write.
    real: [N, L, F] real windows in [0, 1].
    fakes: {name: [M, L, F] generated windows}.
  """
  names = list(fakes)
  cols = max(len(names), 1)
  fig, axes = plt.subplots(2, cols + 1, figsize=(3.2 * (cols + 1), 5.6), squeeze=False)
  t = np.arange(real.shape[1])
  for j, (name, data) in enumerate([("real", real)] + [(n, fakes[n]) for n in names]):
    ax = axes[0, j]
    for w in data[:num_windows]:
      ax.plot(t, w[:, 0], lw=0.9)
    ax.set_title(f"{name}: feature 0", fontsize=9)
    ax.set_xlabel("time step")
    ax.set_ylabel("value (min–max scaled)")
    ax.set_ylim(-0.05, 1.05)
  flat = real.reshape(real.shape[0], -1)[:max_points].astype(np.float64)
  mean = flat.mean(axis=0)
  _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
  proj = lambda x: (x.reshape(x.shape[0], -1)[:max_points] - mean) @ vt[:2].T  # noqa: E731
  pr = proj(real)
  for j, name in enumerate(names):
    ax = axes[1, j]
    pf = proj(fakes[name])
    ax.scatter(pr[:, 0], pr[:, 1], s=3, alpha=0.4, label="real")
    ax.scatter(pf[:, 0], pf[:, 1], s=3, alpha=0.4, label=name)
    ax.set_title(f"PCA of windows: real vs {name}", fontsize=9)
    ax.set_xlabel("PC 1 of real windows")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7, markerscale=3)
  for j in range(len(names), cols + 1):
    axes[1, j].axis("off")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
