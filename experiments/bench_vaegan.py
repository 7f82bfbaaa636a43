"""β-VAEGAN benchmarks: inference time per window and composition fit times (JSON).

  python -m experiments.bench_vaegan
  python -m experiments.bench_vaegan --n=20000 --sizes=quick   # shorter

1. Inference (R, D and latent norm of a window, `mlts.vaegan.scoring`): µs per
   window batched (`--batch` windows per call) against the same jitted network
   called one window at a time (the paper reports < 2 ms per sample), for the
   paper's widths (32..512) and the quick widths (16..256), L = 160, C = 1.
2. Composition fit on n validation samples: the vectorized λ×τ grid (50 × 100)
   against a plain loop over (λ, τ) computing F1 for each (the reference),
   and the RBF-SVM (SVM_λ on [R, D], scikit-learn SVC). The paper reports
   43 s (grid) vs 7 s (SVM) at n ≈ 100,000.
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from mlts.vaegan import composition, scoring
from mlts.vaegan import train as vaegan_train

FLAGS = flags.FLAGS
flags.DEFINE_integer("n", 100_000, "Validation samples for the composition fits.")
flags.DEFINE_integer("batch", 256, "Windows per batched inference call.")
flags.DEFINE_integer("windows", 2048, "Windows timed batched.")
flags.DEFINE_integer("single", 200, "Windows timed one at a time.")
flags.DEFINE_list("sizes", ["paper", "quick"], "Model widths to time: paper, quick.")
flags.DEFINE_bool("svm", True, "Time the SVM fit (O(n^2) memory/time in the worst case).")

WIDTHS = {"paper": (32, 64, 128, 256, 512), "quick": (16, 32, 64, 128, 256)}


def _best_of(fn, repeats: int = 3) -> float:
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def bench_inference(size: str) -> dict:
  config = vaegan_train.variant_config("vaegan2", gen_hidden=WIDTHS[size],
                                       disc_hidden=WIDTHS[size])
  rng = np.random.default_rng(0)
  x = rng.random((FLAGS.windows, 160, 1)).astype(np.float32)
  state = vaegan_train.create_state(config, jnp.asarray(x[:1]), jax.random.key(0))
  batched = scoring.make_scorer(config, batch_size=FLAGS.batch, mesh=_one_device_mesh())
  single = scoring.make_scorer(config, batch_size=1, mesh=_one_device_mesh())
  batched(state, x[:FLAGS.batch])  # compile
  single(state, x[:1])
  t_batched = _best_of(lambda: batched(state, x))
  t_single = _best_of(lambda: single(state, x[:FLAGS.single]), repeats=2)
  us_batched = 1e6 * t_batched / FLAGS.windows
  us_single = 1e6 * t_single / FLAGS.single
  return {"size": size, "widths": list(WIDTHS[size]), "batch": FLAGS.batch,
          "us_per_window_batched": us_batched, "us_per_window_single": us_single,
          "speedup_batched_vs_single": us_single / us_batched}


def _one_device_mesh():
  from mlts import sharding
  return sharding.make_mesh(jax.devices()[:1])


def loop_grid_reference(R, D, y, num_lambda: int = 50, num_tau: int = 100) -> dict:
  """The reference: a Python loop over (λ, τ), one F1 per pair (as the original code)."""
  best = (-1.0, 0.0, 0.0)
  for lam in np.linspace(0.0, 1.0, num_lambda):
    a = (1 - lam) * R + lam * D
    for tau in np.linspace(a.min(), a.max(), num_tau):
      p = a > tau
      tp = np.sum(p & (y == 1))
      fp = np.sum(p & (y == 0))
      fn = np.sum(~p & (y == 1))
      f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
      if f1 > best[0]:
        best = (f1, lam, tau)
  return {"f1": best[0], "lambda": best[1], "tau": best[2]}


def bench_composition(n: int) -> dict:
  rng = np.random.default_rng(0)
  y = (rng.random(n) < 0.1).astype(np.int8)
  R = rng.normal(size=n) + 1.5 * y
  D = rng.normal(size=n) + 0.8 * y
  R = composition.MinMax.fit(R).apply(R)
  D = composition.MinMax.fit(D).apply(D)
  out = {"n": n}
  start = time.perf_counter()
  ours = composition.fit_linear_grid(R, D, y, num_lambda=50, num_tau=100)
  out["grid_vectorized_s"] = time.perf_counter() - start
  start = time.perf_counter()
  ref = loop_grid_reference(R, D, y)
  out["grid_loop_reference_s"] = time.perf_counter() - start
  out["grid_speedup"] = out["grid_loop_reference_s"] / out["grid_vectorized_s"]
  out["grid_same_optimum"] = bool(abs(ours["f1"] - ref["f1"]) < 1e-12)
  out["grid_f1"] = ours["f1"]
  if FLAGS.svm:
    start = time.perf_counter()
    svm = composition.fit_svm_lambda(R, D, y)
    out["svm_fit_s"] = time.perf_counter() - start
    out["svm_support_vectors"] = int(svm.svc.support_vectors_.shape[0])
    out["svm_over_grid"] = out["svm_fit_s"] / out["grid_vectorized_s"]
  return out


def main(argv):
  del argv
  result = {"devices": [str(d) for d in jax.devices()],
            "inference": [bench_inference(s) for s in FLAGS.sizes],
            "composition": bench_composition(FLAGS.n)}
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  app.run(main)
