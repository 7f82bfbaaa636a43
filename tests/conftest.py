"""Test set-up: JAX on the CPU, one device.

Multi-device code is tested on four forced host devices in subprocesses
(tests/multidevice_test.py): with several forced devices in the test processes,
XLA:CPU's in-process all-reduce deadlocked under load (its rendezvous aborts the
process after 40 s, taking a pytest-xdist worker with it).
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The repository root holds `configs/` and `experiments/`, imported by some tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

