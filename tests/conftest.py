"""Test set-up: four fake host devices, so multi-device code paths run on one CPU.

XLA_FLAGS must be set before JAX initializes its backend, hence here.
"""

import os
import sys

_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The repository root holds `configs/` and `experiments/`, imported by some tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

# One persistent compilation cache for the whole run, shared by the xdist workers: the
# suite compiles the same tiny networks in many tests, and compilation dominates its time.
# A cached executable is the same binary a fresh compile would give. The directory is
# keyed by the user; point MLTS_TEST_JAX_CACHE elsewhere (or to '' to disable).
import tempfile  # noqa: E402

_CACHE = os.environ.get("MLTS_TEST_JAX_CACHE",
                        os.path.join(tempfile.gettempdir(), f"mlts-test-jax-cache-{os.getuid()}"))
if _CACHE:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 10**9))  # bytes, LRU
