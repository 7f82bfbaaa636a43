"""Figures written by the pipeline (matplotlib, headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
  """(start, length) of every run of True in a 1-D mask."""
  m = np.concatenate([[False], np.asarray(mask, bool), [False]])
  edges = np.flatnonzero(np.diff(m.astype(np.int8)))
  return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


def _score_panel(ax, t, scores: dict, labels, thresholds: dict, ylabel: str) -> None:
  """Labelled segments shaded; each score with its threshold as a dashed line."""
  ax.fill_between(t, 0, 1, where=labels > 0, color="tab:red", alpha=0.12,
                  transform=ax.get_xaxis_transform(), label="labelled anomaly")
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (name, score) in enumerate(scores.items()):
    color = colors[i % len(colors)]
    ax.plot(t, score, lw=0.8, color=color, label=name)
    thr = thresholds.get(name)
    if thr is not None and np.isfinite(thr):
      ax.axhline(thr, color=color, ls="--", lw=0.9, label=f"{name} threshold")
  ax.set_ylabel(ylabel, fontsize=8)


def _event_strip(ax, t, labels, predictions: dict) -> None:
  """Labelled segments (top row) and each method's predicted events (one row each)."""
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  rows = [("labelled", np.asarray(labels) > 0, "tab:red")] + [
      (f"predicted: {name}", np.asarray(pred) > 0, colors[i % len(colors)])
      for i, (name, pred) in enumerate(predictions.items())]
  for r, (_, mask, color) in enumerate(rows):
    ax.broken_barh([(t[0] + a - 0.5, n) for a, n in _segments(mask)], (-r - 0.4, 0.8),
                   color=color)
  ax.set_yticks([-r for r in range(len(rows))], [name for name, _, _ in rows], fontsize=7)
  ax.set_ylim(-len(rows) + 0.4, 0.6)
  ax.set_xlim(t[0] - 0.5, t[-1] + 0.5)
  for side in ("top", "right", "left"):
    ax.spines[side].set_visible(False)
  ax.tick_params(axis="y", length=0)


