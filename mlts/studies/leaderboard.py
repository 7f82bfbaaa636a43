"""The leaderboard: every detector under one protocol, sorted by mean per-channel VUS-PR.

Protocol (stored in leaderboard.json under "protocol"):

* each channel is its own series (telemetry only unless `data.features='all'`);
* every method goes through `mlts.detectors`: fit on the training series of all
  channels at once (fit part = the first 1 − `val_fraction` of each, validation
  = the rest, each channel normalized with its own fit-part statistics);
* scores are calibrated per channel with validation statistics only (mean / std
  of the channel's validation scores: `score_normalization='validation'`), so
  pooled metrics compare channels on one scale;
* two label-free thresholds: the validation quantile (`f1`, `event_f1`,
  `aff_f1`, `pa_f1`) and telemanom's dynamic threshold on each test series
  (`f1_dynamic`, `event_f1_dynamic`); point-adjusted F1 is shown only beside
  the unadjusted metrics and the random row;
* test labels enter only the metrics, except with `labelled_head > 0`: then
  the first `labelled_head` of each test series is labelled validation for the
  methods marked `labelled` (β-VAEGAN's SVM / grid compositions:
  `fit(train, validation=heads, validation_labels=...)`), and every method,
  labelled or not, is scored and evaluated on the remaining tail only.

Each method's result is written to `methods/<name>.json` as soon as it is
done; a rerun in the same workdir (same config) skips finished methods.

Files: config.json, methods/*.json, leaderboard.json, leaderboard.md.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from mlts import detectors, evaluation, metrics, results, thresholds
from mlts.data import series as series_lib

KINDS = ("baseline", "learned")
METRICS = ("auroc", "auprc", "vus_roc", "vus_pr", "f1", "event_f1", "aff_f1", "pa_f1",
           "f1_dynamic", "event_f1_dynamic", "event_precision_dynamic",
           "event_recall_dynamic")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks the study's sections before any data is loaded; ValueError names the field."""
  from mlts import checks
  checks.config_choice(config.data, "dataset", series_lib.DATASETS, where="data")
  checks.config_float(config.data, "val_fraction", where="data", low=0.0, high=1.0,
                      low_open=True, high_open=True)
  evaluation.validate_config(config.eval)
  thresholds.validate_config(config.dynamic)
  checks.config_float(config, "labelled_head", where="config", low=0.0, high=1.0,
                      high_open=True)
  if not config.methods:
    raise ValueError("methods is empty: name at least one detector")
  for name, method in config.methods.items():
    where = f"methods.{name}"
    if "detector" not in method or method.detector not in detectors.available():
      raise ValueError(f"{where}.detector must be one of {detectors.available()}, got "
                       f"{method.get('detector')!r}")
    checks.config_choice(method, "kind", KINDS, where=where)
    if method.get("labelled", False) and config.labelled_head <= 0:
      raise ValueError(f"{where} is labelled (its composition is fit on labelled validation "
                       "data) but labelled_head is 0: set labelled_head (e.g. 0.3, the first "
                       "30 % of each test series) or drop the method")
    # Unknown option fields are refused here, before any method runs.
    detectors.create(method.detector, **_options(method, config))


def _options(method, config) -> dict[str, Any]:
  """The detector's config overrides: the method's own plus the shared protocol fields."""
  options = method.options.to_dict() if "options" in method else {}
  options.update(val_fraction=config.data.val_fraction, score_normalization="validation",
                 threshold="quantile", threshold_quantile=config.eval.threshold_quantile,
                 seed=config.seed)
  return options


# Metric block key -> the column of `evaluation.summary_row`.
_SUMMARY = {"auroc": "AUROC", "auprc": "AUPRC", "vus_roc": "VUS-ROC", "vus_pr": "VUS-PR",
            "f1": "F1", "event_f1": "event-F1", "aff_f1": "Aff-F1", "pa_f1": "PA-F1"}


