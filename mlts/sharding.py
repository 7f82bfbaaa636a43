"""Data parallelism over all devices with `jax.sharding`.

One mesh axis, 'batch', over `jax.devices()`. Training state is replicated;
batches are split along their first axis. Works unchanged on one CPU, several
forced host devices (tests), or a GPU node.
"""

from __future__ import annotations

import jax
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
