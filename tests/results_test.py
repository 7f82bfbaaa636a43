"""Safe resume: a workdir remembers its config; a rerun with another one stops before any work."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from configs import synthetic as synthetic_config
from mlts import results, studies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**training):
  config = ml_collections.ConfigDict({"seed": 0, "resume_mismatch": "error",
                                      "training": {"loss": "mse", "log_every": 10, **training},
                                      "model": {"hidden": (8, 16)}})
  return config


def test_differences_skip_result_neutral_fields_and_see_absent_ones():
  a, b = _config(), _config(loss="gwnr", log_every=99)
  assert results.config_differences(a, b) == {"training.loss": ("mse", "gwnr")}
  c = _config()
  c.model.hidden = (8,)
  c.extra = 1
  assert results.config_differences(a, c) == {"extra": ("<absent>", 1),
                                               "model.hidden": ([8, 16], [8])}


def test_start_run_records_checks_and_allows_with_a_record(tmp_path):
  workdir = str(tmp_path / "w")
  first = results.start_run(_config(), workdir)
  assert not first.resumed and not first.mismatches
  open(os.path.join(workdir, "metrics.json"), "w").close()  # the run produced results
  assert json.load(open(os.path.join(workdir, "config.json")))["training"]["loss"] == "mse"
  assert results.start_run(_config(log_every=1), workdir).resumed  # neutral field: fine
  with pytest.raises(results.ConfigMismatchError,
                     match=r'(?s)1 field\(s\) differ.*training.loss: "mse" -> "gwnr".*'
                           r"--config.resume_mismatch=allow"):
    results.start_run(_config(loss="gwnr"), workdir)
  assert json.load(open(os.path.join(workdir, "config.json")))["training"]["loss"] == "mse"
  allowed = _config(loss="gwnr")
  allowed.resume_mismatch = "allow"
  run = results.start_run(allowed, workdir)
  assert run.mismatches == {"training.loss": ("mse", "gwnr")}
  assert results.facts(run)["resume_mismatch"] == {"training.loss": ["mse", "gwnr"]}
  log = json.load(open(os.path.join(workdir, "resume_log.json")))
  assert log[0]["differences"] == {"training.loss": ["mse", "gwnr"]}
  bad = _config()
  bad.resume_mismatch = "sometimes"
  with pytest.raises(ValueError, match="resume_mismatch must be one of"):
    results.start_run(bad, workdir)


def test_checkpoints_without_a_config_are_refused(tmp_path):
  os.makedirs(tmp_path / "w" / "checkpoints" / "10")
  with pytest.raises(results.ConfigMismatchError, match="config.json"):
    results.start_run(_config(), str(tmp_path / "w"))


def test_changed_loss_and_postprocess_stop_a_rerun_before_any_work(tmp_path):
  """The issue's case: an MSE workdir rerun with loss=gwnr, postprocess=arks."""
  config = synthetic_config.get_config("tiny")
  workdir = str(tmp_path / "w")
  studies.run(config, workdir)
  stamp = {f: os.path.getmtime(os.path.join(workdir, f)) for f in ("metrics.json", "config.json")}
  changed = synthetic_config.get_config("tiny")
  changed.training.loss = "gwnr"
  changed.postprocess.name = "arks"
  with pytest.raises(results.ConfigMismatchError) as err:
    studies.run(changed, workdir)
  assert "training.loss" in str(err.value) and "postprocess.name" in str(err.value)
  assert stamp == {f: os.path.getmtime(os.path.join(workdir, f)) for f in stamp}
  changed.resume_mismatch = "allow"
  out = studies.run(changed, workdir)
  assert out["resume_mismatch"]["training.loss"] == ["mse", "gwnr"]
  assert "conv_ae+gwnr+arks" in out["methods"]


def test_csv_route_from_the_command_line(tmp_path):
  """configs/csv.py on the shipped pump.csv: results carry the file name, never 'SMAP'."""
  workdir = str(tmp_path / "pump")
  cmd = [sys.executable, "-m", "experiments.main", "--config=configs/csv.py:tiny",
         "--config.data.path=mlts/data/examples/pump.csv", "--config.data.label_column=label",
         "--config.data.timestamp_column=timestamp", "--config.data.train_until=2000",
         f"--workdir={workdir}"]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  report = json.load(open(os.path.join(workdir, "metrics.json")))
  assert report["dataset"] == "pump.csv" and report["protocol"]["channels"] == ["pump.csv"]
  assert set(report["methods"]) == {"conv_ae", "abs_telemetry", "random"}
  scores = np.load(os.path.join(workdir, "scores.npz"))
  assert scores["labels"].shape == (2000,) and scores["labels"].sum() == 300
  assert open(os.path.join(workdir, "metrics.md")).read().startswith("# pump.csv")
  # A typo in a path is named before any work.
  bad = cmd[:4] + ["--config.data.path=nope.csv", "--config.data.train_until=2000",
                   f"--workdir={tmp_path / 'bad'}"]
  out = subprocess.run(bad, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode != 0 and "nope.csv" in out.stderr


def test_a_run_that_produced_nothing_does_not_lock_its_workdir(tmp_path):
  """A typo in data.path fails before any work; the corrected rerun is not refused."""
  from configs import csv as csv_config
  config = csv_config.get_config("tiny")
  config.data.path = str(tmp_path / "typo.csv")
  config.data.train_until = "2000"
  workdir = str(tmp_path / "w")
  with pytest.raises(FileNotFoundError, match="typo.csv"):
    studies.run(config, workdir)
  fixed = results.start_run(_config(), workdir)  # another config, nothing produced yet
  assert not fixed.mismatches
  assert json.load(open(os.path.join(workdir, "config.json")))["training"]["loss"] == "mse"
  os.makedirs(os.path.join(workdir, "checkpoints", "5"))
  open(os.path.join(workdir, "checkpoints", "5", "x"), "w").close()
  with pytest.raises(results.ConfigMismatchError):  # now there is work to protect
    results.start_run(_config(loss="gwnr"), workdir)
