"""Generation quality on SMAP / MSL telemetry windows (issue 6 §4): every metric, side by side.

`run(config, workdir)` (configs/telemetry_generation_{smap,msl}.py,
`experiment = 'telemetry_generation'`) trains on the training windows of
`mlts.data.telemetry.load` (telemetry column, all channels):

* the diffusion variants of `config.variants` (default: 'full' = γ + L_reg,
  'no_reg' = γ only, 'no_gamma' = neither: the isotropic model, for which
  L_reg is void), sampled with the Gaussian tail (`samplers`), and 'full'
  once more with the network tail, the sampler before the fix;
* β-VAEGAN₂ (decoded draws from the training posterior means' Gaussian);

and scores every synthetic set against a reference sample of the training
windows ("real"), beside the held-out real windows (the floor: what a perfect
generator reaches) and, for imputation, linear interpolation:

* on the channel-classifier embedding (penultimate layer of a CNN trained to
  tell the source channel, `mlts.metrics.embedding`): FID, KID, RBF-MMD,
  α-precision / β-recall (Δ) and authenticity; Inception Score on its softmax;
* on the diffusion latent (z = x_T of the 'full' model's encoder, the same
  encoder for every set): FID, KID, MMD;
* on the windows: discriminative and predictive scores (univariate: next-step
  forecasting), nearest-neighbour similarity to the training windows
  (Euclidean, DTW with a Sakoe–Chiba band, CID: lower = closer; Pearson and
  cosine: higher = closer), and TSTR / TRTR / TSTR_N on the labelled
  validation + evaluation windows (the model's reconstructions of the
  classifier-train windows; `vaegan.tstr`);
* imputation of a masked contiguous block of every held-out window: MSE and
  MAE of the ensemble mean and CRPS of the ensemble (diffusion: `members`
  draws; β-VAEGAN: pseudo-Gibbs, one member, so CRPS = MAE).

Figures: the Laplacian-eigenmap projection of the classifier embedding (fit on
the reference windows) coloured real / held-out / synthetic / anomalous, and
the feature-characterization report (KS + MMD with BH control) of the
diffusion latent's DCT coefficients, real against 'full' samples.
Outputs: config.json, results.json, tables.md, eigenmap.png, features.md,
features.png, samples.npz.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from mlts import features, latent, plots, telemetry_models
from mlts import results as results_lib
from mlts.diffusion import basis as basis_lib
from mlts.diffusion import trainer
from mlts.metrics import embedding, generative, temporal
from mlts.vaegan import tstr

REAL = "held-out real"


def embedding_metrics(real: np.ndarray, fake: np.ndarray, *, prefix: str, seed: int,
                      with_support: bool) -> dict[str, float]:
  """FID, KID, MMD (and α/β/authenticity) of two embedding arrays [N, D], [M, D].

  Both arrays are first divided by one scalar, the reference's RMS per-coordinate
  standard deviation, so that no metric depends on the arbitrary scale of an
  embedding (FID grows with its square, KID's cubic kernel with up to its sixth
  power; on the raw channel-classifier features the KID of held-out real windows
  was −1.8e3).
  """
  scale = float(np.sqrt(np.mean(np.var(real, axis=0))))
  if scale > 0:
    real, fake = real / scale, fake / scale
  out = {f"{prefix}fid": generative.frechet_distance(real, fake),
         f"{prefix}kid": generative.kernel_inception_distance(
             real, fake, subset_size=min(500, len(real), len(fake)), seed=seed)["mean"],
         f"{prefix}mmd": generative.mmd_rbf(real, fake)}
  if with_support:
    apr = generative.alpha_precision_beta_recall_authenticity(real, fake)
    out.update({f"{prefix}alpha_precision": apr["delta_precision"],
                f"{prefix}beta_recall": apr["delta_recall"],
                f"{prefix}authenticity": apr["authenticity"]})
  return out


def nearest_similarity(fake: np.ndarray, reference: np.ndarray, *, band: int) -> dict[str, float]:
  """Mean over fake windows of the closest reference window under each similarity measure.

  Args:
    fake: [M, L] univariate windows.
    reference: [N, L].
    band: Sakoe–Chiba radius of DTW.

  Returns:
    `nn_<measure>` for euclidean, dtw, cid (lower = closer), pearson and cosine
    (higher = closer). Pearson (cosine) is undefined for a constant (all-zero)
    window, common in telemetry: the closest defined pair is taken, the mean is
    over the fake windows that have one, and `nn_<measure>_defined` gives the
    fraction of fake windows that do.
  """
  m, n = fake.shape[0], reference.shape[0]
  x = np.repeat(fake, n, axis=0)
  y = np.tile(reference, (m, 1))
  out = {}
  for name, fn, best in (("euclidean", generative.euclidean, np.min),
                         ("dtw", lambda a, b: generative.dtw(a, b, band=band), np.min),
                         ("cid", generative.cid, np.min),
                         ("pearson", generative.pearson, np.max),
                         ("cosine", generative.cosine, np.max)):
    values = np.asarray(fn(x, y)).reshape(m, n)
    defined = ~np.all(np.isnan(values), axis=1)  # only pearson / cosine have NaN pairs
    nearest = best(np.where(np.isnan(values), -np.inf if best is np.max else np.inf, values),
                   axis=1)
    out[f"nn_{name}"] = float(np.mean(nearest[defined])) if defined.any() else float("nan")
    if name in ("pearson", "cosine"):
      out[f"nn_{name}_defined"] = float(np.mean(defined))
  return out


def block_mask(rng: np.random.Generator, shape: tuple[int, int, int], fraction: float
               ) -> np.ndarray:
  """[N, L, C] float32 1 = observed, with one missing contiguous block of round(fraction L)."""
  n, length, _ = shape
  width = max(1, int(round(fraction * length)))
  starts = rng.integers(0, length - width + 1, size=n)
  steps = np.arange(length)[None, :]
  missing = (steps >= starts[:, None]) & (steps < starts[:, None] + width)
  return np.broadcast_to(~missing[..., None], shape).astype(np.float32)


def linear_interpolation(x: np.ndarray, known: np.ndarray) -> np.ndarray:
  """Fills the missing steps of every univariate window [N, L, 1] linearly (np.interp)."""
  steps = np.arange(x.shape[1])
  out = x.copy()
  for i in range(x.shape[0]):  # a baseline, per window
    obs = known[i, :, 0] > 0
    out[i, ~obs, 0] = np.interp(steps[~obs], steps[obs], x[i, obs, 0])
  return out


def imputation_metrics(truth: np.ndarray, ensemble: np.ndarray, known: np.ndarray
                       ) -> dict[str, float]:
  """MSE / MAE of the ensemble mean and mean CRPS over the missing entries.

  Args:
    truth: [N, L, C].
    ensemble: [S, N, L, C].
    known: [N, L, C] 1 = observed.
  """
  missing = known == 0
  crps = generative.crps_ensemble(truth, ensemble)
  mean = ensemble.mean(axis=0)
  return {"mse": generative.mse(truth, mean, mask=missing),
          "mae": generative.mae(truth, mean, mask=missing),
          "crps": float(crps[missing].mean())}


def _tstr_windows(data, rng: np.random.Generator, cap: int) -> tuple[np.ndarray, np.ndarray]:
  """Labelled validation + evaluation windows; all anomalous ones and normal ones up to `cap`."""
  xv, yv = data.labelled("val")
  xt, yt = data.labelled("test")
  x, y = np.concatenate([xv, xt]), np.concatenate([yv, yt])
  pos = np.flatnonzero(y == 1)
  neg = np.flatnonzero(y == 0)
  neg = neg[telemetry_models.subsample(rng, neg.size, max(cap - pos.size, 2 * pos.size))]
  keep = np.sort(np.concatenate([pos, neg]))
  return x[keep], y[keep]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains the generators, draws the sets and writes every metric (module docstring)."""
  start = time.perf_counter()
  data, mesh, rng, started = telemetry_models.prepare(config, workdir)
  num = min(int(config.num_eval), data.heldout.shape[0])
  held_idx = telemetry_models.subsample(rng, data.heldout.shape[0], num)
  heldout, held_channel = data.heldout[held_idx], data.heldout_channel[held_idx]
  ref_idx = telemetry_models.subsample(rng, data.train.shape[0], num)
  real = data.train[ref_idx]
  shape = data.train.shape[1:]
  logging.info("%s: %d channels, %d training / %d held-out windows %s; %d per set",
               data.spacecraft, len(data.channels), data.train.shape[0],
               data.heldout.shape[0], shape, num)
  key = jax.random.key(config.seed)
  s = config.sampling

  # Generators and their synthetic sets.
  models = {v: telemetry_models.train_diffusion(config, v, data.train, workdir, mesh)
            for v in config.variants}
  sets: dict[str, np.ndarray] = {REAL: heldout}
  timings: dict[str, float] = {}
  for v, m in models.items():
    t0 = time.perf_counter()
    sets[f"diffusion[{v}]"] = telemetry_models.diffusion_sample(
        m, num, jax.random.fold_in(key, 100), steps=s.steps, solver=s.solver, batch=s.batch)
    timings[f"sample diffusion[{v}]"] = time.perf_counter() - t0
    timings[f"train diffusion[{v}]"] = m.train_seconds
  reference_model = models[config.variants[0]]
  if not bool(np.asarray(reference_model.process.mask).any()):
    logging.warning("the first variant attenuates nothing: the network-tail row is skipped")
  else:
    sets[f"diffusion[{config.variants[0]}], network tail"] = telemetry_models.diffusion_sample(
        reference_model, num, jax.random.fold_in(key, 100), steps=s.steps, solver=s.solver,
        batch=s.batch, tail="network")
  vstate, timings["train β-VAEGAN"] = telemetry_models.train_vaegan(config, data.train, workdir,
                                                                    mesh)
  train_mu = telemetry_models.vaegan_encode(config, vstate, data.train[telemetry_models.subsample(
      rng, data.train.shape[0], 4096)], batch=s.batch, mesh=mesh)["mu"]
  sets["β-VAEGAN"] = telemetry_models.vaegan_sample(config, vstate, train_mu, num, shape, rng,
                                                    batch=s.batch)

  # Embeddings: the channel classifier and the reference diffusion latent.
  t0 = time.perf_counter()
  num_classes = len(data.channels)
  clf = embedding.train_classifier(data.train, data.train_channel, num_classes,
                                   config.embedding, jax.random.fold_in(key, 200))
  channel_accuracy = embedding.accuracy(clf, heldout, held_channel, config.embedding,
                                        num_classes)
  timings["channel classifier"] = time.perf_counter() - t0

  def embed_all(x):
    feats, probs = embedding.embed(clf, x, config.embedding, num_classes)
    z = telemetry_models.diffusion_encode(reference_model, x, steps=s.encode_steps,
                                          solver=s.solver, batch=s.batch)
    coeffs = np.asarray(basis_lib.to_basis(z, reference_model.process.basis))
    return feats, probs, coeffs.reshape(coeffs.shape[0], -1)

  real_feats, real_probs, real_latent = embed_all(real)
  del real_probs
  train_flat = data.train[telemetry_models.subsample(rng, data.train.shape[0],
                                                     int(config.similarity.num_reference))]
  rows: dict[str, dict[str, float]] = {}
  embedded = {}
  for name, x in sets.items():
    t0 = time.perf_counter()
    feats, probs, lat = embed_all(x)
    embedded[name] = (feats, lat)
    row = {"inception_score": generative.inception_score(probs)["mean"]}
    row.update(embedding_metrics(real_feats, feats, prefix="clf_", seed=config.seed,
                                 with_support=True))
    row.update(embedding_metrics(real_latent, lat, prefix="lat_", seed=config.seed,
                                 with_support=False))
    seeds = range(int(config.num_seeds))
    row["discriminative"] = float(np.mean([temporal.discriminative_score(
        real, x, seed=k, config=config.metrics) for k in seeds]))
    row["predictive"] = float(np.mean([temporal.predictive_score(
        real, x, seed=k, config=config.metrics) for k in seeds]))
    sim_n = int(config.similarity.num_synthetic)
    row.update(nearest_similarity(x[:sim_n, :, 0], train_flat[:, :, 0],
                                  band=int(config.similarity.band)))
    rows[name] = row
    timings[f"metrics {name}"] = time.perf_counter() - t0
    logging.info("%s: %s", name, row)

  # TSTR on the labelled windows: each generator's reconstructions of the classifier-train part.
  t0 = time.perf_counter()
  tstr_x, tstr_y = _tstr_windows(data, np.random.default_rng(config.seed + 1),
                                 int(config.tstr_max_windows))
  recon = {REAL: lambda x: x,
           "β-VAEGAN": lambda x: telemetry_models.vaegan_encode(config, vstate, x, batch=s.batch,
                                                                mesh=mesh)["x_hat"]}
  for v, m in models.items():
    recon[f"diffusion[{v}]"] = lambda x, m=m: telemetry_models.diffusion_reconstruct(
        m, x, config.detector, jax.random.fold_in(key, 300))
  for name, fn in recon.items():
    rows[name].update({k: v for k, v in tstr.tstr_scores(tstr_x, tstr_y, fn, config.tstr,
                                                         config.seed).items()
                       if k in ("tstr", "trtr", "tstr_n")})
  timings["tstr"] = time.perf_counter() - t0

  # Imputation of a masked block of held-out windows.
  t0 = time.perf_counter()
  ic = config.imputation
  target = heldout[:int(ic.num_windows)]
  known = block_mask(np.random.default_rng(config.seed + 2), target.shape, float(ic.fraction))
  imputation = {"linear interpolation": imputation_metrics(
      target, linear_interpolation(target, known)[None], known)}
  for v, m in models.items():
    imputation[f"diffusion[{v}]"] = imputation_metrics(target, telemetry_models.diffusion_impute(
        m, target, known, jax.random.fold_in(key, 400), members=int(ic.members), steps=s.steps,
        batch=s.batch, resample=int(ic.resample)), known)
  imputation["β-VAEGAN"] = imputation_metrics(target, telemetry_models.vaegan_impute(
      config, vstate, target, known, iterations=int(ic.vaegan_iterations), batch=s.batch,
      mesh=mesh)[None], known)
  timings["imputation"] = time.perf_counter() - t0

  # Figures: eigenmap projection and the feature characterization of the diffusion latent.
  anomalous = np.concatenate([p.windows[p.labels == 1] for p in data.test])
  anomalous = anomalous[telemetry_models.subsample(rng, anomalous.shape[0], num)]
  anom_feats = embedding.embed(clf, anomalous, config.embedding, num_classes)[0] \
      if anomalous.shape[0] else np.zeros((0, real_feats.shape[1]))
  full_name = f"diffusion[{config.variants[0]}]"
  eig = latent.LaplacianEigenmap(n_components=2, n_neighbors=10).fit(real_feats)
  plots.eigenmap_scatter(
      os.path.join(workdir, "eigenmap.png"), eig,
      {"real (reference)": (real_feats, "0.6"), REAL: (embedded[REAL][0], "tab:blue"),
       full_name: (embedded[full_name][0], "tab:orange"),
       "β-VAEGAN": (embedded["β-VAEGAN"][0], "tab:green"),
       "anomalous (test)": (anom_feats, "tab:red")},
      title="Laplacian eigenmap of the channel-classifier embedding (proposal's "
            "latent-metric objective; no published figure)")
  names = [f"dct{k}" for k in range(real_latent.shape[1])]
  char = features.characterize(real_latent, embedded[full_name][1], seed=config.seed,
                               names=names)
  attr = features.attribution(embedded[full_name][1], real_latent)
  with open(os.path.join(workdir, "features.md"), "w") as f:
    f.write(f"# Diffusion latent (DCT coefficients of z): real training windows vs "
            f"{full_name} samples\n\n")
    f.write(features.report_markdown(char, top_samples=attr))
  features.report_figure(os.path.join(workdir, "features.png"), real_latent,
                         embedded[full_name][1], char)
  counts = {t: int(np.sum(char["type"] == t)) for t in ("common", "real-only", "synthetic-only")}

  results = {
      "spacecraft": data.spacecraft, "num_channels": len(data.channels),
      "window": int(config.data.window), "num_train_windows": int(data.train.shape[0]),
      "num_per_set": num, "channel_classifier_heldout_accuracy": channel_accuracy,
      "tstr_windows": {"total": int(tstr_x.shape[0]), "anomalous": int(tstr_y.sum())},
      "processes": {v: trainer.describe(m.process) for v, m in models.items()},
      "generation": rows, "imputation": imputation, "feature_types": counts,
      "seconds": {**timings, "total": time.perf_counter() - start},
      **results_lib.facts(started),
  }
  results_lib.write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write(markdown(results))
  np.savez_compressed(os.path.join(workdir, "samples.npz"),
                      **{name.replace(" ", "_"): x[:256] for name, x in sets.items()})
  return results


