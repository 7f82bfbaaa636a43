"""Tests for the diffusion training loss, the detector scores and the end-to-end run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import diffusion_base, diffusion_synthetic
from mlts import studies
from mlts.diffusion import basis, detector, losses, process, trainer


def toy_process(**overrides):
  config = process.default_config()
  config.num_steps = 100
  config.indices = (5, 6, 7)
  config.update(overrides)
  return process.make_process(config, length=8, channels=2)


def test_loss_with_a_zero_network_is_the_target_energy_plus_the_regularizer():
  proc = toy_process()
  zero_apply = lambda variables, x, t: jnp.zeros(x.shape[:2] + (2,))
  batch = jnp.asarray(np.random.default_rng(0).normal(size=(16, 8, 2)), jnp.float32)
  key = jax.random.key(3)
  loss, metrics = losses.make_loss_fn(proc, zero_apply, 0.5)(None, batch, key)
  # The same draws by hand.
  k_t, k_noise = jax.random.split(key)
  t = losses.sample_times(proc, k_t, 16)
  noise = jax.random.normal(k_noise, batch.shape)
  target = process.scaled_noise(proc, t, noise)
  x_t = process.q_sample(proc, batch, t, noise)
  c = basis.to_basis(x_t, proc.basis)
  ab = jnp.exp(proc.schedule.log_alpha_bar)
  reg = jnp.where(t > proc.t_star, ab[-1] / ab[t.astype(int)] *
                  jnp.sum(proc.mask * c ** 2, axis=(1, 2)), 0.0)
  np.testing.assert_allclose(float(metrics["mse"]), float(jnp.mean(target ** 2)), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["reg"]), float(jnp.mean(reg)), rtol=1e-4)
  np.testing.assert_allclose(float(loss), float(jnp.mean(target ** 2) + 0.5 * jnp.mean(reg)),
                             rtol=1e-4)
  assert np.all((np.asarray(t) >= 1) & (np.asarray(t) <= 100))
  assert np.allclose(np.asarray(t), np.round(np.asarray(t)))


def test_sde_times_are_continuous():
  proc = toy_process(kind="vp")
  t = np.asarray(losses.sample_times(proc, jax.random.key(0), 1000))
  assert t.min() >= 1e-3 and t.max() <= 1.0 and len(np.unique(t)) > 990


def test_noise_fn_maps_network_output_into_the_basis():
  proc = toy_process(representation="both")
  seen = {}

  def apply(variables, x, t):
    seen["shape"], seen["t"] = x.shape, t
    return x[..., :2] * 2.0

  x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 8, 2)), jnp.float32)
  out = losses.make_noise_fn(apply, None, proc)(x, jnp.array([1.0, 2.0, 3.0]))
  assert seen["shape"] == (3, 8, 4)  # 'both': DCT coefficients as extra channels
  np.testing.assert_allclose(np.asarray(seen["t"]), [10.0, 20.0, 30.0])  # t · 1000 / T
  np.testing.assert_allclose(np.asarray(out), np.asarray(basis.to_basis(2 * x, proc.basis)),
                             rtol=1e-5, atol=1e-6)


def test_partial_times():
  proc = toy_process()
  times = np.asarray(detector.partial_times(proc, 30.0, 10))
  assert times[0] == 30.0 and times[-1] == 0.0 and np.all(np.diff(times) < 0)


def test_latent_reference_scores_by_hand():
  proc = toy_process(representation="time")
  rng = np.random.default_rng(0)
  train = rng.normal(size=(4000, 8, 2))
  ref = detector.LatentReference(proc, train)
  z = rng.normal(size=(5, 8, 2))
  scores = ref.scores(z)
  flat = z.reshape(5, -1)
  mask = np.asarray(proc.mask, bool).reshape(-1)
  np.testing.assert_allclose(scores["energy"], np.sum(flat[:, mask] ** 2, axis=1))
  norms = np.linalg.norm(train.reshape(4000, -1), axis=1)
  np.testing.assert_allclose(scores["norm"],
                             np.abs(np.linalg.norm(flat, axis=1) - norms.mean()) / norms.std())
  # Standard-normal latents: squared Mahalanobis distances average to the dimension.
  many = ref.scores(rng.normal(size=(4000, 8, 2)))["mahalanobis"]
  assert abs(np.mean(many ** 2) - 16) < 1.0


def test_variant_configs():
  base = process.default_config()
  assert not trainer.variant_config(base, "no_gamma").attenuate
  assert trainer.variant_config(base, "no_reg").reg_weight == 0.0
  assert trainer.variant_config(base, "time_basis").representation == "time"
  with pytest.raises(ValueError, match="unknown diffusion variant"):
    trainer.variant_config(base, "big")


@pytest.mark.parametrize("variant", ["", "quick", "tiny"])
def test_diffusion_configs(variant):
  config = diffusion_base.get_config("smap", variant)
  assert config.experiment == "diffusion"
  levels = len(config.network.channel_mults)
  assert config.data.window % 2 ** (levels - 1) == 0
  assert config.training.batch_size % 4 == 0 and config.detector.batch_size % 4 == 0


def test_end_to_end_tiny_run_and_resume(tmp_path):
  config = diffusion_synthetic.get_config("tiny")
  config.variants = ("full",)
  results = studies.run(config, str(tmp_path))
  methods = set(results["methods"])
  for score in ("recon", "energy", "mahalanobis", "norm"):
    assert f"diffusion[full]:{score}" in methods
  assert {"abs_telemetry", "random"} <= methods
  facts = results["variants"]["full"]
  assert 0 < facts["t_star"] < facts["t_max"] and facts["num_attenuated"] > 0
  saved = json.loads((tmp_path / "metrics.json").read_text())
  auroc = saved["methods"]["diffusion[full]:energy"]["summary"]["AUROC"]
  assert 0.0 <= auroc <= 1.0
  # Rerunning resumes from the final checkpoint and reproduces the scores.
  again = studies.run(config, str(tmp_path))
  assert again["methods"]["diffusion[full]:energy"]["summary"] == \
      results["methods"]["diffusion[full]:energy"]["summary"]
