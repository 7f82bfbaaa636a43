"""The β-VAEGAN experiments (papers/001 Tables I–III, Figs. 3–4) as one run.

`run(config, workdir)` (the study 'vaegan': configs with
`experiment = 'vaegan'`) trains every model of `config.models` (names of
`train.VARIANTS`: AE, VAE, BeatGAN, BeatGAN+, β-VAEGAN₁, β-VAEGAN₂) on every
fold of the dataset's protocol (`protocol.py`), scores the validation and test
splits, fits each composition method on the labelled VALIDATION split only and
reports it on the test split:

* 'λ=0': R alone with a validation-fit threshold (`fit_linear_grid`, 1 λ);
* 'λ_GRID': A = (1−λ)R + λD;  'γ_GRID': A* = (1−λ−γ)R + λD + γL;
* 'SVM_λ': RBF SVC on [R, D];  'SVM_γ': RBF SVC on [R, D, L].

Models without a discriminator (AE, VAE) have no D and report 'λ=0' and
'SVM_L' (SVC on [R, L]) only. Per fold and method: F1, MCC (φ), AUROC and
AUPRC of the continuous composite score (A, or the SVM decision function);
then mean ± std over folds. For telemetry, the window scores also map back
to points and every point-wise metric of `mlts.evaluation` is reported.

Also: TSTR / TSTR_N (`tstr.py`) per model and fold, the χ check and figure on
the training latent norms for `config.chi.betas`, and reconstruction and
composition figures of the first fold. Every model resumes from its Orbax
checkpoints in `workdir/checkpoints/fold_k/<model>`.

Outputs in `workdir`: config.json, results.json (everything), tables.md,
figures/*.png.
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

from mlts import evaluation, metrics, sharding, writers
from mlts import results as results_lib
from mlts.data import telemetry
from mlts.vaegan import composition, protocol, scoring, tstr
from mlts.vaegan import train as vaegan_train

TELEMETRY = ("smap", "msl")
UCR = {"wafer": "Wafer", "ecg200": "ECG200"}
ADVERSARIAL_METHODS = ("λ=0", "λ_GRID", "γ_GRID", "SVM_λ", "SVM_γ")
PLAIN_METHODS = ("λ=0", "SVM_L")
# F1 of the abnormal class; wF1 = the support-weighted mean of both classes' F1 (the
# paper's "weighted F1", scikit-learn's average='weighted').
WINDOW_METRICS = ("F1", "wF1", "MCC", "AUROC", "AUPRC")
MODEL_NAMES = {"ae": "AE", "vae": "VAE", "beatgan": "BeatGAN", "beatgan_plus": "BeatGAN+",
               "vaegan1": "β-VAEGAN₁", "vaegan2": "β-VAEGAN₂"}


# ----------------------------------------------------------------------------
# Composition of the score components and window-level metrics.


def latent_scores(z_norms, train_norms, config: ml_collections.ConfigDict) -> np.ndarray:
  """L(x): norm minus the training-histogram mode ('histogram') or √(dim−1) ('prior')."""
  if config.latent_score == "histogram":
    return composition.latent_norm_score(z_norms, train_norms)
  if config.latent_score == "prior":
    return composition.latent_norm_score_prior(z_norms, int(config.latent))
  raise ValueError(f"latent_score must be 'histogram' or 'prior', got {config.latent_score!r}")


def window_metrics(labels, preds, scores) -> dict[str, float | None]:
  """F1, weighted F1, MCC (φ) of binary predictions and AUROC / AUPRC of scores."""
  point = metrics.pointwise(labels, preds)
  labels, preds = np.asarray(labels), np.asarray(preds)
  normal = metrics.pointwise(1 - labels, 1 - preds)["f1"]
  frac = float(np.mean(labels))
  both = 0 < int(np.sum(labels)) < len(labels)
  return {"F1": point["f1"], "wF1": frac * point["f1"] + (1 - frac) * normal,
          "MCC": point["mcc"],
          "AUROC": metrics.auroc(labels, scores) if both else None,
          "AUPRC": metrics.auprc(labels, scores) if both else None}


def compose(val: dict[str, np.ndarray], val_labels, test: dict[str, np.ndarray],
            adversarial: bool, config: ml_collections.ConfigDict) -> dict[str, dict]:
  """Fits every composition method on validation and applies it to test.

  Args:
    val: validation components 'R', 'D', 'L' [N_val] (raw, unscaled).
    val_labels: [N_val] {0, 1}; must hold both classes.
    test: test components, same keys [N_test].
    adversarial: the model has a discriminator (D is meaningful).
    config: the `composition` section: num_lambda, num_tau, num_gamma, svm_C.

  Returns:
    {method: {'params': JSON-ready fit, 'preds': int8 [N_test],
    'scores': float [N_test]}}; the MinMax statistics come from validation.
  """
  keys = ("R", "D", "L") if adversarial else ("R", "L")
  scalers = {k: composition.MinMax.fit(val[k]) for k in keys}
  v = {k: scalers[k].apply(val[k]) for k in keys}
  t = {k: scalers[k].apply(test[k]) for k in keys}
  zeros_v, zeros_t = np.zeros_like(v["R"]), np.zeros_like(t["R"])
  out = {}

  def linear(name, params, use_l):
    d_t = t["D"] if adversarial else zeros_t
    args_t = (t["R"], d_t, t["L"]) if use_l else (t["R"], d_t)
    out[name] = {"params": params, "preds": composition.apply_linear(params, *args_t),
                 "scores": composition.linear_score(params, *args_t)}

  def svm(name, cols):
    fitted = composition.fit_svm(composition.stack_features(*[v[k] for k in cols]), val_labels,
                                 C=config.svm_C)
    feats = composition.stack_features(*[t[k] for k in cols])
    out[name] = {"params": {"features": list(cols), "C": config.svm_C,
                            "support_vectors": int(fitted.svc.support_vectors_.shape[0])},
                 "preds": fitted.predict(feats), "scores": fitted.decision_function(feats)}

  linear("λ=0", composition.fit_linear_grid(v["R"], zeros_v, val_labels, num_lambda=1,
                                            num_tau=config.num_tau), use_l=False)
  if adversarial:
    linear("λ_GRID", composition.fit_linear_grid(v["R"], v["D"], val_labels,
                                                 num_lambda=config.num_lambda,
                                                 num_tau=config.num_tau), use_l=False)
    linear("γ_GRID", composition.fit_linear_grid3(v["R"], v["D"], v["L"], val_labels,
                                                  num=config.num_gamma,
                                                  num_tau=config.num_tau), use_l=True)
    svm("SVM_λ", ("R", "D"))
    svm("SVM_γ", ("R", "D", "L"))
  else:
    svm("SVM_L", ("R", "L"))
  for name in out:
    out[name]["scalers"] = {k: [s.lo, s.hi] for k, s in scalers.items()}
  return out


def mean_std(rows: list[dict[str, float | None]]) -> dict[str, list[float | None]]:
  """{metric: [mean, std]} over folds (population std; None and NaN entries skipped)."""
  out = {}
  for key in rows[0]:
    vals = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    out[key] = [float(np.mean(vals)), float(np.std(vals))] if vals else [None, None]
  return out


# ----------------------------------------------------------------------------
# Data.


def load_folds(config: ml_collections.ConfigDict) -> tuple[str, list[dict[str, Any]], Any]:
  """The dataset's folds as dicts of windows and labels.

  Returns:
    (dataset name, folds, telemetry data or None). Each fold has 'train'
    [N, L, C], 'val' / 'test' windows with 'val_labels' / 'test_labels'.
  """
  name = config.data.dataset.lower()
  if name in UCR:
    x, y = protocol.load_ucr_set(UCR[name], config.data.length)
    folds = []
    for idx in protocol.ucr_folds(y, num_folds=config.num_folds,
                                  train_fraction=config.data.train_fraction, seed=config.seed):
      folds.append({"train": x[idx["train"]], "val": x[idx["val"]], "val_labels": y[idx["val"]],
                    "test": x[idx["test"]], "test_labels": y[idx["test"]],
                    "indices": {k: v.tolist() for k, v in idx.items()}})
    return UCR[name], folds, None
  if name in TELEMETRY:
    data = telemetry.nasa_windows(name, window=config.data.length,
                                 train_stride=config.data.train_stride,
                                 val_fraction=config.data.val_fraction,
                                 channels=config.data.channels)
    fold = {"train": data.train,
            "val": np.concatenate([p.windows for p in data.val]),
            "val_labels": np.concatenate([p.labels for p in data.val]),
            "test": np.concatenate([p.windows for p in data.test]),
            "test_labels": np.concatenate([p.labels for p in data.test])}
    # Telemetry has one split; folds differ only in the training seed.
    return name.upper(), [fold] * config.num_folds, data
  raise ValueError(
      f"unknown β-VAEGAN dataset {config.data.dataset!r}; expected one of "
      f"{sorted(UCR) + list(TELEMETRY)}")


def _subsample(x: np.ndarray, max_count: int, seed: int) -> np.ndarray:
  if x.shape[0] <= max_count:
    return x
  idx = np.sort(np.random.default_rng(seed).choice(x.shape[0], max_count, replace=False))
  return x[idx]


# ----------------------------------------------------------------------------
# One model on one fold.


def train_model(vcfg: ml_collections.ConfigDict, training: ml_collections.ConfigDict,
                windows: np.ndarray, *, seed: int, workdir: str, tag: str, mesh):
  """Trains (or resumes) one model; returns (state, seconds)."""
  writer = writers.MetricWriter(os.path.join(workdir, "logs", tag), tensorboard=False)
  start = time.perf_counter()
  try:
    state = vaegan_train.fit(vcfg, training, windows, key=jax.random.key(seed), seed=seed,
                             checkpoint_dir=os.path.join(workdir, "checkpoints", tag),
                             writer=writer, mesh=mesh)
  finally:
    writer.close()
  return state, time.perf_counter() - start


def evaluate_model(state, vcfg: ml_collections.ConfigDict, fold: dict, config, *, seed: int,
                   mesh, keep_arrays: bool) -> dict[str, Any]:
  """Scores one trained model on a fold; composition, metrics and TSTR."""
  scorer = scoring.make_scorer(vcfg, batch_size=config.eval_batch_size, mesh=mesh,
                               with_reconstruction=True)
  train_sc = scorer(state, _subsample(fold["train"], config.max_train_scored, seed))
  val_sc, test_sc = scorer(state, fold["val"]), scorer(state, fold["test"])
  for sc in (val_sc, test_sc):
    sc["L"] = latent_scores(sc["z_norm"], train_sc["z_norm"], vcfg)
  adversarial = bool(vcfg.adversarial)
  methods = compose(val_sc, fold["val_labels"], test_sc, adversarial, config.composition)
  result: dict[str, Any] = {"methods": {}}
  for name, m in methods.items():
    result["methods"][name] = {
        **window_metrics(fold["test_labels"], m["preds"], m["scores"]),
        "params": m["params"], "scalers": m["scalers"]}
  result["chi"] = composition.chi_check(train_sc["z_sample_norm"], int(vcfg.latent))
  if config.tstr.enabled:
    def synth(x):
      return scorer(state, x)["x_hat"]
    result["tstr"] = tstr.tstr_scores(fold["val"], fold["val_labels"], synth, config.tstr,
                                      seed)
  arrays = {"train_z_norm": train_sc["z_norm"], "train_z_sample_norm": train_sc["z_sample_norm"],
            "val": {k: val_sc[k] for k in ("R", "D", "L")},
            "test": {k: test_sc[k] for k in ("R", "D", "L")},
            "method_scores": {k: m["scores"] for k, m in methods.items()},
            "method_preds": {k: m["preds"] for k, m in methods.items()}}
  if keep_arrays:
    arrays["test_x_hat"] = test_sc["x_hat"]
  return result, arrays


# ----------------------------------------------------------------------------
# The whole experiment.


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the configured β-VAEGAN experiment (see the module docstring)."""
  started = results_lib.start_run(config, workdir)
  os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
  mesh = sharding.make_mesh()
  dataset, folds, telemetry = load_folds(config)
  logging.info("%s: %d folds; fold 0 train %s, val %d (%d abnormal), test %d (%d abnormal)",
               dataset, len(folds), folds[0]["train"].shape, len(folds[0]["val_labels"]),
               int(folds[0]["val_labels"].sum()), len(folds[0]["test_labels"]),
               int(folds[0]["test_labels"].sum()))
  results: dict[str, Any] = {"dataset": dataset, "models": {}, "timing_seconds": {},
                             "protocol": protocol_summary(config, folds)}
  first_fold_arrays = {}
  for model in config.models:
    vcfg = vaegan_train.variant_config(model, config.vaegan,
                                       **dict(config.model_overrides.get(model, {})))
    per_fold, seconds = [], 0.0
    for k, fold in enumerate(folds):
      seed = config.seed + 1000 * k
      state, train_seconds = train_model(vcfg, config.training, fold["train"], seed=seed,
                                         workdir=workdir, tag=f"fold_{k}/{model}", mesh=mesh)
      start = time.perf_counter()
      res, arrays = evaluate_model(state, vcfg, fold, config, seed=seed, mesh=mesh,
                                   keep_arrays=k == 0)
      seconds += train_seconds + time.perf_counter() - start
      res["train_seconds"] = train_seconds
      if telemetry is not None:
        res["points"] = point_metrics(telemetry, arrays, config.eval)
      per_fold.append(res)
      if k == 0:
        first_fold_arrays[model] = arrays
      logging.info("%s fold %d: %s", model, k, json.dumps(
          {m: {kk: r[kk] for kk in WINDOW_METRICS} for m, r in res["methods"].items()}))
    results["models"][model] = summarize_model(per_fold, vcfg)
    results["timing_seconds"][model] = seconds
  if config.chi.betas:
    results["chi"] = chi_experiment(config, folds[0], workdir, mesh)
  results.update(results_lib.facts(started))
  write_outputs(workdir, results, folds[0], first_fold_arrays, config)
  return results


