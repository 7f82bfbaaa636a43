"""Two CPU processes on localhost (jax.distributed, gloo): one job, as on two hosts.

tests/multihost_checks.py is one process of the job: it trains a tiny detector and
a tiny diffusion model with checkpoints in a shared workdir, and scores. The two
processes (one device each) must give exactly what one process with two devices
gives on the same global batches (the generation study's sample batches
split over the processes included), and a job killed right after a checkpoint must
resume from it when both processes are started again.
"""

import os
import subprocess
import sys

import numpy as np

from mlts import distributed

CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multihost_checks.py")


def _start(process_id: int, num_processes: int, port: int, workdir, out, *extra):
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()  # conftest's, but the devices
           if not f.startswith("--xla_force_host_platform_device_count")]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(
      flags + [f"--xla_force_host_platform_device_count={2 // num_processes}"]))
  return subprocess.Popen(
      [sys.executable, CHECKS, str(process_id), str(num_processes), str(port), str(workdir),
       str(out), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(procs, timeout: int = 240):
  codes, logs = [], []
  try:
    for p in procs:
      log, _ = p.communicate(timeout=timeout)
      codes.append(p.returncode)
      logs.append(log)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return codes, logs


def _job(num_processes: int, workdir, out, *extra):
  port = distributed.free_local_port()
  return [_start(k, num_processes, port, workdir, out, *extra) for k in range(num_processes)]


def test_two_processes_train_as_one_and_resume_after_a_kill(tmp_path):
  # The reference (one process, two devices) runs beside the first two-process attempt.
  reference = _job(1, tmp_path / "ref", tmp_path / "ref.npz")
  killed = _job(2, tmp_path / "job", tmp_path / "job.npz", "detector:3")
  codes, logs = _finish(reference + killed)
  assert codes[0] == 0, logs[0][-3000:]
  logs_ref = logs[0]
  # The reference holds both data shards of the detector's 306 training windows.
  assert "process 0 holds 306 of the 306 training windows (data shards 0..1 of 2)" in logs[0]
  # Both processes died right after the detector's step-3 checkpoint.
  assert codes[1:] == [3, 3], [log[-3000:] for log in logs[1:]]
  assert not (tmp_path / "job.npz").exists()
  codes, logs = _finish(_job(2, tmp_path / "job", tmp_path / "job.npz"))
  assert codes == [0, 0], [log[-3000:] for log in logs]
  assert "Restored checkpoint at step 3 from" in logs[0]  # the killed detector
  # Each process built only its own half of them, and half of the diffusion model's 194.
  for k, log in enumerate(logs):
    for held, total in ((153, 306), (97, 194)):
      assert f"process {k} holds {held} of the {total} training windows (data shards " \
          f"{k}..{k} of 2)" in log, f"process {k}'s log does not say it holds only its shard"
  job, ref = np.load(tmp_path / "job.npz"), np.load(tmp_path / "ref.npz")
  assert int(job["process_count"]) == 2 and int(ref["process_count"]) == 1
  assert int(job["device_count"]) == int(ref["device_count"]) == 2
  assert sorted(job.files) == sorted(ref.files)
  assert any(k.startswith("detector/") for k in ref.files)
  assert any(k.startswith("diffusion/") for k in ref.files)
  assert any(k.startswith("scores/") for k in ref.files)
  assert job["samples"].shape == (10, 16, 2) and np.all(np.isfinite(job["samples"]))
  expected = np.asarray([[1 + k * 2.0 ** -40, -k] for k in range(3)])
  np.testing.assert_array_equal(job["shares"], expected)  # exact: float64 kept whole
  np.testing.assert_array_equal(ref["shares"], expected)
  for k in ref.files:
    if k != "process_count":
      np.testing.assert_allclose(job[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
  # The diffusion process fit from the shards' moments is the process of all windows.
  assert "process 0 holds 194 of the 194 training windows (data shards 0..1 of 2)" in logs_ref
  whole = _process_of_all_diffusion_windows()
  np.testing.assert_allclose(ref["process/basis"], whole.basis, atol=1e-6)
  np.testing.assert_array_equal(ref["process/mask"], whole.mask)
  assert 0 < ref["process/mask"].sum() < ref["process/mask"].size
  # Only process 0 wrote the run's files: one config, one log per model.
  assert (tmp_path / "job" / "detector" / "config.json").exists()
  assert len(list((tmp_path / "job" / "logs").glob("*/metrics.jsonl"))) == 1


def _process_of_all_diffusion_windows():
  import importlib.util

  from configs import diffusion_base
  from mlts.data import series as series_lib
  from mlts.diffusion import process, trainer
  spec = importlib.util.spec_from_file_location("multihost_checks", CHECKS)
  checks = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(checks)
  dcfg = trainer.variant_config(diffusion_base.get_config("smap", "tiny").diffusion, "full")
  dcfg.representation = "klt"
  windows = series_lib.training_windows(checks._prepared(), checks.DIFFUSION_WINDOW,
                                        checks.DIFFUSION_STRIDE)
  return process.make_process(dcfg, windows)


def test_distributed_arguments_are_checked_before_anything_starts():
  import pytest

  from mlts import distributed
  with pytest.raises(ValueError, match="--coordinator_address given without "
                                       "--num_processes --process_id"):
    distributed.initialize(coordinator_address="localhost:1")
  with pytest.raises(ValueError, match="--process_id=2 must lie in 0 .. num_processes - 1"):
    distributed.initialize(coordinator_address="localhost:1", num_processes=2, process_id=2)
  with pytest.raises(ValueError, match="--cpu_collectives='nccl': expected one of gloo, mpi"):
    distributed.initialize(cpu_collectives="nccl")
  assert distributed.initialize() is False  # one process: nothing to start


def test_single_process_studies_refuse_a_multi_process_run(monkeypatch, tmp_path):
  import jax
  import pytest

  from configs import vae_synthetic
  from mlts import studies
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  with pytest.raises(ValueError, match="'vae_example' study runs on one process only .* "
                                       "multi-process runs support: detector"):
    studies.run(vae_synthetic.get_config(), str(tmp_path))
  assert not list(tmp_path.iterdir())  # refused before writing anything
