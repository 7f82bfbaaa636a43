"""Tests of the paper-003 β-VAE example: generator, tiny run, scores, notebook."""

import os

import jax.numpy as jnp
import nbclient
import nbformat
import numpy as np
import pytest

from configs import vae_synthetic
from mlts.studies import vae_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_generator_is_seeded_with_two_percent_anomalies():
  x, y = vae_example.generate_time_series(3)
  x2, y2 = vae_example.generate_time_series(3)
  x3, _ = vae_example.generate_time_series(4)
  assert x.shape == (5000, 5) and x.dtype == np.float32 and y.shape == (5000,)
  np.testing.assert_array_equal(x, x2)
  np.testing.assert_array_equal(y, y2)
  assert not np.array_equal(x, x3)
  assert int(y.sum()) == 100  # int(0.02 * 5000)
  # Anomalous steps are shifted by about +3 on every feature.
  assert x[y == 1].mean() > 2.0 and abs(x[y == 0].mean()) < 0.2


def test_config_variants():
  for variant in ("", "quick", "tiny"):
    config = vae_synthetic.get_config(variant)
    assert config.latent == 3 and config.beta == 2.0
  with pytest.raises(ValueError, match="unknown variant"):
    vae_synthetic.get_config("huge")


def test_tiny_run_gives_finite_metrics_in_unit_interval():
  config = vae_synthetic.get_config("tiny")
  result = vae_example.run_example(config)
  assert set(result["models"]) == {"beta_vae", "ae"}
  for r in result["models"].values():
    assert set(r["per_seed"]) == set(config.seeds)
    for m in r["per_seed"].values():
      for v in (m["auroc"], m["auprc"]):
        assert np.isfinite(v) and 0.0 <= v <= 1.0
    assert all(np.isfinite(v) for v in r["summary"].values())
  grid = vae_example.run_grid(config)
  assert len(grid["cells"]) == len(config.grid.latents) * len(config.grid.betas)
  assert grid["selected"] in grid["cells"]
  assert "β-VAE" in vae_example.markdown_tables(result, grid)


def test_beta_vae_score_is_recon_plus_kl_by_hand():
  config = vae_synthetic.get_config("tiny")
  split = vae_example.make_splits(config, 0)
  model, params, losses = vae_example.train_model("beta_vae", split["x_train"], config, seed=0)
  assert losses.shape == (config.epochs,) and np.all(np.isfinite(losses))
  x = split["x_test"]
  scores = vae_example.score("beta_vae", model, params, x)
  i = int(np.argmax(split["y_test"]))  # one anomalous step
  p = params["params"]

  def dense(name, h):
    return np.asarray(h) @ np.asarray(p[name]["kernel"]) + np.asarray(p[name]["bias"])

  h = x[i].astype(np.float64)
  for j in range(len(config.vae_hidden)):
    h = np.maximum(dense(f"enc_{j}", h), 0.0)
  mu, logvar = dense("mu_head", h), dense("logvar_head", h)
  z = mu
  for j in range(len(config.vae_hidden)):
    z = np.maximum(dense(f"dec_{j}", z), 0.0)
  recon = dense(f"dec_{len(config.vae_hidden)}", z)
  expected = np.mean((x[i] - recon) ** 2) + np.sum(-0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)))
  np.testing.assert_allclose(scores[i], expected, rtol=1e-4, atol=1e-5)
  # The AE score is the plain mean squared reconstruction error.
  ae, ae_params, _ = vae_example.train_model("ae", split["x_train"], config, seed=0)
  ae_scores = vae_example.score("ae", ae, ae_params, x)
  ae_recon = np.asarray(ae.apply(ae_params, jnp.asarray(x[i:i + 1])))[0]
  np.testing.assert_allclose(ae_scores[i], np.mean((x[i] - ae_recon) ** 2), rtol=1e-4, atol=1e-6)


def test_vae_synthetic_notebook_runs():
  nb = nbformat.read(os.path.join(ROOT, "colab", "vae_synthetic.ipynb"), as_version=4)
  params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
  assert len(params) == 1
  params[0].source = "TINY = True"
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": ROOT}})
  client.execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  assert not [o for o in outputs if o.output_type == "error"]
  shown = [o for o in outputs if o.output_type == "display_data"]
  assert any("text/markdown" in o.data and "β-VAE" in o.data["text/markdown"] for o in shown)
  assert any("image/png" in o.data for o in shown)


def test_main_entry_writes_tables(tmp_path):
  import json

  from mlts import studies
  config = vae_synthetic.get_config("tiny")
  config.seeds = (0,)
  config.grid.latents = (2,)
  results = studies.run(config, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved == json.loads(json.dumps(results))
  assert set(saved["models"]) == {"beta_vae", "ae"}
  assert saved["grid_selected"][0] == 2 and len(saved["grid"]) == 2
  assert "β-VAE" in (tmp_path / "tables.md").read_text()
