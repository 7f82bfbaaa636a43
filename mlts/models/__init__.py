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
from mlts.models.modern_tcn import ModernTCN
from mlts.models.transformer import PatchTransformer

REGISTRY = {
    "conv_ae": ConvAutoencoder,
    "lstm_ae": LSTMAutoencoder,
    "dlinear": DLinear,
    "modern_tcn": ModernTCN,
    "transformer": PatchTransformer,
}


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
