"""The generation benchmark runner (tiny sizes) and the Energy divergence regression."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import generation_energy, generation_etth, generation_sines, generation_stock
from mlts import studies
from mlts.data import transforms
from mlts.diffusion import losses, process, trainer
from mlts.metrics import temporal
from mlts.studies import generation


def test_tiny_sines_benchmark_writes_the_table_beside_floor_and_published(tmp_path):
  config = generation_sines.get_config("tiny")
  config.variants = ("full",)
  results = studies.run(config, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["dataset"] == "sines" and saved["num_synthetic"] == 128
  assert set(saved["variants"]) == {"full"}
  for block in list(saved["variants"].values()) + [saved["floor"], saved["published"]]:
    assert set(block) == set(generation.METRICS)
    for mean, std in block.values():
      assert np.isfinite(mean) and mean >= 0 and std >= 0
  assert saved["published"]["context_fid"] == [0.006, 0.0]
  assert 0.0 <= results["floor"]["discriminative"][0] <= 0.5
  assert saved["details"]["full"]["process"]["num_attenuated"] > 0
  samples = np.load(tmp_path / "samples_full.npz")["synthetic"]
  assert samples.shape == (128, 24, 5) and samples.min() >= 0.0 and samples.max() <= 1.0
  table = (tmp_path / "tables.md").read_text()
  assert "Diffusion-TS (published)" in table and "mlts full" in table
  assert (tmp_path / "windows.png").stat().st_size > 0
  # A rerun reads the finished variants instead of training and scoring them again.
  (tmp_path / "variants" / "full.json").write_text(
      (tmp_path / "variants" / "full.json").read_text().replace('"variant": "full"',
                                                                '"variant": "full", "x": 1'))
  again = studies.run(config, str(tmp_path))
  assert again["details"]["full"]["x"] == 1


def test_benchmark_windows():
  x = generation.load_windows(generation_stock.get_config("quick"))
  assert x.shape == (3685 - 23, 24, 6)
  assert x.min() == 0.0 and x.max() == 1.0
  x = generation.load_windows(generation_etth.get_config("quick"))
  assert x.shape == (17420 - 23, 24, 7)


def test_energy_samples_stay_in_range_with_the_gaussian_residual():
  """Energy regression: the plain U-Net's probability-flow samples diverged (97 % of
  values outside [−1, 1] after 1,500 or 10,000 quick steps, with and without γ; an
  untrained plain network, n̂ = 0, does not denoise at all). The network now learns
  the correction to the exact Gaussian noise predictor, which is what the untrained
  model (zero output layer) predicts: its samples stay in range.

  Second regression: in the per-channel DCT basis that Gaussian is diagonal, so it
  treats Energy's 28 columns as independent, and trained quick models were no
  better (correlational score 5.6, Context-FID 4.0; these untrained samples: 10.9).
  The configs' KLT basis makes it the windows' full-covariance Gaussian, which keeps
  the columns' lag-0 correlations (1.9 here; two real sets of 333 windows: 1.6)."""
  config = generation_energy.get_config("tiny")
  real = generation.load_windows(config)
  real = real[np.random.default_rng(0).choice(real.shape[0], 256, replace=False)]
  scaled = transforms.to_signed(real).astype(np.float32)
  dcfg = trainer.variant_config(config.diffusion, "full")
  assert dcfg.gaussian_residual and dcfg.representation == "klt"
  proc = process.make_process(dcfg, scaled, key=jax.random.key(0))
  assert int(np.asarray(proc.mask).sum()) > 0.5 * 24 * 28  # most components attenuated
  model = trainer.make_network(config.network, 28)
  params = jax.jit(model.init)(jax.random.key(1), jnp.zeros((1, 24, 28)),
                               jnp.zeros((1,)))["params"]
  stats = process.data_stats(proc, scaled)
  residual = trainer.residual_stats(proc, dcfg, scaled)
  xt = jnp.asarray(scaled[:8])
  t = jnp.full((8,), 50.0)
  np.testing.assert_allclose(
      losses.make_noise_fn(model.apply, params, proc, residual)(xt, t),
      process.gaussian_noise_fn(proc, residual)(xt, t), rtol=1e-6, atol=1e-7)
  sample = generation.make_sampler(proc, model, params, stats, batch=64, num_steps=10,
                                   solver="heun", residual=residual)
  x = np.concatenate([np.asarray(sample(jax.random.key(k))) for k in range(4)])
  assert np.mean(np.abs(x) > 1.0) < 0.1
  assert 0.5 < x.std() / scaled.std() < 2.0
  assert temporal.correlational_score(real, transforms.from_signed(x, clip=True)) < 3.0


def test_gaussian_residual_is_refused_where_it_is_not_supported():
  from mlts import detectors
  with pytest.raises(ValueError, match="gaussian_residual"):
    detectors.create("diffusion", diffusion=dict(gaussian_residual=True))


@pytest.mark.parametrize("module", [generation_sines, generation_stock, generation_etth,
                                    generation_energy])
def test_generation_configs(module):
  budgets = {v: module.get_config(v) for v in ("", "quick", "paper", "tiny")}
  for variant, config in budgets.items():
    assert config.experiment == "generation" and config.data.dataset in generation.DATASETS
    assert tuple(config.variants) == ("full", "no_reg", "no_gamma"), variant
    assert config.diffusion.gaussian_residual and config.diffusion.representation == "klt"
    assert config.training.checkpoint_every <= config.training.num_steps
  assert budgets["quick"].training.num_steps < budgets[""].training.num_steps \
      < budgets["paper"].training.num_steps
  assert budgets[""].num_seeds == 5
  with pytest.raises(ValueError, match="unknown variant"):
    module.get_config("fastest")
