"""Times the COGNOS components; prints one JSON object.

`python -m experiments.bench_cognos --n=1000000 --channels=1,55`

ARKS (`bench_arks`): the jitted filter (`mlts.cognos.arks`) on `--n` points of
white-noise residuals for each channel count in `--channels` (calibrated on
separate white noise, so Mode II, with breaker trips on about 14 % of the
steps at c = 0.9). Each timing (the loops' too) is the best of `--repeats`
runs, the jitted ones after one warm-up call that compiles; inputs are
already on the device and outputs are waited for (`block_until_ready`).
Reported in ns per point per channel, against plain loops of the same
recursion timed in the same run on `--numpy_n` points of one channel: the
straight translation on NumPy arrays and scalars (`numpy_loop`, the baseline
of the issue's ">= 100x") and one tuned for CPython on Python floats
(`python_float_loop`, a harder baseline); and against `filterpy` when it is
importable (it is not a dependency; the JSON says when it was skipped). The
public `arks_filter` call (input checks, zero-padding to `bucket_length`,
host-to-device copy) is timed too, and
other formulations of the scan are timed for the record (`alternatives`):
other unrolls, and `jax.vmap` of per-channel scans.

GWNR (`bench_gwnr`): the jitted training step (forward, backward, optimizer
update) of each backbone in `--gwnr_backbones` with the GWNR loss against the
same step with MSE, same batch (`--batch` windows of `--window` steps,
`--features` channels), best of `--repeats` x 20 steps; the ratio is the GWNR
overhead (the issue's target is at most +30 %).

Each component has its own `bench_<name>() -> dict`; `main` puts them in one
JSON object under their names.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from mlts.cognos import arks

FLAGS = flags.FLAGS
flags.DEFINE_integer("n", 1_000_000, "Time steps per series for the ARKS scan.")
flags.DEFINE_list("channels", ["1", "55"], "Channel counts to time ARKS on.")
flags.DEFINE_integer("numpy_n", 100_000, "Time steps (one channel) for the NumPy loop.")
flags.DEFINE_integer("repeats", 5, "Timed runs per measurement (the best is reported).")
flags.DEFINE_integer("seed", 0, "Random seed of the residuals.")
flags.DEFINE_float("confidence", 0.9, "ARKS breaker confidence.")
flags.DEFINE_float("kappa", 1e6, "ARKS breaker inflation.")

flags.DEFINE_list("gwnr_backbones", ["conv_ae", "lstm_ae", "dlinear", "modern_tcn", "transformer"],
                  "Backbones whose MSE and GWNR training steps are timed.")
flags.DEFINE_integer("batch", 64, "GWNR bench: windows per batch.")
flags.DEFINE_integer("window", 128, "GWNR bench: window length.")
flags.DEFINE_integer("features", 1, "GWNR bench: channels per window.")
flags.DEFINE_list("benches", ["arks", "gwnr"], "Which sections to run.")

ISSUE_TARGET_NS = 20.0  # ns per point per channel, amortized over 55 channels
ISSUE_TARGET_SPEEDUP = 100.0  # x the NumPy loop


def best_time(fn, repeats: int) -> float:
  """Best wall-clock seconds of `fn()` over `repeats` runs."""
  best = math.inf
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def numpy_loop(params: arks.ArksParams, r: np.ndarray, threshold: float, kappa: float):
  """The recursion as a plain loop over channels and time on NumPy arrays and scalars.

  The straightforward translation of SPEC §6 (as the reference loop in
  tests/arks_test.py): each step indexes the arrays and does NumPy-scalar
  arithmetic.
  """
  est = np.empty_like(r)
  for c in range(r.shape[1]):
    f, q, rr = params.F[c], params.Q[c], params.R[c]
    x, p = params.x0[c], params.p0[c]
    for t in range(r.shape[0]):
      x_prior = f * x
      p_prior = f * p * f + q
      nu = r[t, c] - x_prior
      if nu * nu / (p_prior + rr) > threshold:
        p_prior = f * p * f + kappa * q
      k = p_prior / (p_prior + rr)
      x = x_prior + k * nu
      p = (1 - k) * p_prior
      est[t, c] = x
  return est


def python_float_loop(params: arks.ArksParams, r: np.ndarray, threshold: float, kappa: float):
  """The same loop tuned for CPython: Python floats and lists, no NumPy scalars."""
  est = np.empty_like(r)
  for c in range(r.shape[1]):
    f, q, rr = float(params.F[c]), float(params.Q[c]), float(params.R[c])
    x, p = float(params.x0[c]), float(params.p0[c])
    col = r[:, c].tolist()
    out = [0.0] * len(col)
    for t, r_t in enumerate(col):
      x_prior = f * x
      fpf = f * p * f
      p_prior = fpf + q
      nu = r_t - x_prior
      if nu * nu / (p_prior + rr) > threshold:
        p_prior = fpf + kappa * q
      k = p_prior / (p_prior + rr)
      x = x_prior + k * nu
      p = k * rr
      out[t] = x
    est[:, c] = out
  return est


def filterpy_loop(params: arks.ArksParams, r: np.ndarray, threshold: float, kappa: float):
  """The same recursion with filterpy's KalmanFilter (predict / update per step)."""
  from filterpy.kalman import KalmanFilter
  est = np.empty_like(r)
  for c in range(r.shape[1]):
    kf = KalmanFilter(dim_x=1, dim_z=1)
    kf.F[:] = params.F[c]
    kf.H[:] = 1.0
    kf.R[:] = params.R[c]
    kf.x[:] = params.x0[c]
    kf.P[:] = params.p0[c]
    q = params.Q[c]
    for t in range(r.shape[0]):
      p_post = kf.P.copy()
      kf.Q[:] = q
      kf.predict()
      nu = r[t, c] - kf.x[0, 0]
      if nu * nu / (kf.P[0, 0] + params.R[c]) > threshold:
        kf.P[:] = params.F[c] * p_post * params.F[c] + kappa * q
      kf.update(r[t, c])
      est[t, c] = kf.x[0, 0]
  return est


