"""Training windows split into shards, each process holding only its own (multi-host runs).

With K shards (`shard_rows`), the windows 0..N−1 are permuted by the seed and
dealt round-robin (shard k gets every K-th entry,
sorted), so every shard mixes all series and times. Process p of P holds the
K/P consecutive shards p·K/P … (p+1)·K/P − 1 and builds only their windows
(`LocalShards.build`). The global batch of B rows is the concatenation over
k = 0..K−1 of B/K rows of shard k, drawn by `batch_indices` with the
shard's own stream: each process assembles its own block of the batch from its
own windows (`jax.make_array_from_process_local_data`), and no window ever
crosses processes.

The batches depend on K only, not on how the shards are spread over processes:
one process holding both shards of K = 2 trains exactly as two processes with
one shard each (tests/multihost_test.py). K = 1 is the single-array path of
`train.fit` (all windows on every process) and is not built here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import numpy as np
from absl import logging

from mlts.data import series as series_lib


def batch_indices(seed: int, step: int, num_examples: int, batch_size: int,
                  stream: int | None = None) -> np.ndarray:
  """Indices of the examples in batch `step`: epoch-wise permutations keyed by (seed, epoch).

  A pure function of its arguments, so a resumed run sees the same batches.
  `stream`: a data shard's own sequence (`LocalShards`), keyed by (seed, stream, epoch).
  """
  steps_per_epoch = num_examples // batch_size
  epoch, offset = divmod(step, steps_per_epoch)
  key = [seed, epoch] if stream is None else [seed, stream, epoch]
  perm = np.random.default_rng(key).permutation(num_examples)
  return perm[offset * batch_size:(offset + 1) * batch_size]


def shard_rows(num_examples: int, num_shards: int, seed: int) -> list[np.ndarray]:
  """The sorted window indices of each of the K shards: K arrays whose union is 0..N−1."""
  if num_shards < 1:
    raise ValueError(f"the number of data shards must be >= 1, got {num_shards}")
  perm = np.random.default_rng([seed, 0x5A4D]).permutation(num_examples)
  return [np.sort(perm[k::num_shards]) for k in range(num_shards)]


def resolve_num_shards(requested: int, num_processes: int) -> int:
  """`training.data_shards`: 0 = one per process; else a multiple of the process count."""
  num_shards = num_processes if requested == 0 else int(requested)
  if num_shards < 1 or num_shards % num_processes:
    raise ValueError(f"training.data_shards={requested} must be 0 (one shard per process) or "
                     f"a positive multiple of the number of processes ({num_processes})")
  return num_shards


@dataclasses.dataclass(frozen=True)
class LocalShards:
  """This process's shards of the training windows.

  Attributes:
    windows: one [n_k, ...] array per shard this process holds, in shard order.
    first: global index of this process's first shard.
    num_shards: K, over all processes.
    num_examples: N, the windows of all shards together.
  """
  windows: tuple[np.ndarray, ...]
  first: int
  num_shards: int
  num_examples: int

  @classmethod
  def build(cls, num_examples: int, num_shards: int, seed: int,
            take: Callable[[np.ndarray], np.ndarray]) -> "LocalShards":
    """Builds only this process's shards: `take(rows [n]) -> windows [n, ...]`.

    `take` receives sorted global window indices and must return exactly those
    windows, so that only this process's share is ever in its memory.
    """
    per_process = num_shards // jax.process_count()
    first = jax.process_index() * per_process
    rows = shard_rows(num_examples, num_shards, seed)[first:first + per_process]
    windows = []
    for k, r in enumerate(rows):
      w = np.asarray(take(r))
      if w.shape[0] != r.shape[0]:
        raise ValueError(f"take() returned {w.shape[0]} windows for the {r.shape[0]} rows of "
                         f"shard {first + k}")
      windows.append(w)
    return cls(tuple(windows), first, num_shards, num_examples)

  @property
  def shape(self) -> tuple[int, ...]:
    """(N, ...): the shape of all windows together, as the array they replace."""
    return (self.num_examples,) + tuple(self.windows[0].shape[1:])

  @property
  def ndim(self) -> int:
    return len(self.shape)

  @property
  def num_local(self) -> int:
    """Windows held by this process."""
    return sum(w.shape[0] for w in self.windows)

  def check_batch(self, batch_size: int) -> None:
    """Raises ValueError unless every shard gives B/K rows to each batch."""
    if batch_size % self.num_shards:
      raise ValueError(f"training.batch_size={batch_size} is not divisible by the "
                       f"{self.num_shards} data shards")
    per_shard = batch_size // self.num_shards
    smallest = self.num_examples // self.num_shards  # every process checks the same sizes
    if smallest < per_shard:
      raise ValueError(f"a data shard has only {smallest} training windows for its "
                       f"{per_shard} rows of each batch; lower training.batch_size or "
                       "training.data_shards")

  def local_batch(self, seed: int, step: int, batch_size: int) -> np.ndarray:
    """This process's block of batch `step`: [B·(its shards)/K, ...], shard by shard."""
    per_shard = batch_size // self.num_shards
    return np.concatenate([
        w[batch_indices(seed, step, w.shape[0], per_shard, stream=self.first + k)]
        for k, w in enumerate(self.windows)])


def training_windows(prepared: Sequence[series_lib.PreparedSeries], window: int, stride: int,
                     *, data_shards: int, seed: int):
  """The training windows of `prepared` series: all of them as one [N, L, C] array when
  there is one shard (`training.data_shards` resolves to 1), else this process's
  `LocalShards` of them (only its share is ever cut), logging what it holds."""
  num_shards = resolve_num_shards(int(data_shards), jax.process_count())
  if num_shards == 1:
    return series_lib.training_windows(prepared, window, stride)
  local = LocalShards.build(
      series_lib.count_training_windows(prepared, window, stride), num_shards, seed,
      lambda rows: series_lib.training_windows(prepared, window, stride, rows=rows))
  logging.info("process %d holds %d of the %d training windows (data shards %d..%d of %d)",
               jax.process_index(), local.num_local, local.num_examples, local.first,
               local.first + len(local.windows) - 1, num_shards)
  return local
