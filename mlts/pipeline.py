"""The end-to-end run: config -> data -> train -> score -> threshold -> metrics -> files.

`train_and_evaluate(config, workdir)` is what `experiments/main.py` calls. It
trains one reconstruction backbone on the windows of every channel of a
spacecraft (each channel normalized with its own training statistics), scores
each channel's test series by the squared residual of the aggregated
reconstruction, fits per-channel thresholds on validation scores (the last part
of each training series, never test data), and reports every metric per
channel and per spacecraft beside two baselines computed by the same code:
|z-scored telemetry| and a random score.

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
  factor = 2 ** len(config.model.hidden)
  if config.data.window % factor:
    raise ValueError(
        f"data.window={config.data.window} must be a multiple of {factor} "
        f"(2 ** number of model.hidden levels)")
  for field in ("stride", "eval_stride"):
    if config.data[field] < 1:
      raise ValueError(f"data.{field} must be >= 1, got {config.data[field]}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the whole pipeline; resumes from the latest checkpoint in `workdir`.

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
  train_windows = training_windows(prepared, config.data.window, config.data.stride)
  num_features = train_windows.shape[-1]

  # One root key split once into named streams; 'eval' is reserved for stochastic
  # scorers (the reconstruction backbone is deterministic at evaluation).
  streams = dict(zip(("init", "train", "eval"),
                     jax.random.split(jax.random.key(config.seed), 3)))
  mesh = sharding.make_mesh()
  model = models.get_model(config.model, num_features)
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
  state = train.fit(
      state, reconstruction.make_mse_loss(model.apply), train_windows, config.training,
      key=streams["train"], seed=config.seed, checkpoint_dir=os.path.join(workdir, "checkpoints"),
      writer=writer, mesh=mesh, hooks=hooks)
  train_seconds = time.perf_counter() - start
  params = state.ema_params if config.training.ema_decay > 0 else state.params

  start = time.perf_counter()
  val_recon = reconstruction.reconstruct_series(
      run, params, [p.val for p in prepared], config.data.window, config.data.eval_stride)
  test_recon = reconstruction.reconstruct_series(
      run, params, [p.test for p in prepared], config.data.window, config.data.eval_stride)
  rng = np.random.default_rng(config.seed)
  raw_scores = {  # method -> list over series of (val scores [V], test scores [T])
      config.model.name: [
          (reconstruction.squared_error(p.val, v), reconstruction.squared_error(p.test, t))
          for p, v, t in zip(prepared, val_recon, test_recon)],
      "abs_telemetry": [(np.abs(p.val[:, 0]), np.abs(p.test[:, 0])) for p in prepared],
      "random": [(rng.random(p.val.shape[0]), rng.random(p.test.shape[0])) for p in prepared],
  }
  score_seconds = time.perf_counter() - start

  start = time.perf_counter()
  results, arrays = evaluate_methods(prepared, raw_scores, config.eval)
  eval_seconds = time.perf_counter() - start
  results.update({
      "dataset": name,
      "protocol": {
          "channels": [p.name for p in prepared],
          "features": config.data.get("features", None),
          "validation": f"last {config.data.val_fraction:.0%} of each channel's training series",
          "normalization": f"{config.data.normalization} per channel, fit-part statistics",
          "threshold": (f"per channel, {config.eval.threshold} rule on validation scores "
                        "(no test labels)"),
          "oracle": "best_f1_oracle / best_f1_pa_oracle use test labels to pick the threshold",
      },
      "timing_seconds": {"train": train_seconds, "score": score_seconds,
                         "evaluate": eval_seconds},
      "devices": [str(d) for d in jax.devices()],
  })
  write_outputs(workdir, results, arrays, config)
  writer.write_scalars(int(jax.device_get(state.step)), {
      f"eval_{m}_{k}": v for m, r in results["methods"].items()
      for k, v in evaluation.summary_row(r["overall"]).items() if v is not None and k in (
          "F1", "AUROC", "AUPRC", "Aff-F1")})
  writer.close()
  return results


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
