"""Orbax checkpoints of the training state: save, resume, and clear errors when corrupt."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from absl import logging


def make_manager(directory: str, *, max_to_keep: int = 3,
                 save_interval_steps: int = 1) -> ocp.CheckpointManager:
  """An Orbax CheckpointManager writing under `directory` (created if missing).

  Raises:
    ValueError: `directory` exists and is not a directory.
  """
  directory = os.path.abspath(directory)
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ValueError(f"checkpoint directory {directory} exists and is not a directory")
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, save_interval_steps=save_interval_steps, create=True)
  return ocp.CheckpointManager(directory, options=options)


def restore_or_keep(manager: ocp.CheckpointManager, state):
  """Restores the latest checkpoint into the structure (and shardings) of `state`.

  Args:
    manager: the checkpoint manager.
    state: a freshly initialized state; its shapes, dtypes and shardings define
      what is restored. Returned unchanged if there is no checkpoint.

  Returns:
    (state, restored_step or None).

  Raises:
    ValueError: the latest checkpoint cannot be read (corrupt, truncated, or from
      a model of another shape); the message names the step directory. Nothing is
      deleted: move the bad step directory away to resume from an earlier one.
  """
  step = manager.latest_step()
  if step is None:
    return state, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  try:
    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as err:  # orbax raises many types; all mean "cannot use this checkpoint"
    path = os.path.join(str(manager.directory), str(step))
    others = [s for s in manager.all_steps() if s != step]
    raise ValueError(
        f"checkpoint {path} is corrupt or does not match the model "
        f"({type(err).__name__}: {str(err)[:300]}). Other saved steps: {others or 'none'}; "
        "move the bad step directory away to resume from an earlier one, or use a new "
        "--workdir to start over") from err
  logging.info("Restored checkpoint at step %d from %s", step, manager.directory)
  return restored, step


def save(manager: ocp.CheckpointManager, step: int, state, *, force: bool = False) -> bool:
  """Saves `state` at `step` (subject to the manager's interval unless `force`)."""
  return manager.save(step, args=ocp.args.StandardSave(state), force=force)
