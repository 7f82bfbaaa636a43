"""From per-time-step scores to thresholds and the full metric report.

Thresholds are fit on validation scores (normal data) only; test labels enter
only `evaluate`, which computes every metric of `mlts.metrics` for one labelled
series. Oracle metrics (best-F1 over all thresholds) are named as such.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import ml_collections
import numpy as np
from absl import logging

from mlts import checks, metrics

RANKING = ("auroc", "auprc", "best_f1_oracle", "best_f1_pa_oracle", "affiliation",
           "range_auc", "vus", "fpr_at_95tpr")


@dataclasses.dataclass(frozen=True)
class ScoreCalibration:
  """Per-series affine score normalization and threshold fit on validation scores.

  Attributes:
    center: subtracted from scores (0 without score normalization).
    scale: scores are divided by it (1 without score normalization).
    threshold: threshold on the normalized scale.
  """
  center: float
  scale: float
  threshold: float

  def normalize(self, scores) -> np.ndarray:
    return (np.asarray(scores, dtype=np.float64) - self.center) / self.scale


THRESHOLDS = ("quantile", "sigma", "dynamic")
SCORE_NORMALIZATIONS = ("none", "validation")


def validate_config(config: ml_collections.ConfigDict, *, where: str = "eval") -> None:
  """Checks the `eval` section; ValueError names the field, the value and what is allowed."""
  if "batch_size" in config:
    checks.config_int(config, "batch_size", where=where, minimum=1)
  checks.config_choice(config, "score_normalization", SCORE_NORMALIZATIONS, where=where)
  checks.config_choice(config, "threshold", THRESHOLDS, where=where)
  checks.config_float(config, "threshold_quantile", where=where, low=0.0, high=1.0,
                      low_open=True, high_open=True)
  checks.config_float(config, "threshold_sigma", where=where)
  checks.config_float(config, "min_score_scale", where=where, low=0.0, low_open=True)
  for field in ("range_window", "vus_max_window", "num_plot_series"):
    if field in config:
      checks.config_int(config, field, where=where, minimum=0)


def calibrate(val_scores, config: ml_collections.ConfigDict, *, name: str = "validation scores"
              ) -> ScoreCalibration:
  """Fits the normalization and threshold of one series on its validation scores.

  With `score_normalization='validation'` scores are shifted and scaled by the
  validation mean and std of the series before they are pooled across series;
  with 'none' they are pooled as they are (the data are already z-scored per
  channel, so reconstruction errors and |z| share a scale across channels). The
  threshold is per series either way, so predictions do not depend on this
  choice; only pooled ranking metrics do.

  Args:
    val_scores: [V] scores of normal validation steps.
    config: the `eval` section: score_normalization ('none' | 'validation'),
      threshold ('quantile' | 'sigma' | 'dynamic'), threshold_quantile,
      threshold_sigma, min_score_scale. With 'dynamic' the recorded threshold
      is the validation quantile; predictions come from `predictions`, which
      applies `mlts.thresholds` to the scored series itself.

  Returns:
    A `ScoreCalibration`.
  """
  v = checks.finite_array(val_scores, name=name, ndim=1)
  if config.threshold in ("quantile", "dynamic"):  # 'dynamic' predicts with `predictions`
    raw_threshold = float(np.quantile(v, config.threshold_quantile))
  elif config.threshold == "sigma":  # mean + k std of the validation scores
    raw_threshold = float(v.mean() + config.threshold_sigma * v.std())
  else:
    raise ValueError(f"unknown threshold rule {config.threshold!r}; expected quantile or sigma")
  if config.score_normalization == "validation":
    center, scale = float(v.mean()), float(max(v.std(), config.min_score_scale))
  elif config.score_normalization == "none":
    center, scale = 0.0, 1.0
  else:
    raise ValueError(f"unknown score_normalization {config.score_normalization!r}; "
                     "expected none or validation")
  threshold = (raw_threshold - center) / scale
  return ScoreCalibration(center=center, scale=scale, threshold=threshold)


def predictions(scores, calibration: ScoreCalibration,
                config: ml_collections.ConfigDict) -> np.ndarray:
  """int8 [T] predictions of normalized scores [T] under the rule `config.threshold`.

  'quantile' / 'sigma': above the validation threshold of `calibration`;
  'dynamic': telemanom's label-free threshold of these scores
  (`mlts.thresholds`, settings `config.dynamic`, default when absent).
  """
  if config.threshold == "dynamic":
    from mlts import thresholds
    return thresholds.dynamic_predict(scores, config.get("dynamic") or None)
  return (np.asarray(scores) >= calibration.threshold).astype(np.int8)


def evaluate(labels, scores, preds, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Every metric for one labelled series.

  Args:
    labels: [T] ground truth in {0, 1}.
    scores: [T] anomaly scores (higher = more anomalous).
    preds: [T] predictions at the validation threshold.
    config: the `eval` section: range_window, vus_max_window.

  Returns:
    A JSON-ready dict. Ranking metrics are None (with a reason under 'skipped')
    when the labels hold only one class.
  """
  labels = checks.binary_vector(labels, name="labels")
  preds = checks.binary_vector(preds, name="preds")
  scores = checks.finite_array(scores, name="scores", ndim=1)
  checks.same_length(labels, scores, names=("labels", "scores"))
  checks.same_length(labels, preds, names=("labels", "preds"))
  out: dict[str, Any] = {
      "num_points": int(labels.size),
      "num_anomalous": int(labels.sum()),
      "num_predicted": int(preds.sum()),
      "pointwise": metrics.pointwise(labels, preds),
      "point_adjusted": metrics.pointwise(labels, metrics.point_adjust(labels, preds)),
      "event": metrics.event_pr(labels, preds),
  }
  if labels.min() == labels.max():
    out.update({k: None for k in RANKING})
    out["skipped"] = "labels hold one class only: ranking metrics are undefined"
    return _jsonable(out)
  out["auroc"] = metrics.auroc(labels, scores)
  out["auprc"] = metrics.auprc(labels, scores)
  out["best_f1_oracle"] = metrics.best_f1(labels, scores)
  out["best_f1_pa_oracle"] = metrics.best_f1(labels, scores, point_adjusted=True)
  out["affiliation"] = metrics.affiliation(labels, preds)
  out["range_auc"] = metrics.range_auc(labels, scores, window=config.range_window)
  out["vus"] = metrics.vus(labels, scores, max_window=config.vus_max_window)
  out["fpr_at_95tpr"] = metrics.fpr_at_tpr(labels, scores, tpr=0.95)
  return _jsonable(out)


