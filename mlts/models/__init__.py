"""Flax Linen reconstruction backbones: windows [B, L, C] -> reconstructions [B, L, C].

Each module owns one architecture. `get_model(config.model, C)` builds the one
named by `config.model.name` from its own sub-section (`config.model.<name>`)
plus the shared fields (`revin`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from mlts.models.conv_ae import ConvAutoencoder
from mlts.models.dlinear import DLinear
from mlts.models.lstm_ae import LSTMAutoencoder
from mlts.models.mlp_ae import MLPAutoencoder
from mlts.models.modern_tcn import ModernTCN
from mlts.models.transformer import PatchTransformer

REGISTRY = {
    "conv_ae": ConvAutoencoder,
    "lstm_ae": LSTMAutoencoder,
    "dlinear": DLinear,
    "modern_tcn": ModernTCN,
    "transformer": PatchTransformer,
    "mlp_ae": MLPAutoencoder,
}


def default_config() -> ml_collections.ConfigDict:
  """The `model` config section: the backbone's name and every backbone's own sub-section."""
  model = ml_collections.ConfigDict()
  # backbone: conv_ae | lstm_ae | dlinear | modern_tcn | transformer | mlp_ae
  model.name = "conv_ae"
  model.revin = False  # per-window instance normalization (hides level shifts if on)
  # Each backbone reads its own sub-section (only the named one is used).
  model.conv_ae = ml_collections.ConfigDict(dict(
      hidden=(32, 64, 64),  # channels per strided level (each halves L)
      latent=4,  # bottleneck channels: L/8 x 4 = 64 numbers per 128-step window
      kernel_size=5))  # convolution width
  model.mlp_ae = ml_collections.ConfigDict(dict(
      hidden=(64,),  # encoder widths (the decoder mirrors them)
      latent=8))  # code width
  model.lstm_ae = ml_collections.ConfigDict(dict(
      hidden_size=32,  # LSTM width of encoder and decoder
      latent=16))  # code size (the encoder's final state projected)
  model.dlinear = ml_collections.ConfigDict(dict(
      latent=16,  # rank of the linear maps along time (L -> latent -> L)
      moving_avg=25))  # trend kernel of the series decomposition
  model.modern_tcn = ml_collections.ConfigDict(dict(
      d_model=32,  # features per token
      latent=2,  # code features per token: L/8 tokens x 2 = L/4 numbers per channel
      patch_size=8,  # steps per patch
      patch_stride=8,  # steps between patches
      large_kernel=51,  # depthwise kernel over tokens
      ffn_ratio=2,  # ConvFFN expansion
      num_blocks=1,  # blocks in the encoder and in the decoder
      channel_ffn=False))  # ConvFFN2 mixing channels (weights grow as C^2)
  model.transformer = ml_collections.ConfigDict(dict(
      d_model=32,  # token width
      latent=4,  # code features per token: L/16 tokens x 4 = L/4 numbers per channel
      patch_size=16,  # steps per patch
      patch_stride=16,  # steps between patches
      num_heads=4,  # attention heads
      mlp_ratio=2,  # MLP expansion
      num_layers=1))  # pre-LN blocks on each side of the bottleneck

  return model


def get_model(config: ml_collections.ConfigDict, num_features: int):
  """Builds the backbone named by `config.name` for inputs with `num_features` channels."""
  if config.name not in REGISTRY:
    raise ValueError(f"unknown model {config.name!r}; available: {sorted(REGISTRY)}")
  fields = dict(config[config.name]) if config.name in config else {}
  fields["revin"] = config.revin
  return REGISTRY[config.name].from_config(ml_collections.ConfigDict(fields), num_features)


def check_window(config: ml_collections.ConfigDict, window: int, num_features: int = 1) -> None:
  """Raises ValueError if the backbone cannot take windows of length `window`.

  Traces `init` abstractly (`jax.eval_shape`): nothing is compiled or allocated.
  """
  model = get_model(config, num_features)
  try:
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, window, num_features)))
  except ValueError as err:
    raise ValueError(f"model {config.name!r} cannot take data.window={window}: {err}") from err
