"""One parameter set per series, trained together: `jax.vmap` over a leading series axis.

NASA channels are different sensors with a few thousand normal steps each; a
model of each channel's own normal behaviour beats one model of all channels
pooled. Training S small models one after another would pay S compilations and
S Python loops; here the S parameter sets are stacked on a leading axis and one
jitted step updates all of them:

* `init_stacked`: S independent initializations (one key each) -> params [S, ...];
* `vmapped_optimizer`: an optax transformation whose state and update are
  vmapped over the series axis, so every per-parameter statistic (Adam's
  moments, global-norm clipping, the schedule's count) is per series;
* `stacked_loss`: the per-series loss vmapped over params [S, ...] and a batch
  [B, S, ...] (series k's column holds only series k's windows), summed: the
  gradient of the sum w.r.t. series k's parameters is the gradient of series k's
  own loss, so one step of the stack equals S separate steps;
* `stacked_windows`: windows [N, S, L, C] from S lists of unequal length, series
  k's column cycling through its own windows in a seeded order.

The stack plugs into `mlts.train.fit` unchanged (its batch axis B is split over
devices; params are replicated).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax


def init_stacked(init_fn: Callable[[jax.Array], Any], key: jax.Array, num_series: int) -> Any:
  """[S, ...]-stacked pytree of `init_fn(key_k)` for S keys split from `key`."""
  return jax.vmap(init_fn)(jax.random.split(key, num_series))


def vmapped_optimizer(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """`tx` applied independently to each entry of a leading series axis."""

  def init(params):
    return jax.vmap(tx.init)(params)

  def update(updates, state, params=None):
    if params is None:
      return jax.vmap(lambda u, s: tx.update(u, s))(updates, state)
    return jax.vmap(tx.update)(updates, state, params)

  return optax.GradientTransformation(init, update)


def stacked_loss(loss_fn: Callable, constants: Any = None) -> Callable:
  """`loss(params [S, ...], batch [B, S, ...], key) -> (sum of the S losses, metrics)`.

  Series k's loss sees `params[k]`, `batch[:, k]` and `fold_in(key, k)`, and,
  when `constants` (an [S, ...]-stacked pytree of non-trained per-series arrays,
  e.g. a data-dependent forward process) is given, `constants[k]` as a fourth
  argument. Metrics are the per-series metrics averaged over series, plus
  `loss_max` (the largest per-series loss).
  """

  def loss(params, batch, key):
    num_series = jax.tree.leaves(params)[0].shape[0]
    keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_series))
    if constants is None:
      losses, metrics = jax.vmap(loss_fn, in_axes=(0, 1, 0))(params, batch, keys)
    else:
      losses, metrics = jax.vmap(loss_fn, in_axes=(0, 1, 0, 0))(params, batch, keys,
                                                                constants)
    metrics = {name: jnp.mean(v) for name, v in metrics.items()}
    return jnp.sum(losses), {**metrics, "loss_mean": jnp.mean(losses),
                             "loss_max": jnp.max(losses)}

  return loss


def stacked_windows(per_series: Sequence[np.ndarray], seed: int) -> np.ndarray:
  """[N, S, ...] windows with N = the largest count; column k cycles through series k's own.

  Series k's windows are taken in a random order drawn from (seed, k) and
  repeated as needed, so which windows a column holds never depends on
  another series' data.

  Args:
    per_series: S arrays [n_k, ...] (same trailing shape), n_k >= 1.
    seed: seed of the orders.
  """
  if not per_series:
    raise ValueError("stacked_windows: no series")
  shapes = {w.shape[1:] for w in per_series}
  if len(shapes) > 1:
    raise ValueError(f"stacked_windows: windows of different shapes {sorted(shapes)}")
  for k, w in enumerate(per_series):
    if w.shape[0] == 0:
      raise ValueError(f"stacked_windows: series {k} has no windows")
  count = max(w.shape[0] for w in per_series)
  columns = []
  for k, w in enumerate(per_series):  # series, not samples
    order = np.random.default_rng([seed, k]).permutation(w.shape[0])
    columns.append(w[np.resize(order, count)])
  return np.stack(columns, axis=1)


def take(stacked: Any, k: int) -> Any:
  """Series k's pytree out of an [S, ...]-stacked one."""
  return jax.tree.map(lambda a: a[k], stacked)
