"""Tests for the β-VAEGAN networks, losses and jitted train step (mlts/vaegan)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlts.vaegan import losses, model, train

HIDDEN = (4, 8, 8)  # depth 3: lengths must be multiples of 8


def tiny_config(**overrides):
  config = train.default_config()
  config.latent = 3
  config.gen_hidden = HIDDEN
  config.disc_hidden = HIDDEN
  config.disc_steps = 1
  config.update(overrides)
  return config


# One training config and batch shape for the train-step tests, so they share one compilation.
TRAIN_OVERRIDES = {"disc_steps": 2, "lr": 2e-3}
TRAIN_SHAPE = (16, 64, 1)
_STEP_CACHE = {}


def shared_step():
  """The jitted step for `tiny_config(**TRAIN_OVERRIDES)`, compiled once per test session."""
  if "step" not in _STEP_CACHE:
    _STEP_CACHE["step"] = train.make_train_step(tiny_config(**TRAIN_OVERRIDES))
  return _STEP_CACHE["step"]


def sines(batch, length, channels, seed=0):
  """Smooth sines in [0, 1] with random phase and frequency."""
  rng = np.random.default_rng(seed)
  t = np.arange(length)[None, :, None]
  phase = rng.uniform(0, 2 * np.pi, (batch, 1, channels))
  freq = rng.uniform(1, 3, (batch, 1, channels)) * 2 * np.pi / length
  return jnp.asarray(0.5 + 0.4 * np.sin(freq * t + phase), jnp.float32)


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("length", [160, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(length, channels):
  x = sines(2, length, channels)
  vae = model.BetaVAE(num_features=channels, length=length, latent=3, hidden=(4, 8, 8, 8, 8))
  disc = model.Discriminator(hidden=(4, 8, 8, 8, 8))
  keys = {"params": jax.random.key(0), "latent": jax.random.key(1)}
  gen_vars = vae.init(keys, x, train=False)
  (x_hat, z, mu, logvar), _ = vae.apply(gen_vars, x, train=True, rngs={"latent": keys["latent"]},
                                        mutable=["batch_stats"])
  chex.assert_shape(x_hat, (2, length, channels))
  chex.assert_shape([z, mu, logvar], (2, 3))
  assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0
  disc_vars = disc.init(jax.random.key(2), x, update_stats=False)
  prob, feats = disc.apply(disc_vars, x, update_stats=False)
  chex.assert_shape(prob, (2,))
  chex.assert_shape(feats, (2, length // 32 * 8))
  assert np.all((prob > 0) & (prob < 1))
  # Deterministic path: z = mu, no rng needed.
  x_det, z_det, mu_det, _ = vae.apply(gen_vars, x, train=False, sample=False)
  np.testing.assert_array_equal(z_det, mu_det)
  chex.assert_shape(x_det, (2, length, channels))


def test_default_depth_accepts_paper_lengths():
  for length in (160, 128, 64):
    model.check_length(length, len(model.DEFAULT_HIDDEN))


@pytest.mark.parametrize("length", [100, 60, 150])
def test_bad_length_raises(length):
  x = jnp.zeros((1, length, 1))
  with pytest.raises(ValueError, match="multiple of"):
    model.Encoder(latent=2, hidden=(4, 4, 4)).init(jax.random.key(0), x, train=False)
  with pytest.raises(ValueError, match="multiple of"):
    model.Discriminator(hidden=(4, 4, 4)).init(jax.random.key(0), x, update_stats=False)
  with pytest.raises(ValueError, match="multiple of"):
    model.Decoder(num_features=1, length=length, hidden=(4, 4, 4)).init(
        jax.random.key(0), jnp.zeros((1, 2)), train=False)


def test_spectral_norm_unit_singular_value():
  x = sines(4, 64, 2)
  disc = model.Discriminator(hidden=(8, 16, 16))
  variables = disc.init(jax.random.key(0), x, update_stats=False)
  params, stats = variables["params"], variables["batch_stats"]

  @jax.jit
  def power_step(stats):
    _, updates = disc.apply({"params": params, "batch_stats": stats}, x, update_stats=True,
                            mutable=["batch_stats"])
    return updates["batch_stats"]

  for _ in range(50):
    stats = power_step(stats)
  names = [f"conv_{i}" for i in range(3)] + ["head"]
  for i, name in enumerate(names):
    sn = f"sn_{i}" if name != "head" else "sn_head"
    kernel = np.asarray(params[name]["kernel"])
    sigma = float(stats[sn][f"{name}/kernel/sigma"])
    # Flax flattens all leading axes: [k, in, out] -> [k * in, out].
    normalized = kernel.reshape(-1, kernel.shape[-1]) / sigma
    top = np.linalg.svd(normalized, compute_uv=False)[0]
    assert abs(top - 1.0) < 0.03, (name, top)


# ---------------------------------------------------------------- losses


def test_bce_known_values():
  p = jnp.array([0.5, 0.9, 0.1, 0.25])
  t = jnp.array([1.0, 1.0, 0.0, 0.5])
  expected = [np.log(2), -np.log(0.9), -np.log(0.9),
              -(0.5 * np.log(0.25) + 0.5 * np.log(0.75))]
  np.testing.assert_allclose(losses.bce(p, t), expected, rtol=1e-6)


def test_bce_saturated_is_finite():
  p = jnp.array([0.0, 1.0])
  t = jnp.array([1.0, 0.0])
  value = losses.bce(p, t)
  assert np.all(np.isfinite(value)) and np.all(value > 10)
  grad = jax.grad(lambda p: losses.bce(p, t).sum())(p)
  assert np.all(np.isfinite(grad))


def test_kl_standard_normal():
  zeros = jnp.zeros((2, 4))
  np.testing.assert_allclose(losses.kl_standard_normal(zeros, zeros), [0.0, 0.0])
  # mu = 1, logvar = 0: 0.5 per dimension.
  np.testing.assert_allclose(losses.kl_standard_normal(jnp.ones((2, 4)), zeros), [2.0, 2.0])
  # sigma^2 = e: 0.5 (e - 1 - 1) per dimension.
  np.testing.assert_allclose(losses.kl_standard_normal(jnp.zeros((1, 1)), jnp.ones((1, 1))),
                             [0.5 * (np.e - 2)], rtol=1e-6)


def test_generator_loss_composition():
  # B = 2, L = 2, C = 1; features F = 2; latent K = 1.
  x = jnp.array([[[1.0], [0.0]], [[1.0], [0.0]]])
  x_hat = jnp.array([[[0.5], [0.5]], [[0.5], [0.5]]])
  feat_real = jnp.array([[1.0, 0.0], [0.0, 0.0]])
  feat_fake = jnp.array([[0.0, 0.0], [0.0, 2.0]])
  mu = jnp.array([[1.0], [0.0]])
  logvar = jnp.zeros((2, 1))
  loss, metrics = losses.generator_loss(x, x_hat, feat_real, feat_fake, mu, logvar,
                                        beta=0.1, nu=2.0)
  adv = (1.0 + 4.0) / 4  # mean of squared differences
  rec = np.log(2)  # every element BCE(0.5, {0, 1}) = log 2; mean over L * C * B
  kl = 0.5  # summed over the batch: 0.5 + 0
  np.testing.assert_allclose(metrics["adv"], adv, rtol=1e-6)
  np.testing.assert_allclose(metrics["rec"], rec, rtol=1e-6)
  np.testing.assert_allclose(metrics["kl"], kl, rtol=1e-6)
  np.testing.assert_allclose(metrics["mse"], 0.25, rtol=1e-6)
  np.testing.assert_allclose(loss, adv + 2.0 * rec + 0.1 * kl, rtol=1e-6)
  # f(x) is a fixed target: no gradient flows into it.
  g = jax.grad(lambda f: losses.generator_loss(x, x_hat, f, feat_fake, mu, logvar,
                                               beta=0.1, nu=2.0)[0])(feat_real)
  np.testing.assert_array_equal(g, 0.0)


def test_discriminator_loss():
  loss, metrics = losses.discriminator_loss(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5]))
  np.testing.assert_allclose(loss, 2 * np.log(2), rtol=1e-6)
  loss, _ = losses.discriminator_loss(jnp.array([0.9]), jnp.array([0.2]))
  np.testing.assert_allclose(loss, -np.log(0.9) - np.log(0.8), rtol=1e-6)
  np.testing.assert_allclose(metrics["d_real"], 0.5)


# ---------------------------------------------------------------- training


def _copy(tree):
  return jax.tree.map(np.array, jax.device_get(tree))


def _changed(a, b):
  return any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_train_step_updates_everything():
  config = tiny_config(**TRAIN_OVERRIDES)
  batch = sines(*TRAIN_SHAPE)
  state = train.create_state(config, batch, jax.random.key(0))
  before = _copy({"g": state.gen.params, "gs": state.gen.batch_stats,
                  "d": state.disc.params, "ds": state.disc.batch_stats})
  step = shared_step()
  state, metrics = step(state, batch, jax.random.key(1))
  assert set(metrics) >= {"loss_g", "loss_d", "adv", "rec", "kl", "mse", "d_real", "d_fake"}
  for name, value in metrics.items():
    assert np.isfinite(value), name
  assert _changed(before["g"], state.gen.params)
  assert _changed(before["gs"], state.gen.batch_stats)
  assert _changed(before["d"], state.disc.params)
  assert _changed(before["ds"], state.disc.batch_stats)
  assert int(state.step) == 1 and int(state.gen.step) == 1 and int(state.disc.step) == 2


def test_disc_steps_two_updates_per_step():
  config = tiny_config(**TRAIN_OVERRIDES)
  batch = sines(*TRAIN_SHAPE)
  state = train.create_state(config, batch, jax.random.key(0))
  step = shared_step()
  key = jax.random.key(1)
  for _ in range(2):
    state, _ = step(state, batch, key)
  assert int(state.step) == 2
  assert int(state.gen.step) == 2
  assert int(state.disc.step) == 4
  # The AdaBelief state counts the updates it has applied.
  assert int(state.disc.opt_state[0].count) == 4
  assert int(state.gen.opt_state[0].count) == 2


def test_training_reduces_reconstruction_error():
  config = tiny_config(**TRAIN_OVERRIDES)
  batch = sines(*TRAIN_SHAPE)
  state = train.create_state(config, batch, jax.random.key(0))
  step = shared_step()
  key = jax.random.key(1)
  mses = []
  for _ in range(60):
    state, metrics = step(state, batch, key)
    mses.append(float(metrics["mse"]))
  assert np.mean(mses[-5:]) < 0.5 * np.mean(mses[:5]), (mses[:5], mses[-5:])


def test_same_key_same_state():
  config = tiny_config(**TRAIN_OVERRIDES)
  batch = sines(*TRAIN_SHAPE)
  step = shared_step()
  results = []
  for _ in range(2):
    state = train.create_state(config, batch, jax.random.key(3))
    for _ in range(2):
      state, metrics = step(state, batch, jax.random.key(4))
    results.append(_copy((state, metrics)))
  chex.assert_trees_all_equal(results[0], results[1])
  # A different training key gives a different state.
  state = train.create_state(config, batch, jax.random.key(3))
  for _ in range(2):
    state, _ = step(state, batch, jax.random.key(5))
  assert _changed(results[0][0].gen.params, _copy(state.gen.params))


def test_train_step_traces_once():
  config = tiny_config()
  batch = sines(4, 64, 1)
  pure = train.make_train_step(config, jit=False)
  step = jax.jit(chex.assert_max_traces(pure, n=1))
  state = train.create_state(config, batch, jax.random.key(0))
  for _ in range(3):
    state, _ = step(state, batch, jax.random.key(1))
  # A fresh state from the same config has the same structure: no recompilation.
  state = train.create_state(config, batch, jax.random.key(2))
  step(state, batch, jax.random.key(1))
