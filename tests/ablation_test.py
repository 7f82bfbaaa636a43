"""The COGNOS ablation grid end to end on the tiny synthetic setting."""

import json
import os

import numpy as np
import pytest

from configs import cognos_synthetic
from mlts import studies
from mlts.studies import cognos_ablation as ablation


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("ablation"))
  config = cognos_synthetic.get_config("tiny")
  return workdir, config, studies.run(config, workdir)


def test_every_cell_is_reported(grid_run):
  workdir, config, results = grid_run
  grid = config.ablation
  expected = {f"{b}/{loss}/{p}" for b in grid.backbones for loss in grid.losses
              for p in grid.postprocess} | {"abs_telemetry", "random"}
  assert set(results["methods"]) == expected
  saved = json.load(open(os.path.join(workdir, "ablation.json")))
  assert set(saved["methods"]) == expected
  table = open(os.path.join(workdir, "ablation.md")).read()
  first = table.split("\n## ")[0]  # the grid; the cost and sensitivity tables follow
  assert len([line for line in first.splitlines() if line.startswith("| ")]) == len(expected) + 1
  assert "## Cost per model" in table and "## ARKS confidence sensitivity" in table
  for name in ("residuals.png", "arks_trace.png", "scores.npz", "config.json",
               "confidence.png"):
    assert os.path.isfile(os.path.join(workdir, name)), name
  for b in grid.backbones:
    for loss in grid.losses:
      steps = os.listdir(os.path.join(workdir, f"{b}_{loss}", "checkpoints"))
      assert str(config.training.num_steps) in steps


def test_cost_and_the_confidence_sweep(grid_run):
  workdir, config, results = grid_run
  grid = config.ablation
  assert set(results["cost"]) == {f"{b}/{loss}" for b in grid.backbones for loss in grid.losses}
  for c in results["cost"].values():
    assert c["ms_per_step"] > 0 and c["train_seconds"] > 0 and c["score_ms_per_point"] > 0
  sweep = results["confidence_sweep"]
  assert (sweep["backbone"], sweep["loss"]) == (grid.backbones[0], grid.losses[-1])
  assert list(sweep["summary"]) == [f"{c:g}" for c in grid.confidences]
  # At the config's own confidence the sweep is the grid's ARKS cell, metric for metric.
  cell = results["methods"][f"{grid.backbones[0]}/{grid.losses[-1]}/arks"]["summary"]
  assert sweep["summary"][f"{config.postprocess.confidence:g}"] == cell
  # Another confidence changes the scores (the breaker fires at another NIS).
  assert sweep["summary"][f"{grid.confidences[0]:g}"] != cell


def test_cells_differ_where_they_should(grid_run):
  workdir, config, _ = grid_run
  with np.load(os.path.join(workdir, "scores.npz")) as z:
    b = config.ablation.backbones[0]
    mse_none, gwnr_none = z[f"scores/{b}/mse/none"], z[f"scores/{b}/gwnr/none"]
    mse_arks = z[f"scores/{b}/mse/arks"]
  assert not np.allclose(mse_none, gwnr_none)  # GWNR trained a different model
  assert not np.allclose(mse_none, mse_arks)  # ARKS changed the scores
  assert (mse_none >= 0).all() and (mse_arks >= 0).all()  # squared estimates


def test_sub_config_leaves_the_grid_config_alone():
  config = cognos_synthetic.get_config("tiny")
  cell = ablation.sub_config(config, "lstm_ae", "gwnr", "arks")
  assert (cell.model.name, cell.training.loss, cell.postprocess.name) == (
      "lstm_ae", "gwnr", "arks")
  assert (config.model.name, config.training.loss, config.postprocess.name) == (
      "conv_ae", "mse", "none")
