"""The end-to-end run: config -> data -> train -> score -> threshold -> metrics -> files.

`run(config, workdir)` is what `experiments/main.py` calls: the COGNOS grid of
`mlts.ablation` when the config has an `ablation` section, else
`train_and_evaluate`. That trains one reconstruction backbone (with the MSE or
GWNR loss) on the windows of every channel of a spacecraft (each channel
normalized with its own training statistics), turns each channel's aggregated
reconstruction residuals into per-step scores (squared residual, or after ARKS
/ moving average / low-pass), fits per-channel thresholds on validation scores
(the last part of each training series, never test data), and reports every
metric per channel and per spacecraft beside two baselines computed by the same
code: |z-scored telemetry| and a random score.

Files written to `workdir`: config.json, checkpoints/, metrics.json,
metrics.md, scores.npz, scores.png, logs/metrics.jsonl, logs/tensorboard/.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from mlts import evaluation, models, reconstruction, sharding, train, train_state, writers
from mlts.data import synthetic, transforms
from mlts.data import windows as windows_lib


@dataclasses.dataclass(frozen=True)
class Series:
  """One labelled series (a NASA channel or a synthetic one), raw values.

  Attributes:
    name: channel id.
    train: [T_train, C] normal training data.
    test: [T_test, C] test data.
    labels: [T_test] int8 test labels.
  """
  name: str
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class PreparedSeries:
  """A series split and normalized with statistics of its fit part only.

  Attributes:
    name: channel id.
    fit: [T_fit, C] training part (first 1 - val_fraction of train), normalized.
    val: [T_val, C] validation part (last val_fraction of train), normalized.
    test: [T_test, C] normalized test data.
    labels: [T_test] int8.
  """
  name: str
  fit: np.ndarray
  val: np.ndarray
  test: np.ndarray
  labels: np.ndarray


def load_series(config: ml_collections.ConfigDict) -> tuple[str, list[Series]]:
  """Loads the dataset named by `config.dataset` (the `data` section).

  Returns:
    (display name, list of `Series`).
  """
  name = config.dataset.lower()
  if name in ("smap", "msl"):
    from mlts.data import nasa  # local import: synthetic runs need no data files
    channels = nasa.load_spacecraft(name.upper(), features=config.features,
                                    include_p2=config.include_p2, root=config.root)
    if config.channels:
      wanted = [c.strip() for c in config.channels.split(",") if c.strip()]
      known = {c.name for c in channels}
      unknown = [c for c in wanted if c not in known]
      if unknown:
        raise ValueError(f"unknown {name.upper()} channel(s) {unknown} in data.channels")
      channels = [c for c in channels if c.name in wanted]
    return name.upper(), [Series(c.name, c.train, c.test, c.labels) for c in channels]
  if name == "synthetic":
    out = []
    for k in range(config.synthetic.num_series):
      s = synthetic.make_series(
          config.synthetic.seed + k, train_length=config.synthetic.train_length,
          test_length=config.synthetic.test_length,
          num_channels=config.synthetic.num_channels,
          num_anomalies=config.synthetic.num_anomalies)
      out.append(Series(f"syn-{k}", s.train, s.test, s.labels))
    return "synthetic", out
  raise ValueError(f"unknown dataset {config.dataset!r}; expected smap, msl or synthetic")


def prepare(series: Sequence[Series], config: ml_collections.ConfigDict) -> list[PreparedSeries]:
  """Splits off validation and normalizes each series with its own fit-part statistics."""
  out = []
  for s in series:
    fit, val = transforms.split_train_val(s.train, config.val_fraction)
    norm = transforms.fit_normalizer(fit, config.normalization, name=f"{s.name} train")
    out.append(PreparedSeries(
        name=s.name, fit=norm.apply(fit).astype(np.float32),
        val=norm.apply(val).astype(np.float32), test=norm.apply(s.test).astype(np.float32),
        labels=np.asarray(s.labels, np.int8)))
  return out


def training_windows(prepared: Sequence[PreparedSeries], window: int, stride: int, *,
                     part: str = "fit") -> np.ndarray:
  """Windows [N, L, C] of every series' `part` ('fit' or 'val'), each series on its own.

  Series shorter than the window are edge-padded (see `windows.sliding_windows`).
  """
  return np.concatenate(
      [windows_lib.sliding_windows(getattr(p, part), window, stride, pad=True,
                                   name=f"{p.name} {part}")[0]
       for p in prepared], axis=0).astype(np.float32)


def _validation_loss_hook(run, val_windows: np.ndarray, config: ml_collections.ConfigDict,
                          writer: writers.MetricWriter):
  """A training hook writing the reconstruction MSE on validation windows every eval_every steps.

  Uses the current parameters (not the EMA). Validation data are normal data held
  out of training, so this curve can guide the number of steps without test labels.
  """
  def hook(step: int, state) -> None:
    if step % config.training.eval_every == 0 or step == config.training.num_steps:
      recon = run(state.params, val_windows)
      writer.write_scalars(step, {"eval_loss": float(np.mean(np.square(recon - val_windows)))})

  return hook


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError on inconsistent settings before any data is loaded or compiled."""
  for field in ("stride", "eval_stride"):
    if config.data[field] < 1:
      raise ValueError(f"data.{field} must be >= 1, got {config.data[field]}")
  models.check_window(config.model, config.data.window)


