"""Data parallelism over all devices with `jax.sharding`, on one process or several.

One mesh axis, 'batch', over `jax.devices()` (every device of every process once
`jax.distributed.initialize()` has run). Training state is replicated; batches
are split along their first axis. Works unchanged on one CPU, several forced host
devices (tests), a GPU node, or several hosts: there each process reads and
transfers only the blocks of a global array that its own devices hold
(`jax.make_array_from_callback`) and gathers outputs with
`multihost_utils.process_allgather`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
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


def series_sharded(mesh: Mesh, ndim: int, axis: int = 0) -> NamedSharding:
  """Sharding that splits axis `axis` of an [ndim]-array (a stack of per-series
  models or their [B, S, ...] batch) across the mesh."""
  spec = [None] * ndim
  spec[axis] = BATCH_AXIS
  return NamedSharding(mesh, PartitionSpec(*spec))


def put_global(x, target: NamedSharding):
  """An array (the same on every process) placed with `target`; each process
  transfers only the blocks its own devices hold.

  Typed PRNG keys keep their type; leaves without a shape are returned as they are.
  """
  if not is_multi_process(target.mesh):
    return jax.device_put(x, target)
  if not hasattr(x, "shape"):
    return x
  if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(put_global(jax.random.key_data(x), target),
                                    impl=jax.random.key_impl(x))
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, target, lambda index: x[index])


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  """Raises ValueError if the batch cannot be split evenly over the devices."""
  if batch_size % mesh.size:
    raise ValueError(
        f"batch size {batch_size} is not divisible by the number of devices ({mesh.size}); "
        f"choose a multiple of {mesh.size}")


def is_multi_process(mesh: Mesh) -> bool:
  """Whether `mesh` holds devices of other processes (a multi-host run)."""
  me = jax.process_index()
  return any(d.process_index != me for d in mesh.devices.flat)


def put_rows(x: np.ndarray, rows: np.ndarray, target: NamedSharding) -> jax.Array:
  """`x[rows]` (x the same on every process) placed with `target`; each process reads
  and transfers only the blocks its own devices hold (its rows of a batch split over
  'batch', or its series of a batch split by series).

  Args:
    x: [N, ...] host array.
    rows: [B] indices into x's first axis.
    target: the sharding of the [B, ...] result.
  """
  if not is_multi_process(target.mesh):
    return jax.device_put(x[rows], target)
  shape = (len(rows),) + tuple(x.shape[1:])
  # Basic slicing of the other axes is a view: only the block's rows are copied.
  return jax.make_array_from_callback(
      shape, target, lambda index: x[(slice(None),) + tuple(index[1:])][rows[index[0]]])


def put_local(block: np.ndarray, target: NamedSharding, shape: tuple[int, ...]) -> jax.Array:
  """A global [B, ...] array of `shape` from this process's block of its rows
  (`jax.make_array_from_process_local_data`; the whole array on one process)."""
  if not is_multi_process(target.mesh):
    return jax.device_put(block, target)
  return jax.make_array_from_process_local_data(target, block, shape)


def put_batch(batch, mesh: Mesh):
  """Places a host batch (pytree of [B, ...] arrays, the same on every process) on the
  devices, split over 'batch'; each process transfers only its own rows."""
  target = batch_sharded(mesh)
  return jax.tree.map(lambda x: put_global(x, target), batch)


def put_replicated(tree, mesh: Mesh):
  """A full copy of `tree` (the same on every process) on every device of `mesh`."""
  target = replicated(mesh)
  return jax.tree.map(lambda x: put_global(x, target), tree)


def to_host(tree):
  """Every leaf of `tree` as a NumPy array on this process, gathered from all
  processes when it is split over several (a multi-host run)."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)

  return jax.tree.map(get, jax.device_get(tree) if jax.process_count() == 1 else tree)


def sync(name: str) -> None:
  """A barrier across processes (nothing on one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def allgather_host(x) -> np.ndarray:
  """[P, ...]: this process's host array `x` beside every other process's, in process order.

  Every process passes the same shape and dtype. Exact for every dtype: 8-byte
  values travel as pairs of uint32 (without x64 the collectives would round
  float64 to float32). One process: `x[None]`.
  """
  x = np.ascontiguousarray(np.atleast_1d(np.asarray(x)))
  if jax.process_count() == 1:
    return x[None]
  wide = x.dtype.itemsize == 8
  out = np.asarray(multihost_utils.process_allgather(x.view(np.uint32) if wide else x))
  return np.ascontiguousarray(out).view(x.dtype) if wide else out.astype(x.dtype)


def process_share(num_items: int) -> list[int]:
  """The items of 0..n−1 this process computes when independent items (sample batches,
  metric runs) are split over processes: k ≡ process index (mod process count)."""
  return list(range(jax.process_index(), num_items, jax.process_count()))


def gather_shares(local, num_items: int, *, shape, dtype) -> np.ndarray:
  """[n, *shape]: items 0..n−1 on every process, from each process's results for its
  `process_share(n)` (`local`, one [*shape] array per item, in that order).

  The result does not depend on the process count, provided each item does not.
  """
  per_process = -(-num_items // jax.process_count())
  mine = process_share(num_items)
  if len(local) != len(mine):
    raise ValueError(f"this process computes items {mine}, but {len(local)} results were given")
  block = np.zeros((per_process,) + tuple(shape), dtype)  # padding where a share is short
  for j, value in enumerate(local):
    block[j] = value
  gathered = allgather_host(block)  # [P, per_process, *shape]; item k at [k % P, k // P]
  return np.swapaxes(gathered, 0, 1).reshape((-1,) + tuple(shape))[:num_items]


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
    outs.append(jax.tree_util.tree_map(lambda v, k=keep: v[:k], to_host(fn(chunk, b))))
  return jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *outs)
