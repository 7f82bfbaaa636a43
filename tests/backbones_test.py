"""Tests for the reconstruction backbones (conv_ae, lstm_ae, dlinear, modern_tcn, transformer).

Shared contract: [B, L, C] -> [B, L, C], parameters only (no mutable collections),
deterministic and jit-stable apply, clear errors on bad shapes, RevIN following the
input's level and scale, learning on sines, and a bottleneck that does not pass
white noise through.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mlts.models.conv_ae import ConvAutoencoder
from mlts.models.dlinear import DLinear, moving_average
from mlts.models.lstm_ae import LSTMAutoencoder
from mlts.models.mlp_ae import MLPAutoencoder
from mlts.models.modern_tcn import DepthwiseConv, ModernTCN
from mlts.models.transformer import PatchTransformer

# Tiny sizes, so the whole file runs in seconds on a CPU.
TINY = {
    "conv_ae": lambda c, revin: ConvAutoencoder(c, hidden=(8, 8), latent=2, revin=revin),
    "lstm_ae": lambda c, revin: LSTMAutoencoder(c, hidden_size=32, latent=8, revin=revin),
    "dlinear": lambda c, revin: DLinear(c, latent=8, kernel_size=9, revin=revin),
    "modern_tcn": lambda c, revin: ModernTCN(
        c, d_model=16, latent=2, patch_size=8, patch_stride=8, large_kernel=13, revin=revin),
    "transformer": lambda c, revin: PatchTransformer(
        c, d_model=16, latent=2, patch_size=8, patch_stride=8, num_heads=2, revin=revin),
    "mlp_ae": lambda c, revin: MLPAutoencoder(c, hidden=(32,), latent=8, revin=revin),
}
NAMES = sorted(TINY)
DEFAULTS = {
    "conv_ae": ConvAutoencoder, "lstm_ae": LSTMAutoencoder, "dlinear": DLinear,
    "modern_tcn": ModernTCN, "transformer": PatchTransformer, "mlp_ae": MLPAutoencoder,
}


def _sines(rng: np.random.Generator, n: int, length: int, channels: int) -> np.ndarray:
  """[n, length, channels] unit sines, random period in [8, 24] steps and phase."""
  t = np.arange(length)[None, :, None]
  period = rng.uniform(8, 24, (n, 1, channels))
  phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
  return np.sin(2 * np.pi * t / period + phase).astype(np.float32)


def _num_params(model: nn.Module, length: int, channels: int) -> int:
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, length, channels)))
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length,channels", [(64, 1), (128, 3)])
def test_output_shape_and_no_mutable_state(name, length, channels):
  model = TINY[name](channels, True)
  y, variables = jax.eval_shape(
      model.init_with_output, jax.random.key(0), jnp.zeros((2, length, channels)))
  assert set(variables) == {"params"}
  chex.assert_shape(y, (2, length, channels))


# Compilation dominates the run time of these tests, so each model is initialized,
# compiled and trained once, on windows [32, 32, 1], and shared by the tests below.
LENGTH, BATCH, STEPS = 32, 32, 100


@functools.cache
def _trained(name: str) -> dict:
  """Trains the tiny model (with RevIN) on sines for STEPS Adam steps.

  Returns:
    model, params (trained), apply (jitted), x (a [32, 32, 1] batch of sines), and
    the mean squared errors `initial` and `final` on held-out sines and `noise` on
    white noise of the sines' variance.
  """
  rng = np.random.default_rng(0)
  train = jnp.asarray(_sines(rng, STEPS * BATCH, LENGTH, 1))
  sines = jnp.asarray(_sines(rng, 4 * BATCH, LENGTH, 1))
  noise = jnp.asarray(rng.normal(0.0, np.sqrt(0.5), (4 * BATCH, LENGTH, 1)).astype(np.float32))
  model = TINY[name](1, True)
  variables = jax.jit(model.init)(jax.random.key(0), train[:BATCH])
  assert set(variables) == {"params"}
  params = variables["params"]
  apply = jax.jit(model.apply)
  optimizer = optax.adam(1e-2)

  def mse(params, windows):  # batches of BATCH: one compiled apply for every call
    errors = [apply({"params": params}, w) - w for w in jnp.split(windows, len(windows) // BATCH)]
    return float(np.mean(np.square(errors)))

  @jax.jit
  def step(params, opt_state, x):
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean((model.apply({"params": p}, x) - x) ** 2))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  initial = mse(params, sines)
  opt_state = optimizer.init(params)
  for i in range(STEPS):
    params, opt_state, _ = step(params, opt_state, train[i * BATCH:(i + 1) * BATCH])
  return dict(model=model, params=params, apply=apply, x=sines[:BATCH], initial=initial,
              final=mse(params, sines), noise=mse(params, noise))


@pytest.mark.parametrize("name", NAMES)
def test_training_reduces_mse(name):
  result = _trained(name)
  print(f"{name}: MSE on held-out sines {result['initial']:.3f} -> {result['final']:.4f} "
        f"in {STEPS} Adam steps")
  assert result["final"] < 0.5 * result["initial"]


@pytest.mark.parametrize("name", NAMES)
def test_bottleneck_is_not_identity(name):
  result = _trained(name)
  print(f"{name}: MSE sines {result['final']:.4f}, white noise {result['noise']:.4f}")
  assert result["noise"] > 2.0 * result["final"]


@pytest.mark.parametrize("name", NAMES)
def test_apply_is_deterministic(name):
  result = _trained(name)
  params, apply, x = result["params"], result["apply"], result["x"]
  y = apply({"params": params}, x)  # no rngs: no dropout, no sampling
  chex.assert_shape(y, x.shape)
  chex.assert_tree_all_finite(y)
  np.testing.assert_array_equal(y, apply({"params": params}, x))


@pytest.mark.parametrize("name", NAMES)
def test_jitted_apply_traces_once(name):
  chex.clear_trace_counter()
  result = _trained(name)
  model, params, x = result["model"], result["params"], result["x"]
  apply = jax.jit(chex.assert_max_traces(lambda p, x: model.apply({"params": p}, x), n=1))
  first = apply(params, x)
  for shift in (1.0, 2.0):
    apply(params, x + shift)
  np.testing.assert_allclose(apply(params, x), first, rtol=1e-5, atol=1e-5)


BAD_LENGTHS = {
    "conv_ae": [30],  # not a multiple of 4
    "lstm_ae": [],
    "dlinear": [64],  # not the length it was initialized with
    "modern_tcn": [28, 4],  # not a multiple of the patch; shorter than a patch
    "transformer": [28, 4],
    "mlp_ae": [],
}


@pytest.mark.parametrize("name", NAMES)
def test_invalid_shape_raises(name):
  result = _trained(name)
  shapes = [(2, LENGTH, 2), (LENGTH, 1)] + [(2, length, 1) for length in BAD_LENGTHS[name]]
  for shape in shapes:
    with pytest.raises(ValueError, match="expected windows|initialized for"):
      result["model"].apply({"params": result["params"]}, jnp.zeros(shape))


@pytest.mark.parametrize("name", NAMES)
def test_revin_follows_level_and_scale(name):
  result = _trained(name)
  params, apply, x = result["params"], result["apply"], result["x"]
  y = apply({"params": params}, x)
  np.testing.assert_allclose(apply({"params": params}, x + 10.0), y + 10.0, atol=1e-3)
  np.testing.assert_allclose(apply({"params": params}, 3.0 * x), 3.0 * y, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_default_sizes_are_small(name):
  small = _num_params(DEFAULTS[name](1), 128, 1)
  msl = _num_params(DEFAULTS[name](55), 128, 55)
  print(f"{name}: {small} parameters for C = 1, {msl} for C = 55 (L = 128)")
  assert small < 100_000


@pytest.mark.parametrize("kernel_size,length", [(13, 16), (4, 7), (51, 3)])
def test_depthwise_conv_matches_grouped_conv(kernel_size, length):
  h = jax.random.normal(jax.random.key(0), (3, length, 6))
  kernel = jax.random.normal(jax.random.key(1), (kernel_size, 6))
  bias = jnp.arange(6.0)
  reference = nn.Conv(6, (kernel_size,), padding="SAME", feature_group_count=6)
  ours = jax.jit(DepthwiseConv(kernel_size).apply)({"params": {"kernel": kernel, "bias": bias}}, h)
  expected = jax.jit(reference.apply)({"params": {"kernel": kernel[:, None, :], "bias": bias}}, h)
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [1, 4, 25])
def test_moving_average_matches_numpy(kernel_size):
  x = np.random.default_rng(0).normal(size=(2, 40, 3)).astype(np.float32)
  front = (kernel_size - 1) // 2
  padded = np.pad(x, ((0, 0), (front, kernel_size - 1 - front), (0, 0)), mode="edge")
  expected = np.stack([
      np.stack([np.convolve(padded[b, :, c], np.ones(kernel_size) / kernel_size, "valid")
                for c in range(3)], axis=-1) for b in range(2)])
  np.testing.assert_allclose(moving_average(jnp.asarray(x), kernel_size), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["modern_tcn", "transformer"])
def test_overlapping_patches(name):
  model = DEFAULTS[name](2, patch_size=8, patch_stride=4)
  y, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), jnp.zeros((2, 64, 2)))
  chex.assert_shape(y, (2, 64, 2))


def test_modern_tcn_channel_ffn():
  model = ModernTCN(3, d_model=8, channel_ffn=True)
  y, variables = jax.eval_shape(
      model.init_with_output, jax.random.key(0), jnp.zeros((2, 64, 3)))
  chex.assert_shape(variables["params"]["encoder_0"]["channel_expand"], (8, 3, 6))
  chex.assert_shape(y, (2, 64, 3))


def test_from_config_reads_fields_and_defaults():
  config = ml_collections.ConfigDict(dict(
      latent=3, revin=False, hidden_size=24, moving_avg=7, d_model=16, patch_size=4,
      patch_stride=4, num_heads=2, num_layers=2, num_blocks=2, large_kernel=9, ffn_ratio=1,
      mlp_ratio=1, channel_ffn=False, kernel_size=5))
  lstm = LSTMAutoencoder.from_config(config, 2)
  assert (lstm.num_features, lstm.hidden_size, lstm.latent, lstm.revin) == (2, 24, 3, False)
  dlinear = DLinear.from_config(config, 2)
  assert (dlinear.kernel_size, dlinear.latent) == (7, 3)  # moving_avg, not conv_ae's kernel_size
  tcn = ModernTCN.from_config(config, 2)
  assert (tcn.d_model, tcn.patch_size, tcn.large_kernel, tcn.num_blocks) == (16, 4, 9, 2)
  transformer = PatchTransformer.from_config(config, 2)
  assert (transformer.num_heads, transformer.num_layers, transformer.mlp_ratio) == (2, 2, 1)
  empty = ml_collections.ConfigDict()
  assert DLinear.from_config(empty, 1) == DLinear(1)
  assert ModernTCN.from_config(empty, 1) == ModernTCN(1)
  assert PatchTransformer.from_config(empty, 1) == PatchTransformer(1)
  assert LSTMAutoencoder.from_config(empty, 1) == LSTMAutoencoder(1)