def make_loss(config: ml_collections.ConfigDict, apply_fn):
  """The training loss named by `config.training.loss`: 'mse' or 'gwnr' (COGNOS)."""
  if config.training.loss == "mse":
    return reconstruction.make_mse_loss(apply_fn)
  if config.training.loss == "gwnr":
    from mlts.cognos import gwnr
    return gwnr.make_gwnr_loss(apply_fn, config.gwnr)
  raise ValueError(f"unknown training.loss {config.training.loss!r}; expected mse or gwnr")


@dataclasses.dataclass
class TrainedBackbone:
  """A trained reconstruction backbone and how to run it.

  Attributes:
    params: parameters used for scoring (the EMA when training.ema_decay > 0).
    run: `run(params, windows [N, L, C]) -> [N, L, C]`, batched and sharded.
    step: the training step reached.
    train_seconds: wall time of `train.fit` in this process (0 when fully restored).
  """
  params: Any
  run: Any
  step: int
  train_seconds: float


def train_backbone(config: ml_collections.ConfigDict, prepared: Sequence[PreparedSeries],
                   workdir: str, mesh=None) -> TrainedBackbone:
  """Trains (or resumes) the backbone of `config.model` with `config.training.loss`.

  Checkpoints go to `workdir/checkpoints`, logs to `workdir/logs`.
  """
  mesh = sharding.make_mesh() if mesh is None else mesh
  train_windows = training_windows(prepared, config.data.window, config.data.stride)
  # One root key split once into named streams; 'eval' is reserved for stochastic
  # scorers (the reconstruction backbones are deterministic at evaluation).
  streams = dict(zip(("init", "train", "eval"),
                     jax.random.split(jax.random.key(config.seed), 3)))
  model = models.get_model(config.model, train_windows.shape[-1])
  tx = train_state.make_optimizer(config.optimizer, config.training.num_steps)
  state = train_state.create_train_state(
      model, train_windows[:1], tx, streams["init"], ema_decay=config.training.ema_decay)
  writer = writers.MetricWriter(os.path.join(workdir, "logs"))
  writer.write_hparams(config.to_dict())
  run = reconstruction.make_batched_apply(model.apply, config.eval.batch_size, mesh)
  hooks = []
  if config.training.eval_every > 0:
    val_windows = training_windows(prepared, config.data.window, config.data.window // 2,
                                   part="val")
    hooks.append(_validation_loss_hook(run, val_windows, config, writer))
  start = time.perf_counter()
  try:
    state = train.fit(
        state, make_loss(config, model.apply), train_windows, config.training,
        key=streams["train"], seed=config.seed,
        checkpoint_dir=os.path.join(workdir, "checkpoints"), writer=writer, mesh=mesh,
        hooks=hooks)
  finally:
    writer.close()
  params = state.ema_params if config.training.ema_decay > 0 else state.params
  return TrainedBackbone(params=params, run=run, step=int(jax.device_get(state.step)),
                         train_seconds=time.perf_counter() - start)


def compute_residuals(backbone: TrainedBackbone, prepared: Sequence[PreparedSeries],
                      config: ml_collections.ConfigDict):
  """Residuals x - x̂ of the aggregated reconstruction of every validation and test series.

  Returns:
    (val residuals, test residuals): lists over series of [V_k, C] and [T_k, C].
  """
  out = []
  for part in ("val", "test"):
    series = [getattr(p, part) for p in prepared]
    recon = reconstruction.reconstruct_series(
        backbone.run, backbone.params, series, config.data.window, config.data.eval_stride)
    out.append([x.astype(np.float64) - r for x, r in zip(series, recon)])
  return out[0], out[1]


