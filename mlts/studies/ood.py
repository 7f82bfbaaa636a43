"""OOD detection on SMAP / MSL telemetry windows with every latent score (issue 6 §4).

`run(config, workdir)` (configs/ood_{smap,msl}.py, `experiment = 'ood'`)
trains on one spacecraft's training windows (`mlts.data.telemetry.load`) the
diffusion model of `config.variants[0]` and β-VAEGAN₂, then embeds windows in
three representations:

* 'diffusion latent': z = x_T of the DDIM/Heun inversion, in the DCT basis;
* 'VAE mean': the β-VAEGAN posterior mean μ;
* 'raw window': the window itself, in the DCT basis (the baseline).

Scores (`mlts.latent`, all "higher = more OOD"), each fit on training windows
only: Mahalanobis (Ledoit–Wolf), negative KDE log-density, the k-NN distance
in the Laplacian eigenmap (Nyström extension), the χ-norm deviation of the
standardized embedding, and the subspace energy on the diffusion model's
attenuated set I (representations in the DCT basis only).

Tasks (in-distribution = normal evaluation windows of the training spacecraft):

* 'anomalous': OOD = the anomalous evaluation windows (any anomalous point);
* 'cross-spacecraft': OOD = the normal evaluation windows of the other
  spacecraft (scaled with its own channels' training statistics).

Metrics per task, representation and score (`latent.ood_report`): AUROC,
AUPRC, FPR at 95 % TPR, and F1 / accuracy at the threshold from the normal
VALIDATION windows (their `threshold_quantile`, no test label involved).
Figure: the 2-D Laplacian eigenmap of the diffusion latent, coloured training
/ normal / anomalous / other spacecraft. Outputs: config.json, results.json,
tables.md, eigenmap.png.
"""

from __future__ import annotations

import os
import time
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from mlts import latent, plots, telemetry_models
from mlts import results as results_lib
from mlts.data import telemetry, transforms
from mlts.diffusion import basis as basis_lib

OTHER = {"smap": "msl", "msl": "smap"}
REPRESENTATIONS = ("diffusion latent", "VAE mean", "raw window")
SCORES = ("mahalanobis", "kde", "eigenmap", "chi_norm", "energy")


class LatentScorer:
  """Every latent score of one representation, fit on its training embeddings [N, D]."""

  def __init__(self, train: np.ndarray, *, energy_mask: np.ndarray | None,
               kde_bandwidth: str | float, eigen_components: int, eigen_neighbors: int):
    self.mean = train.mean(axis=0)
    self.std = np.maximum(train.std(axis=0), 1e-12)
    self.mahalanobis = latent.Mahalanobis().fit(train)
    self.kde = latent.KDE(kde_bandwidth).fit(train)
    self.eigenmap = latent.LaplacianEigenmap(eigen_components, eigen_neighbors).fit(train)
    self.energy_mask = energy_mask

  def scores(self, x: np.ndarray) -> dict[str, np.ndarray]:
    """{score name: [M]} for embeddings [M, D]."""
    out = {"mahalanobis": self.mahalanobis.score(x), "kde": self.kde.score(x),
           "eigenmap": self.eigenmap.score(x),
           "chi_norm": latent.chi_norm_deviation((x - self.mean) / self.std)}
    if self.energy_mask is not None:
      out["energy"] = latent.subspace_energy(x, self.energy_mask)
    return out


