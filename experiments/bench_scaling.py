"""How scoring, training and the range metrics scale; prints one JSON object.

  python -m experiments.bench_scaling                      # everything, the default sizes
  python -m experiments.bench_scaling --parts=scoring --sizes=100000,1000000,10000000

* scoring: a detector is fit once (one channel of synthetic seasonal telemetry)
  and saved; each (detector, length) is then measured in a fresh subprocess
  that loads it and scores one series of that length (chunked, `score_chunk`):
  seconds, points/s, the process's peak RSS and its growth over the RSS before
  scoring. The fitted exponent b of seconds ≈ a · length^b (goal 1.0 ± 0.1)
  and of the RSS growth (bounded memory: the windows live one chunk at a time;
  only the input and the [T] scores grow with T) are reported per detector.
* training: steps/s of the recommended detector's fit on 1, 2 and 4 forced
  host devices (one subprocess each, XLA_FLAGS), from two fits of N and 2N
  steps after a first fit that compiles (fixed costs cancel), and the largest
  parameter difference against 1 device: a correctness and overhead check
  (forced devices share the CPU cores, so no speed-up is expected on one CPU);
  then the same for P processes x D devices each (`--processes=2x2`: P
  subprocesses on localhost joined by `jax.distributed` with gloo collectives,
  checkpoints in one shared directory), as a correctness and overhead check of
  the multi-host path.
* metrics: seconds of `metrics.vus` and `metrics.range_auc` at each length
  (the synthetic labels and scores of experiments/bench_metrics.py), with
  their exponents.

Not measured here: several real hosts and a GPU; the JSON says which backend ran.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("parts", ["scoring", "training", "metrics"], "Which measurements to run.")
flags.DEFINE_list("sizes", ["100000", "1000000", "10000000"], "Series lengths (points).")
flags.DEFINE_list("detectors", ["recommended", "knn_window"], "Detectors scored.")
flags.DEFINE_list("metric_sizes", ["100000", "1000000", "10000000"], "Lengths for the metrics.")
flags.DEFINE_list("devices", ["1", "2", "4"], "Forced host device counts for training.")
flags.DEFINE_list("processes", ["2x1"], "Multi-process training runs, PxD: P processes "
                  "of D forced host devices each (localhost, gloo); empty for none.")
flags.DEFINE_integer("train_steps", 1000, "N of the N / 2N training fits.")
flags.DEFINE_integer("job_timeout", 600, "Seconds a multi-process job may take before it is "
                     "killed and reported as hung.")
flags.DEFINE_integer("range_window", 100, "VUS max_window and Range-AUC window.")
flags.DEFINE_integer("score_chunk", 1 << 17, "Steps per scoring chunk.")
flags.DEFINE_string("workdir", "", "Where the fitted detectors are saved (default: a temp dir).")
flags.DEFINE_string("worker", "", "Internal: run one measurement (JSON spec) and print JSON.")

# knn_window: exact brute force against its (capped) training windows; a small cap keeps
# 10^7 points within minutes on 2 CPU cores.
DETECTOR_OPTIONS = {"recommended": {}, "knn_window": {"max_train_windows": 2000,
                                                     "eval_stride": 4}}


def telemetry(length: int, seed: int) -> np.ndarray:
  """[length, 1] float32 synthetic seasonal telemetry with noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(length, dtype=np.float64)
  x = np.sin(2 * np.pi * t / 150) + 0.3 * np.sin(2 * np.pi * t / 37) + 0.1 * rng.normal(size=length)
  return x.astype(np.float32)[:, None]


