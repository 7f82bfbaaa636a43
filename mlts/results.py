"""Run set-up and result files shared by every study: safe resume, config.json, outputs.

`start_run(config, workdir)` is the first thing a study does: it creates the
workdir and makes sure the workdir's results can only come from one config. A
workdir remembers the config it was made with (`config.json`); a rerun whose
config differs in any field that can change training or scoring stops before
any work with `ConfigMismatchError`, listing the fields. Fields that cannot
change a result (`RESULT_NEUTRAL`: logging and checkpoint intervals, plot
counts) may differ. `--config.resume_mismatch=allow` resumes anyway; the
differences are then recorded in `resume_log.json` and in the results
(`facts(run)`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from mlts import sharding

CONFIG_FILE = "config.json"
RESUME_LOG = "resume_log.json"
# Leaf names of config fields that cannot change what a run trains or reports.
RESULT_NEUTRAL = frozenset({"log_every", "eval_every", "checkpoint_every", "max_checkpoints",
                            "num_plot_series", "resume_mismatch"})
MISMATCH_MODES = ("error", "allow")


class ConfigMismatchError(ValueError):
  """A workdir was made with another config than the one it is rerun with."""


@dataclasses.dataclass(frozen=True)
class Run:
  """What `start_run` learned about a workdir.

  Attributes:
    workdir: the directory.
    resumed: whether it already held a config (a rerun).
    mismatches: {field: (old, new)} accepted with resume_mismatch='allow'.
  """
  workdir: str
  resumed: bool
  mismatches: dict[str, tuple[Any, Any]]


def _plain(config) -> dict:
  """A config (ConfigDict or dict) as plain JSON values (tuples become lists)."""
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort())
  return json.loads(json.dumps(config, default=str))


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and value:
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


_MISSING = "<absent>"


def config_differences(old, new, *, neutral=RESULT_NEUTRAL) -> dict[str, tuple[Any, Any]]:
  """Fields whose values differ between two configs, result-neutral fields left out.

  Args:
    old, new: ConfigDicts or plain dicts.
    neutral: leaf names that may differ.

  Returns:
    {dotted field: (old value, new value)}, '<absent>' for a field one side lacks.
  """
  a, b = flatten(_plain(old)), flatten(_plain(new))
  out = {}
  for key in sorted(set(a) | set(b)):
    if key.rsplit(".", 1)[-1] in neutral:
      continue
    va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
    if va != vb:
      out[key] = (va, vb)
  return out


def describe_differences(diffs: dict[str, tuple[Any, Any]], limit: int = 20) -> str:
  """One line per differing field: 'training.loss: mse -> gwnr'."""
  lines = [f"  {k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in
           list(diffs.items())[:limit]]
  if len(diffs) > limit:
    lines.append(f"  ... and {len(diffs) - limit} more")
  return "\n".join(lines)


def start_run(config: ml_collections.ConfigDict, workdir: str) -> Run:
  """Creates `workdir` and records or checks its config (see the module docstring).

  Raises:
    ConfigMismatchError: the workdir holds results of a different config (or
      checkpoints without a config.json) and `config.resume_mismatch` is not
      'allow'. Nothing is written then.
    ValueError: an unknown `resume_mismatch` mode.
  """
  mode = config.get("resume_mismatch", "error")
  if mode not in MISMATCH_MODES:
    raise ValueError(f"resume_mismatch must be one of {MISMATCH_MODES}, got {mode!r}")
  _make_dir(workdir)
  path = os.path.join(workdir, CONFIG_FILE)
  diffs: dict[str, tuple[Any, Any]] = {}
  resumed = os.path.exists(path)
  if resumed:
    try:
      with open(path) as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
      raise ConfigMismatchError(
          f"{path} cannot be read ({err}); the workdir's config is unknown. Use a new "
          "--workdir, or pass --config.resume_mismatch=allow to overwrite it") from err
    diffs = config_differences(old, config)
  elif os.path.isdir(os.path.join(workdir, "checkpoints")) and os.listdir(
      os.path.join(workdir, "checkpoints")):
    diffs = {CONFIG_FILE: (_MISSING, "this run's config")}
  if diffs and resumed and not _holds_work(workdir):
    # A run that stopped before producing anything (a typo in a data path, say): nothing
    # can be mixed up, so the new config simply replaces the old one.
    diffs, resumed = {}, False
  if diffs and mode != "allow":
    raise ConfigMismatchError(
        f"{workdir} was made with a different config; {len(diffs)} field(s) differ "
        f"(workdir -> this run):\n{describe_differences(diffs)}\nIts checkpoints and results "
        "belong to the old config. Use a new --workdir, or pass "
        "--config.resume_mismatch=allow to resume anyway (recorded in the outputs).")
  if diffs:
    log_path = os.path.join(workdir, RESUME_LOG)
    log = []
    if os.path.exists(log_path):
      with open(log_path) as f:
        log = json.load(f)
    log.append({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "differences": {k: list(v) for k, v in diffs.items()}})
    write_json(log_path, log)
  sharding.sync(f"start_run {workdir} read")  # no process reads while process 0 writes
  if (diffs or not resumed) and jax.process_index() == 0:
    with open(path, "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  sharding.sync(f"start_run {workdir}")  # every process has read the old config
  return Run(workdir=workdir, resumed=resumed, mismatches=diffs)


# What a workdir may hold before a run has produced anything.
_SET_UP_ONLY = frozenset({CONFIG_FILE, RESUME_LOG, "logs"})


def _holds_work(workdir: str) -> bool:
  """Whether the workdir holds checkpoints or results (anything beyond config and logs)."""
  for name in os.listdir(workdir):
    if name in _SET_UP_ONLY:
      continue
    path = os.path.join(workdir, name)
    if os.path.isdir(path) and not any(files for _, _, files in os.walk(path)):
      continue  # an empty directory (e.g. checkpoints/ before the first save)
    return True
  return False


def _make_dir(workdir: str) -> None:
  """Creates the workdir, or says in one line why it cannot be one."""
  probe = os.path.abspath(workdir)
  while probe and not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if probe and not os.path.isdir(probe):
    what = "is a file" if probe == os.path.abspath(workdir) else f"lies under the file {probe}"
    raise ValueError(f"workdir {workdir} {what}, not a directory; choose another --workdir")
  os.makedirs(workdir, exist_ok=True)


def facts(run: Run | None = None) -> dict[str, Any]:
  """The facts every results file carries: devices, and an accepted config mismatch."""
  out: dict[str, Any] = {"devices": [str(d) for d in jax.devices()]}
  if run is not None and run.mismatches:
    out["resume_mismatch"] = {k: list(v) for k, v in run.mismatches.items()}
  return out


def write_json(path: str, obj) -> None:
  """Writes `obj` as indented JSON (only on process 0 of a multi-process run)."""
  if jax.process_index() != 0:
    return
  with open(path, "w") as f:
    json.dump(obj, f, indent=1)


def write_outputs(workdir: str, results: dict, arrays: dict,
                  config: ml_collections.ConfigDict) -> None:
  """Writes metrics.json and scores.npz, then the report (metrics.md, scores.png);
  only process 0 of a multi-process run writes."""
  if jax.process_index() != 0:
    return
  write_json(os.path.join(workdir, "metrics.json"), results)
  np.savez_compressed(os.path.join(workdir, "scores.npz"), **arrays)
  render_report(workdir, results, arrays, num_series=config.eval.num_plot_series)


def render_report(workdir: str, results: dict, arrays, *, num_series: int = 4) -> None:
  """Writes metrics.md and scores.png from the saved results (see experiments/figures.py)."""
  from mlts import evaluation
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
  plots.score_traces(
      os.path.join(workdir, "scores.png"), arrays, num_series=num_series,
      title=f"{results['dataset']}: test scores, per-channel validation thresholds (dashed) and "
            "predicted events (cf. COGNOS Fig. 3 top and Figs. 7–8)")
