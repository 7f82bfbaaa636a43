"""Test set-up: four fake host devices, so multi-device code paths run on one CPU.

XLA_FLAGS must be set before JAX initializes its backend, hence here.

Known XLA:CPU (jaxlib 0.10.2) hazards on this 2-core machine, both seen on
2026-12-01: with the four forced devices, the in-process all-reduce of a
training step can deadlock when the machine is loaded (its rendezvous aborts
the process after 40 s, taking a pytest-xdist worker with it); with ONE device,
`tests/diffusion_process_test.py::test_ode_samples_have_the_data_moments[vp-True]`
hangs every time (blocked, no CPU use), so one device is no way out. The checks
that need exactly four devices also run in subprocesses (tests/multidevice_test.py).
"""

import os
import sys

# Tests compile hundreds of tiny programs and run each a few times: XLA's backend
# optimization level 0 compiles them about a third faster (runs keep the default).
for _FLAG in ("--xla_force_host_platform_device_count=4", "--xla_backend_optimization_level=0"):
  if _FLAG.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The repository root holds `configs/` and `experiments/`, imported by some tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

