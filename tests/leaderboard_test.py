"""The leaderboard study end to end on the tiny config (two SMAP channels)."""

import json
import os

import numpy as np
import pytest

from configs import leaderboard_base, leaderboard_msl, leaderboard_smap
from mlts import detectors
from mlts.studies import leaderboard

KEYS = {"auroc", "auprc", "vus_roc", "vus_pr", "f1", "event_f1", "aff_f1", "pa_f1"}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("leaderboard"))
  config = leaderboard_smap.get_config("tiny")
  return workdir, config, leaderboard.run(config, workdir)


def test_every_method_has_the_required_blocks_and_the_table_is_sorted(board):
  workdir, config, out = board
  with open(os.path.join(workdir, "leaderboard.json")) as f:
    saved = json.load(f)
  assert saved["dataset"] == "SMAP" and saved["protocol"]["channels"] == 2
  assert set(saved["methods"]) == set(config.methods) | {"random"}
  for name, m in saved["methods"].items():
    assert m["kind"] in ("baseline", "learned", "reference"), name
    assert KEYS <= set(m["per_channel_mean"]) and KEYS <= set(m["pooled"]), name
    assert m["fit_seconds"] >= 0 and m["score_seconds"] >= 0
  vus = [m["per_channel_mean"]["vus_pr"] for m in saved["methods"].values()]
  assert vus == sorted(vus, reverse=True)
  table = open(os.path.join(workdir, "leaderboard.md")).read()
  rows = [line.split("|")[1].strip() for line in table.splitlines()
          if line.startswith("| ") and "|---" not in line][1:]
  assert rows[:len(vus)] == list(saved["methods"])  # the markdown follows the JSON order


def test_per_channel_block_is_the_mean_of_the_channels(board):
  workdir, _, out = board
  with open(os.path.join(workdir, "methods", "knn_w64.json")) as f:
    entry = json.load(f)
  values = [c["auprc"] for c in entry["per_channel"].values()]
  assert len(values) == 2
  assert entry["per_channel_mean"]["auprc"] == pytest.approx(np.mean(values))
  assert out["methods"]["random"]["pooled"]["auroc"] == pytest.approx(0.5, abs=0.05)


def test_a_rerun_skips_finished_methods(board, monkeypatch):
  workdir, config, out = board
  def refuse(*args, **kwargs):
    raise AssertionError("a finished method was run again")
  monkeypatch.setattr(leaderboard, "run_method", refuse)
  again = leaderboard.run(config, workdir)
  assert again["methods"].keys() == out["methods"].keys()
  for name in out["methods"]:
    assert again["methods"][name]["pooled"] == out["methods"][name]["pooled"]


def test_one_set_of_defaults_for_both_spacecraft():
  smap, msl = leaderboard_smap.get_config("quick"), leaderboard_msl.get_config("quick")
  assert smap.methods.to_dict() == msl.methods.to_dict()
  assert smap.eval.to_dict() == msl.eval.to_dict()
  assert smap.dynamic.to_dict() == msl.dynamic.to_dict()
  with pytest.raises(ValueError, match="unknown variant"):
    leaderboard_base.get_config("smap", "huge")


def test_a_bad_method_is_refused_before_anything_runs(tmp_path):
  config = leaderboard_smap.get_config("tiny")
  config.methods.knn_w64.options.windw = 3
  with pytest.raises(ValueError, match="windw"):
    leaderboard.run(config, str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, "methods"))
  config = leaderboard_smap.get_config("tiny")
  config.methods.knn_w64.detector = "knn"
  with pytest.raises(ValueError, match="methods.knn_w64.detector"):
    leaderboard.run(config, str(tmp_path))


def test_every_quick_method_builds_a_detector():
  config = leaderboard_smap.get_config("quick")
  for name, method in config.methods.items():
    det = detectors.create(method.detector, **leaderboard._options(method, config))
    assert det.config.score_normalization == "validation", name


def test_the_recommended_detector_is_the_boards_method():
  """`detectors.create('recommended')` has the settings of the board's row it was picked from."""
  method = leaderboard_smap.get_config("quick").methods.mlp_ae_pc_window_error
  picked = detectors.create(method.detector, **method.options.to_dict())
  recommended = detectors.create("recommended")
  assert recommended.name == picked.name
  assert recommended.config.to_dict() == picked.config.to_dict()


def test_labelled_head_splits_each_test_series_once():
  from mlts.data import series as series_lib
  s = series_lib.Series("a", np.zeros((50, 1)), np.arange(10.0)[:, None],
                        np.array([0, 1, 0, 0, 0, 0, 0, 1, 1, 0], np.int8))
  heads, tails = leaderboard.split_labelled_head([s], 0.3)
  np.testing.assert_array_equal(heads[0][0][:, 0], [0, 1, 2])
  np.testing.assert_array_equal(heads[0][1], [0, 1, 0])
  np.testing.assert_array_equal(tails[0].test[:, 0], np.arange(3.0, 10.0))
  np.testing.assert_array_equal(tails[0].labels, s.labels[3:])
  assert leaderboard.split_labelled_head([s], 0.0) == (None, [s])


def test_the_labelled_board_fits_the_svm_on_heads_and_scores_every_method_on_tails(tmp_path):
  config = leaderboard_smap.get_config("tiny_labelled")
  assert config.labelled_head == 0.3 and config.methods.vaegan_svm.labelled
  config.methods = {k: config.methods[k] for k in ("abs_value", "vaegan_svm")}
  out = leaderboard.run(config, str(tmp_path))
  assert "first 30%" in out["protocol"]["labelled_head"]
  from mlts.data import series as series_lib
  _, series = series_lib.load_series(config.data)
  tail_steps = sum(s.test.shape[0] - int(round(s.test.shape[0] * 0.3)) for s in series)
  for name, labelled in (("abs_value", False), ("vaegan_svm", True), ("random", None)):
    with open(os.path.join(tmp_path, "methods", f"{name}.json")) as f:
      entry = json.load(f)
    assert entry.get("labelled") is labelled
    # Every method, labelled or not, is evaluated on the same tails.
    assert entry["pooled"]["num_points"] == tail_steps
  config.labelled_head = 0.0
  with pytest.raises(ValueError, match="labelled_head is 0"):
    leaderboard.validate_config(config)
