"""Tests for mlts.vaegan.figures: χ-fit, reconstruction and score-composition figures."""

from __future__ import annotations

import numpy as np
import pytest

from mlts.vaegan import figures


def _png_ok(path) -> bool:
  return path.exists() and path.stat().st_size > 0 and path.read_bytes()[:4] == b"\x89PNG"


def _gaussian_norms(seed: int, std: float, n: int = 5000, dim: int = 6) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.linalg.norm(std * rng.standard_normal((n, dim)), axis=1)


# ----------------------------------------------------------------------------
# chi_figure.


def test_chi_figure_writes_png_and_ks_results(tmp_path):
  path = tmp_path / "sub" / "chi.png"  # the parent directory is created
  norms = {"β = 1e-2": _gaussian_norms(0, 1.0), "β = 0": _gaussian_norms(1, 0.3)}
  res = figures.chi_figure(str(path), norms, 6, bins=40)
  assert _png_ok(path)
  assert list(res) == ["β = 1e-2", "β = 0"]
  assert res["β = 1e-2"]["pvalue"] > 0.01
  assert res["β = 0"]["pvalue"] < 1e-6
  for r in res.values():
    assert r["dim"] == 6 and r["n"] == 5000
    assert 0.0 <= r["statistic"] <= 1.0


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, -0.5, 2.0]), "β = 0"),
    (np.array([1.0, np.nan, 2.0]), "β = 0"),
    (np.ones((3, 2)), "β = 0"),
    (np.array([1.0]), "β = 0"),
])
def test_chi_figure_bad_norms_name_the_label(tmp_path, bad, match):
  norms = {"β = 1": _gaussian_norms(0, 1.0, n=50), "β = 0": bad}
  with pytest.raises(ValueError, match=match):
    figures.chi_figure(str(tmp_path / "chi.png"), norms, 6)
  assert not (tmp_path / "chi.png").exists()


@pytest.mark.parametrize("norms, dim", [({}, 6), ({"a": [1.0, 2.0]}, 0), ({"a": [1.0, 2.0]}, 2.5)])
def test_chi_figure_bad_dict_or_dim(tmp_path, norms, dim):
  with pytest.raises(ValueError):
    figures.chi_figure(str(tmp_path / "chi.png"), norms, dim)


# ----------------------------------------------------------------------------
# reconstruction_figure.


def _windows(seed: int, n: int, length: int = 32, channels: int = 2):
  rng = np.random.default_rng(seed)
  x = rng.uniform(size=(n, length, channels))
  return x, x + 0.05 * rng.standard_normal(x.shape)


def test_reconstruction_figure_writes_png(tmp_path):
  normal, normal_hat = _windows(0, 6)
  abnormal, abnormal_hat = _windows(1, 2)
  path = tmp_path / "recon.png"
  figures.reconstruction_figure(str(path), normal, normal_hat, abnormal, abnormal_hat,
                                title="MITBIH", max_windows=4)
  assert _png_ok(path)


def test_reconstruction_figure_empty_set(tmp_path):
  normal, normal_hat = _windows(0, 3)
  empty = np.zeros((0, 32, 2))
  path = tmp_path / "recon_empty.png"
  figures.reconstruction_figure(str(path), normal, normal_hat, empty, empty)
  assert _png_ok(path)
  path_both = tmp_path / "recon_both_empty.png"
  figures.reconstruction_figure(str(path_both), empty, empty, empty, empty)
  assert _png_ok(path_both)


def test_error_heatmap_writes_png_and_checks_its_input(tmp_path):
  normal, normal_hat = _windows(0, 5)
  abnormal, abnormal_hat = _windows(1, 3)
  path = tmp_path / "heat.png"
  figures.error_heatmap(str(path), normal, normal_hat, abnormal, abnormal_hat)
  assert _png_ok(path)
  empty = np.zeros((0, 32, 2))
  figures.error_heatmap(str(tmp_path / "one.png"), normal, normal_hat, empty, empty)
  assert _png_ok(tmp_path / "one.png")
  with pytest.raises(ValueError, match="no normal and no abnormal"):
    figures.error_heatmap(str(tmp_path / "none.png"), empty, empty, empty, empty)
  with pytest.raises(ValueError, match="abnormal_hat"):
    figures.error_heatmap(str(tmp_path / "bad.png"), normal, normal_hat, abnormal,
                          abnormal_hat[:, :16])


def test_reconstruction_figure_mismatched_shapes(tmp_path):
  normal, normal_hat = _windows(0, 3)
  abnormal, abnormal_hat = _windows(1, 3)
  with pytest.raises(ValueError, match="abnormal_hat"):
    figures.reconstruction_figure(str(tmp_path / "r.png"), normal, normal_hat, abnormal,
                                  abnormal_hat[:, :16])
  with pytest.raises(ValueError, match="normal_hat"):
    figures.reconstruction_figure(str(tmp_path / "r.png"), normal, normal_hat[:2], abnormal,
                                  abnormal_hat)
  with pytest.raises(ValueError, match="normal"):
    figures.reconstruction_figure(str(tmp_path / "r.png"), normal[..., 0], normal_hat[..., 0],
                                  abnormal, abnormal_hat)
  with pytest.raises(ValueError, match="max_windows"):
    figures.reconstruction_figure(str(tmp_path / "r.png"), normal, normal_hat, abnormal,
                                  abnormal_hat, max_windows=0)


# ----------------------------------------------------------------------------
# composition_figure.


def _scores(n: int = 200):
  rng = np.random.default_rng(0)
  labels = (rng.uniform(size=n) < 0.2).astype(np.int8)
  scores = {k: rng.gamma(2.0, size=n) + 2.0 * labels for k in ("R", "D", "L")}
  return scores, labels


@pytest.mark.parametrize("keys", [("R", "D", "L"), ("R", "D"), ("L",)])
def test_composition_figure_writes_png(tmp_path, keys):
  scores, labels = _scores()
  path = tmp_path / f"comp_{''.join(keys)}.png"
  figures.composition_figure(str(path), {k: scores[k] for k in keys}, labels, title="fold 0")
  assert _png_ok(path)


def test_composition_figure_bad_input(tmp_path):
  scores, labels = _scores()
  path = str(tmp_path / "comp.png")
  with pytest.raises(ValueError, match="labels"):
    figures.composition_figure(path, scores, labels[:-1])
  with pytest.raises(ValueError, match="'D'"):
    figures.composition_figure(path, {"R": scores["R"], "D": scores["D"][:-1]}, labels)
  with pytest.raises(ValueError):
    figures.composition_figure(path, {}, labels)
  with pytest.raises(ValueError, match="labels"):
    figures.composition_figure(path, scores, np.full(len(labels), 2))
  bad = scores["R"].copy()
  bad[3] = np.nan
  with pytest.raises(ValueError, match="'R'"):
    figures.composition_figure(path, {"R": bad, "D": scores["D"]}, labels)
