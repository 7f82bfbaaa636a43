"""Tests for the 1-D diffusion U-Net (mlts/diffusion/unet.py).

Speed: on CPU every compilation costs seconds (a threefry draw about one per shape, a U-Net
forward pass about two), so the numeric tests share one real initialization (jitted, with an
'unsafe_rbg' key, about twice as fast to compile as threefry) and one jitted apply, inputs come
from NumPy, and the shape grid runs under `jax.eval_shape`, which traces but compiles nothing.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlts.diffusion import unet

# Small network: widths 8, 16, 16 with 4 groups; three levels, so L must be a multiple of 4.
SMALL = {"base_width": 8, "channel_mults": (1, 2, 2), "attention_levels": (2,), "num_heads": 2,
         "num_groups": 4}
CHANNELS = 2  # of the shared numeric model
BATCH, LENGTH = 4, 32


def small_model(out_channels=CHANNELS, **overrides):
  return unet.UNet1D(out_channels=out_channels, **{**SMALL, **overrides})


MODEL = small_model()
APPLY = jax.jit(MODEL.apply, static_argnames="train")


# Test inputs come from NumPy: each new shape drawn with jax.random costs a compilation.
def windows(batch=BATCH, length=LENGTH, channels=CHANNELS, seed=0):
  """[batch, length, channels] standard normal noise."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal((batch, length, channels)),
                     jnp.float32)


def times(seed=0):
  """[BATCH] float times in [0, 1000)."""
  return jnp.asarray(np.random.default_rng(seed).uniform(0.0, 1000.0, BATCH), jnp.float32)


@pytest.fixture(scope="module")
def init_params():
  """A real initialization of MODEL (time_scale and dropout do not change the parameters)."""
  key = jax.random.key(0, impl="unsafe_rbg")
  return jax.jit(MODEL.init)(key, windows(1), jnp.zeros(1))


@pytest.fixture(scope="module")
def params(init_params):
  """`init_params` with the zero-initialized output conv replaced by random values."""
  rng = np.random.default_rng(1)
  out = {name: jnp.asarray(rng.standard_normal(value.shape), jnp.float32)
         for name, value in init_params["params"]["conv_out"].items()}
  return {"params": {**init_params["params"], "conv_out": out}}


# ---------------------------------------------------------------- timestep embedding


def test_timestep_embedding_matches_hand_computed_values():
  # dim 4: half = 2, frequencies 1 and 10000 ** (-1/2) = 0.01.
  emb = unet.timestep_embedding(jnp.array([0, 2]), 4)
  expected = np.array([[0.0, 0.0, 1.0, 1.0],
                       [math.sin(2.0), math.sin(0.02), math.cos(2.0), math.cos(0.02)]])
  assert emb.shape == (2, 4)
  assert emb.dtype == jnp.float32
  np.testing.assert_allclose(emb, expected, atol=1e-6)


def test_timestep_embedding_continuous_times_and_max_period():
  # dim 6, max_period 64: frequencies 1, 64 ** (-1/3) = 1/4 and 64 ** (-2/3) = 1/16.
  emb = unet.timestep_embedding(jnp.array([0.5]), 6, max_period=64.0)
  args = [0.5, 0.125, 0.03125]
  np.testing.assert_allclose(emb, [[math.sin(a) for a in args] + [math.cos(a) for a in args]],
                             atol=1e-6)


@pytest.mark.parametrize("dim", [3, 0])
def test_timestep_embedding_rejects_odd_or_empty_dim(dim):
  with pytest.raises(ValueError, match="even"):
    unet.timestep_embedding(jnp.zeros(2), dim)


# ---------------------------------------------------------------- shapes


def output_shape(model, x_shape, t):
  """The shape of `model`'s output, traced but not compiled."""
  x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, jnp.zeros(x_shape[0]))
  out = jax.eval_shape(model.apply, params, x, t)
  assert out.dtype == jnp.float32
  return out.shape


