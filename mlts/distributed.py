"""Starting JAX's multi-process runtime (`jax.distributed`) for a run over several hosts.

  from mlts import distributed
  distributed.initialize(coordinator_address="host0:12345", num_processes=2, process_id=0)

After it, `jax.devices()` lists the devices of every process and the library's
mesh (`mlts.sharding.make_mesh`) spans them all. `experiments/main.py` calls it
from its flags; see README "Running on several hosts".
"""

from __future__ import annotations

import jax

CPU_COLLECTIVES = ("gloo", "mpi")


def initialize(*, auto: bool = False, coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               cpu_collectives: str | None = None) -> bool:
  """Joins a multi-process run when asked; checks the arguments before anything starts.

  Args:
    auto: call `jax.distributed.initialize()` without arguments (JAX detects
      SLURM, Open MPI and TPU-slice clusters itself).
    coordinator_address, num_processes, process_id: a manual start (all three:
      process 0's host:port, the number of processes, this one's index).
    cpu_collectives: 'gloo' or 'mpi', the cross-process collectives of CPU
      devices (needed for a multi-process run on CPUs).

  Returns:
    Whether the multi-process runtime was started.

  Raises:
    ValueError: an incomplete or inconsistent set of arguments (named by their
      command-line flags).
  """
  manual = {"coordinator_address": coordinator_address, "num_processes": num_processes,
            "process_id": process_id}
  given = [k for k, v in manual.items() if v is not None]
  if given and len(given) < 3:
    missing = [k for k in manual if k not in given]
    raise ValueError(f"--{' --'.join(given)} given without --{' --'.join(missing)}: "
                     "a manual multi-process start needs all three")
  if given and (num_processes < 1 or not 0 <= process_id < num_processes):
    raise ValueError(f"--process_id={process_id} must lie in 0 .. num_processes - 1 "
                     f"(--num_processes={num_processes})")
  if cpu_collectives is not None and cpu_collectives not in CPU_COLLECTIVES:
    raise ValueError(f"--cpu_collectives={cpu_collectives!r}: expected one of "
                     f"{', '.join(CPU_COLLECTIVES)}")
  if cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  if given:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return True
  if auto:
    jax.distributed.initialize()
    return True
  return False


def free_local_port() -> int:
  """A TCP port free on localhost now: the coordinator port of a job whose processes
  all start on this machine (tests, benchmarks)."""
  import socket
  with socket.socket() as sock:
    sock.bind(("localhost", 0))
    return sock.getsockname()[1]
