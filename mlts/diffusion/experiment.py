"""Train the malleable-latent diffusion detector(s) and evaluate them like every detector.

`run(config, workdir)` (configs with `experiment = 'diffusion'`, e.g.
configs/diffusion_smap.py) loads and normalizes the series with the
pipeline's code, then for every entry of `config.variants` (the ablation:
'full' = γ attenuation + L_reg in the DCT basis, 'no_gamma', 'no_reg',
'time_basis') trains a 1-D U-Net on the training windows (data parallel,
Orbax checkpoints in workdir/checkpoints/<variant>, resumable) and scores the
validation and test parts (detector.py). The methods of the report, per
variant v:

  diffusion[v]:recon           squared residual of the partial-noise reconstruction,
                               through `config.postprocess` (ARKS by default), as
                               every reconstruction detector
  diffusion[v]:energy | mahalanobis | norm   the latent scores

plus the |telemetry| and random baselines; thresholds per channel from the
validation part (never test labels), every metric, outputs as the pipeline's
(metrics.json, metrics.md, scores.npz, scores.png).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from mlts import pipeline, sharding, train, train_state, writers
from mlts.diffusion import detector, losses, process, unet

VARIANTS = {
    "full": {},
    "no_gamma": {"attenuate": False},
    "no_reg": {"reg_weight": 0.0},
    "time_basis": {"representation": "time"},
}


def variant_config(base: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """The `diffusion` section of an ablation variant."""
  if name not in VARIANTS:
    raise ValueError(f"unknown diffusion variant {name!r}; expected one of {sorted(VARIANTS)}")
  config = ml_collections.ConfigDict(base.to_dict())
  config.update(VARIANTS[name])
  return config


def make_network(config: ml_collections.ConfigDict, channels: int) -> unet.UNet1D:
  """The U-Net of the `network` section; it predicts C output channels."""
  return unet.UNet1D(out_channels=channels, base_width=config.base_width,
                     channel_mults=tuple(config.channel_mults),
                     num_res_blocks=config.num_res_blocks,
                     attention_levels=tuple(config.attention_levels),
                     num_heads=config.num_heads, num_groups=config.num_groups,
                     dropout=config.dropout)


def train_variant(config: ml_collections.ConfigDict, dcfg: ml_collections.ConfigDict,
                  train_windows: np.ndarray, workdir: str, tag: str, mesh):
  """Builds the process, trains (or resumes) the U-Net; returns (process, model, params, s)."""
  streams = dict(zip(("init", "train", "process", "eval"),
                     jax.random.split(jax.random.key(config.seed), 4)))
  proc = process.make_process(dcfg, train_windows, key=streams["process"])
  channels = train_windows.shape[-1]
  model = make_network(config.network, channels)
  shape = detector.network_input_shape(proc, train_windows.shape[1], channels)
  # Jitted: an eager init of the U-Net dispatches op by op and takes far longer.
  params = jax.jit(model.init)(streams["init"], jnp.zeros(shape), jnp.zeros((1,)))["params"]
  tx = train_state.make_optimizer(config.optimizer, config.training.num_steps)
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=tx,
      ema_params=jax.tree.map(jnp.copy, params), ema_decay=config.training.ema_decay)
  loss_fn = losses.make_loss_fn(proc, model.apply, dcfg.reg_weight)
  writer = writers.MetricWriter(os.path.join(workdir, "logs", tag))
  start = time.perf_counter()
  try:
    state = train.fit(state, loss_fn, train_windows, config.training, key=streams["train"],
                      seed=config.seed, checkpoint_dir=os.path.join(workdir, "checkpoints", tag),
                      writer=writer, mesh=mesh)
  finally:
    writer.close()
  params = state.ema_params if config.training.ema_decay > 0 else state.params
  return proc, model, jax.device_get(params), time.perf_counter() - start


def describe(proc: process.Process) -> dict[str, Any]:
  """JSON facts of a process: t*, Δ, |I|, representation."""
  return {"t_star": float(proc.t_star), "delta": float(proc.delta),
          "num_attenuated": int(np.asarray(proc.mask).sum()),
          "num_components": proc.num_components, "representation": proc.representation,
          "kind": proc.schedule.kind, "t_max": proc.t_max}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains every variant and writes the metric tables (see the module docstring)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  mesh = sharding.make_mesh()
  name, series = pipeline.load_series(config.data)
  prepared = pipeline.prepare(series, config.data)
  train_windows = pipeline.training_windows(prepared, config.data.window, config.data.stride)
  logging.info("%s: %d series, %d training windows %s", name, len(prepared),
               train_windows.shape[0], train_windows.shape[1:])
  parts = {"val": [p.val for p in prepared], "test": [p.test for p in prepared]}
  raw_scores: dict[str, list] = {}
  facts: dict[str, Any] = {}
  for variant in config.variants:
    dcfg = variant_config(config.diffusion, variant)
    proc, model, params, seconds = train_variant(config, dcfg, train_windows, workdir, variant,
                                                 mesh)

    def noise_fn_of(p, proc=proc, model=model):
      return losses.make_noise_fn(model.apply, p, proc)

    start = time.perf_counter()
    scores = detector.score_series(
        proc, noise_fn_of, params, parts, train_windows, config.data.window,
        config.data.eval_stride, config.detector,
        jax.random.fold_in(jax.random.key(config.seed), 7))
    prefix = f"diffusion[{variant}]"
    raw_scores[f"{prefix}:recon"] = pipeline.postprocess_scores(
        scores["residuals"]["val"], scores["residuals"]["test"], config.postprocess)
    for score in detector.LATENT_SCORES:
      raw_scores[f"{prefix}:{score}"] = detector.pairs(scores["latent"][score])
    facts[variant] = {**describe(proc), "train_seconds": seconds,
                      "score_seconds": time.perf_counter() - start}
    logging.info("%s: %s", variant, facts[variant])
  raw_scores.update(pipeline.baseline_scores(prepared, config.seed))
  results, arrays = pipeline.evaluate_methods(prepared, raw_scores, config.eval)
  results.update({"dataset": name, "protocol": pipeline.protocol(config, prepared),
                  "variants": facts, "devices": [str(d) for d in jax.devices()]})
  pipeline.write_outputs(workdir, results, arrays, config)
  return results
