"""Sufficient statistics of training windows: all the forward process fits, shard by shard.

The data-dependent parts of the process and of its Gaussian (the KLT basis,
the component energies that choose the attenuated set I, the per-component
mean and variance of the residual predictor) are functions of three
statistics of the N training windows [N, L, C]: the count N, the mean μ
[L, C] and the scatter S = Σ (x − μ)(x − μ)ᵀ. `WindowMoments` holds them
in float64, either over the flattened window (S [L·C, L·C], what the 'klt'
basis needs) or per channel along time (S [C, L, L], enough for the bases
that act along time), and adds two of them exactly as their windows joined
would (Chan et al.'s pairwise update, stable where raw sums are not).

A multi-process run computes the moments of each of its data shards and
`gather_shards` joins those of all K shards on every process, in shard order
(the float64 values travel exactly, `sharding.allgather_host`): every
process then fits the same process, bitwise the one a single process holding
all K shards fits, without any window leaving its process.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from mlts import checks
from mlts.diffusion import basis as basis_lib


@dataclasses.dataclass(frozen=True)
class WindowMoments:
  """Count, mean and scatter of training windows [N, L, C].

  Attributes:
    count: N.
    mean: [L, C] μ.
    scatter: Σ (x − μ)(x − μ)ᵀ: [L·C, L·C] over the window flattened
      time-major (`flat`), or [C, L, L] per channel along time.
  """
  count: int
  mean: np.ndarray
  scatter: np.ndarray

  @property
  def flat(self) -> bool:
    """Whether the scatter is over the flattened window ([L·C, L·C])."""
    return self.scatter.ndim == 2

  @property
  def window_shape(self) -> tuple[int, int]:
    return tuple(self.mean.shape)

  @classmethod
  def of(cls, windows, *, flat: bool) -> "WindowMoments":
    """The moments of windows [N, L, C] (N >= 1; NaN / inf raise, naming the windows)."""
    x = checks.finite_array(windows, name="training windows", ndim=3).astype(np.float64)
    if x.shape[0] < 1:
      raise ValueError("training windows: no windows to take moments of")
    mean = x.mean(axis=0)
    d = x - mean
    if flat:
      d = d.reshape(d.shape[0], -1)
      scatter = d.T @ d
    else:
      scatter = np.einsum("nlc,nmc->clm", d, d)
    return cls(int(x.shape[0]), mean, scatter)

  def __add__(self, other: "WindowMoments") -> "WindowMoments":
    """The moments of both sets of windows together."""
    if self.window_shape != other.window_shape or self.flat != other.flat:
      raise ValueError(f"cannot join moments of windows {self.window_shape} "
                       f"({'flat' if self.flat else 'per channel'}) and {other.window_shape} "
                       f"({'flat' if other.flat else 'per channel'})")
    n = self.count + other.count
    delta = other.mean - self.mean
    outer = (np.outer(delta.ravel(), delta.ravel()) if self.flat
             else np.einsum("lc,mc->clm", delta, delta))
    return WindowMoments(n, self.mean + delta * (other.count / n),
                         self.scatter + other.scatter + outer * (self.count * other.count / n))

  def covariance(self) -> np.ndarray:
    """[L·C, L·C] covariance (divided by N) of the flattened windows; flat moments only."""
    if not self.flat:
      raise ValueError("the covariance of flattened windows needs flat moments "
                       "(WindowMoments.of(..., flat=True))")
    return self.scatter / self.count

  def coefficient_mean_var(self, basis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance [L, C] each of the coefficients Uᵀx (float64).

    `basis`: U [L, L] along time (either kind of moments) or [L·C, L·C] over the
    flattened window (flat moments only), as `mlts.diffusion.basis.to_basis`.
    """
    u = np.asarray(basis, np.float64)
    length, channels = self.window_shape
    if basis_lib.acts_on_flat((length, channels), u.shape):
      cov = self.covariance()
      mean = (self.mean.reshape(-1) @ u).reshape(length, channels)
      var = np.einsum("ik,ij,jk->k", u, cov, u).reshape(length, channels)
      return mean, var
    blocks = (np.einsum("lcmc->clm", self.scatter.reshape(length, channels, length, channels))
              if self.flat else self.scatter) / self.count  # [C, L, L]
    mean = u.T @ self.mean
    var = np.einsum("lk,clm,mk->kc", u, blocks, u)
    return mean, var

  def coefficient_energy(self, basis) -> np.ndarray:
    """Mean squared coefficient per component [L, C]: as `basis.component_energy`."""
    mean, var = self.coefficient_mean_var(basis)
    return var + mean ** 2


def join(parts: Sequence[WindowMoments]) -> WindowMoments:
  """The moments of all parts' windows together, joined left to right."""
  if not parts:
    raise ValueError("no moments to join")
  total = parts[0]
  for part in parts[1:]:
    total = total + part
  return total


def gather_shards(local: Sequence[WindowMoments]) -> list[WindowMoments]:
  """The moments of every data shard of a run, in shard order, on every process.

  `local`: this process's shards' moments, in shard order (process p holds
  shards p·K/P … (p+1)·K/P − 1, as `mlts.shards.LocalShards`; every process
  the same number). One process: `local` itself. The float64 values travel
  exactly (`sharding.allgather_host`).
  """
  import jax
  if jax.process_count() == 1:
    return list(local)
  from mlts import sharding
  counts = sharding.allgather_host(np.asarray([m.count for m in local], np.int64)).reshape(-1)
  means, scatters = (sharding.allgather_host(np.stack([getattr(m, name) for m in local]))
                     for name in ("mean", "scatter"))
  means = means.reshape((-1,) + local[0].mean.shape)
  scatters = scatters.reshape((-1,) + local[0].scatter.shape)
  return [WindowMoments(int(c), m, s) for c, m, s in zip(counts, means, scatters)]