def _jsonable(tree):
  """Converts NumPy scalars to Python floats/ints; NaN becomes None (JSON has no NaN)."""
  if isinstance(tree, dict):
    return {k: _jsonable(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [_jsonable(v) for v in tree]
  if isinstance(tree, (np.integer,)):
    return int(tree)
  if isinstance(tree, (float, np.floating)):
    value = float(tree)
    return None if not np.isfinite(value) else value
  return tree


def summary_row(report: dict[str, Any]) -> dict[str, Any]:
  """The headline numbers of an `evaluate` report, flat, for tables."""
  def get(*path):
    node = report
    for p in path:
      if node is None:
        return None
      node = node.get(p)
    return node
  return {
      "F1": get("pointwise", "f1"),
      "P": get("pointwise", "precision"),
      "R": get("pointwise", "recall"),
      "MCC": get("pointwise", "mcc"),
      "PA-F1": get("point_adjusted", "f1"),
      "AUROC": get("auroc"),
      "AUPRC": get("auprc"),
      "best-F1 (oracle)": get("best_f1_oracle", "f1"),
      "Aff-F1": get("affiliation", "f1"),
      "R-AUC-ROC": get("range_auc", "roc"),
      "R-AUC-PR": get("range_auc", "pr"),
      "VUS-ROC": get("vus", "roc"),
      "VUS-PR": get("vus", "pr"),
      "FPR@95TPR": get("fpr_at_95tpr"),
      "event-F1": get("event", "f1"),
  }


def mean_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
  """Column means of summary rows, skipping None (undefined) entries; {} for no rows."""
  if not rows:
    return {}
  out = {}
  for column in rows[0]:
    values = [r[column] for r in rows if r[column] is not None]
    out[column] = float(np.mean(values)) if values else None
  return out


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
  """Renders {method: summary_row} as a markdown table (None shown as '–')."""
  methods = list(rows)
  columns = list(next(iter(rows.values())))
  lines = ["| method | " + " | ".join(columns) + " |",
           "|---|" + "---|" * len(columns)]
  for method in methods:
    cells = ["–" if rows[method][c] is None else f"{rows[method][c]:.3f}" for c in columns]
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def baseline_scores(prepared: Sequence, seed: int) -> dict:
  """The two reference scores of every report: |z-scored telemetry| and a uniform random score."""
  rng = np.random.default_rng(seed)
  return {
      "abs_telemetry": [(np.abs(p.val[:, 0]), np.abs(p.test[:, 0])) for p in prepared],
      "random": [(rng.random(p.val.shape[0]), rng.random(p.test.shape[0])) for p in prepared],
  }


def protocol(config: ml_collections.ConfigDict, prepared: Sequence) -> dict:
  """A JSON description of the evaluation protocol, stored beside every result."""
  return {
      "channels": [p.name for p in prepared],
      "features": config.data.get("features", None),
      "window": config.data.window,
      "validation": f"last {config.data.val_fraction:.0%} of each channel's training series",
      "normalization": f"{config.data.normalization} per channel, fit-part statistics",
      "threshold": (f"per channel, {config.eval.threshold} rule on validation scores "
                    "(no test labels)"),
      "oracle": "best_f1_oracle / best_f1_pa_oracle use test labels to pick the threshold",
  }


def evaluate_methods(prepared: Sequence, raw_scores: dict,
                     config: ml_collections.ConfigDict) -> tuple[dict, dict[str, np.ndarray]]:
  """Calibrates, thresholds and evaluates every method per series and pooled.

  Args:
    prepared: the series (for names and labels).
    raw_scores: {method: [(val [V_k], test [T_k]) per series]}.
    config: the `eval` section.

  Returns:
    (results with 'methods' -> {method: {'overall', 'per_channel', 'summary'}},
     arrays for scores.npz: 'labels', 'series_lengths', 'channels', 'telemetry' and per
     method 'scores/<m>' [T] normalized scores, 'preds/<m>' [T] predictions,
     'thresholds/<m>' [S] per-series thresholds on the normalized scale, NaN under the
     dynamic rule).
  """
  results: dict[str, Any] = {"methods": {}}
  arrays: dict[str, np.ndarray] = {}
  labels_all = np.concatenate([p.labels for p in prepared])
  arrays["labels"] = labels_all
  arrays["series_lengths"] = np.array([p.test.shape[0] for p in prepared])
  arrays["channels"] = np.array([p.name for p in prepared])
  arrays["telemetry"] = np.concatenate([p.test[:, 0] for p in prepared]).astype(np.float32)
  for method, per_series in raw_scores.items():
    norm_scores, preds, per_channel, thresholds = [], [], {}, []
    for p, (val, test) in zip(prepared, per_series):
      cal = calibrate(val, config, name=f"{method} validation scores of {p.name}")
      s = cal.normalize(test)
      pr = predictions(s, cal, config)
      norm_scores.append(s)
      preds.append(pr)
      # The dynamic rule thresholds each test series itself: no single line to draw.
      thresholds.append(np.nan if config.threshold == "dynamic" else cal.threshold)
      if config.per_channel:
        per_channel[p.name] = evaluate(p.labels, s, pr, config)
        per_channel[p.name]["threshold"] = cal.threshold
    scores_all, preds_all = np.concatenate(norm_scores), np.concatenate(preds)
    overall = evaluate(labels_all, scores_all, preds_all, config)
    results["methods"][method] = {
        "overall": overall, "summary": summary_row(overall),
        "per_channel": per_channel,
        "per_channel_mean": mean_rows(
            [summary_row(r) for r in per_channel.values()])}
    arrays[f"scores/{method}"] = scores_all.astype(np.float32)
    arrays[f"preds/{method}"] = preds_all
    arrays[f"thresholds/{method}"] = np.asarray(thresholds, np.float32)  # [S], score scale
    logging.info("%s: %s", method, json.dumps(results["methods"][method]["summary"]))
  return results, arrays
