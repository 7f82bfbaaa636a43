"""The reproduction driver end to end on a tiny budget, its resume, and its index."""

import json
import os
import subprocess
import sys

import pytest

from experiments import reproduce
from experiments import reproduction_index as index

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _row_line(table: str, row_id: str) -> list[str]:
  line = next(line for line in table.splitlines() if line.startswith(f"| {row_id} |"))
  return [c.strip() for c in line.strip("|").split(" | ")]


def test_the_driver_runs_two_rows_resumes_and_writes_the_table(tmp_path):
  workdir, output = str(tmp_path / "runs"), str(tmp_path / "REPRODUCTION.md")
  args = [sys.executable, "-m", "experiments.reproduce", "--budget=tiny",
          f"--workdir={workdir}", "--only=vae-beta,vae-ae", f"--output={output}"]
  first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stdout + first.stderr
  assert "[1/1] vae_synthetic: done in" in first.stdout and "ETA" in first.stdout
  run_dir = os.path.join(workdir, "tiny", "vae_synthetic")
  marker = json.load(open(os.path.join(run_dir, reproduce.MARKER)))
  assert marker["config"] == "configs/vae_synthetic.py:tiny" and marker["seconds"] > 0
  assert os.path.isfile(os.path.join(run_dir, "run.log"))

  # The two rows hold the values of the run's own results.json, formatted.
  table = open(output).read()
  models = json.load(open(os.path.join(run_dir, "results.json")))["models"]
  for row_id, key in (("vae-beta", "beta_vae"), ("vae-ae", "ae")):
    cells = _row_line(table, row_id)
    m = models[key]
    assert cells[3] == (f"AUROC {m['auroc_mean']:.3f} ± {m['auroc_std']:.3f}, AUPRC "
                        f"{m['auprc_mean']:.3f} ± {m['auprc_std']:.3f}")
    assert cells[4] == "vae_synthetic · `results.json`"
  assert _row_line(table, "vae-beta")[2] == "AUROC 0.91, AUPRC 0.63"  # the paper's value
  # Every other row says why it has no value; the index lists all of them.
  assert _row_line(table, "vaegan-t2-wafer")[3] == "not run"
  assert _row_line(table, "cognos-t1-smap")[3] == "no tiny variant"
  assert _row_line(table, "vaegan-t1-mitbih")[3] == "not reproducible here"
  assert len([r for r in index.ROWS if f"| {r.id} |" in table]) == len(index.ROWS)
  assert "| vae_synthetic | `configs/vae_synthetic.py` | " in table

  # A rerun skips the finished run and regenerates the same rows.
  second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert second.returncode == 0, second.stdout + second.stderr
  assert "vae_synthetic] already finished at budget tiny: skipped" in second.stdout
  assert _row_line(open(output).read(), "vae-beta") == _row_line(table, "vae-beta")


def test_a_failed_run_is_reported_and_not_marked(tmp_path):
  broken = index.Run("broken", "configs/no_such_config.py", 1.0)
  lines = []
  status = reproduce.run_all(str(tmp_path), "quick", [broken], echo=lines.append)
  assert status == {"broken": "failed"}
  assert "FAILED" in lines[-1] and "run.log" in lines[-1]
  assert not os.path.exists(tmp_path / "quick" / "broken" / reproduce.MARKER)
  assert "no_such_config" in open(tmp_path / "quick" / "broken" / "run.log").read()


def test_a_marker_from_another_config_stops_the_driver(tmp_path):
  run = index.RUNS_BY_NAME["vae_synthetic"]
  path = tmp_path / "quick" / run.name
  path.mkdir(parents=True)
  (path / reproduce.MARKER).write_text(json.dumps({"config": "configs/vae_synthetic.py:tiny"}))
  with pytest.raises(ValueError, match="records config .*vae_synthetic.py:tiny"):
    reproduce.finished(str(tmp_path), "quick", run)
  (path / reproduce.MARKER).write_text("{not json")
  with pytest.raises(ValueError, match="unreadable run marker"):
    reproduce.finished(str(tmp_path), "quick", run)


def test_selection_and_the_index_are_consistent():
  rows, runs = index.select(["vae-beta", "cognos_msl"])
  assert [r.id for r in rows] == [r.id for r in index.ROWS
                                  if r.id == "vae-beta" or r.run == "cognos_msl"]
  assert [r.name for r in runs] == ["vae_synthetic", "cognos_msl"]
  with pytest.raises(ValueError, match="unknown run or row nope"):
    index.select(["nope"])
  assert len({r.id for r in index.ROWS}) == len(index.ROWS)  # ids are unique
  for row in index.ROWS:  # every row names a real run and a real config
    if row.run is not None:
      run = index.RUNS_BY_NAME[row.run]
      assert os.path.isfile(os.path.join(ROOT, run.config)), run.config
  with pytest.raises(ValueError, match="no 'tiny' variant"):
    index.RUNS_BY_NAME["cognos_smap"].config_arg("tiny")