def _block(reports: list[dict], dynamic: list[dict]) -> dict[str, Any]:
  """The metric block of `METRICS`: means over `evaluation.evaluate` reports (None skipped)."""
  rows = evaluation.mean_rows([evaluation.summary_row(r) for r in reports])
  out = {key: rows[column] for key, column in _SUMMARY.items()}
  dyn = {"f1_dynamic": ("pointwise", "f1"), "event_f1_dynamic": ("event", "f1"),
         "event_precision_dynamic": ("event", "precision"),
         "event_recall_dynamic": ("event", "recall")}
  for key, (part, field) in dyn.items():
    out[key] = float(np.mean([d[part][field] for d in dynamic]))
  return out


def score_method(scores: list[np.ndarray], quantile_preds: list[np.ndarray],
                 series: list[series_lib.Series], config) -> dict[str, Any]:
  """Per-channel and pooled metric blocks of calibrated test scores.

  Args:
    scores: per channel [T_k] scores, calibrated on validation.
    quantile_preds: per channel [T_k] predictions at the validation threshold.
    series: the labelled series (same order).
    config: the full study config (`eval`, `dynamic`).
  """
  per_channel, dynamic_rows, per_channel_reports = {}, [], []
  dyn_preds = []
  for s, sc, pr in zip(series, scores, quantile_preds):
    dp = thresholds.dynamic_predict(sc, config.dynamic)
    dyn_preds.append(dp)
    report = evaluation.evaluate(s.labels, sc, pr, config.eval)
    dyn = {"pointwise": metrics.pointwise(s.labels, dp), "event": metrics.event_pr(s.labels, dp)}
    per_channel_reports.append(report)
    dynamic_rows.append(dyn)
    per_channel[s.name] = _block([report], [dyn])
  labels = np.concatenate([s.labels for s in series])
  pooled_scores, pooled_preds = np.concatenate(scores), np.concatenate(quantile_preds)
  pooled_dyn = np.concatenate(dyn_preds)
  pooled_report = evaluation.evaluate(labels, pooled_scores, pooled_preds, config.eval)
  # Events never span two channels: count them per channel, then sum the counts.
  tp = sum(d["event"]["tp"] for d in dynamic_rows)
  fp = sum(d["event"]["fp"] for d in dynamic_rows)
  fn = sum(d["event"]["fn"] for d in dynamic_rows)
  p = tp / (tp + fp) if tp + fp else 0.0
  r = tp / (tp + fn) if tp + fn else 0.0
  pooled_dyn_report = {"pointwise": metrics.pointwise(labels, pooled_dyn),
                       "event": {"precision": p, "recall": r,
                                 "f1": 2 * p * r / (p + r) if p + r else 0.0,
                                 "tp": tp, "fp": fp, "fn": fn}}
  pooled = _block([pooled_report], [pooled_dyn_report])
  pooled["event_counts_dynamic"] = {"tp": tp, "fp": fp, "fn": fn}
  pooled["num_points"] = int(labels.size)
  return {"per_channel_mean": _block(per_channel_reports, dynamic_rows),
          "pooled": pooled, "per_channel": per_channel}


def _random_method(series, config) -> dict[str, Any]:
  """The random reference row: uniform scores, thresholded like every method."""
  rng = np.random.default_rng(config.seed)
  scores, preds = [], []
  for s in series:
    val = rng.random(int(round(s.train.shape[0] * config.data.val_fraction)))
    cal = evaluation.calibrate(val, ml_collections.ConfigDict(dict(
        threshold="quantile", threshold_quantile=config.eval.threshold_quantile,
        threshold_sigma=3.0, score_normalization="validation", min_score_scale=1e-6)))
    sc = cal.normalize(rng.random(s.test.shape[0]))
    scores.append(sc)
    preds.append((sc > cal.threshold).astype(np.int8))
  out = score_method(scores, preds, series, config)
  out.update(kind="reference", detector="random", fit_seconds=0.0, score_seconds=0.0)
  return out


