"""Training the malleable-latent diffusion model: the ablation variants, the U-Net, the loop.

`train_variant` builds the forward process of a `diffusion` config section on
the training windows, initializes the 1-D U-Net of the `network` section and
trains it through `mlts.train.fit` (data parallel, Orbax checkpoints under
`workdir/checkpoints/<tag>`, resumable). The detector study, the telemetry
studies and `mlts.generators` / `mlts.detectors` all train through here.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import train, train_state, writers
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
