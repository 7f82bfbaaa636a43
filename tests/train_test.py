"""Tests for the training loop: sharding, determinism, resume after interruption, failures."""

import os
import shutil

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mlts import checkpointing, reconstruction, sharding, shards, train, train_state, writers
from mlts.models import conv_ae


def _config(num_steps=12):
  c = ml_collections.ConfigDict()
  c.num_steps = num_steps
  c.batch_size = 8
  c.log_every = 4
  c.checkpoint_every = 5
  c.max_checkpoints = 3
  return c


def _opt_config():
  c = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-2, schedule="cosine", warmup_steps=2, weight_decay=0.0,
      b1=0.9, b2=0.999, eps=1e-8, grad_clip=1.0))
  return c


def _setup(num_steps=12, ema_decay=0.9):
  rng = np.random.default_rng(0)
  data = rng.normal(size=(40, 16, 2)).astype(np.float32)
  model = conv_ae.ConvAutoencoder(num_features=2, hidden=(4,), latent=2, kernel_size=3,
                                  revin=False)
  tx = train_state.make_optimizer(_opt_config(), num_steps)
  state = train_state.create_train_state(model, data[:1], tx, jax.random.key(0),
                                         ema_decay=ema_decay)
  return model, state, data


def _fit(tmp, num_steps=12, hooks=(), loss=None, mesh=None):
  model, state, data = _setup(num_steps)
  writer = writers.MetricWriter(os.path.join(tmp, "logs"), tensorboard=False)
  try:
    return train.fit(state, loss or reconstruction.make_mse_loss(model.apply), data,
                     _config(num_steps), key=jax.random.key(1), seed=3,
                     checkpoint_dir=os.path.join(tmp, "ckpt"), writer=writer, mesh=mesh,
                     hooks=hooks)
  finally:
    writer.close()


