"""Diffusion benchmarks: training steps/s, encode windows/s, sharded vs one device (JSON).

  python -m experiments.bench_diffusion                 # the quick config on this machine
  python -m experiments.bench_diffusion --devices=4     # also: 4 forced host devices vs 1

1. Training: steps/s of the data-parallel jitted step (`mlts.train.fit`'s
   step) for `configs/diffusion_smap.py:quick`'s network and batch.
2. Encoding: DDIM and Heun inversion x_0 -> z (the detector's
   `encode_steps`), windows/s.
3. With --devices=N (N > 1) a subprocess runs the same training steps with
   XLA_FLAGS=--xla_force_host_platform_device_count=N, once on a mesh of all N
   devices and once on one device, and reports both timings and the largest
   parameter difference after the same steps (equal results expected; forced
   host devices share the same CPU cores, so no speed-up is expected here).
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 30, "Timed training steps.")
flags.DEFINE_integer("windows", 256, "Windows encoded.")
flags.DEFINE_integer("devices", 4, "Forced host devices for the sharding comparison (1 = skip).")
flags.DEFINE_bool("child", False, "Internal: run the sharding comparison in this process.")


def _setup(config, num_devices=None):
  import jax
  import jax.numpy as jnp
  import numpy as np

  from mlts import sharding, train, train_state
  from mlts.diffusion import detector, losses, process, trainer

  rng = np.random.default_rng(0)
  windows = rng.normal(size=(1024, config.data.window, 1)).astype(np.float32)
  proc = process.make_process(config.diffusion, windows)
  model = trainer.make_network(config.network, 1)
  shape = detector.network_input_shape(proc, config.data.window, 1)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros(shape), jnp.zeros((1,)))["params"]
  tx = train_state.make_optimizer(config.optimizer, config.training.num_steps)
  state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                                        ema_params=jax.tree.map(jnp.copy, params),
                                        ema_decay=config.training.ema_decay)
  devices = jax.devices()[:num_devices] if num_devices else jax.devices()
  mesh = sharding.make_mesh(devices)
  loss_fn = losses.make_loss_fn(proc, model.apply, config.diffusion.reg_weight)
  replicated = sharding.replicated(mesh)
  step = jax.jit(train.make_train_step(loss_fn),
                 in_shardings=(replicated, sharding.batch_sharded(mesh), replicated),
                 out_shardings=(replicated, replicated), donate_argnums=0)
  return proc, model, state, windows, mesh, step


def _time_training(config, num_devices=None):
  import jax
  import numpy as np

  from mlts import sharding, shards
  proc, model, state, windows, mesh, step = _setup(config, num_devices)
  state = jax.device_put(state, sharding.replicated(mesh))
  key = jax.random.key(1)
  batch_size = config.training.batch_size

  def batch(i):
    return sharding.put_batch(windows[shards.batch_indices(0, i, windows.shape[0], batch_size)],
                              mesh)

  start = time.perf_counter()
  state, metrics = step(state, batch(0), key)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for i in range(1, FLAGS.steps + 1):  # one jitted call per step
    state, metrics = step(state, batch(i), key)
  jax.block_until_ready(metrics)
  rate = FLAGS.steps / (time.perf_counter() - start)
  leaves = np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(state.params))])
  return {"devices": len(mesh.devices.ravel()), "steps_per_second": rate,
          "first_step_with_compile_s": compile_s}, leaves, (proc, model, state, windows)


def _time_encoding(config, proc, model, state, windows):
  import jax
  import jax.numpy as jnp

  from mlts.diffusion import losses, samplers

  def noise_fn_of(params):
    return losses.make_noise_fn(model.apply, params, proc)

  x = jnp.asarray(windows[:FLAGS.windows])
  out = {}
  for solver in ("ddim", "heun"):
    fn = jax.jit(lambda p, x, solver=solver: samplers.encode(
        proc, noise_fn_of(p), x, num_steps=config.detector.encode_steps, solver=solver))
    jax.block_until_ready(fn(state.params, x))
    start = time.perf_counter()
    jax.block_until_ready(fn(state.params, x))
    out[f"{solver}_encode_windows_per_second"] = FLAGS.windows / (time.perf_counter() - start)
  out["encode_steps"] = config.detector.encode_steps
  return out


def main(argv):
  del argv
  from configs import diffusion_smap
  config = diffusion_smap.get_config("quick")
  if FLAGS.child:
    import numpy as np
    many, p_many, _ = _time_training(config)
    one, p_one, _ = _time_training(config, 1)
    print(json.dumps({"sharded": many, "one_device": one,
                      "max_param_difference": float(np.max(np.abs(p_many - p_one)))}))
    return
  import jax
  result = {"devices": [str(d) for d in jax.devices()],
            "config": "configs/diffusion_smap.py:quick",
            "window": config.data.window, "batch_size": config.training.batch_size}
  training, _, parts = _time_training(config)
  result["training"] = training
  result["encoding"] = _time_encoding(config, *parts)
  if FLAGS.devices > 1:
    env = dict(os.environ,
               XLA_FLAGS=f"--xla_force_host_platform_device_count={FLAGS.devices}")
    child = subprocess.run(
        [sys.executable, "-m", "experiments.bench_diffusion", "--child",
         f"--steps={FLAGS.steps}"], env=env, capture_output=True, text=True, check=True)
    result["sharding"] = json.loads(child.stdout.strip().splitlines()[-1])
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  app.run(main)
