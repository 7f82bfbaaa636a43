"""Reconstruction detectors: the MSE loss, batched windowed reconstruction, training, residuals.

A backbone maps windows [B, L, C] to reconstructions [B, L, C]. Series are cut
into windows, reconstructed in fixed-size batches (one compiled shape, sharded
over the devices), and mapped back to time steps with the fixed-buffer
aggregator; the residual x - x̂ of the aggregated reconstruction is what scores,
GWNR and ARKS read.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import checks, models, sharding, shards, train, train_state, writers
from mlts.data import series as series_lib
from mlts.data import windows as windows_lib


def make_mse_loss(apply_fn: Callable, horizon: int = 0) -> Callable:
  """Returns `loss_fn(params, batch [B, L, C], key) -> (mse, {})`.

  With `horizon` h > 0 the backbone forecasts: it sees the window with its
  last h steps hidden (`forecast_input`) and the error is taken on those h
  steps only.
  """

  def loss_fn(params, batch, key):
    del key  # deterministic backbone
    if horizon:
      pred = apply_fn({"params": params}, forecast_input(batch, horizon))
      return jnp.mean(jnp.square(pred[:, -horizon:] - batch[:, -horizon:])), {}
    recon = apply_fn({"params": params}, batch)
    return jnp.mean(jnp.square(recon - batch)), {}

  return loss_fn


def forecast_input(x: jnp.ndarray, horizon: int) -> jnp.ndarray:
  """Windows [B, L, C] with the last `horizon` steps replaced by the last step before them.

  What a forecasting backbone sees: the past L − h steps, then the last
  observed value held (so no future value reaches the network).
  """
  past, last = x[:, :-horizon], x[:, -horizon - 1:-horizon]
  return jnp.concatenate([past, jnp.broadcast_to(last, x[:, -horizon:].shape)], axis=1)


def forecast_series(run: Callable, params, series: Sequence[np.ndarray], window: int,
                    stride: int, horizon: int) -> list[np.ndarray]:
  """Forecasts of whole series: step t is predicted from the L − h steps before its window's
  horizon, averaged over the windows whose horizon covers it.

  Each series is first edge-padded at the front by L − h steps (its first value
  repeated), so its first steps are forecast from a constant past.

  Args:
    run: from `make_batched_apply` of a backbone that takes `forecast_input` windows
      (it applies `forecast_input` itself).
    params: network parameters.
    series: list of [T_k, C] arrays.
    window: L.
    stride: window stride, at most `horizon` (every step must be forecast).
    horizon: h, 1 <= h < L.

  Returns:
    List of [T_k, C] forecasts.
  """
  if not 1 <= horizon < window or stride > horizon:
    raise ValueError(f"forecasting needs 1 <= horizon < window and eval_stride <= horizon; "
                     f"got horizon={horizon}, window={window}, stride={stride}")
  front = window - horizon
  padded = [np.concatenate([np.repeat(s[:1], front, axis=0), s]) for s in series]
  cut = [windows_lib.sliding_windows(s, window, stride, pad=True, name=f"series {k}")
         for k, s in enumerate(padded)]
  all_windows = np.concatenate([w for w, _, _ in cut], axis=0).astype(np.float32)
  pred = run(params, all_windows)[:, front:]  # [N, h, C]
  out, offset = [], 0
  for s, (w, starts, _) in zip(series, cut):
    part = pred[offset:offset + w.shape[0]]
    offset += w.shape[0]
    # The horizon of the window starting at padded step a covers original steps a .. a + h − 1.
    ahead = windows_lib.aggregate(part, starts, int(starts.max()) + horizon)
    out.append(ahead[:s.shape[0]])
  return out


def make_batched_apply(apply_fn: Callable, batch_size: int, mesh=None) -> Callable:
  """Returns `run(params, windows [N, L, C]) -> [N, L, C]` evaluating in fixed batches.

  The last batch is padded to `batch_size` so the network compiles once per
  window shape; batches are split over the devices of `mesh`.
  """
  mesh = sharding.make_mesh() if mesh is None else mesh
  sharding.check_batch_size(batch_size, mesh)
  jitted = jax.jit(lambda params, x: apply_fn({"params": params}, x),
                   in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
                   out_shardings=sharding.replicated(mesh))

  def run(params, windows: np.ndarray) -> np.ndarray:
    num = windows.shape[0]
    outputs = []
    params = sharding.put_replicated(params, mesh)  # once, not per batch
    for begin in range(0, num, batch_size):  # loop over batches, not samples
      chunk = windows[begin:begin + batch_size]
      short = batch_size - chunk.shape[0]
      if short:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)], axis=0)
      out = jitted(params, sharding.put_batch(chunk, mesh))
      outputs.append(sharding.to_host(out)[:batch_size - short])
    return np.concatenate(outputs, axis=0)

  return run


def reconstruct_series(run: Callable, params, series: Sequence[np.ndarray], window: int,
                       stride: int) -> list[np.ndarray]:
  """Reconstructs whole series through windows and the fixed-buffer aggregator.

  All series are windowed (padded by edge replication when shorter than the
  window), reconstructed together, and aggregated back one series at a time; the
  padded steps are dropped.

  Args:
    run: from `make_batched_apply`.
    params: network parameters.
    series: list of [T_k, C] arrays.
    window: L.
    stride: window stride at evaluation.

  Returns:
    List of [T_k, C] aggregated reconstructions.
  """
  cut = [windows_lib.sliding_windows(s, window, stride, pad=True, name=f"series {k}")
         for k, s in enumerate(series)]
  all_windows = np.concatenate([w for w, _, _ in cut], axis=0).astype(np.float32)
  recon = run(params, all_windows)
  out, offset = [], 0
  for s, (w, starts, mask) in zip(series, cut):
    part = recon[offset:offset + w.shape[0]]
    offset += w.shape[0]
    out.append(windows_lib.aggregate(part, starts, mask.shape[0])[:s.shape[0]])
  return out


def squared_error(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
  """Per-time-step score: mean over channels of the squared residual, [T, C] -> [T]."""
  return np.mean(np.square(np.asarray(x, np.float64) - recon), axis=-1)


def _validation_loss_hook(run, val_windows: np.ndarray, config: ml_collections.ConfigDict,
                          writer: writers.MetricWriter):
  """A training hook writing the reconstruction MSE on validation windows every eval_every steps.

  Uses the current parameters (not the EMA). Validation data are normal data held
  out of training, so this curve can guide the number of steps without test labels.
  """
  def hook(step: int, state) -> None:
    if step % config.training.eval_every == 0 or step == config.training.num_steps:
      recon = run(state.params, val_windows)
      writer.write_scalars(step, {"eval_loss": float(np.mean(np.square(recon - val_windows)))})

  return hook


def check_config(config: ml_collections.ConfigDict) -> None:
  """Validates every section of a detector-study config before any data is loaded or compiled.

  Raises:
    ValueError: naming the field, its value and what is allowed.
  """
  from mlts import evaluation
  from mlts.cognos import postprocess
  series_lib.validate_config(config.data)
  train.validate_config(config.training)
  train_state.validate_optimizer_config(config.optimizer)
  postprocess.validate_config(config.postprocess)
  evaluation.validate_config(config.eval)
  checks.config_int(config, "seed", where="config", minimum=0)
  devices = jax.device_count()
  for where, section in (("training", config.training), ("eval", config.eval)):
    if section.batch_size % devices:
      raise ValueError(f"{where}.batch_size={section.batch_size} does not split over the "
                       f"{devices} devices; choose a multiple of {devices}")
  if config.model.name not in models.REGISTRY:
    raise ValueError(f"model.name must be one of {tuple(models.REGISTRY)}, "
                     f"got {config.model.name!r}")
  models.check_window(config.model, config.data.window)


def method_name(config: ml_collections.ConfigDict) -> str:
  """The report name of a trained detector: backbone, plus loss and post-processing if not plain."""
  name = config.model.name
  if config.training.loss != "mse":
    name += f"+{config.training.loss}"
  if config.postprocess.name != "none":
    name += f"+{config.postprocess.name}"
  return name


def make_loss(config: ml_collections.ConfigDict, apply_fn):
  """The training loss named by `config.training.loss`: 'mse' or 'gwnr' (COGNOS).

  `config.data.horizon` > 0 (default 0) makes the backbone a forecaster (MSE only).
  """
  horizon = int(config.data.get("horizon", 0))
  if config.training.loss == "mse":
    return make_mse_loss(apply_fn, horizon)
  if horizon:
    raise ValueError("training.loss='gwnr' shapes reconstruction residuals; with forecasting "
                     "(horizon > 0) use loss='mse'")
  if config.training.loss == "gwnr":
    from mlts.cognos import gwnr
    return gwnr.make_gwnr_loss(apply_fn, config.gwnr)
  raise ValueError(f"unknown training.loss {config.training.loss!r}; expected mse or gwnr")


@dataclasses.dataclass
class TrainedBackbone:
  """A trained reconstruction backbone and how to run it.

  Attributes:
    params: parameters used for scoring (the EMA when training.ema_decay > 0).
    run: `run(params, windows [N, L, C]) -> [N, L, C]`, batched and sharded.
    step: the training step reached.
    train_seconds: wall time of `train.fit` in this process (0 when fully restored).
  """
  params: Any
  run: Any
  step: int
  train_seconds: float


def train_backbone(config: ml_collections.ConfigDict, prepared: Sequence[series_lib.PreparedSeries],
                   workdir: str, mesh=None) -> TrainedBackbone:
  """Trains (or resumes) the backbone of `config.model` with `config.training.loss`.

  Checkpoints go to `workdir/checkpoints`, logs to `workdir/logs`.
  """
  mesh = sharding.make_mesh() if mesh is None else mesh
  train_windows = shards.training_windows(
      prepared, config.data.window, config.data.stride,
      data_shards=config.training.get("data_shards", 0), seed=config.seed)
  sample = (train_windows.windows[0] if isinstance(train_windows, shards.LocalShards)
            else train_windows)[:1]
  # One root key split once into named streams; 'eval' is reserved for stochastic
  # scorers (the reconstruction backbones are deterministic at evaluation).
  streams = dict(zip(("init", "train", "eval"),
                     jax.random.split(jax.random.key(config.seed), 3)))
  model = models.get_model(config.model, sample.shape[-1])
  tx = train_state.make_optimizer(config.optimizer, config.training.num_steps)
  state = train_state.create_train_state(
      model, sample, tx, streams["init"], ema_decay=config.training.ema_decay)
  writer = writers.MetricWriter(os.path.join(workdir, "logs"))
  writer.write_hparams(config.to_dict())
  run = make_batched_apply(model.apply, config.eval.batch_size, mesh)
  hooks = []
  if config.training.eval_every > 0:
    val_windows = series_lib.training_windows(prepared, config.data.window, config.data.window // 2,
                                   part="val")
    hooks.append(_validation_loss_hook(run, val_windows, config, writer))
  start = time.perf_counter()
  try:
    state = train.fit(
        state, make_loss(config, model.apply), train_windows, config.training,
        key=streams["train"], seed=config.seed,
        checkpoint_dir=os.path.join(workdir, "checkpoints"), writer=writer, mesh=mesh,
        hooks=hooks)
  finally:
    writer.close()
  params = state.ema_params if config.training.ema_decay > 0 else state.params
  return TrainedBackbone(params=params, run=run, step=int(jax.device_get(state.step)),
                         train_seconds=time.perf_counter() - start)


def train_backbone_per_series(config: ml_collections.ConfigDict,
                              prepared: Sequence[series_lib.PreparedSeries], workdir: str,
                              mesh=None) -> TrainedBackbone:
  """Trains one backbone per series, all at once (`mlts.per_series`: vmapped, one jitted step).

  Series k's parameters are initialized from its own key and see only its own
  windows; the returned params are stacked [S, ...]. Checkpoints and logs as
  `train_backbone`; `training.batch_size` is the batch of each series.
  """
  from mlts import per_series
  mesh = sharding.make_mesh() if mesh is None else mesh
  windows = [series_lib.training_windows([p], config.data.window, config.data.stride)
             for p in prepared]
  stacked = per_series.stacked_windows(windows, config.seed)  # [N, S, L, C]
  streams = dict(zip(("init", "train", "eval"),
                     jax.random.split(jax.random.key(config.seed), 3)))
  model = models.get_model(config.model, stacked.shape[-1])
  sample = windows[0][:1]
  params = per_series.init_stacked(lambda k: model.init(k, sample)["params"], streams["init"],
                                   len(prepared))
  tx = per_series.vmapped_optimizer(
      train_state.make_optimizer(config.optimizer, config.training.num_steps))
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=tx, ema_params=jax.tree.map(jnp.copy, params),
      ema_decay=config.training.ema_decay)
  writer = writers.MetricWriter(os.path.join(workdir, "logs"))
  writer.write_hparams(config.to_dict())
  start = time.perf_counter()
  try:
    state = train.fit(
        state, per_series.stacked_loss(make_loss(config, model.apply)), stacked,
        config.training, key=streams["train"], seed=config.seed,
        checkpoint_dir=os.path.join(workdir, "checkpoints"), writer=writer, mesh=mesh,
        series_axis=True)
  finally:
    writer.close()
  params = state.ema_params if config.training.ema_decay > 0 else state.params
  run = make_batched_apply(model.apply, config.eval.batch_size, mesh)
  return TrainedBackbone(params=params, run=run, step=int(jax.device_get(state.step)),
                         train_seconds=time.perf_counter() - start)


def compute_residuals(backbone: TrainedBackbone, prepared: Sequence[series_lib.PreparedSeries],
                      config: ml_collections.ConfigDict):
  """Residuals x - x̂ of the aggregated reconstruction of every validation and test series.

  Returns:
    (val residuals, test residuals): lists over series of [V_k, C] and [T_k, C].
  """
  out = []
  for part in ("val", "test"):
    series = [getattr(p, part) for p in prepared]
    recon = reconstruct_series(
        backbone.run, backbone.params, series, config.data.window, config.data.eval_stride)
    out.append([x.astype(np.float64) - r for x, r in zip(series, recon)])
  return out[0], out[1]


def postprocess_scores(val_residuals, test_residuals, config: ml_collections.ConfigDict):
  """Per-step scores of every series after the post-processing `config.name`.

  Each series gets its own post-processor fit on its validation residuals (ARKS
  calibrates per channel there), then scores both parts.

  Returns:
    list over series of (val scores [V_k], test scores [T_k]).
  """
  from mlts.cognos import postprocess
  out = []
  for val, test in zip(val_residuals, test_residuals):
    apply = postprocess.make_postprocessor(config.name, config)(val)
    out.append((np.asarray(apply(val), np.float64), np.asarray(apply(test), np.float64)))
  return out
