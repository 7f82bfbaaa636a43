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
