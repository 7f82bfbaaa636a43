"""Test set-up: four fake host devices, so multi-device code paths run on one CPU.

XLA_FLAGS must be set before JAX initializes its backend, hence here.

Known XLA:CPU (jaxlib 0.10.2) hazards on this 2-core machine, both seen on
2026-12-01: with the four forced devices, the in-process all-reduce of a
training step can deadlock when the machine is loaded (its rendezvous aborts
the process after 40 s, taking a pytest-xdist worker with it; since 2026-12-02
`train.fit` runs one step at a time on such meshes, `train._collectives_can_starve`,
which removes the deadlock of steps dispatched ahead); with ONE device,
`tests/diffusion_process_test.py::test_ode_samples_have_the_data_moments[vp-True]`
hangs every time (blocked, no CPU use), so one device is no way out. The checks
that need exactly four devices also run in subprocesses (tests/multidevice_test.py).
"""

import os
import sys

# Not --xla_backend_optimization_level=0: it compiles a third faster, but programs
# with an in-process all-reduce then wait far longer at its rendezvous (a 2-series
# per-series fit: 29 s instead of 12 s alone), and under CI load they crossed the
# 40 s abort twice out of two runs.
# --xla_backend_optimization_level=1: tests compile far more than they compute (the tiny
# telemetry generation study: 107 of its 165 s in 385 XLA compilations), and level 1
# compiles the tiny U-Net's init in 2.3 s instead of 5.9 s at the default while its
# programs run about as fast (tests/per_series_test.py, all-reduces included: 61 s
# instead of 70 s; measured 2026-12-02 on 2 cores). Subprocesses inherit both flags.
for _flag in ("--xla_force_host_platform_device_count=4", "--xla_backend_optimization_level=1"):
  if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The repository root holds `configs/` and `experiments/`, imported by some tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)



# The longest tests start first (measured with --durations, 2026-12-02): with two xdist
# workers, a 100 s test handed out last would run alone while the other core idles.
# Only tests without module-scoped fixtures, so no fixture is built twice for them.
_LONGEST_FIRST = (
    "tests/multihost_test.py::test_two_processes_train_as_one_and_resume_after_a_kill",
    "tests/telemetry_study_test.py::test_tiny_generation_study_writes_every_metric",
    "tests/generation_test.py::"
    "test_tiny_sines_benchmark_writes_the_table_beside_floor_and_published",
    "tests/vaegan_experiment_test.py::test_wafer_experiment_end_to_end",
    "tests/multidevice_test.py::test_per_series_models_trained_on_four_devices_score_as_on_one",
    "tests/vaegan_experiment_test.py::test_telemetry_experiment_reports_point_metrics",
    "tests/diffusion_experiment_test.py::test_end_to_end_tiny_run_and_resume",
    "tests/telemetry_study_test.py::test_diffusion_imputation_keeps_observed_values",
    "tests/reproduce_test.py::test_the_driver_runs_two_rows_resumes_and_writes_the_table",
)


def pytest_collection_modifyitems(config, items):
  del config
  rank = {nodeid: k for k, nodeid in enumerate(_LONGEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))  # stable: the rest in order