def split_labelled_head(series: list[series_lib.Series], fraction: float):
  """(heads [(test head, head labels)], series with their test tails) for `labelled_head`."""
  if fraction <= 0:
    return None, series
  heads, tails = [], []
  for s in series:
    cut = int(round(s.test.shape[0] * fraction))
    if not 0 < cut < s.test.shape[0]:
      raise ValueError(f"labelled_head={fraction} leaves no head or no tail of {s.name}'s "
                       f"{s.test.shape[0]} test steps")
    heads.append((s.test[:cut], s.labels[:cut]))
    tails.append(series_lib.Series(s.name, s.train, s.test[cut:], s.labels[cut:]))
  return heads, tails


def run_method(name: str, method, series, config, heads=None) -> dict[str, Any]:
  """Fits, scores and evaluates one method; returns its JSON entry.

  `heads`: the labelled test heads (`split_labelled_head`); a method marked
  `labelled` is fit with them as its labelled validation.
  """
  det = detectors.create(method.detector, **_options(method, config))
  start = time.perf_counter()
  if method.get("labelled", False):
    det.fit([s.train for s in series], validation=[h for h, _ in heads],
            validation_labels=[y for _, y in heads])
  else:
    det.fit([s.train for s in series])
  fit_seconds = time.perf_counter() - start
  start = time.perf_counter()
  scores = det.score([s.test for s in series])
  score_seconds = time.perf_counter() - start
  preds = [(sc > t).astype(np.int8) for sc, t in zip(scores, det.thresholds)]
  out = score_method(scores, preds, series, config)
  out.update(kind=method.kind, detector=method.detector,
             labelled=bool(method.get("labelled", False)),
             options=method.options.to_dict() if "options" in method else {},
             fit_seconds=fit_seconds, score_seconds=score_seconds)
  logging.info("%s: VUS-PR %.3f (per-channel mean), AUROC %.3f (pooled), fit %.1f s, "
               "score %.1f s", name, out["per_channel_mean"]["vus_pr"] or float("nan"),
               out["pooled"]["auroc"] or float("nan"), fit_seconds, score_seconds)
  return out


def protocol(config, dataset: str, series) -> dict[str, Any]:
  return {
      "dataset": dataset,
      "channels": len(series),
      "features": config.data.get("features", None),
      "fit": f"first {1 - config.data.val_fraction:.0%} of each channel's training series",
      "validation": f"last {config.data.val_fraction:.0%} of each channel's training series",
      "normalization": "z-score per channel with fit-part statistics (each detector's own)",
      "calibration": "per channel: scores minus the validation mean, over the validation std",
      "threshold": (f"validation quantile {config.eval.threshold_quantile} per channel (f1, "
                    "event_f1, aff_f1, pa_f1); telemanom's dynamic threshold on each test "
                    "series (*_dynamic); both label-free"),
      "pooled": "all channels' calibrated test scores concatenated; events counted per channel",
      "labelled_head": (f"first {config.labelled_head:.0%} of each test series: labelled "
                        "validation of the methods marked labelled; every method is evaluated "
                        "on the remaining tail" if config.labelled_head > 0 else "none"),
      "sorted_by": "per_channel_mean.vus_pr",
  }


def _vs_best_baseline(methods: dict[str, Any]) -> dict[str, Any]:
  """The best learned method against the best baseline on the targets' metrics."""
  def best(kind, block, metric):
    rows = [(m[block][metric], n) for n, m in methods.items()
            if m["kind"] == kind and m[block][metric] is not None]
    return max(rows) if rows else (None, None)
  out = {}
  for block, metric in (("per_channel_mean", "auprc"), ("per_channel_mean", "vus_pr"),
                        ("pooled", "auroc"), ("pooled", "event_f1_dynamic"),
                        ("per_channel_mean", "event_f1_dynamic")):
    (b, bn), (lv, ln) = best("baseline", block, metric), best("learned", block, metric)
    out[f"{block}.{metric}"] = {"best_baseline": bn, "baseline": b, "best_learned": ln,
                                "learned": lv,
                                "ratio": (lv / b) if (lv is not None and b) else None}
  return out


