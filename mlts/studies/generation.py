"""Standard generation benchmarks (Sines, Stocks, ETTh, Energy; length 24), Diffusion-TS's table.

The protocol of TimeGAN (Yoon et al. 2019) and Diffusion-TS (Yuan & Qiao,
ICLR 2024, Table 1), so the numbers compare with theirs:

* data: Sines from TimeGAN's generator (10,000 × 24 × 5); Stocks (GOOG, 6
  columns), ETTh (ETTh1, 7 columns) and Energy (UCI appliances, 28 columns)
  min–max scaled per column and cut into every window of length 24
  (`mlts.metrics.temporal`);
* each ablation variant of `config.variants` ('full' = the malleable latent
  with its regularizer, 'no_reg', 'no_gamma' = plain diffusion) is trained on
  all windows (scaled to [−1, 1]) and as many synthetic windows are drawn from
  the matching prior and the probability-flow ODE (the Gaussian tail on the
  attenuated components, `samplers.sample_ode`), mapped back to [0, 1] and
  clipped;
* the four metrics of Diffusion-TS, each over `num_seeds` runs (mean ± std):
  Context-FID (`metrics.ts2vec`: a TS2Vec encoder trained on the real windows
  with the run's seed), the correlational score (`temporal.correlational_runs`:
  random subsets), the discriminative score (|accuracy − 0.5| of a post-hoc
  GRU classifier) and the predictive score (GRU trained on synthetic,
  next-step MAE on real).

References in the same run: the floor (the four metrics between two disjoint
random sets of real windows, each as large as the scored sets) and
Diffusion-TS's published row (`PUBLISHED`). Context-FID's encoder depends only
on the real set and the run's seed, so the variants share one encoder per run.

`run(config, workdir)` is the study 'generation' (configs/generation_*.py).
Each finished variant is saved to `variants/<name>.json` (a rerun skips it;
the generators resume from their Orbax checkpoints under
`checkpoints/<name>`). Outputs: config.json, results.json, tables.md,
samples_<variant>.npz, windows.png (real vs generated windows and a PCA
projection of both, Diffusion-TS's Fig. 4 counterpart).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from mlts import results as results_lib
from mlts import sharding, shards
from mlts.data import transforms, ucr
from mlts.diffusion import losses, process, samplers, trainer
from mlts.metrics import temporal, ts2vec

DATASETS = ("sines", "stock", "etth", "energy")
METRICS = ("context_fid", "correlational", "discriminative", "predictive")
# Diffusion-TS (ICLR 2024), Table 1, length 24: [mean, std] of each metric.
PUBLISHED = {
    "sines": {"context_fid": [0.006, 0.000], "correlational": [0.015, 0.004],
              "discriminative": [0.006, 0.007], "predictive": [0.093, 0.000]},
    "stock": {"context_fid": [0.147, 0.025], "correlational": [0.004, 0.001],
              "discriminative": [0.067, 0.015], "predictive": [0.036, 0.000]},
    "etth": {"context_fid": [0.116, 0.010], "correlational": [0.049, 0.008],
             "discriminative": [0.061, 0.009], "predictive": [0.119, 0.002]},
    "energy": {"context_fid": [0.089, 0.024], "correlational": [0.856, 0.147],
               "discriminative": [0.122, 0.003], "predictive": [0.250, 0.000]},
}


def load_windows(config: ml_collections.ConfigDict) -> np.ndarray:
  """The benchmark's real windows [N, L, F] in [0, 1]."""
  name = config.data.dataset
  if name == "sines":
    return temporal.sines(config.data.num_sines, config.data.seq_len, config.data.dim,
                          seed=config.seed)
  if name in ucr.GENERATION_DATASETS:
    return temporal.real_windows(ucr.load_generation(name), config.data.seq_len)
  raise ValueError(f"unknown generation benchmark {name!r}; expected one of {DATASETS}")


def make_sampler(proc, model, params, stats, *, batch: int, num_steps: int, solver: str,
                 residual=None):
  """Jitted `sample(key) -> [batch, L, F]` from the matching prior and the reverse ODE.

  `residual`: the statistics the network's prediction is relative to
  (`trainer.residual_stats`; None for a plain network).
  """
  noise_fn = losses.make_noise_fn(model.apply, params, proc, residual)
  return jax.jit(lambda key: samplers.sample_ode(proc, noise_fn, stats, key, batch,
                                                 num_steps=num_steps, solver=solver))


