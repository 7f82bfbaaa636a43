"""A 1-D U-Net noise / score network for diffusion on windows.

`UNet1D` maps noisy windows x [B, L, C_in] and diffusion times t [B] to an
output of the same length, [B, L, C_out] (the predicted noise, score or clean
window, depending on the parameterization the caller trains for). The layout is
the DDPM / ADM one (Ho et al. 2020; Dhariwal & Nichol 2021) with 1-D
convolutions:

  * an input conv (kernel 3) to `base_width` channels;
  * a down path of `len(channel_mults)` resolution levels, each with
    `num_res_blocks` residual blocks of width `base_width * mult`, an optional
    self-attention block after each residual block, and a stride-2 conv that
    halves the length (except at the last level);
  * a middle block (residual, attention, residual);
  * an up path mirroring the down path: every down activation (the input conv's
    output, each residual/attention output and each downsample output) is stored
    and concatenated back on the way up, `num_res_blocks + 1` residual blocks per
    level, with nearest-neighbour upsampling by 2 followed by a conv (as in
    `mlts.models.conv_ae`: no checkerboard artefacts);
  * GroupNorm -> swish -> conv (kernel 3) to `out_channels`, the last conv
    initialized to zeros so that the untrained network outputs exactly 0.

The time t (int or float; continuous times are fine) is scaled by `time_scale`,
embedded sinusoidally (`timestep_embedding`), passed through Dense -> swish ->
Dense (the sinusoid has `base_width` entries, rounded up to even, as in ADM), and
added to every residual block through swish -> a per-block Dense.

The window length L must be a multiple of 2 ** (len(channel_mults) - 1), and
`num_groups` must divide `base_width * mult` for every level; both are checked
when the module is called and raise ValueError.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
  """Sinusoidal embedding of (possibly continuous) times.

  With half = dim // 2 and frequencies f_k = max_period ** (-k / half) for
  k = 0 .. half - 1, the embedding is [sin(t f_0), ..., sin(t f_{half-1}),
  cos(t f_0), ..., cos(t f_{half-1})] (DDPM / transformer positional encoding).

  Args:
    t: [B] times, int or float.
    dim: embedding size, even.
    max_period: the longest period, i.e. 1 / the lowest frequency.

  Returns:
    [B, dim] float32 embedding.

  Raises:
    ValueError: if `dim` is not a positive even number or `t` is not 1-D.
  """
  if dim <= 0 or dim % 2:
    raise ValueError(f"timestep embedding dim must be a positive even number, got {dim}")
  t = jnp.asarray(t, jnp.float32)
  if t.ndim != 1:
    raise ValueError(f"expected times of shape [B], got {t.shape}")
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)  # [half]
  args = t[:, None] * freqs[None, :]  # [B, half]
  return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class ResBlock(nn.Module):
  """Residual block conditioned on the time embedding.

  GroupNorm -> swish -> conv3 -> + Dense(swish(emb)) -> GroupNorm -> swish ->
  dropout -> conv3, plus the input (through a 1x1 conv when the widths differ).

  Attributes:
    width: output channels.
    num_groups: GroupNorm groups (must divide the input width and `width`).
    dropout: dropout rate before the second conv.
  """
  width: int
  num_groups: int = 8
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array, train: bool = False) -> jax.Array:
    """Applies the block.

    Args:
      x: [B, L, C] activations.
      emb: [B, E] time embedding.
      train: enables dropout (needs a 'dropout' PRNG stream when dropout > 0).

    Returns:
      [B, L, width].
    """
    h = nn.swish(nn.GroupNorm(num_groups=self.num_groups, name="norm_0")(x))
    h = nn.Conv(self.width, (3,), padding="SAME", name="conv_0")(h)
    h = h + nn.Dense(self.width, name="emb_proj")(nn.swish(emb))[:, None, :]
    h = nn.swish(nn.GroupNorm(num_groups=self.num_groups, name="norm_1")(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Conv(self.width, (3,), padding="SAME", name="conv_1")(h)
    skip = x if x.shape[-1] == self.width else nn.Conv(self.width, (1,), name="skip")(x)
    return skip + h


class AttentionBlock(nn.Module):
  """Residual self-attention over the length axis: x + MHA(GroupNorm(x)).

  Attributes:
    num_heads: attention heads (must divide the width).
    num_groups: GroupNorm groups.
  """
  num_heads: int = 4
  num_groups: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """[B, L, C] -> [B, L, C]."""
    h = nn.GroupNorm(num_groups=self.num_groups, name="norm")(x)
    h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, name="attn")(h, h)
    return x + h


class UNet1D(nn.Module):
  """1-D U-Net: (x [B, L, C_in], t [B]) -> [B, L, out_channels].

  Attributes:
    out_channels: C_out (usually the input channels C).
    base_width: channels after the input conv; level i has base_width * channel_mults[i].
    channel_mults: width multipliers, one resolution level per entry; every level but
      the last halves the length, so L must be a multiple of 2 ** (len(channel_mults) - 1).
    num_res_blocks: residual blocks per level on the down path (one more on the up path).
    attention_levels: 0-based level indices with self-attention after each residual block.
    num_heads: attention heads (must divide the width of every attention level).
    num_groups: GroupNorm groups (must divide every level width).
    time_embed_dim: width of the time embedding MLP; None means 4 * base_width.
    dropout: dropout rate inside the residual blocks (active only with train=True).
    time_scale: t is multiplied by this before the sinusoidal embedding (e.g. 1000 for
      continuous t in [0, 1]).
  """
  out_channels: int
  base_width: int = 32
  channel_mults: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 1
  attention_levels: Sequence[int] = (2,)
  num_heads: int = 4
  num_groups: int = 8
  time_embed_dim: int | None = None
  dropout: float = 0.0
  time_scale: float = 1.0

  def _check(self, x: jax.Array) -> None:
    """Raises ValueError for an unusable configuration or input shape."""
    levels = len(self.channel_mults)
    if levels == 0:
      raise ValueError("channel_mults must have at least one level")
    if self.num_res_blocks < 0:
      raise ValueError(f"num_res_blocks must be >= 0, got {self.num_res_blocks}")
    if x.ndim != 3:
      raise ValueError(f"expected windows [B, L, C], got shape {x.shape}")
    factor = 2 ** (levels - 1)
    length = x.shape[1]
    if length <= 0 or length % factor:
      raise ValueError(
          f"window length {length} is not a multiple of 2 ** (len(channel_mults) - 1) = "
          f"{factor}: each of the {levels - 1} downsampling levels halves the length")
    widths = [self.base_width] + [self.base_width * m for m in self.channel_mults]
    for width in widths:
      if width <= 0 or width % self.num_groups:
        raise ValueError(
            f"num_groups={self.num_groups} must divide every width, but the widths are "
            f"{sorted(set(widths))} (base_width={self.base_width}, "
            f"channel_mults={tuple(self.channel_mults)})")
    for level in self.attention_levels:
      if not 0 <= level < levels:
        raise ValueError(f"attention level {level} out of range for {levels} levels")
      width = self.base_width * self.channel_mults[level]
      if width % self.num_heads:
        raise ValueError(
            f"num_heads={self.num_heads} must divide the width {width} of attention "
            f"level {level}")
    mid = self.base_width * self.channel_mults[-1]
    if mid % self.num_heads:
      raise ValueError(f"num_heads={self.num_heads} must divide the middle width {mid}")

  @nn.compact
  def __call__(self, x: jax.Array, t: jax.Array, train: bool = False) -> jax.Array:
    """Predicts the network output for noisy windows at times t.

    Args:
      x: [B, L, C_in] noisy windows, L a multiple of 2 ** (len(channel_mults) - 1).
      t: [B] diffusion times (int or float), or a scalar (or [1]) broadcast to all B windows.
      train: enables dropout (needs a 'dropout' PRNG stream when dropout > 0).

    Returns:
      [B, L, out_channels].
    """
    self._check(x)
    batch = x.shape[0]
    t = jnp.asarray(t, jnp.float32)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, batch)):
      raise ValueError(f"expected times of shape [{batch}] or a scalar, got {t.shape}")
    t = jnp.broadcast_to(t, (batch,)) * self.time_scale  # [B]

    # Time embedding: sinusoidal -> Dense -> swish -> Dense.  [B, E]
    embed_dim = self.time_embed_dim or 4 * self.base_width
    emb = timestep_embedding(t, self.base_width + self.base_width % 2)  # sinusoid size even
    emb = nn.Dense(embed_dim, name="time_dense_0")(emb)
    emb = nn.Dense(embed_dim, name="time_dense_1")(nn.swish(emb))

    def res(h, width, name):
      return ResBlock(width, num_groups=self.num_groups, dropout=self.dropout,
                      name=name)(h, emb, train)

    def attn(h, name):
      return AttentionBlock(num_heads=self.num_heads, num_groups=self.num_groups, name=name)(h)

    levels = len(self.channel_mults)
    attention = set(self.attention_levels)

    # Down path: keep every activation for the skip connections.
    h = nn.Conv(self.base_width, (3,), padding="SAME", name="conv_in")(x)  # [B, L, base]
    skips = [h]
    for level, mult in enumerate(self.channel_mults):
      width = self.base_width * mult
      for i in range(self.num_res_blocks):
        h = res(h, width, f"down_{level}_res_{i}")
        if level in attention:
          h = attn(h, f"down_{level}_attn_{i}")
        skips.append(h)
      if level < levels - 1:
        # Kernel 3, stride 2, padding 1: exactly halves an even length.
        h = nn.Conv(width, (3,), strides=(2,), padding=((1, 1),),
                    name=f"down_{level}_downsample")(h)
        skips.append(h)

    # Middle: [B, L / 2**(levels-1), base * mults[-1]].
    width = self.base_width * self.channel_mults[-1]
    h = res(h, width, "mid_res_0")
    h = attn(h, "mid_attn")
    h = res(h, width, "mid_res_1")

    # Up path: num_res_blocks + 1 blocks per level, each eating one stored skip.
    for level in reversed(range(levels)):
      width = self.base_width * self.channel_mults[level]
      for i in range(self.num_res_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = res(h, width, f"up_{level}_res_{i}")
        if level in attention:
          h = attn(h, f"up_{level}_attn_{i}")
      if level > 0:
        h = jnp.repeat(h, 2, axis=1)
        h = nn.Conv(width, (3,), padding="SAME", name=f"up_{level}_upsample")(h)
    assert not skips, "every stored activation is consumed on the way up"

    h = nn.swish(nn.GroupNorm(num_groups=self.num_groups, name="norm_out")(h))
    return nn.Conv(self.out_channels, (3,), padding="SAME", kernel_init=nn.initializers.zeros,
                   bias_init=nn.initializers.zeros, name="conv_out")(h)
