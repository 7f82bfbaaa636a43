"""DLinear adapted to reconstruction: decomposition + low-rank linear maps along time.

DLinear (Zeng et al., "Are Transformers Effective for Time Series
Forecasting?", AAAI 2023) splits a window into a trend, its moving average with
edge padding (the first and last values repeated, as in the authors'
`series_decomp`), and a seasonal remainder, then maps each part with one
linear layer along time, shared across channels ("individual=False"), and adds
the two outputs.

Adaptation to reconstruction: the forecaster maps the L past steps to the H
future ones. Here the target is the window itself (H = L), and a full L x L map
would learn the identity and reconstruct anomalies as well as normal data. So
each part goes through a low-rank bottleneck instead, L -> `latent` -> L (two
Dense layers, no nonlinearity: the map stays linear, as in DLinear, with rank
at most `latent` per part). The code is 2 * `latent` numbers per channel and
window. The Dense weights have L rows, so a module is tied to the window
length it was initialized with. Optional RevIN as in `conv_ae`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mlts.data import transforms


def moving_average(x: jnp.ndarray, kernel_size: int) -> jnp.ndarray:
  """Moving average along time with edge padding, length preserved.

  Args:
    x: [B, L, C] windows.
    kernel_size: averaging width k (odd keeps it centred; even puts the extra
      step in the past).

  Returns:
    [B, L, C] trend.
  """
  front = (kernel_size - 1) // 2
  back = kernel_size - 1 - front
  padded = jnp.concatenate(
      [jnp.repeat(x[:, :1], front, axis=1), x, jnp.repeat(x[:, -1:], back, axis=1)], axis=1)
  total = jax.lax.reduce_window(
      padded, 0.0, jax.lax.add, (1, kernel_size, 1), (1, 1, 1), "VALID")
  return total / kernel_size


class DLinear(nn.Module):
  """Series decomposition and two low-rank linear maps along time.

  Attributes:
    num_features: C, channels of the input and the reconstruction.
    latent: rank of each linear map along time (trend and seasonal).
    kernel_size: moving-average width of the decomposition.
    revin: whether to wrap the network in reversible instance normalization.
  """
  num_features: int
  latent: int = 16
  kernel_size: int = 25
  revin: bool = True

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_features: int) -> DLinear:
    """Builds the module from the `model` config section (missing fields take defaults).

    The moving-average width is read from `moving_avg` (the authors' name), not
    `kernel_size`, which `conv_ae` uses for its convolution width.
    """
    return cls(
        num_features=num_features,
        latent=config.get("latent", cls.latent),
        kernel_size=config.get("moving_avg", cls.kernel_size),
        revin=config.get("revin", cls.revin))

  def _low_rank(self, part: jnp.ndarray, name: str) -> jnp.ndarray:
    """L -> latent -> L along time, shared across channels: [B, L, C] -> [B, L, C]."""
    h = jnp.swapaxes(part, 1, 2)  # [B, C, L]
    h = nn.Dense(self.latent, name=f"{name}_encode")(h)  # [B, C, latent]
    h = nn.Dense(part.shape[1], name=f"{name}_decode")(h)  # [B, C, L]
    return jnp.swapaxes(h, 1, 2)

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """Reconstructs windows.

    Args:
      x: [B, L, C] windows; L must equal the length the module was initialized with.

    Returns:
      [B, L, C] reconstruction.
    """
    if x.ndim != 3 or x.shape[-1] != self.num_features or x.shape[1] < 1:
      raise ValueError(f"expected windows [B, L, {self.num_features}], got {x.shape}")
    if self.kernel_size < 1:
      raise ValueError(f"kernel_size must be positive, got {self.kernel_size}")
    params = self.variables.get("params", {})
    if "seasonal_encode" in params:
      length = params["seasonal_encode"]["kernel"].shape[0]
      if x.shape[1] != length:
        raise ValueError(
            f"DLinear was initialized for windows of length {length}, got {x.shape}")
    if self.revin:
      x, stats = transforms.revin_normalize(x)
    trend = moving_average(x, self.kernel_size)  # [B, L, C]
    y = self._low_rank(x - trend, "seasonal") + self._low_rank(trend, "trend")
    if self.revin:
      y = transforms.revin_denormalize(y, stats)
    return y
