"""Reruns every reproducible table and figure of the papers and writes REPRODUCTION.md.

  python -m experiments.reproduce --budget=quick --workdir=runs/reproduce
  python -m experiments.reproduce --budget=quick --workdir=runs/reproduce --only=cognos_smap
  python -m experiments.reproduce --table_only --workdir=runs/reproduce

Each run of the index (`experiments/reproduction_index.py`) is one existing study
config, executed as `python -m experiments.main --config=<config>:<variant>
--workdir=<workdir>/<budget>/<run>` in a subprocess (its log beside it, in
run.log). A run that finished is recorded in `reproduce.json` there and skipped
next time; an interrupted one resumes from its own checkpoints. After the runs,
the table is generated from the saved results of every budget found under the
workdir (never typed): `--output` (default REPRODUCTION.md in the current
directory). `--budget=tiny` uses the configs' test variants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags

from experiments import reproduction_index as index

FLAGS = flags.FLAGS
flags.DEFINE_enum("budget", "quick", list(index.BUDGETS), "Which variant of every config to run.")
flags.DEFINE_string("workdir", "runs/reproduce", "Root of the runs (<workdir>/<budget>/<run>).")
flags.DEFINE_list("only", [], "Run only these runs or rows (names or row ids; default all).")
flags.DEFINE_bool("table_only", False, "Write the table from saved results; run nothing.")
flags.DEFINE_string("output", "REPRODUCTION.md", "The generated index.")
flags.DEFINE_bool("keep_going", True, "After a failed run, go on with the others.")

MARKER = "reproduce.json"


def run_dir(workdir: str, budget: str, run: index.Run) -> str:
  return os.path.join(workdir, budget, run.name)


def finished(workdir: str, budget: str, run: index.Run) -> dict | None:
  """The marker of a finished run of `run` at `budget` with today's config string, else None."""
  path = os.path.join(run_dir(workdir, budget, run), MARKER)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      marker = json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise ValueError(f"{path}: unreadable run marker ({err}); delete it to rerun the run") from err
  if marker.get("config") != run.config_arg(budget):
    raise ValueError(
        f"{path} records config {marker.get('config')!r} but the index now runs "
        f"{run.config_arg(budget)!r}; delete {os.path.dirname(path)} to rerun it")
  return marker


def command(workdir: str, budget: str, run: index.Run) -> list[str]:
  return [sys.executable, "-m", "experiments.main", f"--config={run.config_arg(budget)}",
          f"--workdir={run_dir(workdir, budget, run)}"]


def execute(workdir: str, budget: str, run: index.Run) -> tuple[bool, float]:
  """Runs one study in a subprocess; returns (succeeded, wall seconds)."""
  out = run_dir(workdir, budget, run)
  os.makedirs(out, exist_ok=True)
  start = time.perf_counter()
  with open(os.path.join(out, "run.log"), "a") as log:
    rc = subprocess.call(command(workdir, budget, run), stdout=log, stderr=subprocess.STDOUT,
                         cwd=index.ROOT)
  seconds = time.perf_counter() - start
  if rc == 0:
    with open(os.path.join(out, MARKER), "w") as f:
      json.dump({"config": run.config_arg(budget), "seconds": seconds,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f, indent=1)
  return rc == 0, seconds


def _fmt_seconds(s: float) -> str:
  s = int(round(s))
  return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


def run_all(workdir: str, budget: str, runs: list[index.Run], *, keep_going: bool = True,
            echo=print) -> dict[str, str]:
  """Runs `runs` in order, skipping finished ones; one progress line per run with an ETA.

  Returns {run name: 'done' | 'skipped' | 'failed'}.
  """
  status: dict[str, str] = {}
  todo = [r for r in runs if finished(workdir, budget, r) is None]
  for run in runs:
    if run not in todo:
      status[run.name] = "skipped"
      echo(f"[{run.name}] already finished at budget {budget}: skipped")
  expected = {r.name: r.expected_seconds(budget) for r in todo}
  spent, planned = 0.0, 0.0  # actual and expected seconds of the runs done so far
  for i, run in enumerate(todo, 1):
    echo(f"[{i}/{len(todo)}] {run.name}: {' '.join(command(workdir, budget, run)[1:])}")
    ok, seconds = execute(workdir, budget, run)
    status[run.name] = "done" if ok else "failed"
    spent, planned = spent + seconds, planned + expected[run.name]
    ratio = spent / planned if planned > 0 else 1.0
    left = ratio * sum(expected[r.name] for r in todo[i:])
    echo(f"[{i}/{len(todo)}] {run.name}: {'done' if ok else 'FAILED'} in "
         f"{_fmt_seconds(seconds)}; {len(todo) - i} left, ETA {_fmt_seconds(left)}"
         + ("" if ok else f" (log: {os.path.join(run_dir(workdir, budget, run), 'run.log')})"))
    if not ok and not keep_going:
      break
  return status


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  rows, runs = index.select(FLAGS.only)
  if not FLAGS.table_only:
    start = time.perf_counter()
    status = run_all(FLAGS.workdir, FLAGS.budget, runs, keep_going=FLAGS.keep_going)
    print(f"{len(runs)} runs at budget {FLAGS.budget} in "
          f"{_fmt_seconds(time.perf_counter() - start)}: "
          + ", ".join(f"{n} {s}" for n, s in status.items()))
  del rows  # the index always lists every row; the ones not run say so
  budgets = ("tiny",) if FLAGS.budget == "tiny" else ("quick", "standard")
  text = index.render(FLAGS.workdir, budgets)
  with open(FLAGS.output, "w") as f:
    f.write(text)
  print(f"wrote {FLAGS.output}")
  if not FLAGS.table_only and "failed" in status.values():
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
