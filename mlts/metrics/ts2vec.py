"""TS2Vec (Yue et al., AAAI 2022) in Flax, and Context-FID (Diffusion-TS, ICLR 2024).

Context-FID is the Fréchet distance between real and generated windows in the
space of a TS2Vec encoder trained on the real windows, each window encoded
whole (max-pooled over time). This module re-implements, from the paper:

* the encoder (`TSEncoder`): a linear input projection to `hidden` channels,
  timestamp masking during training (each time step's projection zeroed with
  probability 1/2), `depth` residual blocks of two dilated convolutions
  (kernel 3, dilation 2^i, exact GELU before each, 'SAME' zero padding) and
  a final block to `output` (= 320) channels with a 1x1 projection on its
  residual path, then dropout 0.1 (training only);
* random cropping: two overlapping crops of each window (a shared overlap of
  length l ~ U{2, ..., T}, extents and a per-window offset drawn as in the
  paper), each encoded on its own; the loss compares the two encodings of the
  overlap;
* the hierarchical contrastive loss (`hierarchical_loss`): at every level of
  max-pooling by 2 over time, α · instance loss (each time step's two views
  against the other 2B − 2 windows' at that step) + (1 − α) · temporal loss
  (each step's two views against the other 2T − 2 steps of that window), the
  instance loss alone once one step is left, averaged over levels;
* training: AdamW (lr 1e-3, weight decay 0.01), batches of 8, 200 steps (600
  when the data hold more than 10^5 values), the encoder used afterwards being
  the equal-weight average of the parameters after every step (TS2Vec's SWA
  model). One jitted `lax.scan` (`mlts.scan_fit`) runs all the steps.

Crops have random lengths; to keep one compiled shape every crop sits at the
start of a length-T buffer with a validity mask, the hidden state is zeroed
outside the crop before every convolution (exactly the zero padding the crop
alone would get) and the losses ignore the masked steps, so a crop in a buffer
gives what the crop alone gives (tested).

`context_fid(real, fake, seed=s)` trains an encoder with seed s and returns the
distance; Diffusion-TS reports the mean and std over 5 such runs
(`context_fid_runs`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlts import checks, scan_fit
from mlts.metrics import generative

_NEG = -1e30  # logit of a masked-out candidate (exp underflows to 0)


def default_config() -> ml_collections.ConfigDict:
  """TS2Vec's defaults, as Diffusion-TS's Context-FID uses them."""
  config = ml_collections.ConfigDict()
  config.hidden = 64  # channels of the dilated blocks
  config.output = 320  # representation dimensions
  config.depth = 10  # dilated residual blocks before the output block
  config.lr = 1e-3  # AdamW learning rate
  config.weight_decay = 0.01  # AdamW (PyTorch's default)
  config.batch_size = 8
  config.steps = 0  # 0 = TS2Vec's rule: 200, or 600 when the data hold > 10^5 values
  config.alpha = 0.5  # weight of the instance loss
  config.temporal_unit = 0  # first level with a temporal loss
  config.mask_prob = 0.5  # timestamp masking: probability a step is zeroed (training)
  config.dropout = 0.1  # on the representation (training)
  config.encode_batch = 1024  # windows per encoding chunk
  return config


class DilatedConv(nn.Module):
  """1-D convolution, kernel 3, dilation d, 'SAME' zero padding: [B, T, C_in] -> [B, T, C_out].

  When d >= T both side taps only ever see padding, so the convolution is its
  centre tap: computed as one matrix product then (the same numbers; XLA:CPU
  is slow on the widely dilated kernels of a deep stack on short windows).
  """
  features: int
  dilation: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.dilation >= x.shape[1]:
      return x @ kernel[1] + bias
    out = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1,), padding=[(self.dilation, self.dilation)],
        rhs_dilation=(self.dilation,), dimension_numbers=("NWC", "WIO", "NWC"))
    return out + bias


class DilatedBlock(nn.Module):
  """x + conv2(gelu(conv1(gelu(x)))), the residual through a 1x1 conv when `project`."""
  features: int
  dilation: int
  project: bool

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
    """x [B, T, C_in], valid [B, T, 1] (1 inside the crop) -> [B, T, features]."""
    residual = nn.Conv(self.features, (1,), name="projector")(x) if self.project else x
    h = nn.gelu(x, approximate=False) * valid
    h = DilatedConv(self.features, self.dilation, name="conv1")(h)
    h = nn.gelu(h, approximate=False) * valid
    h = DilatedConv(self.features, self.dilation, name="conv2")(h)
    return h + residual


class TSEncoder(nn.Module):
  """TS2Vec's encoder: per-step representations [B, T, output] of windows [B, T, C]."""
  hidden: int = 64
  output: int = 320
  depth: int = 10
  mask_prob: float = 0.5
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    """Encodes windows.

    Args:
      x: [B, T, C] windows.
      valid: [B, T] {0, 1}: the steps of each row that belong to it (a crop
        at the start of a buffer); None = all.
      train: timestamp masking and dropout on (rngs 'mask' and 'dropout').

    Returns:
      [B, T, output]; rows are meaningful only at their valid steps.
    """
    valid = (jnp.ones(x.shape[:2], x.dtype) if valid is None else valid.astype(x.dtype))
    valid = valid[..., None]
    h = nn.Dense(self.hidden, name="input_fc")(x)
    if train and self.mask_prob > 0:
      keep = jax.random.bernoulli(self.make_rng("mask"), 1.0 - self.mask_prob, x.shape[:2])
      h = h * keep[..., None].astype(h.dtype)
    widths = [self.hidden] * self.depth + [self.output]
    for i, width in enumerate(widths):
      final = i == len(widths) - 1
      h = DilatedBlock(width, 2 ** i, project=final or h.shape[-1] != width,
                       name=f"block_{i}")(h, valid)
    return nn.Dropout(self.dropout, deterministic=not train)(h)


