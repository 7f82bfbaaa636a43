"""Telemetry generation and OOD studies: their pieces on known cases, tiny end-to-end runs."""

import importlib
import json

import jax
import numpy as np
import pytest

from configs import telemetry_base
from mlts import studies, telemetry_models
from mlts.data import telemetry
from mlts.metrics import generative
from mlts.studies import ood, telemetry_generation
from mlts.vaegan import model as vaegan_model


def test_load_splits_every_channel_into_train_and_a_disjoint_holdout():
  data = telemetry.load("smap", window=32, stride=16, holdout=0.25, channels="P-1,S-1")
  assert data.channels == ["P-1", "S-1"]
  assert data.train.shape[1:] == data.heldout.shape[1:] == (32, 1)
  assert set(np.unique(data.train_channel)) == set(np.unique(data.heldout_channel)) == {0, 1}
  # Held-out windows come from the tail of the training series: none equals a training window.
  flat_train = {w.tobytes() for w in data.train}
  assert not any(w.tobytes() in flat_train for w in data.heldout if np.ptp(w) > 0)
  x, y = data.labelled("test")
  assert x.shape[0] == y.shape[0] and set(np.unique(y)) <= {0, 1}
  with pytest.raises(ValueError, match="holdout"):
    telemetry.load("smap", window=32, stride=16, holdout=1.0)
  with pytest.raises(ValueError, match="unknown smap channel"):
    telemetry.load("smap", window=32, stride=16, channels="P-1,NOPE")


def test_load_keeps_a_short_channel_for_training_without_a_heldout_window():
  # SMAP D-12 has 312 training steps: 0.8 of them give training windows of 64 steps,
  # the last 62 steps are fewer than one window.
  data = telemetry.load("smap", window=64, stride=16, holdout=0.2, channels="D-12,P-1")
  d12 = data.channels.index("D-12")
  # Starts 0, 16, ..., 176 and the tail window at 250 − 64 = 186.
  assert np.sum(data.train_channel == d12) == 13
  assert not np.any(data.heldout_channel == d12)
  assert np.any(data.heldout_channel == data.channels.index("P-1"))
  with pytest.raises(ValueError, match="D-12.*too short"):
    telemetry.load("smap", window=256, stride=16, channels="D-12")


def test_block_mask_hides_one_contiguous_block_per_window():
  known = telemetry_generation.block_mask(np.random.default_rng(0), (50, 20, 1), 0.25)
  missing = known[..., 0] == 0
  assert (missing.sum(axis=1) == 5).all()
  for row in missing:  # one run: the missing steps are consecutive
    idx = np.flatnonzero(row)
    assert idx[-1] - idx[0] == 4


def test_linear_interpolation_recovers_a_line_and_keeps_observations():
  x = np.linspace(0, 1, 16)[None, :, None].repeat(3, axis=0)
  known = telemetry_generation.block_mask(np.random.default_rng(1), x.shape, 0.3)
  filled = telemetry_generation.linear_interpolation(np.where(known > 0, x, -5.0), known)
  np.testing.assert_allclose(filled, x, atol=1e-12)


def test_imputation_metrics_on_a_hand_case():
  truth = np.zeros((1, 4, 1))
  known = np.array([1, 0, 0, 1], float).reshape(1, 4, 1)
  ensemble = np.stack([np.full((1, 4, 1), 1.0), np.full((1, 4, 1), -1.0)])
  m = telemetry_generation.imputation_metrics(truth, ensemble, known)
  # Ensemble mean 0 -> MSE = MAE = 0; CRPS of {1, -1} at 0 is E|X| - E|X - X'|/2 = 1 - 1/2.
  assert m["mse"] == 0.0 and m["mae"] == 0.0
  assert m["crps"] == pytest.approx(0.5)
  one = telemetry_generation.imputation_metrics(truth, ensemble[:1], known)
  assert one["crps"] == pytest.approx(one["mae"])  # one member: CRPS = MAE


