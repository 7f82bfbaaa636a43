"""Worked β-VAE example (paper 003): a dense β-VAE against a dense AE.

Reproduces the protocol of the worked example "Implementing and Optimizing a
Variational Autoencoder (VAE) for Anomaly Detection in Multivariate
Time-Series" (shared/papers/003) in JAX/Flax:

* data: `generate_time_series`, the paper's generator: `n_features` phase-shifted
  sines `sin(t + i)`, t on [0, 50] over `n_samples` points, plus N(0, 0.1²)
  noise; `int(0.02 n)` random time steps get N(3, 0.5²) added to every feature
  and are labelled 1;
* models: a per-time-step β-VAE (encoder 5→64→32, mean and log-variance heads,
  decoder latent→32→64→5, ReLU) and the baseline AE (5→32 ReLU →5);
* training: Adam (lr 1e-3), batch 64, 50 epochs, β-VAE loss
  `mean MSE + β mean KL` (means over batch and features / latents, as the
  paper's `torch.mean`), AE loss mean MSE;
* scores: β-VAE `mean_f (x - x̂)² + Σ_k KL_k` per time step, AE
  `mean_f (x - x̂)²`;
* metrics: AUROC and AUPRC (`mlts.metrics`), over several seeds;
* grid: latent {2, 3, 5} × β {0.5, 1, 2, 4}.

Choices where the text is silent or would leak labels (documented here):

* Split. The paper trains and scores on the same 5000 points and picks the grid
  cell with the best AUROC on them (i.e. on the evaluation labels). Here the
  series is split chronologically into train / validation / test
  (`train_fraction`, `val_fraction`; default 0.5 / 0.2 / 0.3). Training is
  unsupervised on the train part, which keeps its anomalies (contaminated, as in
  the paper); labels are never seen by training. The grid selects its cell by
  mean validation AUROC and reports the selected cell's test numbers.
* Normalization. The paper feeds raw values; here each feature is standardized
  with the mean and std of the train part only (`normalize`, default True).
* Scoring uses the posterior mean `z = μ` for the reconstruction (the paper's
  forward pass samples `z` even at evaluation); the KL term is unchanged.
* Seeds. Seed `s` seeds both the generator (`np.random.default_rng(s)` instead
  of the global `np.random`) and the model (`jax.random.PRNGKey(s)`:
  initialization, batch order, reparameterization noise).
* Batching. Each epoch shuffles and drops the final partial batch (a fixed
  number of batches per epoch lets all of training run in one `lax.scan`).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlts import metrics
from mlts import results as results_lib

MODELS = ("beta_vae", "ae")


def generate_time_series(seed: int, n_samples: int = 5000, n_features: int = 5,
                         anomaly_ratio: float = 0.02, t_max: float = 50.0,
                         noise_std: float = 0.1, anomaly_mean: float = 3.0,
                         anomaly_std: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
  """Paper 003's seasonal generator with point anomalies, seeded.

  Args:
    seed: seed of a `np.random.default_rng`; equal seeds give equal arrays.
    n_samples: T, number of time steps.
    n_features: F, number of channels; channel i is `sin(t + i)` plus noise.
    anomaly_ratio: fraction of steps made anomalous (`int(ratio * T)` steps).
    t_max: t runs over `linspace(0, t_max, T)`.
    noise_std: std of the additive Gaussian noise.
    anomaly_mean, anomaly_std: each anomalous step gets N(mean, std²) added to
      every feature.

  Returns:
    data: [T, F] float32.
    labels: [T] int8, 1 on the anomalous steps.
  """
  rng = np.random.default_rng(seed)
  t = np.linspace(0.0, t_max, n_samples)
  data = np.sin(t[:, None] + np.arange(n_features)[None, :])
  data = data + noise_std * rng.standard_normal((n_samples, n_features))
  labels = np.zeros(n_samples, dtype=np.int8)
  n_anomalies = int(anomaly_ratio * n_samples)
  idx = rng.choice(n_samples, n_anomalies, replace=False)
  data[idx] += rng.normal(anomaly_mean, anomaly_std, size=(n_anomalies, n_features))
  labels[idx] = 1
  return data.astype(np.float32), labels


class BetaVAE(nn.Module):
  """Dense VAE applied per time step (the paper's `VAE`).

  Attributes:
    features: F, input and output width.
    latent: K, latent dimension.
    hidden: encoder widths; the decoder mirrors them.
  """
  features: int
  latent: int
  hidden: Sequence[int] = (64, 32)

  def setup(self):
    self.enc = [nn.Dense(h) for h in self.hidden]
    self.mu_head = nn.Dense(self.latent)
    self.logvar_head = nn.Dense(self.latent)
    self.dec = [nn.Dense(h) for h in reversed(self.hidden)] + [nn.Dense(self.features)]

  def encode(self, x):
    """[..., F] -> (mu, logvar), each [..., K]."""
    h = x
    for layer in self.enc:
      h = nn.relu(layer(h))
    return self.mu_head(h), self.logvar_head(h)

  def decode(self, z):
    """[..., K] -> [..., F]."""
    h = z
    for layer in self.dec[:-1]:
      h = nn.relu(layer(h))
    return self.dec[-1](h)

  def __call__(self, x, rng=None):
    """Returns (recon [..., F], mu [..., K], logvar [..., K]); z = mu if rng is None."""
    mu, logvar = self.encode(x)
    z = mu if rng is None else mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)
    return self.decode(z), mu, logvar


class AE(nn.Module):
  """The paper's baseline autoencoder: F -> hidden (ReLU) -> F, per time step."""
  features: int
  hidden: int = 32

  @nn.compact
  def __call__(self, x):
    """[..., F] -> [..., F]."""
    return nn.Dense(self.features)(nn.relu(nn.Dense(self.hidden)(x)))


def kl_terms(mu, logvar):
  """Per-latent KL(N(mu, exp(logvar)) || N(0, 1)), same shape as the inputs."""
  return -0.5 * (1.0 + logvar - mu ** 2 - jnp.exp(logvar))


@functools.lru_cache(maxsize=None)
def _trainer(kind: str, features: int, latent: int, hidden: tuple, ae_hidden: int,
             n_train: int, batch_size: int, epochs: int, lr: float):
  """Builds a jitted `train(x [N, F], beta, key) -> params` for one architecture."""
  if kind == "beta_vae":
    model = BetaVAE(features=features, latent=latent, hidden=hidden)
  else:
    model = AE(features=features, hidden=ae_hidden)
  tx = optax.adam(lr)
  n_batches = max(n_train // batch_size, 1)
  bs = min(batch_size, n_train)

  def loss_fn(params, xb, beta, key):
    if kind == "beta_vae":
      recon, mu, logvar = model.apply(params, xb, key)
      return jnp.mean((recon - xb) ** 2) + beta * jnp.mean(kl_terms(mu, logvar))
    return jnp.mean((model.apply(params, xb) - xb) ** 2)

  def train(x, beta, key):
    init_key, key = jax.random.split(key)
    params = model.init(init_key, x[:1])
    opt_state = tx.init(params)

    def step(carry, inp):
      params, opt_state = carry
      xb, k = inp
      loss, grads = jax.value_and_grad(loss_fn)(params, xb, beta, k)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    def epoch(carry, k):
      perm_key, noise_key = jax.random.split(k)
      perm = jax.random.permutation(perm_key, x.shape[0])[:n_batches * bs]
      batches = x[perm].reshape(n_batches, bs, x.shape[-1])
      carry, losses = jax.lax.scan(step, carry, (batches, jax.random.split(noise_key, n_batches)))
      return carry, losses.mean()

    (params, _), losses = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, losses

  return model, jax.jit(train)


def train_model(kind: str, x_train: np.ndarray, config, *, latent: int | None = None,
                beta: float | None = None, seed: int = 0):
  """Trains one model on normalized training steps.

  Args:
    kind: 'beta_vae' or 'ae'.
    x_train: [N, F] training steps (already normalized).
    config: the example config (`configs/vae_synthetic.py`).
    latent: K for the β-VAE (default `config.latent`).
    beta: β for the β-VAE (default `config.beta`).
    seed: seed of the init / batch order / reparameterization key.

  Returns:
    (model, params, losses [epochs]) with the Flax module and trained params.
  """
  latent = config.latent if latent is None else latent
  beta = config.beta if beta is None else beta
  if kind not in MODELS:
    raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")
  model, train = _trainer(kind, config.n_features, int(latent), tuple(config.vae_hidden),
                          int(config.ae_hidden), int(x_train.shape[0]), int(config.batch_size),
                          int(config.epochs), float(config.learning_rate))
  params, losses = train(jnp.asarray(x_train), jnp.float32(beta), jax.random.PRNGKey(seed))
  return model, params, np.asarray(losses)


def score(kind: str, model, params, x) -> np.ndarray:
  """Per-step anomaly scores.

  Args:
    kind: 'beta_vae' (mean squared reconstruction error over features + KL summed
      over latents, with z = mu) or 'ae' (mean squared reconstruction error).
    model, params: from `train_model`.
    x: [T, F] normalized steps.

  Returns:
    [T] float64 scores, higher = more anomalous.
  """
  x = jnp.asarray(x)
  if kind == "beta_vae":
    recon, mu, logvar = model.apply(params, x)
    s = jnp.mean((x - recon) ** 2, axis=-1) + jnp.sum(kl_terms(mu, logvar), axis=-1)
  else:
    s = jnp.mean((x - model.apply(params, x)) ** 2, axis=-1)
  return np.asarray(s, dtype=np.float64)


def make_splits(config, seed: int) -> dict[str, Any]:
  """Generates the series for `seed`, splits it chronologically and normalizes.

  Args:
    config: the example config.
    seed: data seed.

  Returns:
    dict with 'raw' [T, F], 'labels' [T], and for part in train/val/test:
    'x_<part>' [T_part, F] normalized with train statistics, 'y_<part>' [T_part],
    and 'start_<part>' the part's first index in the full series.
  """
  g = config.generator
  data, labels = generate_time_series(
      seed, n_samples=config.n_samples, n_features=config.n_features,
      anomaly_ratio=g.anomaly_ratio, t_max=g.t_max, noise_std=g.noise_std,
      anomaly_mean=g.anomaly_mean, anomaly_std=g.anomaly_std)
  n = len(data)
  a = int(round(config.train_fraction * n))
  b = a + int(round(config.val_fraction * n))
  train = data[:a]
  if config.normalize:
    mean, std = train.mean(0), train.std(0) + 1e-6
  else:
    mean, std = np.zeros(data.shape[1], np.float32), np.ones(data.shape[1], np.float32)
  norm = ((data - mean) / std).astype(np.float32)
  return {"raw": data, "labels": labels,
          "x_train": norm[:a], "y_train": labels[:a], "start_train": 0,
          "x_val": norm[a:b], "y_val": labels[a:b], "start_val": a,
          "x_test": norm[b:], "y_test": labels[b:], "start_test": b}


def _auc_pair(labels, scores) -> dict[str, float]:
  if labels.min() == labels.max():
    return {"auroc": float("nan"), "auprc": float("nan")}
  return {"auroc": metrics.auroc(labels, scores), "auprc": metrics.auprc(labels, scores)}


def _summary(per_seed: dict[int, dict[str, float]]) -> dict[str, float]:
  out = {}
  for m in ("auroc", "auprc"):
    v = np.array([r[m] for r in per_seed.values()])
    out[f"{m}_mean"], out[f"{m}_std"] = float(np.mean(v)), float(np.std(v))
  return out


def run_example(config) -> dict[str, Any]:
  """The paper's comparison: β-VAE (config.latent, config.beta) against the AE.

  Args:
    config: the example config.

  Returns:
    {'models': {model: {'per_seed': {seed: {'auroc', 'auprc'}},
                        'summary': {'auroc_mean', 'auroc_std', 'auprc_mean', 'auprc_std'}}},
     'example': first seed's {'raw' [T, F], 'labels' [T], 'start_test',
                 'y_test' [T_test], 'scores': {model: [T_test]}},
     'seconds': wall time}. Metrics are on the test part.
  """
  t0 = time.time()
  results = {m: {"per_seed": {}} for m in MODELS}
  example = None
  for seed in config.seeds:
    split = make_splits(config, seed)
    scores = {}
    for kind in MODELS:
      model, params, _ = train_model(kind, split["x_train"], config, seed=seed)
      scores[kind] = score(kind, model, params, split["x_test"])
      results[kind]["per_seed"][int(seed)] = _auc_pair(split["y_test"], scores[kind])
    if example is None:
      example = {"raw": split["raw"], "labels": split["labels"],
                 "start_test": split["start_test"], "y_test": split["y_test"],
                 "scores": scores}
  for kind in MODELS:
    results[kind]["summary"] = _summary(results[kind]["per_seed"])
  return {"models": results, "example": example, "seconds": time.time() - t0}


def run_grid(config) -> dict[str, Any]:
  """β-VAE grid over config.grid.latents × config.grid.betas.

  Selection uses the mean validation AUROC over seeds (validation labels only);
  the test numbers of every cell are reported beside it. Ties go to the first
  cell in latents × betas order.

  Args:
    config: the example config.

  Returns:
    {'cells': {(latent, beta): {'val': summary, 'test': summary}},
     'selected': (latent, beta), 'seconds': wall time}, each summary as in
    `run_example`.
  """
  t0 = time.time()
  per = {(int(k), float(b)): {"val": {}, "test": {}}
         for k in config.grid.latents for b in config.grid.betas}
  for seed in config.seeds:
    split = make_splits(config, seed)
    for (k, b), cell in per.items():
      model, params, _ = train_model("beta_vae", split["x_train"], config, latent=k, beta=b,
                                     seed=seed)
      for part in ("val", "test"):
        s = score("beta_vae", model, params, split[f"x_{part}"])
        cell[part][int(seed)] = _auc_pair(split[f"y_{part}"], s)
  cells = {key: {part: _summary(v[part]) for part in ("val", "test")} for key, v in per.items()}
  selected = max(cells, key=lambda key: np.nan_to_num(cells[key]["val"]["auroc_mean"], nan=-1.0))
  return {"cells": cells, "selected": selected, "seconds": time.time() - t0}


def markdown_tables(example: dict[str, Any], grid: dict[str, Any] | None = None) -> str:
  """Markdown tables of `run_example` (and optionally `run_grid`) results."""
  names = {"beta_vae": "β-VAE", "ae": "AE"}
  lines = ["| model | AUROC | AUPRC |", "|---|---|---|"]
  for kind, r in example["models"].items():
    s = r["summary"]
    lines.append(f"| {names[kind]} | {s['auroc_mean']:.3f} ± {s['auroc_std']:.3f} "
                 f"| {s['auprc_mean']:.3f} ± {s['auprc_std']:.3f} |")
  if grid is not None:
    lines += ["", "| latent | β | val AUROC | test AUROC | test AUPRC |", "|---|---|---|---|---|"]
    for (k, b), c in grid["cells"].items():
      mark = " **(selected)**" if (k, b) == grid["selected"] else ""
      lines.append(f"| {k} | {b:g}{mark} | {c['val']['auroc_mean']:.3f} "
                   f"| {c['test']['auroc_mean']:.3f} ± {c['test']['auroc_std']:.3f} "
                   f"| {c['test']['auprc_mean']:.3f} ± {c['test']['auprc_std']:.3f} |")
  return "\n".join(lines)


def run(config, workdir: str) -> dict[str, Any]:
  """The study 'vae_example': the example and the grid, written to `workdir`.

  Writes config.json, results.json (summaries per model and grid cell) and
  tables.md; returns the JSON-ready results.
  """
  started = results_lib.start_run(config, workdir)
  example = run_example(config)
  grid = run_grid(config)
  results = {
      "models": {k: r["summary"] for k, r in example["models"].items()},
      "per_seed": {k: {str(s): v for s, v in r["per_seed"].items()}
                   for k, r in example["models"].items()},
      "grid": {f"latent={k},beta={b:g}": c for (k, b), c in grid["cells"].items()},
      "grid_selected": list(grid["selected"]),
      "seconds": {"example": example["seconds"], "grid": grid["seconds"]},
      **results_lib.facts(started),
  }
  results_lib.write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write("# Worked β-VAE example (paper 003)\n\n" + markdown_tables(example, grid) + "\n")
  return results
