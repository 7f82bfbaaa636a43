"""Times every mlts.metrics function on a long synthetic series; prints one JSON object.

`python -m experiments.bench_metrics --n=427617 --max_window=100`

The series has the length of the concatenated SMAP test set by default, with
anomaly segments of realistic count and length (about 70 segments covering
~13% of the points) and noisy scores that rise inside and near the segments.
Each mlts metric is timed as the best of `--repeats` runs (time.perf_counter).

With `--reference` (default) and the authors' `vus` package importable, the
reference affiliation, Range-AUC and VUS are also timed, once each, on the
first `--reference_n` points (the reference VUS loops in Python over windows,
thresholds and segments, so the full series would take many minutes); the JSON
then gives, per metric, the reference seconds, mlts seconds on the same
points, their ratio and the largest absolute difference of the values.
Without `vus` the reference block says why it was skipped.
"""

from __future__ import annotations

import json
import math
import platform
import time

import numpy as np
from absl import app, flags

from mlts import metrics

FLAGS = flags.FLAGS
flags.DEFINE_integer("n", 427617, "Series length.")
flags.DEFINE_integer("max_window", 100, "VUS max_window and Range-AUC window.")
flags.DEFINE_integer("seed", 0, "Random seed for labels and scores.")
flags.DEFINE_integer("repeats", 3, "Timed runs per mlts metric (best is reported).")
flags.DEFINE_bool("reference", True, "Also time the authors' `vus` package if importable.")
flags.DEFINE_integer("reference_n", 50000, "Series length for the reference timings.")


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Labels [n] int8, scores [n] float64, preds [n] int8."""
  rng = np.random.default_rng(seed)
  n_segments = max(1, round(70 * n / 427617))
  labels = np.zeros(n, dtype=np.int8)
  starts = rng.integers(0, n, n_segments)
  lengths = np.clip(rng.lognormal(mean=6.0, sigma=1.0, size=n_segments), 1, n // 20 + 1)
  for start, length in zip(starts, lengths.astype(int), strict=True):
    labels[start:start + length] = 1
  labels[:3] = 1  # a segment at the very start and one at the very end
  labels[-5:] = 1
  # Scores: noise plus a bump that spills a little around each segment, and
  # a coarse rounding so that ties occur as with real detectors.
  bump = np.convolve(labels.astype(float), np.ones(51) / 51, mode="same")
  scores = np.round(rng.normal(size=n) + 1.5 * bump, 3)
  preds = (scores > np.quantile(scores, 0.9)).astype(np.int8)
  return labels, scores, preds


def mlts_calls(window: int):
  return {
      "pointwise": lambda y, s, p: metrics.pointwise(y, p),
      "point_adjust": lambda y, s, p: metrics.point_adjust(y, p),
      "event_pr": lambda y, s, p: metrics.event_pr(y, p),
      "auroc": lambda y, s, p: metrics.auroc(y, s),
      "auprc": lambda y, s, p: metrics.auprc(y, s),
      "best_f1": lambda y, s, p: metrics.best_f1(y, s),
      "best_f1_point_adjusted": lambda y, s, p: metrics.best_f1(y, s, point_adjusted=True),
      "fpr_at_tpr": lambda y, s, p: metrics.fpr_at_tpr(y, s, tpr=0.95),
      "affiliation": lambda y, s, p: metrics.affiliation(y, p),
      "range_auc": lambda y, s, p: metrics.range_auc(y, s, window=window),
      "vus": lambda y, s, p: metrics.vus(y, s, max_window=window),
  }


def best_time(fn, repeats: int):
  """(best seconds, last result)."""
  best, out = math.inf, None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def reference(y, s, p, window: int, repeats: int) -> dict:
  """Times the `vus` package against mlts on the same (shortened) inputs."""
  try:
    from vus.affiliation.generics import convert_vector_to_events
    from vus.affiliation.metrics import pr_from_events
    from vus.metrics import get_metrics
  except ImportError as e:  # optional: the package drags in heavy dependencies
    return {"skipped": f"vus package not importable ({e})"}

  def ref_affiliation():
    out = pr_from_events(convert_vector_to_events(p), convert_vector_to_events(y),
                         (0, len(y)))
    return [out["Affiliation_Precision"], out["Affiliation_Recall"]]

  def ref_range_auc():
    out = get_metrics(s, y, metric="range_auc", slidingWindow=window)
    return [out["R_AUC_ROC"], out["R_AUC_PR"]]

  def ref_vus():
    out = get_metrics(s, y, metric="vus", slidingWindow=window, version="opt", thre=250)
    return [out["VUS_ROC"], out["VUS_PR"]]

  ours = {
      "affiliation": lambda: [metrics.affiliation(y, p)[k] for k in ("precision", "recall")],
      "range_auc": lambda: [metrics.range_auc(y, s, window)[k] for k in ("roc", "pr")],
      "vus": lambda: [metrics.vus(y, s, window)[k] for k in ("roc", "pr")],
  }
  result = {"n": len(y)}
  for name, ref_fn in (("affiliation", ref_affiliation), ("range_auc", ref_range_auc),
                       ("vus", ref_vus)):
    ref_s, ref_val = best_time(ref_fn, 1)
    our_s, our_val = best_time(ours[name], repeats)
    result[name] = {
        "reference_s": round(ref_s, 4),
        "mlts_s": round(our_s, 4),
        "speedup": round(ref_s / our_s, 1),
        "max_abs_diff": float(np.max(np.abs(np.subtract(ref_val, our_val)))),
    }
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  y, s, p = synthetic(FLAGS.n, FLAGS.seed)
  segs = metrics.segments(y)
  report = {
      "n": FLAGS.n,
      "max_window": FLAGS.max_window,
      "seed": FLAGS.seed,
      "segments": len(segs),
      "anomaly_fraction": round(float(y.mean()), 4),
      "numpy": np.__version__,
      "python": platform.python_version(),
      "mlts_seconds": {},
      "values": {},
  }
  for name, fn in mlts_calls(FLAGS.max_window).items():
    seconds, out = best_time(lambda fn=fn: fn(y, s, p), FLAGS.repeats)
    report["mlts_seconds"][name] = round(seconds, 4)
    if isinstance(out, dict):
      report["values"][name] = {k: round(float(v), 6) for k, v in out.items()}
  if FLAGS.reference:
    m = min(FLAGS.reference_n, FLAGS.n)
    report["reference"] = reference(y[:m], s[:m], p[:m], FLAGS.max_window, FLAGS.repeats)
  print(json.dumps(report))


if __name__ == "__main__":
  app.run(main)
