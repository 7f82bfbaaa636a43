"""One process of a multi-process (jax.distributed) run, started by tests/multihost_test.py.

  python tests/multihost_checks.py PROCESS_ID NUM_PROCESSES PORT WORKDIR OUT [MODEL:STEP]

Each process joins the run on localhost:PORT with gloo collectives, trains a tiny
reconstruction detector (`mlts.detectors`, through `fit(..., workdir=)`, each
process holding only its data shard of the training windows) and a
tiny malleable-latent diffusion model (`mlts.diffusion.trainer.train_variant`,
KLT basis and Gaussian residual fit from the moments of all data shards, each
process again holding only its own shard) on the same series, with checkpoints
in the shared WORKDIR, scores the series, draws windows from the diffusion model
through the generation study's `draw` (its batches split over the processes) and
gathers float64 items split over the processes (`sharding.gather_shares`).
Process 0 writes the final parameters and scores to OUT (.npz). With MODEL:STEP
(MODEL 'detector' or 'diffusion'), every process exits at once (status 3) right
after that model's checkpoint of STEP is saved, as a killed job would; rerunning
the same command resumes from it.
A single-process run (NUM_PROCESSES=1) on as many devices is the reference.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

import jax  # noqa: E402

NUM_STEPS = 6  # both models
CHECKPOINT_EVERY = 3
DIFFUSION_WINDOW, DIFFUSION_STRIDE = 16, 4


def _join(process_id: int, num_processes: int, port: int) -> None:
  if num_processes > 1:
    from mlts import distributed
    distributed.initialize(coordinator_address=f"localhost:{port}", cpu_collectives="gloo",
                           num_processes=num_processes, process_id=process_id)


def _kill_after(model: str, step: int) -> None:
  """Makes every process exit right after `model`'s checkpoint of `step` is written."""
  from mlts import checkpointing
  save = checkpointing.save

  def save_then_exit(manager, done, state, *, force=False):
    saved = save(manager, done, state, force=force)
    if done == step and os.sep + model + os.sep in str(manager.directory) + os.sep:
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(3)
    return saved

  checkpointing.save = save_then_exit


def _series():
  import numpy as np
  rng = np.random.default_rng(0)
  t = np.arange(400)
  return [np.stack([np.sin(2 * np.pi * t / 25 + c), np.cos(2 * np.pi * t / 40 + c)], 1)
          + 0.05 * rng.normal(size=(400, 2)) for c in range(2)]


def _detector(workdir: str):
  from mlts import detectors
  det = detectors.create(
      "mlp_ae", window=16, stride=2, eval_stride=4,
      # Two data shards: each of two processes builds and holds only its own windows
      # (mlts/shards.py); the one-process reference holds both and draws the same batches.
      training=dict(num_steps=NUM_STEPS, batch_size=8, log_every=2,
                    checkpoint_every=CHECKPOINT_EVERY, eval_every=0, data_shards=2))
  det.fit(_series(), workdir=os.path.join(workdir, "detector"))
  return det


def _prepared():
  import numpy as np

  from mlts.data import series as series_lib
  return [series_lib.PreparedSeries(f"series {k}", s.astype(np.float32), s[:0], s[:0],
                                    np.zeros(0, np.int8)) for k, s in enumerate(_series())]


def _diffusion(workdir: str):
  from configs import diffusion_base
  from mlts import sharding, shards
  from mlts.diffusion import trainer
  config = diffusion_base.get_config("smap", "tiny")
  config.training.num_steps = NUM_STEPS
  config.training.checkpoint_every = CHECKPOINT_EVERY
  config.training.batch_size = 8
  config.training.data_shards = 2  # each of two processes holds half of the windows
  net = config.network
  net.channel_mults, net.attention_levels, net.num_res_blocks = (1,), (), 0  # compiles fast
  dcfg = trainer.variant_config(config.diffusion, "full")
  # The KLT basis and the Gaussian residual: both fit from the moments of all shards.
  dcfg.representation, dcfg.gaussian_residual = "klt", True
  local = shards.training_windows(_prepared(), DIFFUSION_WINDOW, DIFFUSION_STRIDE,
                                  data_shards=2, seed=config.seed)
  proc, model, params, _ = trainer.train_variant(config, dcfg, local, workdir, "diffusion",
                                                 sharding.make_mesh())
  return proc, model, params, dcfg, local


def _samples(proc, model, params, dcfg, local):
  """10 windows from the trained model through the generation study's `draw`: 3 batches,
  process 0 of 2 draws batches 0 and 2, process 1 batch 1."""
  from mlts.diffusion import process, trainer
  from mlts.studies import generation
  moments = trainer.window_moments(local, dcfg)
  sample = generation.make_sampler(
      proc, model, params, process.data_stats(proc, moments=moments), batch=4, num_steps=2,
      solver="heun", residual=trainer.residual_stats(proc, dcfg, None, moments=moments))
  return generation.draw(sample, 10, 4, jax.random.key(1))


def _shares():
  """Items 0..2 split over the processes and gathered: float64 values float32 cannot hold."""
  import numpy as np

  from mlts import sharding
  return sharding.gather_shares(
      [np.asarray([1 + k * 2.0 ** -40, -k], np.float64) for k in sharding.process_share(3)],
      3, shape=(2,), dtype=np.float64)


def main(argv):
  process_id, num_processes, port = int(argv[1]), int(argv[2]), int(argv[3])
  workdir, out = argv[4], argv[5]
  _join(process_id, num_processes, port)
  if len(argv) > 6:
    model, step = argv[6].split(":")
    _kill_after(model, int(step))
  import time

  import numpy as np
  from absl import logging
  logging.set_verbosity(logging.INFO)
  logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
               jax.device_count())
  start = time.perf_counter()
  det = _detector(workdir)
  logging.info("detector trained in %.1f s", time.perf_counter() - start)
  scores = det.score(_series())
  logging.info("detector scored at %.1f s", time.perf_counter() - start)
  diffusion_process, model, diffusion_params, dcfg, local = _diffusion(workdir)
  logging.info("diffusion trained at %.1f s", time.perf_counter() - start)
  samples = _samples(diffusion_process, model, diffusion_params, dcfg, local)
  shares = _shares()
  logging.info("sampled at %.1f s", time.perf_counter() - start)
  if jax.process_index() == 0:
    arrays = {f"detector/{jax.tree_util.keystr(p)}": np.asarray(v) for p, v in
              jax.tree_util.tree_leaves_with_path(det._params)}
    arrays.update({f"diffusion/{jax.tree_util.keystr(p)}": np.asarray(v) for p, v in
                   jax.tree_util.tree_leaves_with_path(diffusion_params)})
    arrays.update({f"scores/{k}": s for k, s in enumerate(scores)})
    arrays.update({f"process/{k}": np.asarray(getattr(diffusion_process, k))
                   for k in ("basis", "mask", "t_star", "delta")})
    arrays["samples"], arrays["shares"] = samples, shares
    arrays["process_count"] = np.asarray(jax.process_count())
    arrays["device_count"] = np.asarray(jax.device_count())
    arrays["step"] = np.asarray(det.step)
    np.savez(out, **arrays)


if __name__ == "__main__":
  main(sys.argv)
