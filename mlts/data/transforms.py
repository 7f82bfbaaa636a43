"""Normalization fitted on training data only, RevIN, and the validation split.

Each NASA channel is a different sensor, so statistics are per channel (per
series), fitted on that channel's training part alone; validation and test
data are transformed with them, never used to fit them.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from mlts import checks

METHODS = ("zscore", "minmax", "none")


@dataclasses.dataclass(frozen=True)
class Normalizer:
  """Affine per-feature map x -> (x - shift) / scale fitted on training data.

  Attributes:
    shift: [C] value subtracted.
    scale: [C] positive value divided by (floored so constant features stay finite).
  """
  shift: np.ndarray
  scale: np.ndarray

  def apply(self, x) -> np.ndarray:
    """Maps [..., C] raw values to normalized values."""
    return (np.asarray(x) - self.shift) / self.scale

  def invert(self, y) -> np.ndarray:
    """Maps [..., C] normalized values back to raw values."""
    return np.asarray(y) * self.scale + self.shift


def fit_normalizer(train, method: str = "zscore", *, min_scale: float = 1e-3,
                   name: str = "train") -> Normalizer:
  """Fits a per-feature normalizer on a training series.

  Args:
    train: [T, C] training values.
    method: 'zscore' (mean, std), 'minmax' (to [0, 1]) or 'none' (identity).
    min_scale: a feature whose scale is below this (a constant feature, common in
      the one-hot command columns of SMAP/MSL) gets scale 1 instead: dividing by a
      tiny floor would turn a 0 -> 1 command flip in the test data into a value of
      1/min_scale and drown every other feature.
    name: what `train` is, for error messages.

  Returns:
    A `Normalizer`.
  """
  x = checks.finite_array(train, name=name, ndim=2)
  biggest = float(np.abs(x).max())
  if biggest > 1e150:  # squares overflow float64: the statistics would be inf
    raise ValueError(f"{name}: values up to {biggest:.3g} are too large for its statistics "
                     "(the variance overflows); rescale the data first")
  if method == "zscore":
    shift, scale = x.mean(axis=0), x.std(axis=0)
  elif method == "minmax":
    shift, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
  elif method == "none":
    shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
  else:
    raise ValueError(f"unknown normalization {method!r}; expected one of {METHODS}")
  return Normalizer(shift=shift, scale=np.where(scale < min_scale, 1.0, scale))


def split_train_val(train, val_fraction: float = 0.2, *, name: str = "series"
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Splits a training series in time: the last `val_fraction` is validation.

  Args:
    train: [T, ...] series.
    val_fraction: fraction in (0, 1) of the steps kept for validation.

  Returns:
    (fit part [T - V, ...], validation part [V, ...]) with V = round(T * val_fraction),
    at least 1 step each.
  """
  if not 0.0 < val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
  train = np.asarray(train)
  if train.shape[0] < 2:
    raise ValueError(f"{name}: a training series of {train.shape[0]} step(s) cannot be split "
                     "into a fit and a validation part (2 steps at least)")
  num_val = min(max(int(round(train.shape[0] * val_fraction)), 1), train.shape[0] - 1)
  return train[:-num_val], train[-num_val:]


def revin_normalize(x: jnp.ndarray, eps: float = 1e-5):
  """Reversible instance normalization (Kim et al., ICLR 2022), without affine terms.

  Args:
    x: [B, L, C] windows.
    eps: added to the variance.

  Returns:
    (normalized [B, L, C], (mean [B, 1, C], std [B, 1, C])) for `revin_denormalize`.
  """
  mean = jnp.mean(x, axis=1, keepdims=True)
  std = jnp.sqrt(jnp.var(x, axis=1, keepdims=True) + eps)
  return (x - mean) / std, (mean, std)


def revin_denormalize(y: jnp.ndarray, stats) -> jnp.ndarray:
  """Inverse of `revin_normalize`: [B, L, C] -> [B, L, C]."""
  mean, std = stats
  return y * std + mean


def to_signed(x01):
  """Maps a NumPy or JAX array scaled to [0, 1] to the diffusion model's [−1, 1]: 2x − 1."""
  return 2.0 * x01 - 1.0


def from_signed(x, *, clip: bool = False):
  """Inverse of `to_signed` on a NumPy or JAX array: (x + 1) / 2, clipped to [0, 1] if `clip`."""
  out = (x + 1.0) / 2.0
  return out.clip(0.0, 1.0) if clip else out
