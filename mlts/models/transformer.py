"""A patch Transformer reconstructor (PatchTST-style, channel-independent).

Patching and channel independence follow PatchTST (Nie et al., "A Time Series
is Worth 64 Words: Long-term Forecasting with Transformers", ICLR 2023); the
blocks are pre-LN Transformer encoder blocks (Vaswani et al., NeurIPS 2017;
Xiong et al., ICML 2020). Each channel is a separate sequence (weights shared
across channels, no attention between channels: the parameter count does not
grow with C and one model serves C = 1 and C = 55): a strided linear patch
embedding maps `patch_size` steps every `patch_stride` to a `d_model` token,
N = (L - patch_size) / patch_stride + 1 tokens per channel, plus fixed
sinusoidal positional encodings (no parameters, any N).

Adaptation to reconstruction: `num_layers` encoder blocks, a Dense to `latent`
features per token (the code: N * `latent` numbers per channel, L / 4 with the
defaults), a Dense back to `d_model` plus the positional encoding again,
`num_layers` decoder blocks, and a transposed strided convolution as the head,
mapping each token to `patch_size` steps and overlap-adding them back to L.
Without the bottleneck a token of `d_model` >= `patch_size` features could
carry its patch through unchanged. No dropout: `apply` is deterministic and
needs no rng. Optional RevIN as in `conv_ae` (PatchTST uses it too).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts.data import transforms
from mlts.models import patching


def sinusoidal_encoding(length: int, dim: int) -> np.ndarray:
  """Fixed positional encoding of Vaswani et al.: [length, dim], a constant."""
  position = np.arange(length)[:, None]
  freq = np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)
  table = np.zeros((length, dim), np.float32)
  table[:, 0::2] = np.sin(position * freq)
  table[:, 1::2] = np.cos(position * freq)[:, : dim // 2]
  return table


class TransformerBlock(nn.Module):
  """Pre-LN encoder block: h + MHA(LN(h)), then h + MLP(LN(h)).

  Attributes:
    num_heads: attention heads.
    mlp_ratio: hidden width of the MLP relative to the token width.
  """
  num_heads: int = 4
  mlp_ratio: int = 2

  @nn.compact
  def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
    """[B', N, D] -> [B', N, D]."""
    d = h.shape[-1]
    y = nn.LayerNorm(name="attention_norm")(h)
    h = h + nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, deterministic=True, name="attention")(y)
    y = nn.LayerNorm(name="mlp_norm")(h)
    y = nn.gelu(nn.Dense(self.mlp_ratio * d, name="mlp_expand")(y))
    return h + nn.Dense(d, name="mlp_project")(y)


class PatchTransformer(nn.Module):
  """Patch embedding, Transformer blocks around a per-token bottleneck, overlap-add head.

  Attributes:
    num_features: C, channels of the input and the reconstruction.
    d_model: token width; a multiple of `num_heads`.
    latent: features per token in the bottleneck.
    patch_size: steps per patch; the window length L must be at least this.
    patch_stride: steps between patches (at most `patch_size`); L - patch_size
      must be a multiple of it.
    num_heads: attention heads.
    mlp_ratio: MLP expansion.
    num_layers: blocks before and after the bottleneck (each).
    revin: whether to wrap the network in reversible instance normalization.
  """
  num_features: int
  d_model: int = 32
  latent: int = 4
  patch_size: int = 16
  patch_stride: int = 16
  num_heads: int = 4
  mlp_ratio: int = 2
  num_layers: int = 1
  revin: bool = True

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_features: int) -> PatchTransformer:
    """Builds the module from the `model` config section (missing fields take defaults)."""
    return cls(
        num_features=num_features,
        d_model=config.get("d_model", cls.d_model),
        latent=config.get("latent", cls.latent),
        patch_size=config.get("patch_size", cls.patch_size),
        patch_stride=config.get("patch_stride", cls.patch_stride),
        num_heads=config.get("num_heads", cls.num_heads),
        mlp_ratio=config.get("mlp_ratio", cls.mlp_ratio),
        num_layers=config.get("num_layers", cls.num_layers),
        revin=config.get("revin", cls.revin))

  def _blocks(self, h: jnp.ndarray, prefix: str) -> jnp.ndarray:
    for i in range(self.num_layers):
      h = TransformerBlock(self.num_heads, self.mlp_ratio, name=f"{prefix}_{i}")(h)
    return h

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """Reconstructs windows.

    Args:
      x: [B, L, C] windows, L >= patch_size, (L - patch_size) % patch_stride == 0.

    Returns:
      [B, L, C] reconstruction.
    """
    patching.check_windows(x, self.num_features, self.patch_size, self.patch_stride)
    if self.d_model % self.num_heads:
      raise ValueError(f"d_model {self.d_model} is not a multiple of num_heads {self.num_heads}")
    if self.revin:
      x, stats = transforms.revin_normalize(x)
    h = patching.embed(x, self.d_model, self.patch_size, self.patch_stride)  # [B * C, N, D]
    position = sinusoidal_encoding(h.shape[1], self.d_model)  # [N, D]
    h = self._blocks(h + position, "encoder")
    z = nn.Dense(self.latent, name="to_latent")(nn.LayerNorm(name="encoder_norm")(h))
    h = nn.Dense(self.d_model, name="from_latent")(z) + position  # [B * C, N, D]
    h = nn.LayerNorm(name="decoder_norm")(self._blocks(h, "decoder"))
    y = patching.head(h, x.shape, self.patch_size, self.patch_stride)  # [B, L, C]
    if self.revin:
      y = transforms.revin_denormalize(y, stats)
    return y