def test_loss_falls_and_the_log_is_written(tmp_path):
  # On four devices (and against one) in tests/multidevice_test.py.
  model, state, data = _setup(60)
  loss_fn = reconstruction.make_mse_loss(model.apply)
  before = float(loss_fn(state.params, jnp.asarray(data), None)[0])
  writer = writers.MetricWriter(str(tmp_path / "logs"), tensorboard=False)
  out = train.fit(state, loss_fn, data, _config(60), key=jax.random.key(1), seed=3,
                  checkpoint_dir=str(tmp_path / "ckpt"), writer=writer)
  writer.close()
  after = float(loss_fn(out.params, jnp.asarray(data), None)[0])
  assert after < 0.9 * before
  assert int(out.step) == 60
  lines = (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()
  assert any("train_loss" in line for line in lines)


def test_batch_indices_are_a_pure_function_of_seed_and_step():
  a = shards.batch_indices(3, 7, 40, 8)
  np.testing.assert_array_equal(a, shards.batch_indices(3, 7, 40, 8))
  epoch = np.concatenate([shards.batch_indices(3, s, 40, 8) for s in range(5)])
  np.testing.assert_array_equal(np.sort(epoch), np.arange(40))  # one epoch = a permutation


def test_same_seed_same_result(tmp_path):
  a = _fit(str(tmp_path / "a"))
  b = _fit(str(tmp_path / "b"))
  chex.assert_trees_all_equal(jax.device_get(a.params), jax.device_get(b.params))


class _Interrupt(Exception):
  pass


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
  full = _fit(str(tmp_path / "full"))

  def stop_at_8(step, state):
    del state
    if step == 8:
      raise _Interrupt  # a preemption after the step-5 checkpoint

  with pytest.raises(_Interrupt):
    _fit(str(tmp_path / "cut"), hooks=[stop_at_8])
  manager = checkpointing.make_manager(str(tmp_path / "cut" / "ckpt"))
  assert manager.latest_step() == 5
  manager.close()
  resumed_from = []
  resumed = _fit(str(tmp_path / "cut"), hooks=[lambda s, st: resumed_from.append(s)])
  assert resumed_from[0] == 6  # continued after the checkpoint, not from scratch
  chex.assert_trees_all_close(jax.device_get(resumed.params), jax.device_get(full.params),
                              rtol=1e-6, atol=1e-7)
  chex.assert_trees_all_close(jax.device_get(resumed.ema_params),
                              jax.device_get(full.ema_params), rtol=1e-6, atol=1e-7)
  assert int(resumed.step) == 12


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  _fit(str(tmp_path), num_steps=5)  # a good checkpoint at step 5
  model, _, _ = _setup()
  base = reconstruction.make_mse_loss(model.apply)

  def poisoned(params, batch, key):  # the run resumed from step 5 diverges at once
    loss, aux = base(params, batch, key)
    return loss * jnp.nan, aux

  with pytest.raises(train.NonFiniteLossError, match=r"at step 6.*step 5\) is kept"):
    _fit(str(tmp_path), num_steps=12, loss=poisoned)
  manager = checkpointing.make_manager(str(tmp_path / "ckpt"))
  assert manager.all_steps() == [5]  # nothing saved after the NaN
  manager.close()


def test_corrupt_checkpoint_gives_clear_error(tmp_path, caplog):
  _fit(str(tmp_path), num_steps=5)
  step_dir = tmp_path / "ckpt" / "5"
  assert step_dir.is_dir()
  for root, _, files in os.walk(step_dir):  # truncate every data file
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")
  with caplog.at_level("WARNING"):  # the checksums see it: set aside, training starts over
    out = _fit(str(tmp_path), num_steps=10)
  assert "ckpt/5 is corrupt" in caplog.text and "starts from the initial state" in caplog.text
  assert int(out.step) == 10 and (tmp_path / "ckpt_rejected" / "5").is_dir()
  # Without a checksum record (a workdir from before them) the restore error names the step.
  _fit(str(tmp_path / "old"), num_steps=5)
  os.remove(tmp_path / "old" / "ckpt.sha256.json")
  for root, _, files in os.walk(tmp_path / "old" / "ckpt" / "5"):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")
  with pytest.raises(ValueError, match=r"ckpt/5 is corrupt"):
    _fit(str(tmp_path / "old"), num_steps=10)
  shutil.rmtree(tmp_path / "old" / "ckpt")


def test_map_batches_pads_the_last_chunk_drops_the_padding_and_shards_over_the_mesh():
  x = np.arange(10, dtype=np.float32).reshape(10, 1)
  calls = []

  def fn(chunk, b):
    calls.append((chunk.shape, len(chunk.sharding.device_set)))
    return {"y": chunk * 2 + b, "sum": chunk.sum(axis=1)}

  out = sharding.map_batches(fn, x, 4)
  assert calls == [((4, 1), 1)] * 3  # one shape: the last chunk [8, 9] padded with 9s
  np.testing.assert_array_equal(out["y"][:, 0], 2 * np.arange(10) + np.repeat([0, 1, 2], 4)[:10])
  np.testing.assert_array_equal(out["sum"], np.arange(10))
  # Split over a mesh of four devices: tests/multidevice_test.py.
  with pytest.raises(ValueError, match="no rows"):
    sharding.map_batches(fn, x[:0], 4)


def test_several_cpu_devices_run_one_step_at_a_time(tmp_path, monkeypatch):
  # Steps dispatched ahead can deadlock XLA:CPU's all-reduce (train._collectives_can_starve):
  # on a mesh of several CPU devices fit awaits every step; on one device only the first.
  awaited = []
  block = jax.block_until_ready
  monkeypatch.setattr(jax, "block_until_ready", lambda x: awaited.append(1) or block(x))
  assert jax.device_count() == 4  # tests/conftest.py
  _fit(str(tmp_path / "four"), num_steps=6, mesh=sharding.make_mesh())
  four, awaited[:] = len(awaited), []
  _fit(str(tmp_path / "one"), num_steps=6, mesh=sharding.make_mesh(jax.devices()[:1]))
  assert (four, len(awaited)) == (6 + 1, 1)  # + the timed first step