def _rss_mb() -> float:
  """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _exponent(sizes, values) -> float | None:
  """b of values ≈ a · sizes^b by least squares on logs (None below two points)."""
  pairs = [(s, v) for s, v in zip(sizes, values) if v and v > 0]
  if len(pairs) < 2:
    return None
  x, y = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
  return float(np.polyfit(x, y, 1)[0])


def _failure(stderr: str, returncode: int) -> dict:
  """A failed worker's result: its most telling stderr line (an XLA fatal check, else
  the last error line, else the last line)."""
  lines = stderr.strip().splitlines()
  telling = [x for x in lines if x[:1] == "F" and x[1:5].isdigit() or "Error" in x]
  return {"error": (telling or lines or ["failed"])[-1][:400], "returncode": returncode}


def _run_job(specs: list[dict], env: dict) -> dict:
  """The processes of one multi-process job, started together; process 0's JSON."""
  # Output goes to files, not pipes: a process blocked on a full pipe that nobody reads
  # yet would stall every other process at the next collective.
  logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in specs]
  procs = [subprocess.Popen([sys.executable, "-m", "experiments.bench_scaling",
                             f"--worker={json.dumps(spec)}"], stdout=out, stderr=err,
                            text=True, env=env) for spec, (out, err) in zip(specs, logs)]
  deadline = time.monotonic() + FLAGS.job_timeout
  try:
    for p in procs:
      p.wait(timeout=max(deadline - time.monotonic(), 1))
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    return {"error": f"no result within {FLAGS.job_timeout} s (a collective that never "
                     "completed: see tests/conftest.py)", "returncode": None}
  outs = []
  for out, err in logs:
    out.seek(0)
    err.seek(0)
    outs.append((out.read(), err.read()))
  for p, (_, err) in zip(procs, outs):
    if p.returncode != 0:
      return _failure(err, p.returncode)
  return json.loads(outs[0][0].strip().splitlines()[-1])


def _run_worker(spec: dict, env: dict | None = None) -> dict:
  out = subprocess.run([sys.executable, "-m", "experiments.bench_scaling",
                        f"--worker={json.dumps(spec)}"], capture_output=True, text=True,
                       env=env, check=False)
  if out.returncode != 0:
    return _failure(out.stderr, out.returncode)
  return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------
# Workers (one fresh process each).

def _score_worker(spec: dict) -> dict:
  from mlts import detectors
  det = detectors.load(spec["path"])
  det.score_chunk = int(spec["score_chunk"])
  x = telemetry(int(spec["length"]), seed=1)
  det.score(x[: 4 * det.config.window + 8])  # compile outside the timing
  before = _current_rss_mb()
  start = time.perf_counter()
  scores = det.score(x)
  seconds = time.perf_counter() - start
  assert scores.shape == (x.shape[0],) and np.isfinite(scores).all()
  return {"seconds": seconds, "points_per_second": x.shape[0] / seconds,
          "peak_rss_mb": _rss_mb(), "rss_before_mb": before,
          "rss_growth_mb": _rss_mb() - before}


def _train_worker(spec: dict) -> dict:
  import jax
  if spec.get("num_processes", 1) > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{spec['port']}",
                               num_processes=spec["num_processes"],
                               process_id=spec["process_id"])

  from mlts import detectors
  x = telemetry(20000, seed=0)
  times, params = [], None
  for k, steps in enumerate((spec["steps"], spec["steps"], 2 * spec["steps"])):
    det = detectors.create("recommended", training={"num_steps": steps,  # the first compiles
                                                     "checkpoint_every": steps,
                                                     "log_every": steps})
    start = time.perf_counter()
    # Several processes share one checkpoint directory (Orbax's multi-host protocol).
    det.fit(x, **({"workdir": os.path.join(spec["workdir"], f"fit{k}")}
                  if spec.get("workdir") else {}))
    times.append(time.perf_counter() - start)
    params = det._params
  leaves = [np.asarray(v, np.float64).ravel() for v in jax.tree.leaves(params)]
  return {"processes": jax.process_count(), "devices": len(jax.devices()),
          "fit_seconds": times[1:],
          # None when the 2N fit was not slower than the N fit (N too small to time).
          "steps_per_second": (spec["steps"] / (times[2] - times[1])
                               if times[2] > times[1] else None),
          "params": np.concatenate(leaves).tolist()}


# ----------------------------------------------------------------------------
# Parts.

