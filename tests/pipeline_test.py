"""End-to-end tests of config -> train -> score -> metrics -> files, and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import synthetic as synthetic_config
from mlts import reconstruction, studies
from mlts.models import conv_ae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRIC_KEYS = {"pointwise", "point_adjusted", "event", "auroc", "auprc", "best_f1_oracle",
               "best_f1_pa_oracle", "affiliation", "range_auc", "vus", "fpr_at_95tpr"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = synthetic_config.get_config("tiny")
  return workdir, config, studies.run(config, workdir)


def test_outputs_written(tiny_run):
  workdir, config, results = tiny_run
  for name in ("config.json", "metrics.json", "metrics.md", "scores.npz", "scores.png",
               "logs/metrics.jsonl"):
    assert os.path.isfile(os.path.join(workdir, name)), name
  assert os.path.isdir(os.path.join(workdir, "checkpoints", str(config.training.num_steps)))
  with open(os.path.join(workdir, "metrics.json")) as f:
    saved = json.load(f)
  assert set(saved["methods"]) == {"conv_ae", "abs_telemetry", "random"}
  for method in saved["methods"].values():
    assert METRIC_KEYS <= set(method["overall"])
    assert set(method["per_channel"]) == {"syn-0", "syn-1"}
    for channel in method["per_channel"].values():
      assert METRIC_KEYS <= set(channel)
  with np.load(os.path.join(workdir, "scores.npz")) as z:
    n = int(z["series_lengths"].sum())
    assert z["labels"].shape == (n,) and z["scores/conv_ae"].shape == (n,)
    # The stored predictions are the stored scores against per-channel thresholds, and
    # the reported pointwise metrics are those of the stored predictions.
    preds = z["preds/conv_ae"]
    tp = int(((preds == 1) & (z["labels"] == 1)).sum())
    reported = saved["methods"]["conv_ae"]["overall"]["pointwise"]
    assert reported["recall"] == pytest.approx(tp / z["labels"].sum())
    # The saved per-series thresholds (drawn in scores.png) are the ones that made them.
    ends = np.cumsum(z["series_lengths"])
    for k, (lo, hi) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends)):
      thr = z["thresholds/conv_ae"][k]
      assert thr == pytest.approx(saved["methods"]["conv_ae"]["per_channel"][
          str(z["channels"][k])]["threshold"])
      np.testing.assert_array_equal(preds[lo:hi], z["scores/conv_ae"][lo:hi] >= thr)
  assert json.load(open(os.path.join(workdir, "config.json")))["data"]["window"] == 32


def test_rerun_resumes_and_reproduces(tiny_run):
  workdir, config, results = tiny_run
  again = studies.run(config, workdir)  # restores the final checkpoint
  assert again["methods"]["conv_ae"]["summary"] == results["methods"]["conv_ae"]["summary"]
  lines = open(os.path.join(workdir, "logs", "metrics.jsonl")).read().splitlines()
  trained_steps = [json.loads(x)["step"] for x in lines if "train_loss" in x]
  assert len(trained_steps) == len(set(trained_steps))  # no step trained twice


def test_bad_config_fails_before_work(tmp_path):
  config = synthetic_config.get_config("tiny")
  config.data.window = 30  # not a multiple of 2 ** len(hidden) = 4
  config.model.conv_ae.hidden = (8, 8)
  with pytest.raises(ValueError, match="cannot take data.window=30.*multiple of 4"):
    studies.run(config, str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w")
  config = synthetic_config.get_config("tiny")
  config.data.dataset = "smap"
  config.data.channels = "A-1,Z-9"
  with pytest.raises(ValueError, match=r"unknown SMAP channel\(s\) \['Z-9'\]"):
    studies.run(config, str(tmp_path / "w2"))


def test_network_compiles_once_for_all_series():
  model = conv_ae.ConvAutoencoder(num_features=1, hidden=(4,), latent=2, revin=True)
  params = model.init(jax.random.key(0), np.zeros((1, 16, 1), np.float32))["params"]
  counted = chex.assert_max_traces(lambda variables, x: model.apply(variables, x), n=1)
  run = reconstruction.make_batched_apply(counted, 8)
  rng = np.random.default_rng(0)
  series = [rng.normal(size=(n, 1)) for n in (10, 16, 57, 200)]  # short ones are padded
  recon = reconstruction.reconstruct_series(run, params, series, 16, 4)
  assert [r.shape for r in recon] == [s.shape for s in series]
  # The same windows through one direct call give the same aggregated result.
  direct = model.apply({"params": params}, np.stack([series[1][:, :]]).astype(np.float32))
  np.testing.assert_allclose(recon[1], np.asarray(direct[0]), rtol=1e-5, atol=1e-5)


def _main(workdir, num_steps):
  return [sys.executable, "-m", "experiments.main", "--config=configs/synthetic.py:tiny",
          f"--workdir={workdir}", f"--config.training.num_steps={num_steps}",
          "--config.training.checkpoint_every=50", "--config.training.log_every=50",
          "--config.eval.per_channel=False"]


def _final_params(workdir, step):
  restored = ocp.StandardCheckpointer().restore(
      os.path.join(workdir, "checkpoints", str(step), "default"))
  return restored["params"]


def test_killed_process_resumes_to_the_same_parameters(tmp_path):
  num_steps = 600
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
  subprocess.run(_main(full, num_steps), cwd=ROOT, env=env, check=True, capture_output=True)
  proc = subprocess.Popen(_main(cut, num_steps), cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    steps = [int(d) for d in os.listdir(os.path.join(cut, "checkpoints"))
             if d.isdigit()] if os.path.isdir(os.path.join(cut, "checkpoints")) else []
    if steps:
      proc.send_signal(signal.SIGKILL)  # no chance to clean up, like a lost machine
      break
    time.sleep(0.005)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
  assert not os.path.exists(os.path.join(cut, "metrics.json"))
  subprocess.run(_main(cut, num_steps), cwd=ROOT, env=env, check=True, capture_output=True)
  chex.assert_trees_all_close(_final_params(cut, num_steps), _final_params(full, num_steps),
                              rtol=1e-6, atol=1e-7)
  a = json.load(open(os.path.join(full, "metrics.json")))["methods"]["conv_ae"]["summary"]
  b = json.load(open(os.path.join(cut, "metrics.json")))["methods"]["conv_ae"]["summary"]
  assert a == pytest.approx(b)