def postprocess_scores(val_residuals, test_residuals, config: ml_collections.ConfigDict):
  """Per-step scores of every series after the post-processing `config.name`.

  Each series gets its own post-processor fit on its validation residuals (ARKS
  calibrates per channel there), then scores both parts.

  Returns:
    list over series of (val scores [V_k], test scores [T_k]).
  """
  from mlts.cognos import postprocess
  out = []
  for val, test in zip(val_residuals, test_residuals):
    apply = postprocess.make_postprocessor(config.name, config)(val)
    out.append((np.asarray(apply(val), np.float64), np.asarray(apply(test), np.float64)))
  return out


def baseline_scores(prepared: Sequence[PreparedSeries], seed: int) -> dict:
  """The two reference scores of every report: |z-scored telemetry| and a uniform random score."""
  rng = np.random.default_rng(seed)
  return {
      "abs_telemetry": [(np.abs(p.val[:, 0]), np.abs(p.test[:, 0])) for p in prepared],
      "random": [(rng.random(p.val.shape[0]), rng.random(p.test.shape[0])) for p in prepared],
  }


def protocol(config: ml_collections.ConfigDict, prepared: Sequence[PreparedSeries]) -> dict:
  """A JSON description of the evaluation protocol, stored beside every result."""
  return {
      "channels": [p.name for p in prepared],
      "features": config.data.get("features", None),
      "window": config.data.window,
      "validation": f"last {config.data.val_fraction:.0%} of each channel's training series",
      "normalization": f"{config.data.normalization} per channel, fit-part statistics",
      "threshold": (f"per channel, {config.eval.threshold} rule on validation scores "
                    "(no test labels)"),
      "oracle": "best_f1_oracle / best_f1_pa_oracle use test labels to pick the threshold",
  }