def draw(sample, num: int, batch: int, key: jax.Array) -> np.ndarray:
  """`num` samples in fixed-size batches (one compiled shape); batch b uses fold_in(key, b).

  On several processes each draws its share of the batches (`sharding.process_share`)
  and every process gets all of them, the same as one process drawing them all.
  """
  num_batches = -(-num // batch)
  like = jax.eval_shape(sample, key)
  mine = [np.asarray(sample(jax.random.fold_in(key, b)))
          for b in sharding.process_share(num_batches)]
  out = sharding.gather_shares(mine, num_batches, shape=like.shape, dtype=like.dtype)
  return out.reshape((-1,) + tuple(like.shape[1:]))[:num]


def evaluate(real: np.ndarray, fake: np.ndarray, config, seeds,
             encoders: dict | None = None) -> dict[str, list[float]]:
  """The four metrics of `fake` against `real`, one value per seed (run).

  `encoders`: the TS2Vec encoders of `real` by seed, reused across fake sets
  (`ts2vec.context_fid_runs`). On several processes the runs are split over
  them (`sharding.process_share`; each run depends only on its seed) and every
  process gets every value; the correlational score's subsets are cheap and
  drawn on each.
  """
  tcfg = config.metrics
  trained = ("context_fid", "discriminative", "predictive")  # the runs that train networks
  mine = [[ts2vec.context_fid_runs(real, fake, [seeds[i]], config.context_fid, encoders)[0],
           temporal.discriminative_score(real, fake, seed=seeds[i], config=tcfg),
           temporal.predictive_score(real, fake, seed=seeds[i], config=tcfg)]
          for i in sharding.process_share(len(seeds))]
  runs = sharding.gather_shares([np.asarray(r, np.float64) for r in mine], len(seeds),
                                shape=(len(trained),), dtype=np.float64)
  out = {m: [float(v) for v in runs[:, j]] for j, m in enumerate(trained)}
  out["correlational"] = temporal.correlational_runs(real, fake, runs=len(seeds),
                                                     seed=config.seed)
  return {m: out[m] for m in METRICS}


def mean_std(values) -> list[float]:
  return [float(np.mean(values)), float(np.std(values))]


def _summary(per_run: dict[str, list[float]]) -> dict[str, list[float]]:
  return {m: mean_std(per_run[m]) for m in METRICS}


def _read(path: str) -> dict[str, Any] | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def run_variant(name: str, config, real: np.ndarray, real_eval: np.ndarray, workdir: str,
                seeds, encoders: dict | None = None) -> tuple[dict[str, Any], np.ndarray]:
  """Trains (or resumes) one variant, samples it and scores it; returns (entry, fake)."""
  scaled = transforms.to_signed(real).astype(np.float32)
  dcfg = trainer.variant_config(config.diffusion, name)
  proc, model, params, train_seconds = trainer.train_variant(
      config, dcfg, _training_windows(scaled, config), workdir, name, sharding.make_mesh())
  stats = process.data_stats(proc, scaled)
  sample = make_sampler(proc, model, params, stats, batch=config.sample_batch,
                        num_steps=config.sample_steps, solver=config.solver,
                        residual=trainer.residual_stats(proc, dcfg, scaled))
  t0 = time.perf_counter()
  raw = draw(sample, real_eval.shape[0], config.sample_batch, jax.random.key(config.seed + 1))
  fake = transforms.from_signed(raw, clip=True)
  sample_seconds = time.perf_counter() - t0
  t0 = time.perf_counter()
  per_run = evaluate(real_eval, fake, config, seeds, encoders)
  entry = {"variant": name, "process": trainer.describe(proc), **_summary(per_run),
           "per_run": per_run,
           # Sampled values outside the data range before clipping (a diverging sampler).
           "clipped_fraction": float(np.mean(np.abs(raw) > 1.0)),
           "seconds": {"train": train_seconds, "sample": sample_seconds,
                       "metrics": time.perf_counter() - t0}}
  return entry, fake


def _training_windows(scaled: np.ndarray, config: ml_collections.ConfigDict):
  """All windows [N, L, F], or this process's `shards.LocalShards` of them when
  `training.data_shards` resolves to several (one per process by default)."""
  num_shards = shards.resolve_num_shards(int(config.training.get("data_shards", 0)),
                                         jax.process_count())
  if num_shards == 1:
    return scaled
  return shards.LocalShards.build(scaled.shape[0], num_shards, config.seed,
                                  lambda rows: scaled[rows])


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains every variant, samples, and scores each against the references.

  On several processes (jax.distributed) the variants train over all devices,
  each process holding its data shards, the sample batches and metric runs are
  split over the processes, and process 0 writes every file.
  """
  started = results_lib.start_run(config, workdir)
  begin = time.perf_counter()
  real = load_windows(config)
  logging.info("%s: %d real windows %s", config.data.dataset, real.shape[0], real.shape[1:])
  num = min(config.num_samples, real.shape[0]) if config.num_samples else real.shape[0]
  rng = np.random.default_rng(config.seed)
  real_eval = (real[np.sort(rng.choice(real.shape[0], num, replace=False))]
               if num < real.shape[0] else real)
  seeds = list(range(config.num_seeds))
  variant_dir = os.path.join(workdir, "variants")
  os.makedirs(variant_dir, exist_ok=True)
  entries, fakes, encoders = {}, {}, {}
  for i, name in enumerate(config.variants):
    path = os.path.join(variant_dir, f"{name}.json")
    saved = _read(path)
    if saved is not None:
      logging.info("[%d/%d] %s: done before, read from %s", i + 1, len(config.variants), name,
                   path)
      entries[name] = saved
      fakes[name] = np.load(os.path.join(workdir, f"samples_{name}.npz"))["synthetic"]
      continue
    logging.info("[%d/%d] %s", i + 1, len(config.variants), name)
    entries[name], fake = run_variant(name, config, real, real_eval, workdir, seeds, encoders)
    if jax.process_index() == 0:
      np.savez_compressed(os.path.join(workdir, f"samples_{name}.npz"),
                          synthetic=fake.astype(np.float32))
    results_lib.write_json(path, entries[name])
    fakes[name] = fake
  floor_path = os.path.join(variant_dir, "floor.json")
  floor = _read(floor_path)
  if floor is None:  # two disjoint random sets of real windows, as many as are scored
    perm = rng.permutation(real.shape[0])
    half = min(real.shape[0] // 2, num)
    t0 = time.perf_counter()
    per_run = evaluate(real[perm[:half]], real[perm[half:2 * half]], config, seeds)
    floor = {**_summary(per_run), "per_run": per_run, "num_windows_each": int(half),
             "seconds": time.perf_counter() - t0}
    results_lib.write_json(floor_path, floor)
  dataset = config.data.dataset
  results = {
      "dataset": dataset, "num_real": int(real.shape[0]), "num_synthetic": int(num),
      "shape": list(real.shape[1:]), "runs": len(seeds),
      "variants": {n: {m: e[m] for m in METRICS} for n, e in entries.items()},
      "floor": {m: floor[m] for m in METRICS},
      "published": PUBLISHED.get(dataset),
      "details": {n: {k: v for k, v in e.items() if k not in METRICS}
                  for n, e in entries.items()},
      "seconds": time.perf_counter() - begin, **results_lib.facts(started),
  }
  results_lib.write_json(os.path.join(workdir, "results.json"), results)
  if jax.process_index() != 0:
    return results
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write(markdown(results))
  from mlts import plots
  plots.generation_windows(os.path.join(workdir, "windows.png"), real_eval, fakes,
                           title=f"{dataset}: real vs generated (Diffusion-TS Fig. 4)")
  return results


def markdown(results: dict[str, Any]) -> str:
  """The variants beside the floor and the published row, mean ± std over the runs."""
  def cell(v):
    return "–" if v is None else f"{v[0]:.3f} ± {v[1]:.3f}"

  lines = [f"# {results['dataset']} (length {results['shape'][0]}, {results['shape'][1]} "
           f"features; {results['num_synthetic']} synthetic vs real windows; mean ± std over "
           f"{results['runs']} runs; lower is better)", "",
           "| | Context-FID | correlational | discriminative | predictive |",
           "|---|---|---|---|---|"]
  for name, row in results["variants"].items():
    clipped = results["details"][name].get("clipped_fraction", 0.0)
    note = f" (clipped {clipped:.0%})" if clipped >= 0.01 else ""
    lines.append(f"| mlts {name}{note} | " + " | ".join(cell(row[m]) for m in METRICS) + " |")
  lines.append("| real vs held-out real (floor) | "
               + " | ".join(cell(results["floor"][m]) for m in METRICS) + " |")
  if results["published"]:
    lines.append("| Diffusion-TS (published) | "
                 + " | ".join(cell(results["published"][m]) for m in METRICS) + " |")
  return "\n".join(lines) + "\n"