def protocol_summary(config, folds) -> dict[str, Any]:
  f = folds[0]
  return {"num_folds": len(folds), "train": int(f["train"].shape[0]),
          "val": int(f["val_labels"].size), "val_abnormal": int(f["val_labels"].sum()),
          "test": int(f["test_labels"].size), "test_abnormal": int(f["test_labels"].sum()),
          "window": list(f["train"].shape[1:]),
          "note": ("compositions and thresholds fit on the labelled validation split only; "
                   "metrics on the disjoint test split")}


def summarize_model(per_fold: list[dict], vcfg) -> dict[str, Any]:
  """Mean ± std over folds of every method's metrics, TSTR, χ; plus the folds."""
  methods = {}
  for name in per_fold[0]["methods"]:
    methods[name] = mean_std([{k: f["methods"][name][k] for k in WINDOW_METRICS}
                              for f in per_fold])
  out = {"config": vcfg.to_dict(), "methods": methods, "folds": per_fold}
  if "tstr" in per_fold[0]:
    out["tstr"] = mean_std([{k: f["tstr"][k] for k in ("tstr", "trtr", "tstr_n")}
                            for f in per_fold])
  out["chi"] = mean_std([{k: f["chi"][k] for k in ("statistic", "pvalue")} for f in per_fold])
  if "points" in per_fold[0]:
    out["points"] = {m: evaluation.mean_rows([f["points"][m] for f in per_fold])
                     for m in per_fold[0]["points"]}
  return out


