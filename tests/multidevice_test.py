"""Multi-device code on four forced host devices, each check in its own subprocess.

tests/multidevice_checks.py holds the checks that need an exact device count
(data-parallel training against one device, sharded batches, the divisibility
errors, per-series models on a mesh of four, split by series or by batch, against one
device), so a collective
that hangs (tests/conftest.py) fails one test by its timeout instead of killing a
pytest worker.
"""

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run_check(name: str, devices: int = 4) -> dict:
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()  # conftest's, but the devices
           if not f.startswith("--xla_force_host_platform_device_count")]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(
      flags + [f"--xla_force_host_platform_device_count={devices}"]))
  out = subprocess.run([sys.executable, os.path.join(HERE, "multidevice_checks.py"), name],
                       env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_parallel_training_on_four_devices_equals_one_device():
  r = run_check("train")
  assert r["devices"] == 4 and r["replicated_on"] == 4  # the state lives on every device
  assert r["step"] == 30 and r["loss_after"] < 0.9 * r["loss_before"]
  # The same steps on a one-device mesh: the gradient mean is split, not changed.
  assert r["max_param_diff_vs_one_device"] < 1e-5
  assert "not divisible by the number of devices" in r["odd_batch_error"]


def test_map_batches_splits_every_chunk_over_the_mesh():
  r = run_check("map_batches")
  assert r["calls"] == [[[4, 1], 4]] * 3  # one shape, the last chunk padded; 4 devices each
  np.testing.assert_array_equal(r["sum"], np.arange(10))
  assert "not divisible" in r["odd_batch_error"]


def test_generators_refuse_a_batch_that_does_not_split_over_the_devices():
  for name, error in run_check("generator_batch").items():
    assert "training.batch_size=6 is not divisible by the number" in error, name


def test_per_series_models_trained_on_four_devices_score_as_on_one():
  four, one = run_check("per_series_detector"), run_check("per_series_detector", devices=1)
  # Four series split over four devices (one model each); two series cannot, so the
  # batch is split instead; one device holds every model.
  assert [four[k]["series_split"] for k in ("2", "4")] == [False, True]
  assert [one[k]["series_split"] for k in ("2", "4")] == [True, True]
  for k in ("2", "4"):
    assert len(four[k]["scores"]) == int(k)
    for a, b in zip(four[k]["scores"], one[k]["scores"]):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
