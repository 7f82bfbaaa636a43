"""The generative models shared by the telemetry generation and OOD studies.

Data: `mlts.data.telemetry.load` (telemetry windows min–max scaled per channel).

Models, trained once per run with Orbax checkpoints under
workdir/checkpoints/<name> (a rerun resumes or reuses them):

* the malleable-latent diffusion variants (`train_diffusion`; windows mapped
  to [−1, 1]) with samplers, the DDIM/Heun encoder, partial-noise
  reconstruction and imputation;
* β-VAEGAN (`train_vaegan`), with its posterior means, reconstructions,
  samples (decoded draws from a Gaussian fit to the training posterior means:
  with β = 1e-4 the aggregate posterior is far from N(0, I), so decoding prior
  draws would measure the prior mismatch, not the generator) and pseudo-Gibbs
  imputation.

Every network evaluation runs in fixed-size jitted batches (one compiled shape).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Callable

import jax
import ml_collections
import numpy as np

from mlts import checks, results, sharding, writers
from mlts.data import telemetry, transforms
from mlts.diffusion import detector, losses, process, samplers, trainer
from mlts.vaegan import model as vaegan_model
from mlts.vaegan import scoring
from mlts.vaegan import train as vaegan_train


def prepare(config: ml_collections.ConfigDict, workdir: str):
  """The common start of a telemetry study: workdir/config.json, the windows and the mesh.

  Returns:
    (data, mesh, rng, run): `telemetry.load` of `config.data`, `sharding.make_mesh()`, a
    numpy Generator seeded with `config.seed` (subsampling) and `results.start_run`'s record.
  """
  started = results.start_run(config, workdir)
  dc = config.data
  data = telemetry.load(dc.spacecraft, window=dc.window, stride=dc.stride, holdout=dc.holdout,
              val_fraction=dc.val_fraction, channels=dc.channels)
  return data, sharding.make_mesh(), np.random.default_rng(config.seed), started


def subsample(rng: np.random.Generator, n: int, cap: int) -> np.ndarray:
  """Sorted indices of min(n, cap) distinct rows (all of them when cap <= 0)."""
  if cap <= 0 or cap >= n:
    return np.arange(n)
  return np.sort(rng.choice(n, cap, replace=False))


# ---------------------------------------------------------------- diffusion


@dataclasses.dataclass
class DiffusionModel:
  """A trained diffusion variant; windows enter and leave in [0, 1] units."""
  name: str
  config: ml_collections.ConfigDict  # its `diffusion` section
  process: process.Process
  model: object
  params: object
  stats: process.DataStats
  train_seconds: float
  jitted: dict = dataclasses.field(default_factory=dict, repr=False)  # compiled once per use

  @property
  def noise_fn(self) -> Callable:
    return losses.make_noise_fn(self.model.apply, self.params, self.process)

  def compiled(self, name: tuple, make: Callable[[], Callable]) -> Callable:
    """The jitted function `name`, built by `make()` on first use and kept."""
    if name not in self.jitted:
      self.jitted[name] = make()
    return self.jitted[name]


def train_diffusion(config: ml_collections.ConfigDict, variant: str, train01: np.ndarray,
                    workdir: str, mesh) -> DiffusionModel:
  """Trains (or resumes) one ablation variant (`diffusion.experiment.VARIANTS`)."""
  dcfg = trainer.variant_config(config.diffusion, variant)
  trainer.require_plain_network(dcfg, "the telemetry studies and mlts.generators")
  scaled = transforms.to_signed(train01).astype(np.float32)
  proc, model, params, seconds = trainer.train_variant(
      config, dcfg, scaled, workdir, f"diffusion_{variant}", mesh)
  return DiffusionModel(variant, dcfg, proc, model, params, process.data_stats(proc, scaled),
                        seconds)


def diffusion_sample(m: DiffusionModel, num: int, key: jax.Array, *, steps: int, solver: str,
                     batch: int, tail: str = "gaussian") -> np.ndarray:
  """[num, L, C] samples in [0, 1] units (clipped); batch b uses fold_in(key, b)."""
  noise_fn = m.noise_fn
  sample = m.compiled(("sample", steps, solver, batch, tail), lambda: jax.jit(
      lambda k: samplers.sample_ode(m.process, noise_fn, m.stats, k, batch, num_steps=steps,
                                    solver=solver, tail=tail)))
  out = [np.asarray(sample(jax.random.fold_in(key, b))) for b in range(-(-num // batch))]
  return transforms.from_signed(np.concatenate(out)[:num], clip=True).astype(np.float32)


def diffusion_encode(m: DiffusionModel, x01: np.ndarray, *, steps: int, solver: str,
                     batch: int) -> np.ndarray:
  """Latents z = x_T [N, L, C] of windows in [0, 1] (DDIM/Heun inversion, network tail)."""
  noise_fn = m.noise_fn
  enc = m.compiled(("encode", steps, solver), lambda: jax.jit(
      lambda x: samplers.encode(m.process, noise_fn, transforms.to_signed(x), num_steps=steps,
                                solver=solver)))
  return sharding.map_batches(lambda x, b: enc(x), x01.astype(np.float32), batch)


def diffusion_reconstruct(m: DiffusionModel, x01: np.ndarray, detector_config, key: jax.Array
                          ) -> np.ndarray:
  """Partial-noise reconstructions [N, L, C] in [0, 1] units (`detector.make_window_fn`)."""
  fn = m.compiled(("reconstruct", json.dumps(detector_config.to_dict(), sort_keys=True)),
                  lambda: detector.make_window_fn(
                      m.process, lambda p: losses.make_noise_fn(m.model.apply, p, m.process),
                      detector_config))
  x_hat, _ = detector.run_windows(fn, m.params, transforms.to_signed(x01).astype(np.float32),
                                  int(detector_config.batch_size), key)
  return transforms.from_signed(x_hat).astype(np.float32)


def diffusion_impute(m: DiffusionModel, x01: np.ndarray, known: np.ndarray, key: jax.Array, *,
                     members: int, steps: int, batch: int, resample: int = 1) -> np.ndarray:
  """Ensemble [members, N, L, C] of imputations (`samplers.impute`), [0, 1] units.

  Args:
    m: the model.
    x01: [N, L, C] windows; only entries with `known` = 1 are read.
    known: [N, L, C] 1 = observed.
    key: member s, batch b use fold_in(fold_in(key, s), b).
    members: ensemble size S.
    steps: reverse ODE steps.
    batch: windows per jitted batch.
    resample: RePaint repeats per step (`samplers.impute`).
  """
  noise_fn = m.noise_fn
  fill = m.compiled(("impute", steps, resample), lambda: jax.jit(
      lambda x, k_mask, k: samplers.impute(m.process, noise_fn, m.stats, k, x, k_mask,
                                           num_steps=steps, resample=resample)))
  both = np.concatenate([transforms.to_signed(x01), known], axis=-1).astype(np.float32)
  c = x01.shape[-1]
  out = []
  for s in range(members):
    ks = jax.random.fold_in(key, s)
    out.append(sharding.map_batches(
        lambda xy, b, k=ks: fill(xy[..., :c], xy[..., c:], jax.random.fold_in(k, b)), both, batch))
  return transforms.from_signed(np.stack(out), clip=True).astype(np.float32)


# ---------------------------------------------------------------- β-VAEGAN


def train_vaegan(config: ml_collections.ConfigDict, train01: np.ndarray, workdir: str,
                 mesh) -> tuple[vaegan_train.VaeganState, float]:
  """Trains (or resumes) the β-VAEGAN of `config.vaegan` on windows in [0, 1]."""
  x = np.clip(train01, 0.0, 1.0)  # training windows are in [0, 1] by construction
  writer = writers.MetricWriter(os.path.join(workdir, "logs", "vaegan"))
  start = time.perf_counter()
  try:
    state = vaegan_train.fit(config.vaegan, config.vaegan_training, x,
                             key=jax.random.fold_in(jax.random.key(config.seed), 11),
                             seed=config.seed,
                             checkpoint_dir=os.path.join(workdir, "checkpoints", "vaegan"),
                             writer=writer, mesh=mesh)
  finally:
    writer.close()
  return state, time.perf_counter() - start


def vaegan_encode(config: ml_collections.ConfigDict, state, x01: np.ndarray, *, batch: int,
                  mesh=None) -> dict[str, np.ndarray]:
  """Posterior means 'mu' [N, latent] and reconstructions 'x_hat' [N, L, C] ([0, 1] units)."""
  score = scoring.make_scorer(config.vaegan, batch_size=batch, mesh=mesh,
                              with_reconstruction=True)
  out = score(state, np.asarray(x01, np.float32))
  return {"mu": out["mu"], "x_hat": out["x_hat"]}


@functools.lru_cache(maxsize=8)
def _decoder(vcfg: ml_collections.FrozenConfigDict, length: int, channels: int) -> Callable:
  gen, _ = vaegan_train.make_models(vcfg, length, channels)
  return jax.jit(lambda variables, z: vaegan_train.from_model_range(
      gen.apply(variables, z, method=vaegan_model.BetaVAE.decode), vcfg.output))


def vaegan_sample(config: ml_collections.ConfigDict, state, train_mu: np.ndarray, num: int,
                  shape: tuple[int, int], rng: np.random.Generator, *, batch: int) -> np.ndarray:
  """[num, L, C] decoded draws z ~ N(mean, cov) of the training posterior means, in [0, 1]."""
  mu = checks.finite_array(train_mu, name="training posterior means", ndim=2)
  z = rng.multivariate_normal(mu.mean(axis=0), np.cov(mu, rowvar=False).reshape(
      mu.shape[1], mu.shape[1]), size=num).astype(np.float32)
  decode = _decoder(ml_collections.FrozenConfigDict(config.vaegan), *shape)
  variables = {"params": state.gen.params, "batch_stats": state.gen.batch_stats}
  return sharding.map_batches(lambda zb, b: decode(variables, zb), z,
                              batch).astype(np.float32)


def vaegan_impute(config: ml_collections.ConfigDict, state, x01: np.ndarray, known: np.ndarray,
                  *, iterations: int, batch: int, mesh=None) -> np.ndarray:
  """Pseudo-Gibbs imputation [N, L, C]: fill, reconstruct, restore the observed part, repeat.

  Missing entries start at the mean of the window's observed values.
  """
  known = known.astype(bool)
  count = np.maximum(known.sum(axis=(1, 2), keepdims=True), 1)
  fill = np.where(known, x01, 0.0).sum(axis=(1, 2), keepdims=True) / count
  x = np.where(known, x01, fill).astype(np.float32)
  score = scoring.make_scorer(config.vaegan, batch_size=batch, mesh=mesh,
                              with_reconstruction=True)
  for _ in range(iterations):  # a handful of whole-set passes, each one batched
    x = np.where(known, x01, score(state, np.clip(x, 0.0, 1.0))["x_hat"]).astype(np.float32)
  return x