def point_metrics(data: telemetry.TelemetryData, arrays: dict, eval_config) -> dict[str, dict]:
  """Point-wise summary rows per method: window scores/preds mapped to points."""
  labels = np.concatenate([p.point_labels for p in data.test])
  out = {}
  for name, scores in arrays["method_scores"].items():
    point_scores = telemetry.point_scores(data.test, scores)
    point_preds = (telemetry.point_scores(data.test, arrays["method_preds"][name]) > 0)
    report = evaluation.evaluate(labels, point_scores, point_preds.astype(np.int8), eval_config)
    out[name] = evaluation.summary_row(report)
  return out


def chi_experiment(config, fold: dict, workdir: str, mesh) -> dict[str, Any]:
  """Trains β-VAEGAN for each β of `config.chi.betas` on fold 0; χ check and figure."""
  from mlts.vaegan import figures
  norms, dim = {}, None
  for beta in config.chi.betas:
    vcfg = vaegan_train.variant_config("vaegan2", config.vaegan, beta=float(beta))
    dim = int(vcfg.latent)
    state, _ = train_model(vcfg, config.training, fold["train"], seed=config.seed,
                           workdir=workdir, tag=f"chi/beta_{beta:g}", mesh=mesh)
    scorer = scoring.make_scorer(vcfg, batch_size=config.eval_batch_size, mesh=mesh)
    norms[f"β = {beta:g}"] = scorer(
        state, _subsample(fold["train"], config.max_train_scored, config.seed))["z_sample_norm"]
  return figures.chi_figure(
      os.path.join(workdir, "figures", "chi.png"), norms, dim,
      title=f"χ_{dim} fit of training latent norms for several β, fold 0 "
            "(β-VAEGAN paper Fig. 4 counterpart; the paper shows MITBIH)")


