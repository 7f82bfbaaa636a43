"""End-to-end test of the generation benchmark runner (tiny sizes)."""

import json

import numpy as np

from configs import generation_sines, generation_stock
from mlts import studies
from mlts.studies import generation


def test_tiny_sines_benchmark_writes_scores_beside_references(tmp_path):
  config = generation_sines.get_config("tiny")
  results = studies.run(config, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["dataset"] == "sines" and saved["num_synthetic"] == 128
  for key in ("discriminative", "predictive"):
    mean, std = saved["diffusion"][key]
    assert np.isfinite(mean) and mean >= 0 and std >= 0
  assert 0.0 <= results["real_halves_discriminative"][0] <= 0.5
  assert saved["published_diffusion_ts"] == {"discriminative": 0.006, "predictive": 0.093}
  samples = np.load(tmp_path / "samples.npz")
  assert samples["synthetic"].shape == (128, 24, 5)
  assert samples["synthetic"].min() >= 0.0 and samples["synthetic"].max() <= 1.0
  assert "Diffusion-TS (published)" in (tmp_path / "tables.md").read_text()


def test_benchmark_windows():
  config = generation_stock.get_config("quick")
  x = generation.load_windows(config)
  assert x.shape == (3685 - 23, 24, 6)
  assert x.min() == 0.0 and x.max() == 1.0
