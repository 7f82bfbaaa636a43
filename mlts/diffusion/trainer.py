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

from mlts import shards, train, train_state, writers
from mlts.diffusion import detector, losses, process, unet
from mlts.diffusion import moments as moments_lib

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
                  train_windows, workdir: str, tag: str, mesh):
  """Builds the process, trains (or resumes) the U-Net; returns (process, model, params, s).

  `train_windows`: all training windows [N, L, C], or this process's
  `shards.LocalShards` of them (a multi-process run): the process and the
  Gaussian statistics are then fit from the moments of all shards
  (`window_moments`) and each batch is assembled from every process's own
  shards, so no process holds more than its share of the windows.
  """
  streams = dict(zip(("init", "train", "process", "eval"),
                     jax.random.split(jax.random.key(config.seed), 4)))
  sharded = isinstance(train_windows, shards.LocalShards)
  moments = window_moments(train_windows, dcfg) if sharded else None
  proc = (process.make_process(dcfg, moments=moments, key=streams["process"]) if sharded
          else process.make_process(dcfg, train_windows, key=streams["process"]))
  length, channels = train_windows.shape[1:]
  model = make_network(config.network, channels)
  shape = detector.network_input_shape(proc, length, channels)
  # Jitted: an eager init of the U-Net dispatches op by op and takes far longer.
  params = jax.jit(model.init)(streams["init"], jnp.zeros(shape), jnp.zeros((1,)))["params"]
  tx = train_state.make_optimizer(config.optimizer, config.training.num_steps)
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=tx,
      ema_params=jax.tree.map(jnp.copy, params), ema_decay=config.training.ema_decay)
  loss_fn = losses.make_loss_fn(proc, model.apply, dcfg.reg_weight,
                                residual_stats(proc, dcfg, None if sharded else train_windows,
                                               moments=moments))
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


def window_moments(local: shards.LocalShards,
                   dcfg: ml_collections.ConfigDict) -> moments_lib.WindowMoments:
  """The moments of all K shards' windows (flat for 'klt'), the same on every process:
  each process takes those of its own shards, `moments.gather_shards` shares them, and
  they are joined in shard order."""
  flat = dcfg.representation == "klt"
  return moments_lib.join(moments_lib.gather_shards(
      [moments_lib.WindowMoments.of(w, flat=flat) for w in local.windows]))


def residual_stats(proc: process.Process, dcfg: ml_collections.ConfigDict,
                   train_windows, *, moments: moments_lib.WindowMoments | None = None):
  """The `process.DataStats` the network's noise prediction is relative to, or None.

  None unless `dcfg.gaussian_residual`; then the diagonal statistics of the
  training windows [N, L, C] (or of their `moments`) in basis U (pass them to
  `losses.make_noise_fn` wherever the trained network is used: the same
  windows give the same statistics).
  """
  if not dcfg.get("gaussian_residual", False):
    return None
  if moments is not None:
    return process.data_stats(proc, full_covariance=False, moments=moments)
  return process.data_stats(proc, train_windows, full_covariance=False)


def require_plain_network(dcfg: ml_collections.ConfigDict, where: str) -> None:
  """ValueError when `dcfg.gaussian_residual` is set for a consumer that does not support it."""
  if dcfg.get("gaussian_residual", False):
    raise ValueError(
        f"diffusion.gaussian_residual=True is supported by the generation study only, not by "
        f"{where} (their saved models hold no Gaussian statistics); set it to False")


def train_variant_per_series(config: ml_collections.ConfigDict, dcfg: ml_collections.ConfigDict,
                             windows: list[np.ndarray], workdir: str, tag: str, mesh):
  """One process and one U-Net per series, the U-Nets trained together (`mlts.per_series`).

  Series k's process (attenuated set I, t*, Δ) is built from its own windows
  `windows[k]` [n_k, L, C] (the 'gaussianity' search with key fold_in(k));
  the S U-Nets are stacked [S, ...] and trained by one vmapped jitted step,
  series k's loss under its own process.

  Returns:
    (processes: list of S `Process`, model, params [S, ...], seconds).
  """
  from mlts import per_series
  require_plain_network(dcfg, "per-series diffusion")
  streams = dict(zip(("init", "train", "process", "eval"),
                     jax.random.split(jax.random.key(config.seed), 4)))
  procs = [_series_process(dcfg, w, jax.random.fold_in(streams["process"], k))
           for k, w in enumerate(windows)]  # series, not samples
  stacked = per_series.stacked_windows(windows, config.seed)  # [N, S, L, C]
  channels = stacked.shape[-1]
  model = make_network(config.network, channels)
  shape = detector.network_input_shape(procs[0], stacked.shape[2], channels)
  init = jax.jit(lambda k: per_series.init_stacked(
      lambda kk: model.init(kk, jnp.zeros(shape), jnp.zeros((1,)))["params"], k, len(windows)))
  params = init(streams["init"])
  tx = per_series.vmapped_optimizer(
      train_state.make_optimizer(config.optimizer, config.training.num_steps))
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=tx,
      ema_params=jax.tree.map(jnp.copy, params), ema_decay=config.training.ema_decay)
  arrays = jax.tree.map(lambda *a: jnp.stack(a),
                        *[detector.process_arrays(p) for p in procs])
  template = procs[0]

  def loss_k(params, batch, key, arrays_k):
    return losses.make_loss_fn(template.replace(**arrays_k), model.apply,
                               dcfg.reg_weight)(params, batch, key)

  writer = writers.MetricWriter(os.path.join(workdir, "logs", tag))
  start = time.perf_counter()
  try:
    state = train.fit(state, per_series.stacked_loss(loss_k, arrays), stacked, config.training,
                      key=streams["train"], seed=config.seed,
                      checkpoint_dir=os.path.join(workdir, "checkpoints", tag),
                      writer=writer, mesh=mesh, series_axis=True)
  finally:
    writer.close()
  params = state.ema_params if config.training.ema_decay > 0 else state.params
  return procs, model, jax.device_get(params), time.perf_counter() - start


def _series_process(dcfg: ml_collections.ConfigDict, windows: np.ndarray,
                    key: jax.Array) -> process.Process:
  """One series' process; γ ≡ 1 (nothing attenuated) when its windows have no energy.

  A constant channel (zero after normalization) has no subspace to confine the
  latent to, so its model is plain diffusion.
  """
  from mlts.diffusion import basis as basis_lib
  u = basis_lib.basis_matrix(dcfg.representation, windows.shape[1], windows)
  if dcfg.attenuate and not len(dcfg.indices) and not np.any(
      basis_lib.component_energy(windows, u) > 0):
    dcfg = ml_collections.ConfigDict(dcfg.to_dict())
    dcfg.attenuate = False
  return process.make_process(dcfg, windows, key=key)


def describe(proc: process.Process) -> dict[str, Any]:
  """JSON facts of a process: t*, Δ, |I|, representation."""
  return {"t_star": float(proc.t_star), "delta": float(proc.delta),
          "num_attenuated": int(np.asarray(proc.mask).sum()),
          "num_components": proc.num_components, "representation": proc.representation,
          "kind": proc.schedule.kind, "t_max": proc.t_max}