def test_embedding_metrics_do_not_depend_on_the_embedding_scale():
  rng = np.random.default_rng(2)
  real, fake = rng.normal(size=(60, 4)), rng.normal(0.5, 1.0, size=(50, 4))
  base = telemetry_generation.embedding_metrics(real, fake, prefix="", seed=0, with_support=True)
  scaled = telemetry_generation.embedding_metrics(1e3 * real, 1e3 * fake, prefix="", seed=0,
                                                  with_support=True)
  assert scaled == pytest.approx(base, rel=1e-6)
  assert base["fid"] > 0.5  # the shift of 0.5 in four coordinates: FID ≈ 4 × 0.25 = 1


def test_nearest_similarity_finds_the_copy():
  rng = np.random.default_rng(0)
  reference = rng.normal(size=(12, 16))
  fake = reference[[3, 7]] + 0.0
  sim = telemetry_generation.nearest_similarity(fake, reference, band=3)
  assert sim["nn_euclidean"] == pytest.approx(0.0, abs=1e-9)
  assert sim["nn_dtw"] == pytest.approx(0.0, abs=1e-9)
  assert sim["nn_pearson"] == pytest.approx(1.0) and sim["nn_cosine"] == pytest.approx(1.0)
  far = telemetry_generation.nearest_similarity(rng.normal(size=(2, 16)), reference, band=3)
  assert far["nn_euclidean"] > 1.0 and far["nn_pearson"] < 1.0
  assert sim["nn_pearson_defined"] == far["nn_pearson_defined"] == 1.0


def test_nearest_similarity_skips_constant_windows_for_pearson():
  rng = np.random.default_rng(1)
  reference = np.concatenate([np.zeros((1, 16)), np.full((1, 16), 0.5), rng.normal(size=(4, 16))])
  fake = np.stack([reference[2], np.full(16, 0.5)])  # a copy, and a flat window
  sim = telemetry_generation.nearest_similarity(fake, reference, band=3)
  # Pearson: only the copy has a defined pair; it is perfectly correlated with its original.
  assert sim["nn_pearson"] == pytest.approx(1.0) and sim["nn_pearson_defined"] == 0.5
  # Cosine: the flat window has norm > 0, and matches the 0.5 reference window exactly.
  assert sim["nn_cosine"] == pytest.approx(1.0) and sim["nn_cosine_defined"] == 1.0
  assert sim["nn_euclidean"] == pytest.approx(0.0, abs=1e-12)


def test_latent_scorer_ranks_a_shifted_set_higher():
  rng = np.random.default_rng(0)
  train = rng.normal(size=(400, 6))
  scorer = ood.LatentScorer(train, energy_mask=np.array([0, 0, 0, 0, 1, 1]),
                            kde_bandwidth="scott", eigen_components=2, eigen_neighbors=8)
  inside = scorer.scores(rng.normal(size=(200, 6)))
  shifted = rng.normal(size=(200, 6))
  shifted[:, 4:] += 4.0
  outside = scorer.scores(shifted)
  assert set(inside) == set(ood.SCORES)
  for name in ood.SCORES:
    assert np.median(outside[name]) > np.median(inside[name]), name
  no_energy = ood.LatentScorer(train, energy_mask=None, kde_bandwidth="scott",
                               eigen_components=2, eigen_neighbors=8).scores(shifted)
  assert "energy" not in no_energy


def test_vaegan_samples_and_imputation_keep_their_contracts(tmp_path):
  config = telemetry_base.get_config("smap", "generation", "tiny")
  rng = np.random.default_rng(0)
  train = rng.uniform(size=(32, 32, 1)).astype(np.float32)
  state, _ = telemetry_models.train_vaegan(config, train, str(tmp_path), None)
  mu = telemetry_models.vaegan_encode(config, state, train, batch=32)["mu"]
  assert mu.shape == (32, config.vaegan.latent)
  samples = telemetry_models.vaegan_sample(config, state, mu, 40, (32, 1), rng, batch=32)
  assert samples.shape == (40, 32, 1) and samples.min() >= 0 and samples.max() <= 1
  known = telemetry_generation.block_mask(rng, train.shape, 0.25)
  filled = telemetry_models.vaegan_impute(config, state, train, known, iterations=2, batch=32)
  np.testing.assert_array_equal(filled[known > 0], train[known > 0])
  assert np.isfinite(filled).all()