def scoring(sizes: list[int], names: list[str], workdir: str, chunk: int) -> dict:
  from mlts import detectors
  out = {}
  for name in names:
    path = os.path.join(workdir, name)
    if not os.path.isdir(path):
      detectors.create(name, **DETECTOR_OPTIONS.get(name, {})).fit(telemetry(20000, 0)).save(path)
    rows = {str(n): _run_worker({"kind": "score", "path": path, "length": n,
                                 "score_chunk": chunk}) for n in sizes}
    ok = [(n, rows[str(n)]) for n in sizes if "seconds" in rows[str(n)]]
    out[name] = {
        "options": DETECTOR_OPTIONS.get(name, {}), "by_length": rows,
        "time_exponent": _exponent([n for n, _ in ok], [r["seconds"] for _, r in ok]),
        "rss_growth_exponent": _exponent([n for n, _ in ok],
                                         [r["rss_growth_mb"] for _, r in ok])}
  return out


def training(devices: list[int], steps: int, processes: list[str] = ()) -> dict:
  from mlts import distributed
  runs = {}
  for d in devices:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={d}",
               JAX_PLATFORMS="cpu")
    runs[d] = _run_worker({"kind": "train", "steps": steps}, env=env)
  for job in processes:
    num, per = (int(v) for v in job.lower().split("x"))
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={per}",
               JAX_PLATFORMS="cpu")
    port = distributed.free_local_port()
    shared = tempfile.mkdtemp(prefix="mlts_bench_multiprocess_")
    runs[f"{num}x{per}"] = _run_job(
        [{"kind": "train", "steps": steps, "num_processes": num, "process_id": i,
          "port": port, "workdir": shared} for i in range(num)], env)
  base = np.asarray(runs[devices[0]].get("params", []))
  out = {}
  for d, r in runs.items():
    if "error" in r:
      out[str(d)] = r
      continue
    p = np.asarray(r.pop("params"))
    r["max_abs_param_diff_vs_first"] = float(np.max(np.abs(p - base))) if base.size else None
    out[str(d)] = r
  return {"by_devices": out, "steps": steps,
          "note": "keys: forced host devices of one process, or PROCESSESxDEVICES"}


def metric_timings(sizes: list[int], window: int) -> dict:
  from experiments import bench_metrics
  from mlts import metrics
  rows = {}
  for n in sizes:
    labels, scores, _ = bench_metrics.synthetic(n, 0)
    row = {}
    for name in ("vus", "range_auc"):
      start = time.perf_counter()
      if name == "vus":
        metrics.vus(labels, scores, max_window=window)
      else:
        metrics.range_auc(labels, scores, window=window)
      row[name] = time.perf_counter() - start
    rows[str(n)] = row
  return {"by_length": rows, "max_window": window,
          **{f"{m}_exponent": _exponent(sizes, [rows[str(n)][m] for n in sizes])
             for m in ("vus", "range_auc")}}


def main(argv):
  del argv
  if FLAGS.worker:
    spec = json.loads(FLAGS.worker)
    result = _score_worker(spec) if spec["kind"] == "score" else _train_worker(spec)
    print(json.dumps(result))
    return
  import jax
  report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "backend": jax.default_backend(),
                        "gpu": "not run on a GPU" if jax.default_backend() == "cpu" else "yes"}}
  workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="mlts_bench_scaling_")
  start = time.perf_counter()
  if "scoring" in FLAGS.parts:
    report["scoring"] = scoring([int(float(s)) for s in FLAGS.sizes], FLAGS.detectors, workdir,
                                FLAGS.score_chunk)
  if "training" in FLAGS.parts:
    report["training"] = training([int(d) for d in FLAGS.devices], FLAGS.train_steps,
                                  [p for p in FLAGS.processes if p])
  if "metrics" in FLAGS.parts:
    report["metrics"] = metric_timings([int(float(s)) for s in FLAGS.metric_sizes],
                                       FLAGS.range_window)
  report["seconds"] = time.perf_counter() - start
  print(json.dumps(report, indent=1))


if __name__ == "__main__":
  app.run(main)
