"""Standard generation benchmarks (Sines, Stocks, Energy; length 24) with the diffusion model.

The protocol of TimeGAN (Yoon et al. 2019) and Diffusion-TS (Yuan & Qiao
2024), so the numbers compare with theirs:

* data: Sines from TimeGAN's generator (10,000 × 24 × 5), Stocks (GOOG, 6
  columns) and Energy (UCI appliances, 28 columns) min–max scaled per column
  and cut into every window of length 24 (`mlts.metrics.temporal`);
* the generator is trained on all windows (scaled to [−1, 1] for the
  diffusion model) and as many synthetic windows are drawn from the matching
  prior and the probability-flow ODE (with the Gaussian tail on the
  attenuated components, `samplers.sample_ode`), mapped back to [0, 1] and
  clipped;
* discriminative score |accuracy − 0.5| of a post-hoc GRU classifier and
  predictive score (GRU trained on synthetic, next-step MAE on real), mean ±
  std over `num_seeds` evaluation seeds.

As references in the same run: the held-out floor (the discriminative score of
two disjoint halves of the real windows) and the predictive score of a GRU
trained on the real windows themselves ("original" in TimeGAN's tables).
Published Diffusion-TS numbers are printed beside ours (`PUBLISHED`).

`run(config, workdir)` is the study 'generation': configs with
`experiment = 'generation'` (configs/generation_*.py). Outputs: config.json,
results.json, tables.md, samples.npz, and the generator's Orbax checkpoints.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from mlts import results as results_lib
from mlts import sharding
from mlts.data import transforms, ucr
from mlts.diffusion import losses, process, samplers, trainer
from mlts.metrics import temporal

DATASETS = ("sines", "stock", "energy")
# Diffusion-TS (ICLR 2024), Table 1, length 24: (discriminative, predictive).
PUBLISHED = {"sines": (0.006, 0.093), "stock": (0.067, 0.036), "energy": (0.122, 0.250)}


def load_windows(config: ml_collections.ConfigDict) -> np.ndarray:
  """The benchmark's real windows [N, L, F] in [0, 1]."""
  name = config.data.dataset
  if name == "sines":
    return temporal.sines(config.data.num_sines, config.data.seq_len, config.data.dim,
                          seed=config.seed)
  if name in ("stock", "energy"):
    return temporal.real_windows(ucr.load_generation(name), config.data.seq_len)
  raise ValueError(f"unknown generation benchmark {name!r}; expected one of {DATASETS}")


def make_sampler(proc, model, params, stats, *, batch: int, num_steps: int, solver: str):
  """Jitted `sample(key) -> [batch, L, F]` from the matching prior and the reverse ODE."""
  noise_fn = losses.make_noise_fn(model.apply, params, proc)
  return jax.jit(lambda key: samplers.sample_ode(proc, noise_fn, stats, key, batch,
                                                 num_steps=num_steps, solver=solver))


def draw(sample, num: int, batch: int, key: jax.Array) -> np.ndarray:
  """`num` samples in fixed-size batches (one compiled shape); batch b uses fold_in(key, b)."""
  out = [np.asarray(sample(jax.random.fold_in(key, b))) for b in range(-(-num // batch))]
  return np.concatenate(out)[:num]


def scores(real: np.ndarray, fake: np.ndarray, config, seeds) -> dict[str, list[float]]:
  """Discriminative and predictive scores over seeds."""
  tcfg = config.metrics
  return {"discriminative": [temporal.discriminative_score(real, fake, seed=s, config=tcfg)
                             for s in seeds],
          "predictive": [temporal.predictive_score(real, fake, seed=s, config=tcfg)
                         for s in seeds]}


def _mean_std(values) -> list[float]:
  return [float(np.mean(values)), float(np.std(values))]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains the generator, samples, and scores it against the references."""
  started = results_lib.start_run(config, workdir)
  real = load_windows(config)
  logging.info("%s: %d real windows %s", config.data.dataset, real.shape[0], real.shape[1:])
  scaled = transforms.to_signed(real).astype(np.float32)
  start = time.perf_counter()
  proc, model, params, train_seconds = trainer.train_variant(
      config, config.diffusion, scaled, workdir, "generator", sharding.make_mesh())
  stats = process.data_stats(proc, scaled)
  num = min(config.num_samples, real.shape[0]) if config.num_samples else real.shape[0]
  sample = make_sampler(proc, model, params, stats, batch=config.sample_batch,
                        num_steps=config.sample_steps, solver=config.solver)
  t0 = time.perf_counter()
  fake = transforms.from_signed(
      draw(sample, num, config.sample_batch, jax.random.key(config.seed + 1)), clip=True)
  sample_seconds = time.perf_counter() - t0
  rng = np.random.default_rng(config.seed)
  real_eval = real[np.sort(rng.choice(real.shape[0], num, replace=False))] \
      if num < real.shape[0] else real
  seeds = list(range(config.num_seeds))
  ours = scores(real_eval, fake, config, seeds)
  # References: two disjoint halves of the real windows; a predictor trained on real data.
  perm = rng.permutation(real.shape[0])
  half = real.shape[0] // 2
  floor = [temporal.discriminative_score(real[perm[:half]], real[perm[half:2 * half]], seed=s,
                                         config=config.metrics) for s in seeds]
  original = [temporal.predictive_score(real_eval, real_eval, seed=s, config=config.metrics)
              for s in seeds]
  published = PUBLISHED.get(config.data.dataset)
  results = {
      "dataset": config.data.dataset, "num_real": int(real.shape[0]),
      "num_synthetic": int(num), "shape": list(real.shape[1:]),
      "process": trainer.describe(proc),
      "diffusion": {"discriminative": _mean_std(ours["discriminative"]),
                    "predictive": _mean_std(ours["predictive"])},
      "real_halves_discriminative": _mean_std(floor),
      "original_predictive": _mean_std(original),
      "published_diffusion_ts": {"discriminative": published[0], "predictive": published[1]},
      "per_seed": {**ours, "real_halves_discriminative": floor, "original_predictive": original},
      "seconds": {"train": train_seconds, "sample": sample_seconds,
                  "total": time.perf_counter() - start},
      **results_lib.facts(started),
  }
  results_lib.write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write(markdown(results))
  np.savez_compressed(os.path.join(workdir, "samples.npz"), synthetic=fake[:1000].astype(
      np.float32), real=real_eval[:1000].astype(np.float32))
  return results


def markdown(results: dict[str, Any]) -> str:
  """The benchmark row beside its references."""
  d, p = results["diffusion"], results["published_diffusion_ts"]
  lines = [f"# {results['dataset']} (length {results['shape'][0]}, {results['shape'][1]} "
           f"features; {results['num_synthetic']} synthetic vs real windows)", "",
           "| | discriminative ↓ | predictive ↓ |", "|---|---|---|",
           f"| mlts diffusion | {d['discriminative'][0]:.3f} ± {d['discriminative'][1]:.3f} | "
           f"{d['predictive'][0]:.3f} ± {d['predictive'][1]:.3f} |",
           "| real vs held-out real (floor) | "
           f"{results['real_halves_discriminative'][0]:.3f} | – |",
           f"| GRU trained on real (original) | – | {results['original_predictive'][0]:.3f} |",
           f"| Diffusion-TS (published) | {p['discriminative']:.3f} | {p['predictive']:.3f} |"]
  return "\n".join(lines) + "\n"
