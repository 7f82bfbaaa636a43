"""Data parallelism over all devices with `jax.sharding`.

One mesh axis, 'batch', over `jax.devices()`. Training state is replicated;
batches are split along their first axis. Works unchanged on one CPU, several
forced host devices (tests), or a GPU node.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices) with axis 'batch'."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy on every device."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis across the mesh."""
  return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises ValueError if the batch cannot be split evenly over the devices."""
  if batch_size % mesh.size:
    raise ValueError(
        f"batch size {batch_size} is not divisible by the number of devices ({mesh.size}); "
        f"choose a multiple of {mesh.size}")


def put_batch(batch, mesh: Mesh):
  """Places a host batch (pytree of [B, ...] arrays) on the devices, split over 'batch'."""
  return jax.device_put(batch, batch_sharded(mesh))


def map_batches(fn: Callable[[jax.Array, int], Any], x: np.ndarray, batch_size: int,
                mesh: Mesh | None = None) -> Any:
  """`fn(chunk, b)` over fixed-size chunks of `x`, outputs concatenated on the host.

  Every call sees the same shape [batch_size, ...] (one compilation): the last
  chunk is padded by repeating its last row and the padded outputs are dropped.

  Args:
    fn: `fn(chunk [batch_size, ...], b) -> pytree of [batch_size, ...] arrays`,
      b the batch number (e.g. for `jax.random.fold_in(key, b)`).
    x: [N, ...] host array, N >= 1.
    batch_size: rows per call.
    mesh: if given, each chunk is split over its devices (`put_batch`; batch_size
      must divide evenly); otherwise it goes to the default device.

  Returns:
    The pytree of `fn`'s outputs, each leaf [N, ...] NumPy.
  """
  if x.shape[0] == 0:
    raise ValueError("map_batches: no rows to process")
  if mesh is not None:
    check_batch_size(batch_size, mesh)
  outs = []
  for b, begin in enumerate(range(0, x.shape[0], batch_size)):  # batches, not samples
    chunk = x[begin:begin + batch_size]
    keep = chunk.shape[0]
    if keep < batch_size:
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - keep, axis=0)])
    chunk = jnp.asarray(chunk) if mesh is None else put_batch(chunk, mesh)
    outs.append(jax.tree_util.tree_map(lambda v, k=keep: np.asarray(v)[:k],
                                       jax.device_get(fn(chunk, b))))
  return jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *outs)
