"""Channel-independent patching shared by the patch-token backbones (ModernTCN, Transformer).

Each channel of a window [B, L, C] becomes its own series; a strided
convolution cuts it into N = (L - patch_size) / patch_stride + 1 patch tokens
of `d_model` features, and a transposed strided convolution maps tokens back to
steps and overlap-adds them to length L. Call these from inside a module's
`@nn.compact` method: the convolutions become that module's submodules
`patch_embed` and `head`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


def check_windows(x: jnp.ndarray, num_features: int, patch_size: int, patch_stride: int) -> None:
  """Raises ValueError unless x is [B, L, num_features] with L a whole number of patches."""
  if not 1 <= patch_stride <= patch_size:
    raise ValueError(f"need 1 <= patch_stride <= patch_size, got {patch_stride}, {patch_size}")
  if (x.ndim != 3 or x.shape[-1] != num_features or x.shape[1] < patch_size
      or (x.shape[1] - patch_size) % patch_stride):
    raise ValueError(
        f"expected windows [B, L, {num_features}] with L >= {patch_size} and "
        f"L - {patch_size} a multiple of {patch_stride}, got {x.shape}")


def embed(x: jnp.ndarray, d_model: int, patch_size: int, patch_stride: int) -> jnp.ndarray:
  """[B, L, C] windows -> [B * C, N, d_model] patch tokens, one series per channel."""
  b, length, c = x.shape
  series = jnp.swapaxes(x, 1, 2).reshape(b * c, length, 1)  # [B * C, L, 1]
  return nn.Conv(d_model, (patch_size,), strides=(patch_stride,), padding="VALID",
                 name="patch_embed")(series)  # [B * C, N, D]


def head(h: jnp.ndarray, shape: tuple[int, int, int], patch_size: int,
         patch_stride: int) -> jnp.ndarray:
  """[B * C, N, D] tokens -> [B, L, C]: each token to `patch_size` steps, overlap-added."""
  b, length, c = shape
  y = nn.ConvTranspose(1, (patch_size,), strides=(patch_stride,), padding="VALID",
                       name="head")(h)  # [B * C, L, 1]
  return jnp.swapaxes(y.reshape(b, c, length), 1, 2)  # [B, L, C]