def _jitted_formulations() -> dict:
  """Other ways of writing the scan, timed for the record (all equal to the library's)."""

  def scan(unroll):
    return jax.jit(lambda p, r, thr, kap: arks.filter_scan(p, r, thr, kap, unroll=unroll))

  def vmap_of_scans(unroll):
    def one(p, r, thr, kap):  # one channel: scan of the scalar step
      step = lambda carry, r_t: arks.arks_step(p, carry, r_t, threshold=thr, kappa=kap)
      return jax.lax.scan(step, arks.ArksCarry(p.x0, p.p0), r, unroll=unroll)[1]
    return jax.jit(jax.vmap(one, in_axes=(0, 1, None, None), out_axes=1))

  return {f"scan_unroll_{u}": scan(u) for u in (1, 4, 8)} | {
      f"vmap_of_scans_unroll_{u}": vmap_of_scans(u) for u in (1, 4)}


def _time_jitted(fn, args, repeats: int):
  """(best seconds after the warm-up call, output, seconds of the compiling first call)."""
  start = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  first = time.perf_counter() - start
  return best_time(lambda: jax.block_until_ready(fn(*args)), repeats), out, first


def _bench_jax(params: arks.ArksParams, r_np: np.ndarray, threshold: float) -> dict:
  """Times the jitted filter on [n, C] float32 residuals already on the device."""
  n, c = r_np.shape
  ns = lambda seconds: round(seconds * 1e9 / (n * c), 2)
  args = (arks.ArksParams(*(jnp.asarray(v, jnp.int32 if k == "mode" else jnp.float32)
                            for k, v in zip(arks.ArksParams._fields, params))),
          jax.device_put(r_np), jnp.float32(threshold), jnp.float32(FLAGS.kappa))
  seconds, out, first = _time_jitted(arks._filter_jit, args, FLAGS.repeats)
  public = best_time(lambda: jax.block_until_ready(arks.arks_filter(
      params, r_np, confidence=FLAGS.confidence, kappa=FLAGS.kappa)), FLAGS.repeats)
  entry = {"ns_per_point_per_channel": ns(seconds), "seconds": round(seconds, 4),
           "unroll": arks.default_unroll(c),
           "compile_and_first_run_s": round(first, 3),
           "breaker_rate": round(float(jnp.mean(out.breaker)), 4),
           "public_arks_filter_ns_per_point_per_channel": ns(public), "alternatives": {}}
  for name, fn in _jitted_formulations().items():
    alt_seconds, alt_out, _ = _time_jitted(fn, args, FLAGS.repeats)
    entry["alternatives"][name] = {
        "ns_per_point_per_channel": ns(alt_seconds),
        "max_abs_diff_vs_scan": float(jnp.max(jnp.abs(alt_out.estimate - out.estimate)))}
  return entry