COLUMNS = (
    ("clf_fid", "FID_clf ↓"), ("clf_kid", "KID_clf ↓"), ("clf_mmd", "MMD_clf ↓"),
    ("clf_alpha_precision", "α-prec ↑"), ("clf_beta_recall", "β-rec ↑"),
    ("clf_authenticity", "auth ↑"), ("inception_score", "IS ↑"),
    ("lat_fid", "FID_lat ↓"), ("lat_kid", "KID_lat ↓"), ("lat_mmd", "MMD_lat ↓"),
    ("discriminative", "disc ↓"), ("predictive", "pred ↓"),
    ("nn_euclidean", "NN eucl ↓"), ("nn_dtw", "NN DTW ↓"), ("nn_cid", "NN CID ↓"),
    ("nn_pearson", "NN pearson ↑"), ("nn_cosine", "NN cos ↑"),
    ("tstr", "TSTR ↑"), ("trtr", "TRTR"), ("tstr_n", "TSTR_N ↑"),
)


def _fmt(v) -> str:
  return "–" if v is None else f"{v:.3g}"


def markdown(results: dict[str, Any]) -> str:
  """The generation and imputation tables."""
  r = results
  lines = [f"# Generation on {r['spacecraft'].upper()} telemetry windows (length {r['window']}, "
           f"{r['num_channels']} channels, {r['num_per_set']} windows per set)", "",
           f"Reference: {r['num_per_set']} training windows. Channel classifier held-out "
           f"accuracy {r['channel_classifier_heldout_accuracy']:.3f}. TSTR on "
           f"{r['tstr_windows']['total']} labelled windows ({r['tstr_windows']['anomalous']} "
           "anomalous). The held-out real row is the floor.", "",
           "| set | " + " | ".join(label for _, label in COLUMNS) + " |",
           "|---|" + "---|" * len(COLUMNS)]
  for name, row in r["generation"].items():
    lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k, _ in COLUMNS) + " |")
  defined = {name: (row.get("nn_pearson_defined"), row.get("nn_cosine_defined"))
             for name, row in r["generation"].items()}
  if any(v is not None and v < 1.0 for pair in defined.values() for v in pair):
    lines += ["", "NN pearson / cos: mean over the windows of a set that are not constant "
              "(not all zero); fraction of such windows: " + ", ".join(
                  f"{name} {_fmt(p)} / {_fmt(c)}" for name, (p, c) in defined.items()) + "."]
  lines += ["", "## Imputation of a masked block (held-out windows)", "",
            "| method | MSE ↓ | MAE ↓ | CRPS ↓ |", "|---|---|---|---|"]
  for name, row in r["imputation"].items():
    lines.append(f"| {name} | {_fmt(row['mse'])} | {_fmt(row['mae'])} | {_fmt(row['crps'])} |")
  lines += ["", f"Feature types of the diffusion latent (real vs first variant): "
            f"{r['feature_types']}", ""]
  return "\n".join(lines)
