"""The COGNOS ablation: backbones x training losses x post-processing, in one table.

For every backbone and loss in `config.ablation` one model is trained (each in
its own sub-directory of the workdir, with its own checkpoints, so an
interrupted grid resumes where it stopped); its validation and test residuals
are then scored by every post-processing in the grid. All methods, plus the
|telemetry| and random baselines, go through the same per-channel validation
thresholds and the same metrics as the detector study.

Files: ablation.json (every metric, pooled and per channel), ablation.md (the
table), scores.npz, residuals.png (ACF + Q-Q, MSE vs GWNR), arks_trace.png
(raw vs ARKS score around a real anomaly), and one sub-directory per trained
model.
"""

from __future__ import annotations

import copy
import os
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
  timings = {}
  for backbone in grid.backbones:
    for loss in grid.losses:
      cell = sub_config(config, backbone, loss)
      run_dir = os.path.join(workdir, f"{backbone}_{loss}")
      logging.info("Ablation: training %s with %s loss in %s", backbone, loss, run_dir)
      trained = reconstruction.train_backbone(cell, prepared, run_dir)
      val_res, test_res = reconstruction.compute_residuals(trained, prepared, cell)
      residuals[(backbone, loss)] = (val_res, test_res)
      timings[f"{backbone}{SEPARATOR}{loss}"] = trained.train_seconds
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
      **results.facts(started),
  })
  results.write_json(os.path.join(workdir, "ablation.json"), out)
  np.savez_compressed(os.path.join(workdir, "scores.npz"), **arrays)
  with open(os.path.join(workdir, "ablation.md"), "w") as f:
    f.write(ablation_markdown(out))
  _figures(workdir, config, prepared, residuals, arrays)
  return out


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
  return "\n".join(lines) + "\n"


def _figures(workdir: str, config, prepared, residuals, arrays) -> None:
  """Residual diagnostics (MSE vs GWNR) and raw vs ARKS traces around a real anomaly."""
  from mlts import plots

  backbone = config.ablation.backbones[0]
  diag = {loss.upper(): [v[:, 0] for v in residuals[(backbone, loss)][0]]
          for loss in config.ablation.losses if (backbone, loss) in residuals}
  plots.residual_diagnostics(os.path.join(workdir, "residuals.png"), diag)
  loss = config.ablation.losses[-1]
  offsets = np.concatenate([[0], np.cumsum(arrays["series_lengths"])])
  with_anomaly = [k for k, p in enumerate(prepared) if p.labels.any()]
  keys = {post: f"scores/{backbone}{SEPARATOR}{loss}{SEPARATOR}{post}"
          for post in ("none", "arks")}
  if with_anomaly and all(k in arrays for k in keys.values()):
    k = with_anomaly[0]
    lo, hi = offsets[k], offsets[k + 1]
    plots.score_comparison(
        os.path.join(workdir, "arks_trace.png"),
        {f"raw r² ({backbone}, {loss})": arrays[keys["none"]][lo:hi],
         f"ARKS ({backbone}, {loss})": arrays[keys["arks"]][lo:hi]},
        prepared[k].labels, title=f"{prepared[k].name}: raw vs ARKS score")