def _cell(ms: list) -> str:
  return "–" if ms[0] is None else f"{ms[0]:.3f} ± {ms[1]:.3f}"


def markdown_tables(results: dict[str, Any]) -> str:
  """Tables like the paper's II/III (per method) and I (TSTR), plus χ and points."""
  lines = [f"# β-VAEGAN on {results['dataset']}", "",
           f"Protocol: {json.dumps(results['protocol'])}", "",
           "## Test-split metrics per model and composition (mean ± std over folds)", "",
           "| model | composition | " + " | ".join(WINDOW_METRICS) + " |",
           "|---|---|" + "---|" * len(WINDOW_METRICS)]
  for model, r in results["models"].items():
    for method, ms in r["methods"].items():
      cells = " | ".join(_cell(ms[k]) for k in WINDOW_METRICS)
      lines.append(f"| {MODEL_NAMES.get(model, model)} | {method} | {cells} |")
  if any("tstr" in r for r in results["models"].values()):
    lines += ["", "## TSTR (classifier trained on reconstructions, tested on disjoint real "
              "windows)", "", "| model | TSTR | TRTR | TSTR_N |", "|---|---|---|---|"]
    for model, r in results["models"].items():
      if "tstr" in r:
        t = r["tstr"]
        lines.append(f"| {MODEL_NAMES.get(model, model)} | {_cell(t['tstr'])} | "
                     f"{_cell(t['trtr'])} | {_cell(t['tstr_n'])} |")
  lines += ["", "## χ check: norms of posterior samples z = μ + σε of training windows, KS "
            "test against χ_dim", "",
            "| model | KS statistic | p-value |", "|---|---|---|"]
  for model, r in results["models"].items():
    lines.append(f"| {MODEL_NAMES.get(model, model)} | {_cell(r['chi']['statistic'])} | "
                 f"{_cell(r['chi']['pvalue'])} |")
  for label, c in results.get("chi", {}).items():
    lines.append(f"| β-VAEGAN {label} | {c['statistic']:.4f} | {c['pvalue']:.3g} |")
  point_rows = {f"{MODEL_NAMES.get(m, m)} {meth}": row
                for m, r in results["models"].items() for meth, row in r.get("points", {}).items()}
  if point_rows:
    lines += ["", "## Point-wise metrics on the evaluation split (window scores mapped to "
              "points; PA-F1 only beside unadjusted F1)", "",
              evaluation.markdown_table(point_rows)]
  return "\n".join(lines) + "\n"