def bench_arks() -> dict:
  """ARKS throughput: jitted scan vs the loops (vs filterpy); see the module docstring."""
  rng = np.random.default_rng(FLAGS.seed)
  channels = [int(c) for c in FLAGS.channels]
  threshold = arks.breaker_threshold(FLAGS.confidence)
  params_all = arks.calibrate(rng.normal(size=(10_000, max(channels))))
  sliced = lambda c: arks.ArksParams(*(np.asarray(v)[:c] for v in params_all))
  result = {"n": FLAGS.n, "confidence": FLAGS.confidence, "kappa": FLAGS.kappa,
            "dtype": "float32", "jax": {}}
  for c in channels:
    r_np = rng.normal(size=(FLAGS.n, c)).astype(np.float32)
    result["jax"][f"channels_{c}"] = _bench_jax(sliced(c), r_np, threshold)

  # The loops on a shorter, single-channel series; checked against the scan.
  m = FLAGS.numpy_n
  r_short = rng.normal(size=(m, 1))
  p1 = sliced(1)
  jax_est = np.asarray(arks.arks_filter(p1, r_short, confidence=FLAGS.confidence,
                                        kappa=FLAGS.kappa)["estimate"])
  loop_est = {}
  for name, loop in (("numpy_loop", numpy_loop), ("python_float_loop", python_float_loop)):
    loop_est[name] = loop(p1, r_short, threshold, FLAGS.kappa)
    loop_ns = best_time(lambda loop=loop: loop(p1, r_short, threshold, FLAGS.kappa),
                        FLAGS.repeats) * 1e9 / m
    result[name] = {
        "n": m, "channels": 1, "ns_per_point_per_channel": round(loop_ns, 1),
        "max_abs_diff_vs_jax_float32": float(np.max(np.abs(loop_est[name] - jax_est))),
        "speedup_of_jax": {k: round(loop_ns / v["ns_per_point_per_channel"], 1)
                           for k, v in result["jax"].items()}}

  try:
    import filterpy  # noqa: F401
  except ImportError as e:
    result["filterpy"] = {"skipped": f"filterpy not importable ({e})"}
  else:
    mf = min(m, 20_000)
    start = time.perf_counter()
    fp_est = filterpy_loop(p1, r_short[:mf], threshold, FLAGS.kappa)
    result["filterpy"] = {
        "n": mf, "channels": 1,
        "ns_per_point_per_channel": round((time.perf_counter() - start) * 1e9 / mf, 1),
        "max_abs_diff_vs_numpy_loop": float(np.max(np.abs(fp_est - loop_est["numpy_loop"][:mf])))}

  key = f"channels_{max(channels)}"
  result["targets"] = {
      "ns_per_point_per_channel_max": ISSUE_TARGET_NS,
      "speedup_min": ISSUE_TARGET_SPEEDUP,
      "measured_at": key,
      "ns_met": result["jax"][key]["ns_per_point_per_channel"] <= ISSUE_TARGET_NS,
      "speedup_met": result["numpy_loop"]["speedup_of_jax"][key] >= ISSUE_TARGET_SPEEDUP,
      "speedup_met_vs_python_float_loop": (
          result["python_float_loop"]["speedup_of_jax"][key] >= ISSUE_TARGET_SPEEDUP),
  }
  return result


ISSUE_TARGET_GWNR_OVERHEAD = 0.30  # GWNR step time at most +30 % over MSE


def bench_gwnr() -> dict:
  """Training-step time with GWNR vs MSE for each backbone, same batch, same optimizer."""
  from configs import default
  from mlts import models, reconstruction, train, train_state

  config = default.get_config()
  rng = np.random.default_rng(FLAGS.seed)
  batch = jnp.asarray(rng.normal(size=(FLAGS.batch, FLAGS.window, FLAGS.features)),
                      jnp.float32)
  key = jax.random.key(FLAGS.seed)
  out = {"batch": FLAGS.batch, "window": FLAGS.window, "features": FLAGS.features}
  for name in FLAGS.gwnr_backbones:
    config.model.name = name
    model = models.get_model(config.model, FLAGS.features)
    tx = train_state.make_optimizer(config.optimizer, 1000)
    times = {}
    for loss in ("mse", "gwnr"):
      config.training.loss = loss
      state = train_state.create_train_state(model, batch[:1], tx, key)
      step = jax.jit(train.make_train_step(reconstruction.make_loss(config, model.apply)),
                     donate_argnums=0)
      state, metrics = step(state, batch, key)  # compile
      jax.block_until_ready(metrics)
      holder = {"state": state}

      def run_steps(holder=holder, step=step):
        s = holder["state"]
        for _ in range(20):
          s, m = step(s, batch, key)
        jax.block_until_ready(m)
        holder["state"] = s

      times[loss] = best_time(run_steps, FLAGS.repeats) / 20
    out[name] = {"mse_ms": round(times["mse"] * 1e3, 3), "gwnr_ms": round(times["gwnr"] * 1e3, 3),
                 "overhead": round(times["gwnr"] / times["mse"] - 1.0, 3),
                 "target_met": times["gwnr"] / times["mse"] - 1.0 <= ISSUE_TARGET_GWNR_OVERHEAD}
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  report = {
      "python": platform.python_version(),
      "jax": jax.__version__,
      "devices": [str(d) for d in jax.devices()],
      "cpu_count": os.cpu_count(),
  }
  if "arks" in FLAGS.benches:
    report["arks"] = bench_arks()
  if "gwnr" in FLAGS.benches:
    report["gwnr"] = bench_gwnr()
  print(json.dumps(report))


if __name__ == "__main__":
  app.run(main)