def method_name(config: ml_collections.ConfigDict) -> str:
  """The report name of a trained detector: backbone, plus loss and post-processing if not plain."""
  name = config.model.name
  if config.training.loss != "mse":
    name += f"+{config.training.loss}"
  if config.postprocess.name != "none":
    name += f"+{config.postprocess.name}"
  return name


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the whole pipeline for one detector; resumes from the checkpoints in `workdir`.

  Args:
    config: the full config (see configs/default.py).
    workdir: output directory (created if missing).

  Returns:
    The metrics dict that is also written to `workdir/metrics.json`.
  """
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  name, series = load_series(config.data)
  prepared = prepare(series, config.data)
  logging.info("%s: %d series, train %d / val %d / test %d steps", name, len(prepared),
               sum(p.fit.shape[0] for p in prepared), sum(p.val.shape[0] for p in prepared),
               sum(p.test.shape[0] for p in prepared))
  backbone = train_backbone(config, prepared, workdir)

  start = time.perf_counter()
  val_res, test_res = compute_residuals(backbone, prepared, config)
  raw_scores = {method_name(config): postprocess_scores(val_res, test_res, config.postprocess),
                **baseline_scores(prepared, config.seed)}
  score_seconds = time.perf_counter() - start

  start = time.perf_counter()
  results, arrays = evaluate_methods(prepared, raw_scores, config.eval)
  results.update({
      "dataset": name,
      "protocol": protocol(config, prepared),
      "timing_seconds": {"train": backbone.train_seconds, "score": score_seconds,
                         "evaluate": time.perf_counter() - start},
      "devices": [str(d) for d in jax.devices()],
      "step": backbone.step,
  })
  write_outputs(workdir, results, arrays, config)
  return results


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """What `experiments/main.py` calls, by the config's `experiment` field.

  'vaegan' runs `mlts.vaegan.experiment`, 'diffusion' `mlts.diffusion.experiment`,
  'generation' `mlts.generation`, 'telemetry_generation' `mlts.telemetry_generation`,
  'ood' `mlts.ood`, 'vae_example' the worked β-VAE example;
  otherwise an ablation grid if the config has one, else one detector.
  """
  experiment = config.get("experiment", "detector")
  if experiment == "vaegan":
    from mlts.vaegan import experiment as vaegan_experiment
    return vaegan_experiment.run(config, workdir)
  if experiment == "vae_example":
    from mlts import vae_example
    return vae_example.run(config, workdir)
  if experiment == "diffusion":
    from mlts.diffusion import experiment as diffusion_experiment
    return diffusion_experiment.run(config, workdir)
  if experiment == "generation":
    from mlts import generation
    return generation.run(config, workdir)
  if experiment == "telemetry_generation":
    from mlts import telemetry_generation
    return telemetry_generation.run(config, workdir)
  if experiment == "ood":
    from mlts import ood
    return ood.run(config, workdir)
  if experiment != "detector":
    raise ValueError(
        f"unknown experiment {experiment!r}; expected 'detector', 'vaegan', 'diffusion', "
        "'generation', 'telemetry_generation', 'ood' or 'vae_example'")
  if "ablation" in config:
    from mlts import ablation
    return ablation.run_ablation(config, workdir)
  return train_and_evaluate(config, workdir)


def evaluate_methods(prepared: Sequence[PreparedSeries], raw_scores: dict,
                     config: ml_collections.ConfigDict) -> tuple[dict, dict[str, np.ndarray]]:
  """Calibrates, thresholds and evaluates every method per series and pooled.

  Args:
    prepared: the series (for names and labels).
    raw_scores: {method: [(val [V_k], test [T_k]) per series]}.
    config: the `eval` section.

  Returns:
    (results with 'methods' -> {method: {'overall', 'per_channel', 'summary'}},
     arrays for scores.npz).
  """
  results: dict[str, Any] = {"methods": {}}
  arrays: dict[str, np.ndarray] = {}
  labels_all = np.concatenate([p.labels for p in prepared])
  arrays["labels"] = labels_all
  arrays["series_lengths"] = np.array([p.test.shape[0] for p in prepared])
  arrays["channels"] = np.array([p.name for p in prepared])
  arrays["telemetry"] = np.concatenate([p.test[:, 0] for p in prepared]).astype(np.float32)
  for method, per_series in raw_scores.items():
    norm_scores, preds, per_channel = [], [], {}
    for p, (val, test) in zip(prepared, per_series):
      cal = evaluation.calibrate(val, config, name=f"{method} validation scores of {p.name}")
      s = cal.normalize(test)
      pr = (s >= cal.threshold).astype(np.int8)
      norm_scores.append(s)
      preds.append(pr)
      if config.per_channel:
        per_channel[p.name] = evaluation.evaluate(p.labels, s, pr, config)
        per_channel[p.name]["threshold"] = cal.threshold
    scores_all, preds_all = np.concatenate(norm_scores), np.concatenate(preds)
    overall = evaluation.evaluate(labels_all, scores_all, preds_all, config)
    results["methods"][method] = {
        "overall": overall, "summary": evaluation.summary_row(overall),
        "per_channel": per_channel,
        "per_channel_mean": evaluation.mean_rows(
            [evaluation.summary_row(r) for r in per_channel.values()])}
    arrays[f"scores/{method}"] = scores_all.astype(np.float32)
    arrays[f"preds/{method}"] = preds_all
    logging.info("%s: %s", method, json.dumps(results["methods"][method]["summary"]))
  return results, arrays


def write_outputs(workdir: str, results: dict, arrays: dict,
                  config: ml_collections.ConfigDict) -> None:
  """Writes metrics.json and scores.npz, then the report (metrics.md, scores.png)."""
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(results, f, indent=1)
  np.savez_compressed(os.path.join(workdir, "scores.npz"), **arrays)
  render_report(workdir, results, arrays, num_series=config.eval.num_plot_series)


def render_report(workdir: str, results: dict, arrays, *, num_series: int = 4) -> None:
  """Writes metrics.md and scores.png from the saved results (see experiments/figures.py)."""
  table = evaluation.markdown_table(
      {m: r["summary"] for m, r in results["methods"].items()})
  with open(os.path.join(workdir, "metrics.md"), "w") as f:
    f.write(f"# {results['dataset']}: pooled over {len(results['protocol']['channels'])} "
            "channels\n\n")
    f.write("Thresholds fit per channel on validation scores (no test labels); best-F1 is an "
            "oracle (threshold chosen on test labels); PA-F1 is point-adjusted and shown beside "
            "the random-score baseline, whose PA-F1 shows how much the adjustment alone "
            "gives.\n\n")
    f.write(table + "\n")
    means = {m: r["per_channel_mean"] for m, r in results["methods"].items()
             if r.get("per_channel_mean")}
    if means:
      f.write("\n## Mean over channels of the per-channel metrics\n\n")
      f.write(evaluation.markdown_table(means) + "\n")
  from mlts import plots  # matplotlib only when writing figures
  plots.score_traces(os.path.join(workdir, "scores.png"), arrays, num_series=num_series)