# ---------------------------------------------------------------------- the loss


def _without_diagonal(sim: jax.Array) -> jax.Array:
  """[..., n, n] -> [..., n, n − 1]: row r without its entry r."""
  n = sim.shape[-1]
  cols = jnp.arange(n - 1)[None, :] + (jnp.arange(n - 1)[None, :] >= jnp.arange(n)[:, None])
  return jnp.take_along_axis(sim, jnp.broadcast_to(cols, sim.shape[:-1] + (n - 1,)), axis=-1)


def _masked_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def instance_loss(z1: jax.Array, z2: jax.Array, valid: jax.Array) -> jax.Array:
  """TS2Vec's instance contrast at the valid steps.

  At each step t the positive of window i's first view is its second view;
  the negatives are the other 2B − 2 representations at t (both views of the
  other windows). Loss = mean over valid t and i of the two cross-entropies.

  Args:
    z1, z2: [B, T, D] the two views' representations of the overlap.
    valid: [T] bool, the steps to average over.
  """
  batch = z1.shape[0]
  if batch == 1:
    return jnp.zeros((), z1.dtype)
  z = jnp.swapaxes(jnp.concatenate([z1, z2], axis=0), 0, 1)  # [T, 2B, D]
  nll = -jax.nn.log_softmax(_without_diagonal(z @ jnp.swapaxes(z, 1, 2)), axis=-1)
  i = jnp.arange(batch)
  pos = 0.5 * (nll[:, i, batch + i - 1] + nll[:, batch + i, i])  # [T, B]
  return _masked_mean(pos, jnp.broadcast_to(valid[:, None], pos.shape).astype(pos.dtype))


