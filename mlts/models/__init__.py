"""Flax Linen networks. Each module owns one architecture; `get_model` builds one from config."""

from __future__ import annotations

import ml_collections

from mlts.models.conv_ae import ConvAutoencoder


def get_model(config: ml_collections.ConfigDict, num_features: int):
  """Builds the network named by `config.name` for inputs with `num_features` channels."""
  if config.name == "conv_ae":
    return ConvAutoencoder(
        num_features=num_features,
        hidden=tuple(config.hidden),
        latent=config.latent,
        kernel_size=config.kernel_size,
        revin=config.revin)
  raise ValueError(f"unknown model {config.name!r}; available: 'conv_ae'")
