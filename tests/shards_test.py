"""Data shards: each process builds and holds only its share of the training windows.

The two-process run itself is tests/multihost_test.py; here, on one process, the
pieces it rests on: the shards partition the windows deterministically,
`training_windows(rows=)` cuts exactly those windows, a process's block of a
batch is drawn from its own shards only, and `train.fit` trains on those blocks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mlts import shards, train, writers
from mlts.data import series as series_lib
from mlts.train_state import TrainState


def test_shards_partition_the_windows_deterministically():
  rows = shards.shard_rows(103, 4, seed=7)
  assert [r.size for r in rows] == [26, 26, 26, 25]
  np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(103))
  assert all(np.all(np.diff(r) > 0) for r in rows)
  for a, b in zip(rows, shards.shard_rows(103, 4, seed=7)):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(rows[0], shards.shard_rows(103, 4, seed=8)[0])
  # Dealt from a permutation: every shard spans the whole range (all series, all times).
  assert all(r.min() < 20 and r.max() > 83 for r in rows)
  np.testing.assert_array_equal(shards.shard_rows(5, 1, seed=0)[0], np.arange(5))


def test_number_of_shards_is_one_per_process_or_a_multiple():
  assert shards.resolve_num_shards(0, 1) == 1
  assert shards.resolve_num_shards(0, 4) == 4
  assert shards.resolve_num_shards(4, 2) == 4
  with pytest.raises(ValueError, match="data_shards=3 must be 0 .* multiple of the number of "
                                       r"processes \(2\)"):
    shards.resolve_num_shards(3, 2)


def _prepared():
  rng = np.random.default_rng(0)
  parts = [rng.normal(size=(n, 2)).astype(np.float32) for n in (40, 7, 33)]  # 7 < window
  return [series_lib.PreparedSeries(f"s{k}", p, p[:0], p[:0], np.zeros(0, np.int8))
          for k, p in enumerate(parts)]


def test_training_windows_of_some_rows_are_those_rows_of_all():
  prepared = _prepared()
  every = series_lib.training_windows(prepared, 10, 3)
  assert series_lib.count_training_windows(prepared, 10, 3) == every.shape[0]
  for rows in shards.shard_rows(every.shape[0], 3, seed=1):
    np.testing.assert_array_equal(series_lib.training_windows(prepared, 10, 3, rows=rows),
                                  every[rows])
  with pytest.raises(ValueError, match="rows must be increasing indices"):
    series_lib.training_windows(prepared, 10, 3, rows=np.array([3, 1]))


def test_local_batches_come_from_the_process_shards_only():
  data = np.arange(50, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
  local = shards.LocalShards.build(50, 2, seed=3, take=lambda rows: data[rows])
  assert (local.first, local.num_shards, local.num_local, local.shape) == (0, 2, 50, (50, 3))
  rows = shards.shard_rows(50, 2, seed=3)
  for step in (0, 5, 11):  # epochs of shard 1 (25 rows, 4 per batch) wrap at step 6
    block = local.local_batch(9, step, 8)
    assert block.shape == (8, 3)
    assert set(block[:4, 0].astype(int)) <= set(rows[0])
    assert set(block[4:, 0].astype(int)) <= set(rows[1])
    np.testing.assert_array_equal(
        block[4:, 0], rows[1][shards.batch_indices(9, step, 25, 4, stream=1)])
  with pytest.raises(ValueError, match="not divisible by the 2 data shards"):
    local.check_batch(7)
  with pytest.raises(ValueError, match="only 25 training windows for its 26 rows"):
    local.check_batch(52)
  with pytest.raises(ValueError, match="returned 1 windows for the 25 rows of shard 0"):
    shards.LocalShards.build(50, 2, seed=3, take=lambda rows: data[:1])


def _linear_fit(windows, tmp_path, name, **training):
  """Least squares of y = x·w on [N, 3] windows (last column the target), 5 SGD steps."""
  def loss_fn(params, batch, key):
    del key
    err = batch[:, :2] @ params["w"] - batch[:, 2]
    return jnp.mean(err ** 2), {}

  tx = optax.sgd(0.1)
  params = {"w": jnp.zeros(2)}
  state = TrainState.create(apply_fn=None, params=params, tx=tx, ema_params={"w": jnp.zeros(2)},
                            ema_decay=0.0)
  config = ml_collections.ConfigDict(dict(num_steps=5, batch_size=8, log_every=5,
                                          checkpoint_every=5, max_checkpoints=1, **training))
  writer = writers.MetricWriter(str(tmp_path / name / "logs"), tensorboard=False)
  try:
    return train.fit(state, loss_fn, windows, config, key=jax.random.key(0), seed=4,
                     checkpoint_dir=str(tmp_path / name / "ckpt"), writer=writer), loss_fn
  finally:
    writer.close()


def test_fit_trains_on_the_shard_blocks(tmp_path):
  rng = np.random.default_rng(0)
  data = rng.normal(size=(40, 3)).astype(np.float32)
  local = shards.LocalShards.build(40, 2, seed=4, take=lambda rows: data[rows])
  state, loss_fn = _linear_fit(local, tmp_path, "shards")
  # The same five steps by hand, on the blocks `local_batch` draws.
  w = {"w": jnp.zeros(2)}
  for step in range(5):
    batch = jnp.asarray(local.local_batch(4, step, 8))
    grads = jax.grad(lambda p, b=batch: loss_fn(p, b, None)[0])(w)
    w = jax.tree.map(lambda p, g: p - 0.1 * g, w, grads)
  np.testing.assert_allclose(np.asarray(state.params["w"]), np.asarray(w["w"]), rtol=1e-6)
  assert int(state.step) == 5


def test_fit_refuses_data_shards_for_a_model_that_takes_all_windows(tmp_path):
  data = np.zeros((40, 3), np.float32)
  with pytest.raises(ValueError, match="data_shards=2, but this model trains on all windows"):
    _linear_fit(data, tmp_path, "plain", data_shards=2)


def test_work_split_over_processes_comes_back_in_item_order():
  from mlts import sharding
  # One process computes every item; gathering returns them [n, ...] in order.
  assert sharding.process_share(3) == [0, 1, 2]
  items = [np.asarray([k, k + 0.5], np.float64) for k in range(3)]
  out = sharding.gather_shares(items, 3, shape=(2,), dtype=np.float64)
  np.testing.assert_array_equal(out, [[0, 0.5], [1, 1.5], [2, 2.5]])
  assert out.dtype == np.float64
  np.testing.assert_array_equal(sharding.allgather_host(np.float64(2.0)), [[2.0]])
  with pytest.raises(ValueError, match=r"computes items \[0, 1, 2\], but 2 results"):
    sharding.gather_shares(items[:2], 3, shape=(2,), dtype=np.float64)


def test_the_generation_study_draws_its_batches_in_order():
  from mlts.studies import generation

  def sample(key):  # a batch of 4 windows whose values name the batch's key
    return jnp.broadcast_to(jax.random.uniform(key), (4, 3, 2))

  key = jax.random.key(7)
  out = generation.draw(jax.jit(sample), 10, 4, key)
  assert out.shape == (10, 3, 2)
  for b in range(3):  # batch b from fold_in(key, b); the last one cut to 2 windows
    rows = out[4 * b:4 * b + 4]
    np.testing.assert_allclose(rows, float(jax.random.uniform(jax.random.fold_in(key, b))))