def _normal(parts) -> tuple[np.ndarray, np.ndarray]:
  """(normal windows, anomalous windows) of a list of ChannelWindows."""
  x = np.concatenate([p.windows for p in parts])
  y = np.concatenate([p.labels for p in parts])
  return x[y == 0], x[y == 1]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains the models, scores every task / representation / score (module docstring)."""
  start = time.perf_counter()
  data, mesh, rng, started = telemetry_models.prepare(config, workdir)
  dc = config.data
  other_name = OTHER[data.spacecraft]
  other = telemetry.load(other_name, window=dc.window, stride=dc.window,
                         holdout=dc.holdout, val_fraction=dc.val_fraction)
  cap = int(config.max_windows)
  fit_windows = data.train[telemetry_models.subsample(rng, data.train.shape[0], cap)]
  val_normal, _ = _normal(data.val)
  test_normal, test_anomalous = _normal(data.test)
  other_normal, _ = _normal(other.test)
  sets = {"train": fit_windows,
          "val normal": val_normal[telemetry_models.subsample(rng, len(val_normal), cap)],
          "test normal": test_normal[telemetry_models.subsample(rng, len(test_normal), cap)],
          "anomalous": test_anomalous[telemetry_models.subsample(rng, len(test_anomalous), cap)],
          "cross-spacecraft": other_normal[telemetry_models.subsample(rng, len(other_normal),
                                                                      cap)]}
  logging.info("%s: %s", data.spacecraft, {k: v.shape[0] for k, v in sets.items()})
  timings: dict[str, float] = {}

  model = telemetry_models.train_diffusion(config, config.variants[0], data.train, workdir,
                                           mesh)
  timings["train diffusion"] = model.train_seconds
  vstate, timings["train β-VAEGAN"] = telemetry_models.train_vaegan(config, data.train, workdir,
                                                                    mesh)
  s = config.sampling
  basis = np.asarray(model.process.basis)
  mask = np.asarray(model.process.mask).reshape(-1) > 0

  def dct(x):
    c = np.asarray(basis_lib.to_basis(x, basis))
    return c.reshape(c.shape[0], -1)

  t0 = time.perf_counter()
  embedded: dict[str, dict[str, np.ndarray]] = {r: {} for r in REPRESENTATIONS}
  for name, x in sets.items():
    embedded["diffusion latent"][name] = dct(telemetry_models.diffusion_encode(
        model, x, steps=s.encode_steps, solver=s.solver, batch=s.batch))
    embedded["VAE mean"][name] = telemetry_models.vaegan_encode(config, vstate, x, batch=s.batch,
                                                                mesh=mesh)["mu"]
    embedded["raw window"][name] = dct(transforms.to_signed(x))
  timings["embed"] = time.perf_counter() - t0

  sc = config.scores
  tables: dict[str, dict[str, dict[str, dict[str, float]]]] = {
      "anomalous": {}, "cross-spacecraft": {}}
  t0 = time.perf_counter()
  for rep in REPRESENTATIONS:
    emb = embedded[rep]
    scorer = LatentScorer(emb["train"], energy_mask=None if rep == "VAE mean" else mask,
                          kde_bandwidth=sc.kde_bandwidth, eigen_components=sc.eigen_components,
                          eigen_neighbors=sc.eigen_neighbors)
    scored = {name: scorer.scores(x) for name, x in emb.items() if name != "train"}
    for task in tables:
      tables[task][rep] = {}
      for score in scored["test normal"]:
        threshold = latent.validation_threshold(scored["val normal"][score],
                                                float(sc.threshold_quantile))
        tables[task][rep][score] = latent.ood_report(scored["test normal"][score],
                                                     scored[task][score], threshold=threshold)
  timings["scores"] = time.perf_counter() - t0

  eig = latent.LaplacianEigenmap(2, int(sc.eigen_neighbors)).fit(embedded["diffusion latent"]
                                                                  ["train"])
  emb, name = embedded["diffusion latent"], data.spacecraft.upper()
  plots.eigenmap_scatter(
      os.path.join(workdir, "eigenmap.png"), eig,
      {f"{name} training": (emb["train"], "0.6"),
       f"{name} normal (test)": (emb["test normal"], "tab:blue"),
       f"{name} anomalous (test)": (emb["anomalous"], "tab:red"),
       f"{other_name.upper()} normal (test)": (emb["cross-spacecraft"], "tab:green")},
      title="Laplacian eigenmap of the diffusion latent (proposal's OOD objective; "
            "no published figure)")
  results = {
      "spacecraft": data.spacecraft, "other": other_name, "window": int(dc.window),
      "counts": {k: int(v.shape[0]) for k, v in sets.items()},
      "variant": config.variants[0], "threshold_quantile": float(sc.threshold_quantile),
      "tasks": tables, "seconds": {**timings, "total": time.perf_counter() - start},
      **results_lib.facts(started),
  }
  results_lib.write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write(markdown(results))
  return results


def markdown(results: dict[str, Any]) -> str:
  """One table per task: representation × score rows, the OOD metrics as columns."""
  r = results
  lines = [f"# OOD on {r['spacecraft'].upper()} telemetry windows (length {r['window']})", "",
           f"Windows: {r['counts']}. Thresholds: the {r['threshold_quantile']:.2f} quantile of "
           "the normal validation windows' scores.", ""]
  titles = {"anomalous": "normal vs anomalous evaluation windows",
            "cross-spacecraft": f"{r['spacecraft'].upper()} normal vs {r['other'].upper()} "
                                "normal windows"}
  for task, reps in r["tasks"].items():
    lines += [f"## {task}: {titles[task]}", "",
              "| representation | score | AUROC ↑ | AUPRC ↑ | FPR@95TPR ↓ | F1 ↑ | accuracy ↑ |",
              "|---|---|---|---|---|---|---|"]
    for rep, scores in reps.items():
      for score, m in scores.items():
        lines.append(f"| {rep} | {score} | {m['auroc']:.3f} | {m['auprc']:.3f} | "
                     f"{m['fpr_at_95tpr']:.3f} | {m['f1']:.3f} | {m['accuracy']:.3f} |")
    lines.append("")
  return "\n".join(lines)
