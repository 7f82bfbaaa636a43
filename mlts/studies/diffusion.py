"""The diffusion-detector study: train the malleable-latent diffusion variants, evaluate them.

`run(config, workdir)` (configs with `experiment = 'diffusion'`, e.g.
configs/diffusion_smap.py) loads and normalizes the series as the detector
study does, then for every entry of `config.variants` (the ablation:
'full' = γ attenuation + L_reg in the DCT basis, 'no_gamma', 'no_reg',
'time_basis') trains a 1-D U-Net on the training windows (`mlts.diffusion.trainer`:
data parallel, Orbax checkpoints in workdir/checkpoints/<variant>, resumable) and scores the
validation and test parts (detector.py). The methods of the report, per
variant v:

  diffusion[v]:recon           squared residual of the partial-noise reconstruction,
                               through `config.postprocess` (ARKS by default), as
                               every reconstruction detector
  diffusion[v]:energy | mahalanobis | norm   the latent scores

plus the |telemetry| and random baselines; thresholds per channel from the
validation part (never test labels), every metric, outputs as the detector study's
(metrics.json, metrics.md, scores.npz, scores.png).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import ml_collections
from absl import logging

from mlts import evaluation, reconstruction, results, sharding
from mlts.data import series as series_lib
from mlts.diffusion import detector, losses, trainer


def check_config(config: ml_collections.ConfigDict) -> None:
  """Validates the sections of a diffusion-study config before any work (names the field)."""
  from mlts import train, train_state
  from mlts.cognos import postprocess
  series_lib.validate_config(config.data)
  train.validate_config(config.training)
  train_state.validate_optimizer_config(config.optimizer)
  postprocess.validate_config(config.postprocess)
  evaluation.validate_config(config.eval)
  for variant in config.variants:
    trainer.variant_config(config.diffusion, variant)  # an unknown variant is named


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains every variant and writes the metric tables (see the module docstring)."""
  check_config(config)
  started = results.start_run(config, workdir)
  mesh = sharding.make_mesh()
  name, series = series_lib.load_series(config.data)
  prepared = series_lib.prepare(series, config.data)
  train_windows = series_lib.training_windows(prepared, config.data.window, config.data.stride)
  logging.info("%s: %d series, %d training windows %s", name, len(prepared),
               train_windows.shape[0], train_windows.shape[1:])
  parts = {"val": [p.val for p in prepared], "test": [p.test for p in prepared]}
  raw_scores: dict[str, list] = {}
  facts: dict[str, Any] = {}
  for variant in config.variants:
    dcfg = trainer.variant_config(config.diffusion, variant)
    proc, model, params, seconds = trainer.train_variant(config, dcfg, train_windows, workdir,
                                                         variant, mesh)

    def noise_fn_of(p, proc=proc, model=model):
      return losses.make_noise_fn(model.apply, p, proc)

    start = time.perf_counter()
    scores = detector.score_series(
        proc, noise_fn_of, params, parts, train_windows, config.data.window,
        config.data.eval_stride, config.detector,
        jax.random.fold_in(jax.random.key(config.seed), 7))
    prefix = f"diffusion[{variant}]"
    raw_scores[f"{prefix}:recon"] = reconstruction.postprocess_scores(
        scores["residuals"]["val"], scores["residuals"]["test"], config.postprocess)
    for score in detector.LATENT_SCORES:
      raw_scores[f"{prefix}:{score}"] = detector.pairs(scores["latent"][score])
    facts[variant] = {**trainer.describe(proc), "train_seconds": seconds,
                      "score_seconds": time.perf_counter() - start}
    logging.info("%s: %s", variant, facts[variant])
  raw_scores.update(evaluation.baseline_scores(prepared, config.seed))
  out, arrays = evaluation.evaluate_methods(prepared, raw_scores, config.eval)
  out.update({"dataset": name, "protocol": evaluation.protocol(config, prepared),
              "variants": facts, **results.facts(started)})
  results.write_outputs(workdir, out, arrays, config)
  return out
