"""Whole training runs of small auxiliary networks as one `lax.scan`.

The metric and evaluation networks (post-hoc GRU classifier and predictor of
`metrics.temporal`, the channel classifier of `metrics.embedding`, the TSTR
classifier of `vaegan.tstr`) train for a fixed number of optimizer steps on
index batches drawn up front from a PRNG key. `fit` runs all the steps inside
one traced scan, so a call to the jitted caller compiles once and has no Python
loop over steps.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax


def permutation_batches(key: jax.Array, n: int, batch: int, steps: int) -> jax.Array:
  """[steps, batch] int32 indices into range(n): random permutations laid end to end.

  Every row of the data is visited once per ceil(n / batch) consecutive steps
  (an epoch) before any is repeated.
  """
  passes = -(-steps * batch // n)
  perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, passes))
  return perms.reshape(-1)[:steps * batch].reshape(steps, batch)


def fit(loss_fn: Callable[..., jax.Array], params: Any, tx: optax.GradientTransformation,
        batches: Any, *, average: bool = False) -> Any:
  """Parameters after one optimizer step per leading entry of `batches`.

  Args:
    loss_fn: `loss_fn(params, *batch) -> scalar` when a batch is a tuple,
      `loss_fn(params, batch)` otherwise.
    params: initial parameters (a pytree).
    tx: the optax transformation (e.g. `optax.adam(lr)`).
    batches: an array [steps, ...] or a tuple of arrays with a common leading
      `steps` axis; step k sees entry k.

    average: return the running mean of the parameters after each step
      (stochastic weight averaging with equal weights, as
      `torch.optim.swa_utils.AveragedModel` updated after every step) instead
      of the last ones.

  Returns:
    The parameters after all the steps, or their average over the steps
    (traceable: call it inside `jax.jit`).
  """
  def step(carry, batch):
    p, opt_state, mean, count = carry
    args = batch if isinstance(batch, tuple) else (batch,)
    grads = jax.grad(loss_fn)(p, *args)
    updates, opt_state = tx.update(grads, opt_state, p)
    p = optax.apply_updates(p, updates)
    if average:
      count = count + 1
      mean = jax.tree.map(lambda m, x: m + (x - m) / count, mean, p)
    return (p, opt_state, mean, count), None

  init = (params, tx.init(params), params, jax.numpy.zeros((), jax.numpy.float32))
  (params, _, mean, _), _ = jax.lax.scan(step, init, batches)
  return mean if average else params
