"""β-VAEGAN networks (papers/001, SPEC §5): β-VAE generator and spectral-norm discriminator.

The generator is a β-VAE: `Encoder` (strided 1-D conv blocks, BatchNorm,
LeakyReLU 0.2) to the mean and log-variance of a latent vector, the
reparameterization z = μ + σ·ε, and `Decoder` (transposed conv blocks,
BatchNorm, ReLU) ending in a sigmoid, so inputs must be min-max scaled to
[0, 1]. The `Discriminator` is a stack of strided conv blocks under spectral
normalization with LeakyReLU 0.2 and a sigmoid head; it also returns its
penultimate activations f(x), the features of the feature-matching loss and of
the discrimination score D(x).

Every conv block uses kernel 4, stride 2 and padding 1, which halves the
length exactly, so the window length L must be a multiple of 2 ** len(hidden)
(160, 128 and 64 all are for the default depth 5). Lengths that are not raise a
ValueError rather than being silently cropped.

Randomness: `BetaVAE` draws ε from the 'latent' PRNG stream
(`self.make_rng('latent')`), so callers pass `rngs={'latent': key}` to `apply`;
with `sample=False` it returns z = μ and needs no key (scoring, evaluation).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Paper appendix: five conv blocks, widths doubling as in BeatGAN (ndf = 32).
DEFAULT_HIDDEN = (32, 64, 128, 256, 512)

OUTPUTS = ("sigmoid", "tanh")

_KERNEL = (4,)
_STRIDE = (2,)
# Kernel 4, stride 2, padding 1 on each side: out = L / 2 exactly (PyTorch's Conv1d(4, 2, 1)).
_PAD = ((1, 1),)


def check_length(length: int, depth: int) -> None:
  """Raises ValueError unless `length` is a positive multiple of 2 ** depth."""
  factor = 2 ** depth
  if length <= 0 or length % factor:
    raise ValueError(
        f"window length {length} is not a multiple of 2 ** {depth} = {factor}: each of the "
        f"{depth} conv blocks halves the length; use e.g. 160, 128 or 64 for depth 5")


def _check_input(x: jax.Array, depth: int) -> None:
  if x.ndim != 3:
    raise ValueError(f"expected windows [B, L, C], got shape {x.shape}")
  check_length(x.shape[1], depth)


class Encoder(nn.Module):
  """Conv encoder q(z | x): [B, L, C] -> (μ [B, latent], log σ² [B, latent]).

  Attributes:
    latent: size of the latent vector z.
    hidden: channels of each conv block (its length is the depth).
  """
  latent: int
  hidden: Sequence[int] = DEFAULT_HIDDEN

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    """Encodes windows.

    Args:
      x: [B, L, C] windows in [0, 1], L a multiple of 2 ** len(hidden).
      train: BatchNorm uses batch statistics (and updates 'batch_stats') if True.

    Returns:
      (mu [B, latent], logvar [B, latent]).
    """
    _check_input(x, len(self.hidden))
    h = x
    for i, width in enumerate(self.hidden):
      # BatchNorm makes the conv bias redundant.
      h = nn.Conv(width, _KERNEL, strides=_STRIDE, padding=_PAD, use_bias=False,
                  name=f"conv_{i}")(h)
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn_{i}")(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)  # [B, L / 2**depth * hidden[-1]]
    mu = nn.Dense(self.latent, name="mu")(h)
    logvar = nn.Dense(self.latent, name="logvar")(h)
    return mu, logvar


class Decoder(nn.Module):
  """Transposed-conv decoder p(x | z): [B, latent] -> [B, L, C] in [0, 1].

  Attributes:
    num_features: C, channels of the output.
    length: L, the window length (a multiple of 2 ** len(hidden)).
    hidden: the encoder's widths; the decoder mirrors them.
    output: 'sigmoid' (outputs in (0, 1); β-VAEGAN, BeatGAN+) or 'tanh'
      (outputs in (-1, 1); the original BeatGAN, inputs scaled to [-1, 1]).
  """
  num_features: int
  length: int
  hidden: Sequence[int] = DEFAULT_HIDDEN
  output: str = "sigmoid"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool) -> jax.Array:
    """Decodes latent vectors.

    Args:
      z: [B, latent].
      train: BatchNorm mode, as in `Encoder`.

    Returns:
      [B, L, C] reconstruction in (0, 1) (sigmoid) or (-1, 1) (tanh).
    """
    if self.output not in OUTPUTS:
      raise ValueError(f"decoder output must be one of {OUTPUTS}, got {self.output!r}")
    depth = len(self.hidden)
    check_length(self.length, depth)
    base = self.length // 2 ** depth
    h = nn.Dense(base * self.hidden[-1], name="from_latent")(z)
    h = h.reshape(z.shape[0], base, self.hidden[-1])  # [B, L / 2**depth, hidden[-1]]
    h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn_in")(h))
    widths = list(reversed(self.hidden[:-1])) + [self.num_features]
    for i, width in enumerate(widths):
      # 'SAME' padding makes a stride-2 transposed conv exactly double the length.
      h = nn.ConvTranspose(width, _KERNEL, strides=_STRIDE, padding="SAME",
                           use_bias=i == depth - 1, name=f"deconv_{i}")(h)
      if i < depth - 1:
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn_{i}")(h)
        h = nn.relu(h)
    return nn.sigmoid(h) if self.output == "sigmoid" else jnp.tanh(h)


class BetaVAE(nn.Module):
  """The β-VAE generator: encoder, reparameterization, decoder.

  Attributes:
    num_features: C.
    length: L, a multiple of 2 ** len(hidden).
    latent: size of z.
    hidden: conv widths of the encoder (mirrored by the decoder).
    output: the decoder's output layer, 'sigmoid' or 'tanh' (see `Decoder`).
  """
  num_features: int
  length: int
  latent: int = 6
  hidden: Sequence[int] = DEFAULT_HIDDEN
  output: str = "sigmoid"

  def setup(self):
    self.encoder = Encoder(self.latent, tuple(self.hidden))
    self.decoder = Decoder(self.num_features, self.length, tuple(self.hidden), self.output)

  def __call__(self, x: jax.Array, train: bool, sample: bool = True
               ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Reconstructs windows.

    Args:
      x: [B, L, C] windows in [0, 1].
      train: BatchNorm mode.
      sample: draw z = μ + σ·ε with ε from the 'latent' rng stream; if False, z = μ
        (deterministic, no rng needed).

    Returns:
      (x_hat [B, L, C], z [B, latent], mu [B, latent], logvar [B, latent]).
    """
    if x.shape[1:] != (self.length, self.num_features):
      raise ValueError(
          f"expected windows [B, {self.length}, {self.num_features}], got {x.shape}")
    mu, logvar = self.encoder(x, train)
    z = mu
    if sample:
      eps = jax.random.normal(self.make_rng("latent"), mu.shape, mu.dtype)
      z = mu + jnp.exp(0.5 * logvar) * eps
    return self.decoder(z, train), z, mu, logvar

  def decode(self, z: jax.Array, train: bool = False) -> jax.Array:
    """[B, latent] -> [B, L, C]; use with `apply(..., method=BetaVAE.decode)`."""
    return self.decoder(z, train)