def temporal_loss(z1: jax.Array, z2: jax.Array, valid: jax.Array) -> jax.Array:
  """TS2Vec's temporal contrast at the valid steps.

  For window b the positive of step t's first view is step t's second view;
  the negatives are the other valid steps of both views of the same window.

  Args:
    z1, z2: [B, T, D]; valid: [T] bool (invalid steps are neither anchors
      nor candidates).
  """
  steps = z1.shape[1]
  if steps == 1:
    return jnp.zeros((), z1.dtype)
  z = jnp.concatenate([z1, z2], axis=1)  # [B, 2T, D]
  both = jnp.concatenate([valid, valid])
  sim = jnp.where(both[None, None, :], z @ jnp.swapaxes(z, 1, 2), _NEG)
  nll = -jax.nn.log_softmax(_without_diagonal(sim), axis=-1)
  t = jnp.arange(steps)
  pos = 0.5 * (nll[:, t, steps + t - 1] + nll[:, steps + t, t])  # [B, T]
  return _masked_mean(pos, jnp.broadcast_to(valid[None, :], pos.shape).astype(pos.dtype))


def _pool(z: jax.Array) -> jax.Array:
  """Max-pool by 2 over time, dropping an odd last step (PyTorch's max_pool1d)."""
  half = z.shape[1] // 2
  return z[:, :2 * half].reshape(z.shape[0], half, 2, z.shape[2]).max(axis=2)


def hierarchical_loss(z1: jax.Array, z2: jax.Array, length, *, alpha: float = 0.5,
                      temporal_unit: int = 0) -> jax.Array:
  """TS2Vec's hierarchical contrastive loss of the first `length` steps of z1, z2.

  Level d (after d poolings) holds n_d = ⌊length / 2^d⌋ valid steps: with
  n_d ≥ 2 it adds α · instance + (1 − α) · temporal (the latter from level
  `temporal_unit` on); the level where n_d = 1 adds α · instance; the sum is
  divided by the number of levels with n_d ≥ 1.

  Args:
    z1, z2: [B, T, D] the two views' representations, valid on [0, length).
    length: the overlap length (an int or a traced int scalar), 1 <= length <= T.
  """
  total = jnp.zeros((), z1.dtype)
  levels = jnp.zeros((), z1.dtype)
  level = 0
  while True:
    steps = z1.shape[1]
    n = jnp.asarray(length) // (2 ** level)
    valid = jnp.arange(steps) < n
    inst = instance_loss(z1, z2, valid)
    pair = alpha * inst
    if level >= temporal_unit and steps > 1:
      pair = pair + (1.0 - alpha) * temporal_loss(z1, z2, valid)
    total = total + jnp.where(n >= 2, pair, 0.0) + jnp.where(n == 1, alpha * inst, 0.0)
    levels = levels + (n >= 1).astype(z1.dtype)
    if steps == 1:
      break
    z1, z2 = _pool(z1), _pool(z2)
    level += 1
  return total / levels


# ---------------------------------------------------------------------- crops


def draw_crops(rng: np.random.Generator, length: int, batch: int, steps: int) -> np.ndarray:
  """[steps, batch, 5] int32 crops as TS2Vec draws them: (start1, len1, start2, len2, l).

  Per step: overlap l ~ U{2..T} (U{1..T} when T < 2), its left end a, the
  first crop's left end e_l ∈ [0, a] and the second's right end e_r ∈
  [a + l, T], and a per-window offset o ∈ [−e_l, T − e_r]. The first crop is
  x[o + e_l : o + a + l] (the overlap is its last l steps), the second
  x[o + a : o + e_r] (its first l steps).
  """
  out = np.zeros((steps, batch, 5), np.int32)
  lo = min(2, length)
  for s in range(steps):  # host-side draws, a handful of integers per step
    overlap = rng.integers(lo, length + 1)
    left = rng.integers(0, length - overlap + 1)
    right = left + overlap
    e_left = rng.integers(0, left + 1)
    e_right = rng.integers(right, length + 1)
    offset = rng.integers(-e_left, length - e_right + 1, size=batch)
    out[s, :, 0] = offset + e_left
    out[s, :, 1] = right - e_left
    out[s, :, 2] = offset + left
    out[s, :, 3] = e_right - left
    out[s, :, 4] = overlap
  return out