@pytest.mark.parametrize("length", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape(length, channels):
  model = small_model(out_channels=channels)
  assert output_shape(model, (2, length, channels), jnp.array([0.1, 0.9])) == (2, length, channels)


@pytest.mark.parametrize("t", [jnp.array([3, 7]), jnp.array([0.1, 0.9]), 5, 0.25, jnp.array(0.5),
                               jnp.array([2])], ids=["int", "float", "py_int", "py_float",
                                                     "scalar", "length_1"])
def test_output_shape_for_int_float_and_scalar_t(t):
  assert output_shape(small_model(out_channels=3), (2, 32, 3), t) == (2, 32, 3)


# ---------------------------------------------------------------- numerics


def test_initial_output_is_exactly_zero(init_params):
  y = APPLY(init_params, windows(), times())
  assert y.shape == (BATCH, LENGTH, CHANNELS)
  assert np.all(np.asarray(y) == 0.0)


def test_output_depends_on_t_and_x_once_output_conv_is_nonzero(params):
  x, t = windows(), times()
  y = APPLY(params, x, t)
  y_t = APPLY(params, x, t.at[0].add(100.0))
  y_x = APPLY(params, x.at[1].set(windows(seed=5)[1]), t)
  assert np.all(np.isfinite(y))
  # Changing t (or x) of one window changes that window's output only.
  assert np.abs(y_t[0] - y[0]).max() > 1e-3
  np.testing.assert_allclose(y_t[1:], y[1:], atol=1e-5)
  assert np.abs(y_x[1] - y[1]).max() > 1e-3
  np.testing.assert_allclose(y_x[0], y[0], atol=1e-5)
  np.testing.assert_allclose(y_x[2:], y[2:], atol=1e-5)


def test_scalar_int_t_is_broadcast_and_scaled_by_time_scale(params):
  # One compilation covers the three conversions: a Python int, broadcast to [B], times 1000.
  x = windows()
  scaled = jax.jit(small_model(time_scale=1000.0).apply)(params, x, 7)
  expected = APPLY(params, x, jnp.full(BATCH, 7000.0, jnp.float32))  # not weak-typed: cached
  np.testing.assert_allclose(scaled, expected, atol=1e-5)


def test_dropout_only_in_train_mode(params):
  model = small_model(dropout=0.5)
  x, t = windows(), times()
  run = jax.jit(lambda p, key: (model.apply(p, x, t, train=True, rngs={"dropout": key}),
                                model.apply(p, x, t)))
  y_train, y_eval = run(params, jax.random.key(0, impl="rbg"))
  assert np.abs(y_train - y_eval).max() > 1e-3
  # Evaluation mode ignores the dropout rate: same output as the dropout-free model.
  np.testing.assert_allclose(y_eval, APPLY(params, x, t), atol=1e-6)


# ---------------------------------------------------------------- validation


def test_bad_length_raises():
  with pytest.raises(ValueError, match="multiple of"):
    small_model().init(jax.random.PRNGKey(0), windows(1, 30), jnp.zeros(1))


def test_num_groups_not_dividing_a_width_raises():
  with pytest.raises(ValueError, match="num_groups"):
    small_model(num_groups=3).init(jax.random.PRNGKey(0), windows(1), jnp.zeros(1))


def test_bad_attention_level_and_bad_t_shape_raise():
  x = windows(2)
  with pytest.raises(ValueError, match="attention level"):
    small_model(attention_levels=(3,)).init(jax.random.PRNGKey(0), x, jnp.zeros(2))
  with pytest.raises(ValueError, match="times"):
    small_model().init(jax.random.PRNGKey(0), x, jnp.zeros(3))


# ---------------------------------------------------------------- jit and vmap


def test_jit_traces_once_per_shape(params):
  traces = []

  def apply(params, x, t):
    traces.append(x.shape)
    return MODEL.apply(params, x, t)

  jitted = jax.jit(apply)
  for i in range(3):
    jitted(params, windows(seed=i), jnp.full(BATCH, float(i))).block_until_ready()
  assert len(traces) == 1
  jitted(params, windows(1), jnp.zeros(1)).block_until_ready()
  assert len(traces) == 2


def test_vmap_over_single_window_calls_matches_batched_call(params):
  x, t = windows(), times()
  single = lambda xi, ti: MODEL.apply(params, xi, ti)  # [1, L, C], [1] -> [1, L, C]
  per_example = jax.jit(jax.vmap(single))(x[:, None], t[:, None])
  assert per_example.shape == (BATCH, 1, LENGTH, CHANNELS)
  np.testing.assert_allclose(per_example[:, 0], APPLY(params, x, t), atol=1e-5)