class Discriminator(nn.Module):
  """Spectral-norm conv discriminator: [B, L, C] -> (P(real) [B], features [B, F]).

  Every weight (conv kernels and the head) is spectrally normalized by flax's
  `nn.SpectralNorm`, whose power-iteration state (u, sigma) lives in the
  'batch_stats' collection. No BatchNorm and no input normalization (BeatGAN+).
  With `spectral_norm=False` the same convolutions are plain (the BeatGAN
  baseline) and there is no 'batch_stats' collection.

  Attributes:
    hidden: channels of each conv block; F = L / 2 ** len(hidden) * hidden[-1].
    spectral_norm: wrap every weight in `nn.SpectralNorm`.
  """
  hidden: Sequence[int] = DEFAULT_HIDDEN
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool) -> tuple[jax.Array, jax.Array]:
    """Scores windows.

    Args:
      x: [B, L, C] windows, L a multiple of 2 ** len(hidden).
      update_stats: store the new power-iteration vectors (training; needs
        mutable=['batch_stats']). False leaves the state untouched (evaluation, and
        the generator's pass through the discriminator).

    Returns:
      (prob [B] in (0, 1), features f(x) [B, F]: the flattened penultimate activations).
    """
    _check_input(x, len(self.hidden))
    h = x
    for i, width in enumerate(self.hidden):
      conv = nn.Conv(width, _KERNEL, strides=_STRIDE, padding=_PAD, name=f"conv_{i}")
      h = self._normalized(conv, f"sn_{i}", h, update_stats)
      h = nn.leaky_relu(h, 0.2)
    features = h.reshape(h.shape[0], -1)
    logit = self._normalized(nn.Dense(1, name="head"), "sn_head", features, update_stats)
    return nn.sigmoid(logit[:, 0]), features

  def _normalized(self, layer: nn.Module, name: str, h: jax.Array,
                  update_stats: bool) -> jax.Array:
    if self.spectral_norm:
      return nn.SpectralNorm(layer, name=name)(h, update_stats=update_stats)
    return layer(h)
