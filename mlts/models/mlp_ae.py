"""A multilayer-perceptron autoencoder on whole windows: the per-channel backbone.

The window [L, C] is flattened and mapped through Dense layers down to a
`latent`-wide code and back. Every layer is a matrix product, so S stacked
copies (one per channel, `mlts.per_series`) run as batched matrix products,
which XLA executes efficiently on any device; a vmapped convolution with
per-series kernels becomes a grouped convolution, about 10x slower on CPU.
The Dense weights have L·C rows, so a module is tied to its window length.
Optional RevIN as in `conv_ae`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from mlts.data import transforms


class MLPAutoencoder(nn.Module):
  """Dense encoder-decoder on flattened windows.

  Attributes:
    num_features: C, channels of the input and the reconstruction.
    hidden: widths of the encoder's hidden layers (the decoder mirrors them).
    latent: width of the code.
    revin: whether to wrap the network in reversible instance normalization.
  """
  num_features: int
  hidden: Sequence[int] = (64,)
  latent: int = 8
  revin: bool = False

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_features: int) -> "MLPAutoencoder":
    """Builds the module from `config.model.mlp_ae` fields (hidden, latent, revin)."""
    return cls(num_features=num_features, hidden=tuple(config.get("hidden", cls.hidden)),
               latent=config.get("latent", cls.latent), revin=config.get("revin", cls.revin))

  def encode(self, x: jnp.ndarray) -> jnp.ndarray:
    """[B, L, C] -> [B, latent]."""
    h = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.hidden):
      h = nn.gelu(nn.Dense(width, name=f"enc_{i}")(h))
    return nn.Dense(self.latent, name="to_latent")(h)

  def decode(self, z: jnp.ndarray, length: int) -> jnp.ndarray:
    """[B, latent] -> [B, length, C]."""
    h = z
    for i, width in enumerate(reversed(self.hidden)):
      h = nn.gelu(nn.Dense(width, name=f"dec_{i}")(h))
    out = nn.Dense(length * self.num_features, name="to_output")(h)
    return out.reshape(z.shape[0], length, self.num_features)

  @nn.compact
  def __call__(self, x: jnp.ndarray, code: bool = False) -> jnp.ndarray:
    """Reconstructs windows (or, with `code=True`, returns their codes).

    Args:
      x: [B, L, C] windows.
      code: return the code `encode` gives (after RevIN when on) instead.

    Returns:
      [B, L, C] reconstruction, or the [B, latent] code.
    """
    if x.ndim != 3 or x.shape[-1] != self.num_features or x.shape[1] < 1:
      raise ValueError(f"expected windows [B, L, {self.num_features}], got {x.shape}")
    if self.revin:
      x, stats = transforms.revin_normalize(x)
    if code:
      return self.encode(x)
    y = self.decode(self.encode(x), x.shape[1])
    if self.revin:
      y = transforms.revin_denormalize(y, stats)
    return y