def test_diffusion_imputation_keeps_observed_values(tmp_path):
  config = telemetry_base.get_config("smap", "generation", "tiny")
  rng = np.random.default_rng(0)
  train = rng.uniform(size=(32, 32, 1)).astype(np.float32)
  m = telemetry_models.train_diffusion(config, "full", train, str(tmp_path), None)
  known = telemetry_generation.block_mask(rng, (8, 32, 1), 0.25)
  ens = telemetry_models.diffusion_impute(m, train[:8], known, jax.random.key(0), members=2,
                                          steps=3, batch=4)
  assert ens.shape == (2, 8, 32, 1)
  for member in ens:
    np.testing.assert_allclose(member[known > 0], train[:8][known > 0], atol=1e-6)
  assert not np.allclose(ens[0][known == 0], ens[1][known == 0])  # members differ


@pytest.mark.parametrize("name", ["telemetry_generation_smap", "telemetry_generation_msl",
                                  "ood_smap", "ood_msl"])
@pytest.mark.parametrize("variant", ["", "quick", "tiny"])
def test_configs_are_consistent(name, variant):
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  assert config.experiment == ("ood" if name.startswith("ood") else "telemetry_generation")
  for hidden in (config.vaegan.gen_hidden, config.vaegan.disc_hidden):
    vaegan_model.check_length(config.data.window, len(hidden))
  assert config.training.checkpoint_every <= config.training.num_steps
  assert config.variants[0] == "full"
  with pytest.raises(ValueError, match="unknown variant"):
    importlib.import_module(f"configs.{name}").get_config("fastest")


def test_tiny_generation_study_writes_every_metric(tmp_path):
  config = telemetry_base.get_config("smap", "generation", "tiny")
  results = studies.run(config, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  rows = saved["generation"]
  assert set(rows) == {"held-out real", "diffusion[full]", "diffusion[full], network tail",
                       "β-VAEGAN"}
  for key, _ in telemetry_generation.COLUMNS:
    if key in ("tstr", "trtr", "tstr_n"):
      continue  # reconstruction-based: not for the network-tail sampler row
    for name, row in rows.items():
      assert np.isfinite(row[key]) or key == "tstr_n", (name, key)
  assert rows["held-out real"]["tstr"] == rows["held-out real"]["trtr"]  # identity synth
  assert set(saved["imputation"]) == {"linear interpolation", "diffusion[full]", "β-VAEGAN"}
  # One-member β-VAEGAN imputation: CRPS equals MAE.
  assert saved["imputation"]["β-VAEGAN"]["crps"] == pytest.approx(
      saved["imputation"]["β-VAEGAN"]["mae"])
  for f in ("tables.md", "eigenmap.png", "features.md", "features.png", "samples.npz"):
    assert (tmp_path / f).exists(), f
  assert 0 < results["num_per_set"] <= 48


def test_tiny_ood_study_reports_every_score(tmp_path):
  config = telemetry_base.get_config("msl", "ood", "tiny")
  results = studies.run(config, str(tmp_path))
  assert results["other"] == "smap"
  for task in ("anomalous", "cross-spacecraft"):
    reps = results["tasks"][task]
    assert set(reps) == set(ood.REPRESENTATIONS)
    assert set(reps["diffusion latent"]) == set(ood.SCORES)
    assert "energy" not in reps["VAE mean"]
    for scores in reps.values():
      for m in scores.values():
        assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["f1"] <= 1.0
  assert (tmp_path / "tables.md").exists() and (tmp_path / "eigenmap.png").exists()


def test_generation_metrics_of_a_copy_are_at_their_best():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 4))
  m = telemetry_generation.embedding_metrics(x, x.copy(), prefix="", seed=0, with_support=True)
  # FID is exactly 0; the unbiased MMD² of two identical sets is −(mean off-diagonal k)/(n−1).
  assert m["fid"] == pytest.approx(0.0, abs=1e-6) and abs(m["mmd"]) < 0.01
  assert m["authenticity"] == 0.0  # copies are never authentic
  noise = telemetry_generation.embedding_metrics(x, rng.normal(size=(300, 4)) + 3, prefix="",
                                                 seed=0, with_support=True)
  assert noise["mmd"] > 0.1
  assert noise["fid"] > 10 and noise["kid"] > generative.kernel_inception_distance(
      x, x.copy(), subset_size=300)["mean"]
