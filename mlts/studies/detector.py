"""The reconstruction-detector study: config -> data -> train -> score -> threshold -> metrics.

Trains one reconstruction backbone (with the MSE or GWNR loss) on the windows of
every series (each normalized with its own training statistics), turns each
series' aggregated reconstruction residuals into per-step scores (squared
residual, or after ARKS / moving average / low-pass), fits per-series
thresholds on validation scores (the last part of each training series, never
test data), and reports every metric per series and pooled beside two
baselines computed by the same code: |z-scored telemetry| and a random score.

Files written to `workdir`: config.json, checkpoints/, metrics.json,
metrics.md, scores.npz, scores.png, logs/metrics.jsonl, logs/tensorboard/.
"""

from __future__ import annotations

import time
from typing import Any

import ml_collections
from absl import logging

from mlts import evaluation, reconstruction, results
from mlts.data import series as series_lib


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the whole pipeline for one detector; resumes from the checkpoints in `workdir`.

  Args:
    config: the full config (see configs/default.py).
    workdir: output directory (created if missing).

  Returns:
    The metrics dict that is also written to `workdir/metrics.json`.
  """
  reconstruction.check_config(config)
  started = results.start_run(config, workdir)
  name, series = series_lib.load_series(config.data)
  prepared = series_lib.prepare(series, config.data)
  logging.info("%s: %d series, train %d / val %d / test %d steps", name, len(prepared),
               sum(p.fit.shape[0] for p in prepared), sum(p.val.shape[0] for p in prepared),
               sum(p.test.shape[0] for p in prepared))
  backbone = reconstruction.train_backbone(config, prepared, workdir)

  start = time.perf_counter()
  val_res, test_res = reconstruction.compute_residuals(backbone, prepared, config)
  raw_scores = {reconstruction.method_name(config): reconstruction.postprocess_scores(
      val_res, test_res, config.postprocess),
                **evaluation.baseline_scores(prepared, config.seed)}
  score_seconds = time.perf_counter() - start

  start = time.perf_counter()
  out, arrays = evaluation.evaluate_methods(prepared, raw_scores, config.eval)
  out.update({
      "dataset": name,
      "protocol": evaluation.protocol(config, prepared),
      "timing_seconds": {"train": backbone.train_seconds, "score": score_seconds,
                         "evaluate": time.perf_counter() - start},
      **results.facts(started),
      "step": backbone.step,
  })
  results.write_outputs(workdir, out, arrays, config)
  return out
