"""The COGNOS ablation: backbones x training losses x post-processing, in one table.

For every backbone and loss in `config.ablation` one model is trained (each in
its own sub-directory of the workdir, with its own checkpoints, so an
interrupted grid resumes where it stopped); its validation and test residuals
are then scored by every post-processing in the grid. All methods, plus the
|telemetry| and random baselines, go through the same per-channel validation
thresholds and the same metrics as the detector study.

With `ablation.confidences` set, the full method (first backbone, last loss,
ARKS) is also scored at each ARKS confidence (COGNOS Fig. 4).

Files: ablation.json (every metric, pooled and per channel; `cost` per model;
`confidence_sweep`), ablation.md (the table, the cost table, the sensitivity
table), scores.npz, residuals.png (ACF + Q-Q, MSE vs GWNR), arks_trace.png
(raw vs ARKS score around a real anomaly, with thresholds and predicted
events), confidence.png (metrics against the ARKS confidence), and one
sub-directory per trained model.
"""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from mlts import evaluation, reconstruction, results
from mlts.data import series as series_lib

SEPARATOR = "/"  # method names are backbone/loss/postprocess


def sub_config(config: ml_collections.ConfigDict, backbone: str, loss: str,
               postprocess: str = "none") -> ml_collections.ConfigDict:
  """The config of one cell of the grid (a copy; `config` is not changed)."""
  sub = copy.deepcopy(config)
  sub.model.name = backbone
  sub.training.loss = loss
  sub.postprocess.name = postprocess
  return sub


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains and scores the whole grid; writes the tables and figures to `workdir`.

  Args:
    config: a full config with an `ablation` section: backbones, losses, postprocess
      (lists of names).
    workdir: output directory.

  Returns:
    The results dict written to `workdir/ablation.json`.
  """
  grid = config.ablation
  for backbone in grid.backbones:  # every cell's settings are checked before any work
    reconstruction.check_config(sub_config(config, backbone, grid.losses[0]))
  started = results.start_run(config, workdir)
  name, series = series_lib.load_series(config.data)
  prepared = series_lib.prepare(series, config.data)

  raw_scores = {}
  residuals: dict[tuple[str, str], Any] = {}
  timings, cost = {}, {}
  test_points = sum(p.test.shape[0] for p in prepared)
  for backbone in grid.backbones:
    for loss in grid.losses:
      cell = sub_config(config, backbone, loss)
      run_dir = os.path.join(workdir, f"{backbone}_{loss}")
      logging.info("Ablation: training %s with %s loss in %s", backbone, loss, run_dir)
      trained = reconstruction.train_backbone(cell, prepared, run_dir)
      start = time.perf_counter()
      val_res, test_res = reconstruction.compute_residuals(trained, prepared, cell)
      residual_seconds = time.perf_counter() - start
      residuals[(backbone, loss)] = (val_res, test_res)
      key = f"{backbone}{SEPARATOR}{loss}"
      timings[key] = trained.train_seconds
      cost[key] = {"ms_per_step": 1000.0 / _steps_per_second(run_dir),
                   "train_seconds": trained.train_seconds,
                   "score_ms_per_point": 1000.0 * residual_seconds / max(test_points, 1)}
      for post in grid.postprocess:
        cell.postprocess.name = post
        raw_scores[SEPARATOR.join((backbone, loss, post))] = reconstruction.postprocess_scores(
            val_res, test_res, cell.postprocess)
  raw_scores.update(evaluation.baseline_scores(prepared, config.seed))

  out, arrays = evaluation.evaluate_methods(prepared, raw_scores, config.eval)
  out.update({
      "dataset": name,
      "protocol": evaluation.protocol(config, prepared),
      "grid": {"backbones": list(grid.backbones), "losses": list(grid.losses),
               "postprocess": list(grid.postprocess)},
      "train_seconds": timings,
      "cost": cost,
      **results.facts(started),
  })
  if grid.get("confidences"):
    out["confidence_sweep"] = confidence_sweep(config, prepared, residuals)
  results.write_json(os.path.join(workdir, "ablation.json"), out)
  np.savez_compressed(os.path.join(workdir, "scores.npz"), **arrays)
  with open(os.path.join(workdir, "ablation.md"), "w") as f:
    f.write(ablation_markdown(out))
  _figures(workdir, config, prepared, residuals, arrays)
  if "confidence_sweep" in out:
    from mlts import plots
    sweep = out["confidence_sweep"]
    plots.metric_sweep(
        os.path.join(workdir, "confidence.png"),
        sweep["confidences"], [sweep["summary"][f"{c:g}"] for c in sweep["confidences"]],
        ("AUROC", "AUPRC", "F1", "Aff-F1", "VUS-PR"), marked=sweep["default"],
        xlabel="ARKS circuit-breaker confidence c (χ²(1) test)",
        title=f"{name}: {sweep['backbone']} + {sweep['loss']} + ARKS against the breaker's "
              "confidence (COGNOS Fig. 4 counterpart)")
  return out


def _steps_per_second(run_dir: str) -> float:
  """Median logged training rate of one cell (compilation excluded), NaN if none was logged."""
  path = os.path.join(run_dir, "logs", "metrics.jsonl")
  rates = []
  if os.path.isfile(path):
    with open(path) as f:
      for line in f:
        try:
          row = json.loads(line)
        except json.JSONDecodeError:
          continue  # a line cut by a kill
        rate = row.get("steps_per_second")
        if rate is not None and np.isfinite(rate) and rate > 0:
          rates.append(rate)
  return float(np.median(rates)) if rates else float("nan")


def confidence_sweep(config: ml_collections.ConfigDict, prepared, residuals) -> dict[str, Any]:
  """COGNOS Fig. 4: ARKS at every confidence c of `config.ablation.confidences`.

  The residuals of the first backbone trained with the last loss (GWNR in the
  default grid, i.e. the full COGNOS method) are smoothed by ARKS at each c (the
  χ²(1) circuit breaker's confidence) and evaluated like every other method.

  Returns:
    {'backbone', 'loss', 'confidences': [c...], 'summary': {'<c>': summary row},
     'default': the config's own c}.
  """
  grid = config.ablation
  backbone, loss = grid.backbones[0], grid.losses[-1]
  val_res, test_res = residuals[(backbone, loss)]
  cell = sub_config(config, backbone, loss, "arks")
  raw = {}
  for c in grid.confidences:
    cell.postprocess.confidence = float(c)
    raw[f"{float(c):g}"] = reconstruction.postprocess_scores(val_res, test_res, cell.postprocess)
  report, _ = evaluation.evaluate_methods(prepared, raw, config.eval)
  return {"backbone": backbone, "loss": loss,
          "confidences": [float(c) for c in grid.confidences],
          "default": float(config.postprocess.confidence),
          "summary": {c: r["summary"] for c, r in report["methods"].items()}}


COLUMNS = ("AUROC", "AUPRC", "F1", "best-F1 (oracle)", "PA-F1", "Aff-F1", "R-AUC-ROC",
           "R-AUC-PR", "VUS-ROC", "VUS-PR")


def ablation_markdown(report: dict[str, Any]) -> str:
  """The ablation table of a report: one row per backbone/loss/post-processing, baselines last."""
  lines = [f"# COGNOS ablation on {report['dataset']} "
           f"({len(report['protocol']['channels'])} channels, pooled)\n",
           "F1 at per-channel validation thresholds (no test labels); best-F1 is an oracle; "
           "PA-F1 (point-adjusted) is shown beside the random-score baseline's PA-F1.\n",
           "| backbone | loss | post | " + " | ".join(COLUMNS) + " |",
           "|---|---|---|" + "---|" * len(COLUMNS)]
  for method, r in report["methods"].items():
    parts = method.split(SEPARATOR)
    backbone, loss, post = parts if len(parts) == 3 else (method, "–", "–")
    cells = ["–" if r["summary"][c] is None else f"{r['summary'][c]:.3f}" for c in COLUMNS]
    lines.append(f"| {backbone} | {loss} | {post} | " + " | ".join(cells) + " |")
  cost = report.get("cost")
  if cost:
    lines += ["", "## Cost per model (COGNOS Table 4 / Table 10 counterpart)", "",
              "Training: median logged ms per step (compilation excluded); inference: residual "
              "computation in ms per test point (post-processing excluded). The paper's units "
              "are ms per iteration of its own batch and ms per point.", "",
              "| backbone | loss | ms / step | GWNR / MSE | train s | ms / point |",
              "|---|---|---|---|---|---|"]
    for key, c in cost.items():
      backbone, loss = key.split(SEPARATOR)
      base = cost.get(f"{backbone}{SEPARATOR}mse", {}).get("ms_per_step")
      ratio = (f"{c['ms_per_step'] / base:.2f}" if loss != "mse" and base
               and np.isfinite(base) and np.isfinite(c["ms_per_step"]) else "–")
      lines.append(f"| {backbone} | {loss} | {_num(c['ms_per_step'], 2)} | {ratio} | "
                   f"{_num(c['train_seconds'], 1)} | {_num(c['score_ms_per_point'], 4)} |")
  sweep = report.get("confidence_sweep")
  if sweep:
    shown = ("AUROC", "AUPRC", "F1", "Aff-F1", "VUS-PR")
    lines += ["", f"## ARKS confidence sensitivity (COGNOS Fig. 4 counterpart): "
              f"{sweep['backbone']} trained with {sweep['loss']}", "",
              "| confidence c | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for c, row in sweep["summary"].items():
      mark = " (default)" if float(c) == sweep["default"] else ""
      lines.append(f"| {c}{mark} | " + " | ".join(_num(row[k], 3) for k in shown) + " |")
  return "\n".join(lines) + "\n"


def _num(v, digits: int) -> str:
  return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _figures(workdir: str, config, prepared, residuals, arrays) -> None:
  """Residual diagnostics (MSE vs GWNR) and raw vs ARKS traces around a real anomaly."""
  from mlts import plots

  backbone = config.ablation.backbones[0]
  diag = {loss.upper(): [v[:, 0] for v in residuals[(backbone, loss)][0]]
          for loss in config.ablation.losses if (backbone, loss) in residuals}
  plots.residual_diagnostics(
      os.path.join(workdir, "residuals.png"), diag,
      title=f"{backbone} validation residuals, channel 0 of every series: MSE vs GWNR "
            "(COGNOS Fig. 3 bottom counterpart)")
  loss = config.ablation.losses[-1]
  offsets = np.concatenate([[0], np.cumsum(arrays["series_lengths"])])
  with_anomaly = [k for k, p in enumerate(prepared) if p.labels.any()]
  keys = {post: f"scores/{backbone}{SEPARATOR}{loss}{SEPARATOR}{post}"
          for post in ("none", "arks")}
  if with_anomaly and all(k in arrays for k in keys.values()):
    k = with_anomaly[0]
    lo, hi = offsets[k], offsets[k + 1]
    names = {post: (f"raw r² ({backbone}, {loss})" if post == "none"
                    else f"ARKS ({backbone}, {loss})") for post in keys}
    plots.score_comparison(
        os.path.join(workdir, "arks_trace.png"),
        {names[p]: arrays[key][lo:hi] for p, key in keys.items()}, prepared[k].labels,
        thresholds={names[p]: float(arrays[key.replace("scores/", "thresholds/", 1)][k])
                    for p, key in keys.items()},
        predictions={names[p]: arrays[key.replace("scores/", "preds/", 1)][lo:hi]
                     for p, key in keys.items()},
        title=f"{prepared[k].name}: raw vs ARKS score, validation-calibrated, with the "
              "validation threshold and predicted events (COGNOS Fig. 3 top counterpart)")