def score_traces(path: str, arrays, *, num_series: int = 4, max_methods: int = 4,
                 title: str = "") -> None:
  """Test scores of the first methods against the labels, for a few series.

  Each series gets three rows: the telemetry (z-scored) with the labelled
  anomalies shaded; the validation-calibrated scores with each method's
  threshold as a dashed line; the labelled segments and each method's predicted
  events. Series with labelled anomalies come first.

  Args:
    path: PNG file to write.
    arrays: the contents of scores.npz (a dict or NpzFile): 'channels',
      'series_lengths', 'labels', 'telemetry', 'scores/<method>', and where present
      'preds/<method>' and 'thresholds/<method>' ([S], NaN = none to draw).
    num_series: how many series to show.
    max_methods: how many methods to draw (in the order saved; 'random' skipped).
    title: figure title (e.g. the paper figure it corresponds to).
  """
  lengths = arrays["series_lengths"]
  names = [str(n) for n in arrays["channels"]]
  keys = set(arrays.keys())
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  methods = [k.split("/", 1)[1] for k in arrays.keys() if k.startswith("scores/")]
  methods = [m for m in methods if m != "random"][:max_methods]  # random: in the metrics
  has_anomaly = [arrays["labels"][offsets[k]:offsets[k + 1]].any() for k in range(len(names))]
  chosen = [k for k, a in enumerate(has_anomaly) if a][:num_series]
  chosen = chosen or list(range(min(num_series, len(names))))
  with_preds = [m for m in methods if f"preds/{m}" in keys]
  strip = 0.25 * (len(with_preds) + 1)
  ratios = [1.0, 1.6, strip] * len(chosen)
  fig, axes = plt.subplots(3 * len(chosen), 1, figsize=(12, 1.6 * sum(ratios) + 0.6),
                           squeeze=False, gridspec_kw={"height_ratios": ratios})
  for j, k in enumerate(chosen):
    lo, hi = offsets[k], offsets[k + 1]
    t = np.arange(hi - lo)
    labels = arrays["labels"][lo:hi]
    top, middle, bottom = axes[3 * j, 0], axes[3 * j + 1, 0], axes[3 * j + 2, 0]
    top.fill_between(t, 0, 1, where=labels > 0, color="tab:red", alpha=0.12,
                     transform=top.get_xaxis_transform(), label="labelled anomaly")
    top.plot(t, arrays["telemetry"][lo:hi], color="0.4", lw=0.6, label="telemetry")
    top.set_ylabel("telemetry (z-score)", fontsize=8)
    top.set_title(names[k], fontsize=9)
    top.legend(loc="upper left", fontsize=7)
    top.sharex(bottom)
    middle.sharex(bottom)
    _score_panel(middle, t, {m: arrays[f"scores/{m}"][lo:hi] for m in methods}, labels,
                 {m: float(arrays[f"thresholds/{m}"][k]) for m in methods
                  if f"thresholds/{m}" in keys}, "score (validation-calibrated)")
    middle.legend(loc="upper left", fontsize=7, ncol=2)
    _event_strip(bottom, t, labels, {m: arrays[f"preds/{m}"][lo:hi] for m in with_preds})
    bottom.set_xlabel("test time step", fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
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


def residual_diagnostics(path: str, residuals: dict, *, max_lag: int = 50,
                         title: str = "") -> None:
  """COGNOS Fig. 3 style: residual ACF with the white-noise band, and normal Q-Q plots.

  Args:
    path: PNG file to write.
    residuals: {label (e.g. 'MSE', 'GWNR'): list over series of 1-D residuals}. Each
      series is standardized on its own before pooling; the ACF is averaged over
      series and the band is ±1.96/√N for the median series length N.
    max_lag: largest lag shown.
    title: figure title.
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
    ax.set_xlabel("lag (time steps)")
    ax.set_ylabel("autocorrelation")
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
    ax.set_ylabel("residual quantile (standardized)")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def score_comparison(path: str, traces: dict, labels: np.ndarray, *, title: str = "",
                     margin: int = 300, thresholds: dict | None = None,
                     predictions: dict | None = None) -> None:
  """Score traces (e.g. raw r² vs ARKS) around the first labelled anomaly of a series.

  Args:
    path: PNG file to write.
    traces: {label: [T] score}, one panel each.
    labels: [T] test labels of the series (at least one anomaly).
    title: figure title (e.g. the channel and the paper figure it corresponds to).
    margin: steps shown before and after the anomaly.
    thresholds: {label: threshold on that score's scale}, drawn dashed (optional).
    predictions: {label: [T] 0/1 predictions}; with them, a last row shows each
      trace's predicted events beside the labelled segments (optional).
  """
  thresholds, predictions = thresholds or {}, predictions or {}
  labels = np.asarray(labels)
  idx = np.flatnonzero(labels)
  first_end = idx[0] + int(np.argmax(np.diff(np.append(idx, idx[-1] + 2)) > 1))
  lo, hi = max(idx[0] - margin, 0), min(first_end + margin + 1, len(labels))
  t = np.arange(lo, hi)
  shown = {k: v for k, v in predictions.items() if k in traces}
  ratios = [1.0] * len(traces) + ([0.2 * (len(shown) + 1)] if shown else [])
  fig, axes = plt.subplots(len(ratios), 1, figsize=(11, 2.2 * sum(ratios) + 0.4),
                           squeeze=False, sharex=True, gridspec_kw={"height_ratios": ratios})
  for ax, (label, score) in zip(axes[:, 0], traces.items()):
    _score_panel(ax, t, {label: np.asarray(score)[lo:hi]}, labels[lo:hi],
                 {label: thresholds[label]} if label in thresholds else {}, "score")
    ax.legend(fontsize=7, loc="upper left")
  if shown:
    _event_strip(axes[-1, 0], t, labels[lo:hi],
                 {k: np.asarray(v)[lo:hi] for k, v in shown.items()})
  axes[0, 0].set_title(title, fontsize=9)
  axes[-1, 0].set_xlabel("test time step")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def metric_sweep(path: str, values, rows, metrics, *, marked=None, xlabel: str,
                 title: str = "") -> None:
  """Metrics against one swept setting (e.g. COGNOS Fig. 4: ARKS confidence).

  Args:
    path: PNG file to write.
    values: [K] settings (x axis, in the order given).
    rows: [K] dicts {metric: value or None}, one per setting.
    metrics: the keys of `rows` to draw, one line each.
    marked: a setting to mark with a vertical line (the default), or None.
    xlabel: the x axis label (name and unit of the setting).
    title: figure title.
  """
  x = np.arange(len(values))
  fig, ax = plt.subplots(figsize=(7, 3.8))
  for metric in metrics:
    y = [np.nan if r.get(metric) is None else r[metric] for r in rows]
    ax.plot(x, y, marker="o", lw=1.0, label=metric)
  if marked is not None and marked in list(values):
    ax.axvline(list(values).index(marked), color="0.5", ls=":", lw=1.0, label="default")
  ax.set_xticks(x, [f"{v:g}" for v in values])
  ax.set_xlabel(xlabel)
  ax.set_ylabel("metric value (pooled over channels)")
  ax.set_ylim(0.0, 1.0)
  ax.legend(fontsize=7, ncol=3)
  if title:
    ax.set_title(title, fontsize=9)
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