def write_outputs(workdir: str, results: dict, fold: dict, arrays: dict, config) -> None:
  """results.json, tables.md and the figures of the first fold."""
  from mlts.vaegan import figures
  results_lib.write_json(os.path.join(workdir, "results.json"), evaluation._jsonable(results))
  with open(os.path.join(workdir, "tables.md"), "w") as f:
    f.write(markdown_tables(results))
  labels = fold["test_labels"]
  rng = np.random.default_rng(config.seed)
  normal = rng.permutation(np.flatnonzero(labels == 0))[:4]
  abnormal = rng.permutation(np.flatnonzero(labels == 1))[:4]
  for model, arr in arrays.items():
    x, x_hat = fold["test"], arr["test_x_hat"]
    figures.reconstruction_figure(
        os.path.join(workdir, "figures", f"reconstructions_{model}.png"), x[normal],
        x_hat[normal], x[abnormal], x_hat[abnormal],
        title=f"{MODEL_NAMES.get(model, model)} on {results['dataset']}: real vs reconstructed "
              "test windows, fold 0 (β-VAEGAN paper Fig. 3 counterpart)")
    figures.error_heatmap(
        os.path.join(workdir, "figures", f"error_heatmap_{model}.png"),
        x[labels == 0], x_hat[labels == 0], x[labels == 1], x_hat[labels == 1],
        title=f"{MODEL_NAMES.get(model, model)} on {results['dataset']}: |x − x̂| of test "
              "windows, fold 0 (β-VAEGAN paper Fig. 1 counterpart)")
    keys = ("R", "D", "L") if "SVM_γ" in arr["method_scores"] else ("R", "L")
    figures.composition_figure(
        os.path.join(workdir, "figures", f"components_{model}.png"),
        {k: arr["test"][k] for k in keys}, labels,
        title=f"{MODEL_NAMES.get(model, model)}: score components (test, fold 0)")
