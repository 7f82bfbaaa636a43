"""The generic training loop: sharded jitted steps, resume, logging, checkpoints.

Model families plug in a loss `loss_fn(params, batch, key) -> (loss, metrics)`;
this module owns everything around it: the jitted step with donation and
data-parallel shardings, stateless per-step randomness (so a resumed run
reproduces an uninterrupted one exactly), epoch-permuted batches chosen on the
host from (seed, epoch), Orbax checkpoints with resume, progress with steps/s
and ETA, and a hard stop on a non-finite loss that keeps the last good
checkpoint.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

from mlts import checkpointing, checks, sharding
from mlts import shards as shards_lib
from mlts.train_state import TrainState
from mlts.writers import MetricWriter

LossFn = Callable[..., tuple[jax.Array, Mapping[str, jax.Array]]]
Hook = Callable[[int, TrainState], None]


def default_config() -> ml_collections.ConfigDict:
  """The `training` config section of `fit`."""
  training = ml_collections.ConfigDict()
  training.loss = "mse"  # mse | gwnr (COGNOS: residuals shaped into Gaussian white noise)
  training.num_steps = 2000  # optimizer steps
  training.batch_size = 64  # global batch (split over devices; a multiple of the device count)
  training.ema_decay = 0.0  # EMA of parameters used for scoring when > 0
  training.log_every = 100  # steps between logged averages
  training.eval_every = 500  # steps between validation-loss evaluations; 0 = off
  training.checkpoint_every = 500  # steps between Orbax checkpoints
  training.max_checkpoints = 2  # checkpoints kept
  # Shards of the training windows (mlts/shards.py): 0 = one per process, so that in a
  # multi-host run each process builds and holds only its own; 1 process: all windows.
  training.data_shards = 0
  return training


def validate_config(config: ml_collections.ConfigDict, *, where: str = "training") -> None:
  """Checks the `training` section; ValueError names the field, the value and what is allowed."""
  for field in ("num_steps", "batch_size", "log_every", "checkpoint_every", "max_checkpoints"):
    if field in config:
      checks.config_int(config, field, where=where, minimum=1)
  if "eval_every" in config:
    checks.config_int(config, "eval_every", where=where, minimum=0)
  if "data_shards" in config:
    checks.config_int(config, "data_shards", where=where, minimum=0)
  if "ema_decay" in config:
    checks.config_float(config, "ema_decay", where=where, low=0.0, high=1.0, high_open=True)
  if "loss" in config:
    checks.config_choice(config, "loss", ("mse", "gwnr"), where=where)


def make_train_step(loss_fn: LossFn):
  """Returns `step(state, batch, key) -> (state, metrics)`, pure and jittable.

  The per-step key is `fold_in(key, state.step)`: no key is carried in the state,
  yet every step draws fresh, reproducible randomness.
  """

  def train_step(state: TrainState, batch, key: jax.Array):
    step_key = jax.random.fold_in(key, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, metrics), grads = grad_fn(state.params, batch, step_key)
    new_state = state.apply_gradients(grads=grads)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
    return new_state, metrics

  return train_step


class NonFiniteLossError(FloatingPointError):
  """Raised when training produced a NaN/inf loss; the last good checkpoint is kept."""


def fit(state: TrainState, loss_fn: LossFn | None,
        train_windows: np.ndarray | shards_lib.LocalShards,
        config: ml_collections.ConfigDict, *, key: jax.Array, seed: int, checkpoint_dir: str,
        writer: MetricWriter, mesh=None, hooks: Sequence[Hook] = (),
        train_step: Callable | None = None, series_axis: bool = False) -> TrainState:
  """Trains `state` on windows, resuming from the latest checkpoint in `checkpoint_dir`.

  Args:
    state: freshly initialized state (replaced by the checkpoint if one exists).
      Any pytree with an integer `step` field.
    loss_fn: `loss_fn(params, batch [B, L, C], key) -> (scalar loss, metrics dict)`;
      None when `train_step` is given.
    train_windows: [N, L, C] training windows (host array, the same on every
      process), or this process's `shards.LocalShards` of them (each process
      holds only its own; batches drawn shard by shard, see mlts/shards.py).
    config: the `training` config section: num_steps, batch_size, log_every,
      checkpoint_every, max_checkpoints.
    key: PRNG key of the training stream.
    seed: seed of the host-side batch order.
    checkpoint_dir: where Orbax checkpoints live.
    writer: metric writer.
    mesh: device mesh (default: all devices, of every process in a multi-host run,
      where each process reads only its rows of each batch from `train_windows`).
    hooks: called as `hook(step, state)` after every step (e.g. to stop a run
      for a preemption test, or to evaluate).
    train_step: a pure `step(state, batch, key) -> (state, metrics)` replacing
      `make_train_step(loss_fn)`, for models with their own update rule (the
      β-VAEGAN's two optimizers). It must fold the step into the key itself.
      Every metric whose name starts with 'loss' is checked for finiteness.
    series_axis: the state is a stack of S per-series models (`mlts.per_series`:
      every parameter and optimizer leaf [S, ...], windows [N, S, L, C]). When S
      is a multiple of the device count, the series axis is split over the
      devices (each device trains its own S / D models on their own columns of
      the batch; no gradient all-reduce); otherwise the batch is split as usual.

  Returns:
    The trained state (replicated over the mesh).

  Raises:
    ValueError: fewer windows than one batch, or a batch that does not split over devices.
    NonFiniteLossError: a non-finite loss; no checkpoint is written after it.
  """
  if (loss_fn is None) == (train_step is None):
    raise ValueError("give exactly one of loss_fn and train_step")
  if train_step is None:
    train_step = make_train_step(loss_fn)
  mesh = sharding.make_mesh() if mesh is None else mesh
  batch_size = config.batch_size
  sharding.check_batch_size(batch_size, mesh)
  num_examples = train_windows.shape[0]
  local_shards = isinstance(train_windows, shards_lib.LocalShards)
  if local_shards:
    if series_axis:
      raise ValueError("per-series models take all windows on every process, not LocalShards")
    train_windows.check_batch(batch_size)
  elif int(config.get("data_shards", 0)) > 1:
    raise ValueError(f"training.data_shards={config.data_shards}, but this model trains on all "
                     "windows on every process (it was given one array, not shards.LocalShards); "
                     "set training.data_shards=0")
  if num_examples < batch_size:
    raise ValueError(
        f"only {num_examples} training windows for a batch of {batch_size}; lower "
        "training.batch_size or the window stride")
  replicated = sharding.replicated(mesh)
  by_series = series_axis and _split_series(state, train_windows, mesh)
  if by_series:
    state_sharding = _series_shardings(state, train_windows.shape[1], mesh)
    state = jax.tree.map(sharding.put_global, state, state_sharding)
    batch_sharding = sharding.series_sharded(mesh, train_windows.ndim, axis=1)
  else:
    state_sharding, batch_sharding = replicated, sharding.batch_sharded(mesh)
    state = sharding.put_replicated(state, mesh)
  manager = checkpointing.make_manager(
      checkpoint_dir, max_to_keep=config.max_checkpoints,
      save_interval_steps=config.checkpoint_every)
  failed_save = False
  try:
    state, restored = checkpointing.restore_or_keep(manager, state)
    start = int(jax.device_get(state.step))
    last_saved = restored
    writer.restart_at(start)  # drop what a killed run logged past its last checkpoint
    step_fn = jax.jit(
        train_step,
        in_shardings=(state_sharding, batch_sharding, replicated),
        out_shardings=(state_sharding, replicated),
        donate_argnums=0)
    key = sharding.put_replicated(key, mesh)
    one_step_in_flight = _collectives_can_starve(mesh)
    num_steps = config.num_steps
    pending: list[tuple[int, Mapping[str, jax.Array]]] = []
    window_start, window_step = time.perf_counter(), start
    if start >= num_steps:
      logging.info("Checkpoint at step %d already reaches num_steps=%d", start, num_steps)
    for step in range(start, num_steps):
      if local_shards:  # this process's block, from its own shards only
        batch = sharding.put_local(
            train_windows.local_batch(seed, step, batch_size), batch_sharding,
            (batch_size,) + train_windows.shape[1:])
      else:
        # The same on every process.
        idx = shards_lib.batch_indices(seed, step, num_examples, batch_size)
        batch = sharding.put_rows(train_windows, idx, batch_sharding)  # this process's part
      if step == start:
        compile_start = time.perf_counter()
      state, metrics = step_fn(state, batch, key)
      if one_step_in_flight:
        jax.block_until_ready(metrics)
      if step == start:
        jax.block_until_ready(metrics)
        logging.info("Initial compilation and first step took %.2f s",
                     time.perf_counter() - compile_start)
        window_start, window_step = time.perf_counter(), step + 1
      pending.append((step + 1, metrics))
      done = step + 1
      for hook in hooks:
        hook(done, state)
      due_log = done % config.log_every == 0 or done == num_steps
      due_save = done % config.checkpoint_every == 0 or done == num_steps
      if due_log or due_save:
        _check_and_log(pending, writer, last_saved, checkpoint_dir)
        pending = []
        if due_log:
          elapsed = time.perf_counter() - window_start
          rate = (done - window_step) / elapsed if elapsed > 0 and done > window_step else math.nan
          eta = (num_steps - done) / rate if rate and rate == rate else math.nan
          writer.write_scalars(done, {"steps_per_second": rate})
          logging.info("step %d/%d, %.1f steps/s, ETA %.0f s", done, num_steps, rate, eta)
          window_start, window_step = time.perf_counter(), done
      if due_save:
        bad = checkpointing.count_non_finite(state)
        if bad:  # the update of one of these steps broke the state: never save it
          raise NonFiniteLossError(
              f"{bad} leaves of the training state (parameters / optimizer state) became "
              f"non-finite by step {done}; training stopped and nothing was saved. "
              f"{_last_good(last_saved, checkpoint_dir)}")
        checkpointing.save(manager, done, state, force=done == num_steps)
        last_saved = done
    manager.wait_until_finished()
  except checkpointing.CheckpointSaveError:
    failed_save = True
    raise
  finally:
    if not failed_save:  # after a failed save Orbax's threads may never finish: do not wait
      manager.close()
    writer.flush()
  if by_series:  # callers get the documented replicated state
    state = jax.jit(lambda s: s, out_shardings=replicated)(state)
  return state


def _collectives_can_starve(mesh) -> bool:
  """Whether steps must be run one at a time: several CPU devices in this process.

  XLA:CPU runs each local device's part of a program on a shared thread pool, and an
  all-reduce holds its thread until every local device reaches it. With steps
  dispatched ahead, later steps' parts can hold the threads that an earlier step's
  devices wait for: the rendezvous never completes and XLA aborts the process after
  40 s. A bare jitted loop of a 256 x 256 data-parallel gradient step on 4 host
  devices (2 cores) aborted so in 4 runs of 4 and finished in 8.5 s when each step
  was awaited; the suite's rare aborts inside this loop fit the same picture. Waiting
  for each step's metrics before dispatching the next keeps one step in flight.
  """
  local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
  return len(local) > 1 and local[0].platform == "cpu"


def _split_series(state, train_windows: np.ndarray, mesh) -> bool:
  """Whether the S per-series models split evenly over the devices (logged either way)."""
  num_series = train_windows.shape[1] if train_windows.ndim >= 2 else 0
  if num_series and num_series % mesh.size == 0:
    logging.info("%d per-series models split over %d devices (%d each)", num_series,
                 mesh.size, num_series // mesh.size)
    return True
  logging.info("%d per-series models do not split over %d devices: replicated, the batch "
               "is split instead", num_series, mesh.size)
  return False


def _series_shardings(state, num_series: int, mesh):
  """Series-split sharding for every [S, ...] leaf of `state`, replicated for the rest."""
  def leaf(x):
    shape = np.shape(x)
    if len(shape) >= 1 and shape[0] == num_series:
      return sharding.series_sharded(mesh, len(shape))
    return sharding.replicated(mesh)

  return jax.tree.map(leaf, state)


def _check_and_log(pending, writer: MetricWriter, last_saved, checkpoint_dir: str) -> None:
  """Averages the pending step metrics, writes them, and stops on a non-finite loss."""
  fetched = jax.device_get([m for _, m in pending])
  for (step, _), metrics in zip(pending, fetched):
    for name, value in metrics.items():
      if name.startswith("loss") and not np.isfinite(value):
        raise NonFiniteLossError(
            f"non-finite {name} ({value}) at step {step}; training stopped. "
            f"{_last_good(last_saved, checkpoint_dir)}")
  keys = fetched[-1].keys()
  means = {f"train_{k}": float(np.mean([m[k] for m in fetched])) for k in keys}
  writer.write_scalars(pending[-1][0], means)


def _last_good(last_saved, checkpoint_dir: str) -> str:
  """Where a stopped run can resume from, for the error message."""
  if last_saved is None:
    return (f"No checkpoint was saved yet in {checkpoint_dir}: a rerun starts from scratch "
            "(lower optimizer.learning_rate or set optimizer.grad_clip first)")
  return f"The last good checkpoint (step {last_saved}) is kept in {checkpoint_dir}"