def render(board: dict[str, Any]) -> str:
  """leaderboard.md: the table sorted by mean per-channel VUS-PR."""
  cols = ("vus_pr", "vus_roc", "auprc", "auroc")
  lines = [f"# Leaderboard: {board['dataset']}", "",
           f"{board['protocol']['channels']} channels, features: "
           f"{board['protocol']['features']}. Sorted by mean per-channel VUS-PR. "
           "Thresholds are label-free: 'val' = validation quantile, 'dyn' = telemanom's "
           "dynamic threshold. PA-F1 (point-adjusted) is inflated by construction; compare it "
           "only with the random row.", "",
           "| method | kind | VUS-PR | VUS-ROC | AUPRC | AUROC | pooled AUROC | pooled AUPRC "
           "| F1 val | event-F1 val | event-F1 dyn (pooled) | Aff-F1 | PA-F1 | fit s | "
           "score s |",
           "|---|---|" + "---|" * 13]

  def f(v):
    return "–" if v is None else f"{v:.3f}"

  for name, m in board["methods"].items():
    pc, po = m["per_channel_mean"], m["pooled"]
    lines.append(
        f"| {name} | {m['kind']} | " + " | ".join(f(pc[c]) for c in cols)
        + f" | {f(po['auroc'])} | {f(po['auprc'])} | {f(pc['f1'])} | {f(pc['event_f1'])} | "
        f"{f(po['event_f1_dynamic'])} | {f(pc['aff_f1'])} | {f(pc['pa_f1'])} | "
        f"{m['fit_seconds']:.1f} | {m['score_seconds']:.1f} |")
  lines += ["", "Best learned vs best baseline (same run):", "",
            "| metric | best baseline | value | best learned | value | ratio |",
            "|---|---|---|---|---|---|"]
  for metric, row in board["vs_best_baseline"].items():
    lines.append(f"| {metric} | {row['best_baseline']} | {f(row['baseline'])} | "
                 f"{row['best_learned']} | {f(row['learned'])} | {f(row['ratio'])} |")
  lines += ["", f"Total wall time {board['seconds']:.0f} s."]
  return "\n".join(lines) + "\n"


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs every method of `config.methods` (resumable) and writes the leaderboard."""
  validate_config(config)
  started = results.start_run(config, workdir)
  begin = time.perf_counter()
  dataset, series = series_lib.load_series(config.data)
  heads, series = split_labelled_head(series, config.labelled_head)
  method_dir = os.path.join(workdir, "methods")
  os.makedirs(method_dir, exist_ok=True)
  entries: dict[str, Any] = {}
  names = list(config.methods)
  for i, name in enumerate(names + ["random"]):
    path = os.path.join(method_dir, f"{name}.json")
    if os.path.exists(path):
      with open(path) as fh:
        entries[name] = json.load(fh)
      logging.info("[%d/%d] %s: done before, read from %s", i + 1, len(names) + 1, name, path)
      continue
    logging.info("[%d/%d] %s", i + 1, len(names) + 1, name)
    entry = (_random_method(series, config) if name == "random"
             else run_method(name, config.methods[name], series, config, heads))
    results.write_json(path, entry)
    entries[name] = entry
  order = sorted(entries, key=lambda n: -(entries[n]["per_channel_mean"]["vus_pr"] or 0.0))
  methods = {n: {k: v for k, v in entries[n].items() if k != "per_channel"} for n in order}
  board = {"dataset": dataset, "protocol": protocol(config, dataset, series),
           "methods": methods, "vs_best_baseline": _vs_best_baseline(methods),
           "seconds": time.perf_counter() - begin, **results.facts(started)}
  results.write_json(os.path.join(workdir, "leaderboard.json"), board)
  with open(os.path.join(workdir, "leaderboard.md"), "w") as fh:
    fh.write(render(board))
  logging.info("wrote %s", os.path.join(workdir, "leaderboard.md"))
  return board
