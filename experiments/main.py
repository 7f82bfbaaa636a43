"""Runs the study a config names (`config.experiment`).

  python -m experiments.main --config=configs/smap.py:quick --workdir=runs/smap

Flags, logging of host and devices, one call into the study registry
(`mlts.studies.run`); all logic lives in the library. Override any field:
`--config.training.num_steps=100`. A workdir remembers its config: rerunning
with a different one stops unless `--config.resume_mismatch=allow`.

Several processes (hosts) run one job through JAX's multi-process runtime: start
the same command on every host with `--distributed` (JAX finds SLURM, Open MPI
and TPU-slice clusters itself) or with `--coordinator_address=HOST:PORT
--num_processes=N --process_id=I`; add `--cpu_collectives=gloo` on CPUs. The
workdir must be one shared directory. See README "Running on several hosts".
"""

import logging as py_logging
import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from mlts import checkpointing, distributed, studies

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/smap.py or configs/smap.py:quick.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory (resumes from its checkpoints).")
flags.DEFINE_bool("distributed", False,
                  "Call jax.distributed.initialize() (cluster auto-detection: SLURM, Open MPI, "
                  "TPU slices); implied by --coordinator_address.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.")
flags.DEFINE_enum("cpu_collectives", None, ["gloo", "mpi"],
                  "Cross-process collectives on CPU devices (needed for multi-process CPU runs).")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_orbax(record: py_logging.LogRecord) -> bool:
  """Drops Orbax's per-save INFO chatter; its warnings and errors still show."""
  return record.levelno > py_logging.INFO or "orbax" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_quiet_orbax)
  try:
    distributed.initialize(auto=FLAGS.distributed, coordinator_address=FLAGS.coordinator_address,
                           num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
                           cpu_collectives=FLAGS.cpu_collectives)
  except ValueError as err:
    raise app.UsageError(str(err)) from err
  logging.info("JAX process %d/%d, local devices %s, %d devices in all, backend %s",
               jax.process_index(), jax.process_count(), jax.local_devices(),
               jax.device_count(), jax.default_backend())
  try:
    studies.run(FLAGS.config, FLAGS.workdir)
  except checkpointing.CheckpointSaveError as err:
    # After a failed save Orbax's writer threads may never finish, and the interpreter would
    # wait for them forever: report and leave at once (earlier checkpoints are intact).
    logging.error("%s", err)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


if __name__ == "__main__":
  app.run(main)
