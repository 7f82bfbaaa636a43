"""Reconstruction detectors: the MSE loss and batched, windowed reconstruction of series.

A backbone maps windows [B, L, C] to reconstructions [B, L, C]. Series are cut
into windows, reconstructed in fixed-size batches (one compiled shape, sharded
over the devices), and mapped back to time steps with the fixed-buffer
aggregator; the residual x - x̂ of the aggregated reconstruction is what scores,
GWNR and ARKS read.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mlts import sharding
from mlts.data import windows as windows_lib


def make_mse_loss(apply_fn: Callable) -> Callable:
  """Returns `loss_fn(params, batch [B, L, C], key) -> (mse, {})`."""

  def loss_fn(params, batch, key):
    del key  # deterministic backbone
    recon = apply_fn({"params": params}, batch)
    return jnp.mean(jnp.square(recon - batch)), {}

  return loss_fn


def make_batched_apply(apply_fn: Callable, batch_size: int, mesh=None) -> Callable:
  """Returns `run(params, windows [N, L, C]) -> [N, L, C]` evaluating in fixed batches.

  The last batch is padded to `batch_size` so the network compiles once per
  window shape; batches are split over the devices of `mesh`.
  """
  mesh = sharding.make_mesh() if mesh is None else mesh
  sharding.check_batch_size(batch_size, mesh)
  jitted = jax.jit(lambda params, x: apply_fn({"params": params}, x),
                   in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
                   out_shardings=sharding.replicated(mesh))

  def run(params, windows: np.ndarray) -> np.ndarray:
    num = windows.shape[0]
    outputs = []
    for begin in range(0, num, batch_size):  # loop over batches, not samples
      chunk = windows[begin:begin + batch_size]
      short = batch_size - chunk.shape[0]
      if short:
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)], axis=0)
      out = jitted(params, sharding.put_batch(chunk, mesh))
      outputs.append(np.asarray(out)[:batch_size - short])
    return np.concatenate(outputs, axis=0)

  return run


def reconstruct_series(run: Callable, params, series: Sequence[np.ndarray], window: int,
                       stride: int) -> list[np.ndarray]:
  """Reconstructs whole series through windows and the fixed-buffer aggregator.

  All series are windowed (padded by edge replication when shorter than the
  window), reconstructed together, and aggregated back one series at a time; the
  padded steps are dropped.

  Args:
    run: from `make_batched_apply`.
    params: network parameters.
    series: list of [T_k, C] arrays.
    window: L.
    stride: window stride at evaluation.

  Returns:
    List of [T_k, C] aggregated reconstructions.
  """
  cut = [windows_lib.sliding_windows(s, window, stride, pad=True, name=f"series {k}")
         for k, s in enumerate(series)]
  all_windows = np.concatenate([w for w, _, _ in cut], axis=0).astype(np.float32)
  recon = run(params, all_windows)
  out, offset = [], 0
  for s, (w, starts, mask) in zip(series, cut):
    part = recon[offset:offset + w.shape[0]]
    offset += w.shape[0]
    out.append(windows_lib.aggregate(part, starts, mask.shape[0])[:s.shape[0]])
  return out


def squared_error(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
  """Per-time-step score: mean over channels of the squared residual, [T, C] -> [T]."""
  return np.mean(np.square(np.asarray(x, np.float64) - recon), axis=-1)
