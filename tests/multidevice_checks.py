"""Checks that need several devices, run by tests/multidevice_test.py in a subprocess.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/multidevice_checks.py NAME

Run in a subprocess so that XLA:CPU's in-process all-reduce, which can deadlock on a
loaded machine (tests/conftest.py), fails one test instead of a pytest worker. Each
check prints one JSON line.
"""

import json
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the test modules' set-ups

import train_test  # noqa: E402

from mlts import reconstruction, sharding, train, writers  # noqa: E402


def _tiny_fit(tmp: str, mesh, num_steps: int = 30, batch_size: int = 8):
  """train_test's tiny conv autoencoder fit on `mesh`; (state, loss before, loss after)."""
  model, state, data = train_test._setup(num_steps)
  config = train_test._config(num_steps)
  config.batch_size = batch_size
  loss_fn = reconstruction.make_mse_loss(model.apply)
  before = float(loss_fn(state.params, jnp.asarray(data), None)[0])  # fit donates the state
  writer = writers.MetricWriter(os.path.join(tmp, "logs"), tensorboard=False)
  try:
    out = train.fit(state, loss_fn, data, config, key=jax.random.key(1), seed=3,
                    checkpoint_dir=os.path.join(tmp, "ckpt"), writer=writer, mesh=mesh)
  finally:
    writer.close()
  after = float(loss_fn(out.params, jnp.asarray(data), None)[0])
  return out, before, after


def check_train() -> dict:
  """Data-parallel training over 4 devices: loss falls, state replicated, = 1 device."""
  with tempfile.TemporaryDirectory() as tmp:
    four, before, after = _tiny_fit(os.path.join(tmp, "four"), sharding.make_mesh())
    one, _, _ = _tiny_fit(os.path.join(tmp, "one"), sharding.make_mesh(jax.devices()[:1]))
    leaf = jax.tree.leaves(four.params)[0]
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(four.params), jax.tree.leaves(one.params)))
    try:
      _tiny_fit(os.path.join(tmp, "odd"), sharding.make_mesh(), batch_size=6)
      odd = "no error"
    except ValueError as err:
      odd = str(err)
  return {"devices": jax.device_count(), "replicated_on": len(leaf.sharding.device_set),
          "loss_before": before, "loss_after": after, "step": int(four.step),
          "max_param_diff_vs_one_device": diff, "odd_batch_error": odd}


def check_map_batches() -> dict:
  """`sharding.map_batches` splits each chunk over the mesh and refuses an uneven batch."""
  x = np.arange(10, dtype=np.float32).reshape(10, 1)
  seen = []

  def fn(chunk, b):
    seen.append([list(chunk.shape), len(chunk.sharding.device_set)])
    return {"sum": chunk.sum(axis=1) + 0 * b}

  out = sharding.map_batches(fn, x, 4, sharding.make_mesh())
  try:
    sharding.map_batches(fn, x, 6, sharding.make_mesh())
    odd = "no error"
  except ValueError as err:
    odd = str(err)
  return {"calls": seen, "sum": out["sum"].tolist(), "odd_batch_error": odd}


def check_per_series_detector() -> dict:
  """Per-series detectors (2 and 4 series) trained on the mesh of all devices: their
  scores (compared in the test) and whether the series axis was split over devices."""
  from mlts import detectors
  split = []
  decide = train._split_series

  def record(*args):
    split.append(decide(*args))
    return split[-1]

  train._split_series = record
  rng = np.random.default_rng(0)
  t = np.arange(600)
  out = {}
  for num_series in (2, 4):
    train_series = [np.sin(2 * np.pi * t / 40 + c)[:, None] + 0.05 * rng.normal(size=(600, 1))
                    for c in range(num_series)]
    det = detectors.create("mlp_ae", window=16, stride=2, eval_stride=4, per_series=True,
                           training=dict(num_steps=40, batch_size=16, log_every=20,
                                         checkpoint_every=40, eval_every=0)).fit(train_series)
    out[num_series] = {"scores": [s.tolist() for s in det.score(train_series)],
                       "series_split": split[-1]}
  return out


def check_generator_batch() -> dict:
  """A generator batch that does not split over the devices is refused before training."""
  import generators_test

  from mlts import generators
  out = {}
  for name, tiny in generators_test.TINY.items():
    gen = generators.create(name, **dict(tiny, training={"batch_size": 6}))
    try:
      gen.fit(generators_test.make_windows())
      out[name] = "no error"
    except ValueError as err:
      out[name] = str(err)
  return out


CHECKS = {"train": check_train, "map_batches": check_map_batches,
          "per_series_detector": check_per_series_detector,
          "generator_batch": check_generator_batch}

if __name__ == "__main__":
  print(json.dumps(CHECKS[sys.argv[1]]()))