def take_crops(x: jax.Array, start: jax.Array, size: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Row i's steps [start_i, start_i + size_i) at the front of a length-T buffer.

  Returns:
    (crops [B, T, C] zero beyond each crop, valid [B, T] {0, 1}).
  """
  steps = x.shape[1]
  pos = jnp.arange(steps)[None, :]
  valid = pos < size[:, None]
  idx = jnp.clip(start[:, None] + pos, 0, steps - 1)
  crops = jnp.take_along_axis(x, idx[..., None], axis=1)
  return crops * valid[..., None].astype(x.dtype), valid.astype(x.dtype)


def crop_loss(model: TSEncoder, params, x: jax.Array, crops: jax.Array, key: jax.Array,
              config: ml_collections.ConfigDict) -> jax.Array:
  """The hierarchical loss of one batch x [B, T, C] and its crops [B, 5] (`draw_crops`)."""
  steps = x.shape[1]
  overlap = crops[0, 4]
  k1, k2, k3, k4 = jax.random.split(key, 4)
  view1, valid1 = take_crops(x, crops[:, 0], crops[:, 1])
  view2, valid2 = take_crops(x, crops[:, 2], crops[:, 3])
  out1 = model.apply({"params": params}, view1, valid1, train=True,
                     rngs={"mask": k1, "dropout": k2})
  out2 = model.apply({"params": params}, view2, valid2, train=True,
                     rngs={"mask": k3, "dropout": k4})
  # The overlap: the last `overlap` steps of crop 1 (same length for every row), the first
  # `overlap` of crop 2, both moved to the front of the buffer.
  idx = jnp.clip(crops[0, 1] - overlap + jnp.arange(steps), 0, steps - 1)
  return hierarchical_loss(jnp.take(out1, idx, axis=1), out2, overlap, alpha=config.alpha,
                           temporal_unit=config.temporal_unit)


# ---------------------------------------------------------------------- fit / encode


def num_steps(data_size: int, config: ml_collections.ConfigDict) -> int:
  """Optimizer steps: `config.steps`, or TS2Vec's rule when it is 0."""
  if config.steps:
    return int(config.steps)
  return 200 if data_size <= 100_000 else 600




@functools.lru_cache(maxsize=8)
def _jitted_fit(hidden: int, output: int, depth: int, mask_prob: float, dropout: float,
                lr: float, weight_decay: float, alpha: float, temporal_unit: int):
  """`fit(params, x, idx [S, B], crops [S, B, 5], keys [S]) -> averaged params`, cached."""
  model = TSEncoder(hidden=hidden, output=output, depth=depth, mask_prob=mask_prob,
                    dropout=dropout)
  config = ml_collections.ConfigDict(dict(alpha=alpha, temporal_unit=temporal_unit))
  tx = optax.adamw(lr, weight_decay=weight_decay)

  def loss_fn(params, x, idx, crops, key):
    return crop_loss(model, params, x[idx], crops, key, config)

  def fit(params, x, idx, crops, keys):
    return scan_fit.fit(lambda p, i, c, k: loss_fn(p, x, i, c, k), params, tx,
                        (idx, crops, keys), average=True)

  return jax.jit(fit)


def _arch(config) -> tuple:
  return (int(config.hidden), int(config.output), int(config.depth), float(config.mask_prob),
          float(config.dropout))


def train_encoder(x, *, seed: int = 0, config: ml_collections.ConfigDict | None = None):
  """Trains a TS2Vec encoder on windows x [N, T, C]; returns its (averaged) parameters.

  The batches (with replacement across epochs: random permutations laid end to
  end), the crops and the masking / dropout keys all come from `seed`.
  """
  config = default_config() if config is None else config
  data = checks.finite_array(x, name="TS2Vec training windows", ndim=3).astype(np.float32)
  n, steps_t, _ = data.shape
  batch = min(int(config.batch_size), n)
  if batch < 1 or steps_t < 1:
    raise ValueError(f"TS2Vec training windows: need N >= 1 and T >= 1, got {data.shape}")
  steps = num_steps(data.size, config)
  key = jax.random.key(seed)
  k_init, k_batches, k_steps = jax.random.split(key, 3)
  params = _jitted_init(_arch(config))(k_init, jnp.zeros((1,) + data.shape[1:]))["params"]
  idx = scan_fit.permutation_batches(k_batches, n, batch, steps)
  crops = draw_crops(np.random.default_rng(seed), steps_t, batch, steps)
  fit = _jitted_fit(*_arch(config), float(config.lr), float(config.weight_decay),
                    float(config.alpha), int(config.temporal_unit))
  return fit(params, jnp.asarray(data), idx, jnp.asarray(crops),
             jax.random.split(k_steps, steps))


@functools.lru_cache(maxsize=8)
def _jitted_init(arch: tuple):
  return jax.jit(TSEncoder(*arch).init)


@functools.lru_cache(maxsize=8)
def _jitted_encode(arch: tuple):
  model = TSEncoder(*arch)

  def encode(params, chunks):  # [K, chunk, T, C] -> [K, chunk, output]
    return jax.lax.map(lambda c: jnp.max(model.apply({"params": params}, c), axis=1), chunks)

  return jax.jit(encode)


def encode(params, x, config: ml_collections.ConfigDict | None = None) -> np.ndarray:
  """Whole-window representations [N, output]: the encoding max-pooled over time."""
  config = default_config() if config is None else config
  data = checks.finite_array(x, name="windows to encode", ndim=3).astype(np.float32)
  n = data.shape[0]
  if n == 0:
    raise ValueError("windows to encode: no windows")
  chunk = min(int(config.encode_batch), n)
  count = -(-n // chunk)
  padded = np.concatenate([data, np.zeros((count * chunk - n,) + data.shape[1:], np.float32)])
  out = _jitted_encode(_arch(config))(params, jnp.asarray(padded.reshape(
      (count, chunk) + data.shape[1:])))
  return np.asarray(out, np.float64).reshape(count * chunk, -1)[:n]


def context_fid(real, fake, *, seed: int = 0,
                config: ml_collections.ConfigDict | None = None) -> float:
  """Context-FID: Fréchet distance of TS2Vec encodings (encoder trained on `real`, seed `seed`).

  Args:
    real: [N, T, C] real windows (Diffusion-TS: scaled to [0, 1]).
    fake: [M, T, C] generated windows, same T and C.
  """
  r = checks.finite_array(real, name="real", ndim=3)
  f = checks.finite_array(fake, name="fake", ndim=3)
  if r.shape[1:] != f.shape[1:]:
    raise ValueError(f"real windows are {r.shape[1:]}, fake windows {f.shape[1:]}; "
                     "they must match")
  params = train_encoder(r, seed=seed, config=config)
  return generative.frechet_distance(encode(params, r, config), encode(params, f, config))


def context_fid_runs(real, fake, seeds: Sequence[int],
                     config: ml_collections.ConfigDict | None = None,
                     encoders: dict | None = None) -> list[float]:
  """`context_fid` for each seed (Diffusion-TS reports their mean ± std over 5).

  The encoder depends only on `real` and the seed, so `encoders` (a dict,
  filled here: seed -> parameters trained on this `real`) lets several fake
  sets be scored against the same real set without retraining; the values
  are those of `context_fid`.
  """
  r = checks.finite_array(real, name="real", ndim=3)
  f = checks.finite_array(fake, name="fake", ndim=3)
  if r.shape[1:] != f.shape[1:]:
    raise ValueError(f"real windows are {r.shape[1:]}, fake windows {f.shape[1:]}; "
                     "they must match")
  encoders = {} if encoders is None else encoders
  out = []
  for s in seeds:  # a handful of runs
    if s not in encoders:
      encoders[s] = train_encoder(r, seed=s, config=config)
    out.append(generative.frechet_distance(encode(encoders[s], r, config),
                                           encode(encoders[s], f, config)))
  return out
