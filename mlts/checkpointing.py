"""Orbax checkpoints of the training state: save, resume, and clear errors when corrupt."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging

from mlts import sharding


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


def count_non_finite(tree) -> int:
  """How many floating leaves of `tree` hold a NaN or inf (0 for a healthy state)."""
  leaves = [x for x in jax.tree.leaves(tree)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
  if not leaves:
    return 0
  return int(jax.device_get(_count_non_finite(leaves)))


@jax.jit
def _count_non_finite(leaves):
  return sum(jnp.any(~jnp.isfinite(x)).astype(jnp.int32) for x in leaves)


def restore_or_keep(manager: ocp.CheckpointManager, state):
  """Restores the latest checkpoint into the structure (and shardings) of `state`.

  Args:
    manager: the checkpoint manager.
    state: a freshly initialized state; its shapes, dtypes and shardings define
      what is restored. Returned unchanged if there is no checkpoint.

  A checkpoint whose floating leaves hold NaN/inf is refused (with a warning)
  and the newest finite one before it is used; with none, `state` is kept.

  Returns:
    (state, restored_step or None).

  Raises:
    ValueError: the latest checkpoint cannot be read (corrupt, truncated, or from
      a model of another shape); the message names the step directory. Nothing is
      deleted: move the bad step directory away to resume from an earlier one.
  """
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    return state, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  for step in steps:
    path = os.path.join(str(manager.directory), str(step))
    damage = verify(str(manager.directory), step)
    if damage:
      older = [s for s in steps if s < step]
      aside = _set_aside(manager, step)
      logging.warning("Checkpoint %s is corrupt: %s. Not used, moved to %s; %s", path, damage,
                      aside, f"resuming from step {older[0]}" if older else
                      "no older checkpoint, so training starts from the initial state")
      continue
    try:
      restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as err:  # orbax raises many types; all mean "cannot use this checkpoint"
      others = [s for s in steps if s != step]
      raise ValueError(
          f"checkpoint {path} is corrupt or does not match the model "
          f"({type(err).__name__}: {err}). Other saved steps: {others or 'none'}; "
          "move the bad step directory away to resume from an earlier one, or use a new "
          "--workdir to start over") from err
    bad = count_non_finite(restored)
    if bad:
      older = [s for s in steps if s < step]
      aside = _set_aside(manager, step)
      logging.warning(
          "Checkpoint %s holds %d non-finite leaves (NaN/inf): not used, moved to %s; %s",
          path, bad, aside, f"resuming from step {older[0]}" if older else
          "no older checkpoint, so training starts from the initial state")
      continue
    logging.info("Restored checkpoint at step %d from %s", step, manager.directory)
    return restored, step
  return state, None


def _set_aside(manager: ocp.CheckpointManager, step: int) -> str:
  """Moves a refused step out of the checkpoint directory (kept, never deleted).

  The step goes to `<checkpoints>_rejected/<step>` so that training can save
  that step number again; the manager is told to rescan its directory.
  """
  directory = str(manager.directory)
  target_dir = directory.rstrip(os.sep) + "_rejected"
  target = os.path.join(target_dir, str(step))
  suffix = 0
  while os.path.exists(target):
    suffix += 1
    target = os.path.join(target_dir, f"{step}.{suffix}")
  sharding.sync(f"set aside {directory} {step}")  # every process has decided the same
  if jax.process_index() == 0:  # one process moves it (a shared directory)
    os.makedirs(target_dir, exist_ok=True)
    shutil.move(os.path.join(directory, str(step)), target)
  sharding.sync(f"set aside {directory} {step} done")
  manager.reload()
  return target


class CheckpointSaveError(OSError):
  """A checkpoint could not be written (the run stops; earlier checkpoints are kept)."""


def save(manager: ocp.CheckpointManager, step: int, state, *, force: bool = False) -> bool:
  """Saves `state` at `step` (subject to the manager's interval unless `force`), then its checksums.

  The save is waited for, so that the SHA-256 of every file of the step can be
  recorded (`verify` checks them on restore).

  Raises:
    CheckpointSaveError: the directory cannot be written (named, with the cause).
  """
  directory = str(manager.directory)
  try:
    saved = manager.save(step, args=ocp.args.StandardSave(state), force=force)
    manager.wait_until_finished()
  except Exception as err:  # orbax / tensorstore raise many types
    raise CheckpointSaveError(
        f"saving the checkpoint of step {step} to {directory} failed "
        f"({type(err).__name__}: {err}); check that the directory is writable and has space. "
        "Earlier checkpoints are kept") from err
  if saved:
    sharding.sync(f"checkpoint {directory} {step} written")  # every process's shards
    if jax.process_index() == 0:  # one writer of the checksum table
      record_checksums(directory, step)
    sharding.sync(f"checkpoint {directory} {step} checksummed")
  return saved


def _checksum_path(directory: str) -> str:
  return directory.rstrip(os.sep) + ".sha256.json"


def _step_digests(step_dir: str) -> dict[str, str]:
  digests = {}
  for root, _, names in os.walk(step_dir):
    for name in sorted(names):
      path = os.path.join(root, name)
      h = hashlib.sha256()
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
      digests[os.path.relpath(path, step_dir)] = h.hexdigest()
  return digests


def record_checksums(directory: str, step: int) -> None:
  """Records the SHA-256 of every file of a saved step in `<checkpoints>.sha256.json`."""
  path = _checksum_path(directory)
  table = {}
  if os.path.exists(path):
    with open(path) as f:
      table = json.load(f)
  table[str(step)] = _step_digests(os.path.join(directory, str(step)))
  existing = {s for s in os.listdir(directory) if s.isdigit()}
  table = {s: v for s, v in table.items() if s in existing}  # steps Orbax has removed
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(table, f, indent=1)
  os.replace(tmp, path)


def verify(directory: str, step: int) -> str | None:
  """Why the saved files of `step` differ from their recorded checksums, or None if intact.

  A step saved before checksums were recorded is not checked (None).
  """
  path = _checksum_path(directory)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    expected = json.load(f).get(str(step))
  if expected is None:
    return None
  got = _step_digests(os.path.join(directory, str(step)))
  for name, digest in expected.items():
    if name not in got:
      return f"{name} is missing"
    if got[name] != digest:
      return f"{name} does not match its recorded SHA-256 (the file was changed or damaged)"
  return None
