"""Per-window score components of a trained β-VAEGAN (papers/001, SPEC §5).

For windows x in [0, 1] the generator runs in evaluation mode (BatchNorm
running statistics, z = μ, no sampling), then

* R(x) = mean over (L, C) of (x − x̂)²: reconstruction error, in [0, 1] units
  whatever the decoder's range (a tanh model's x̂ is mapped back);
* D(x) = mean over F of (f(x) − f(x̂))²: discrimination error on the
  discriminator's penultimate features (NaN-free zeros for models without a
  discriminator, which report no D);
* ‖μ(x)‖₂ ('z_norm'): the deterministic latent norm, turned into the latent
  score L(x) by `composition.latent_norm_score` against the training norms;
* ‖μ + σ·ε‖₂ ('z_sample_norm', ε drawn from `key`): the norm of a posterior
  sample. This is what the χ check tests: when the KL term pulls q(z|x) to
  N(0, I) the samples, not the means, follow N(0, I) (a collapsed posterior
  has μ ≈ 0 and σ ≈ 1). Deterministic models have σ ≡ 0 here.

One jitted function computes all three for a fixed-size batch (one compiled
shape; the last batch is padded), sharded over the devices of the mesh.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import checks, sharding
from mlts.vaegan import train as vaegan_train


def make_scorer(config: ml_collections.ConfigDict, *, batch_size: int = 256,
                mesh=None, with_reconstruction: bool = False) -> Callable:
  """Returns `score(state, windows) -> dict` evaluating windows in fixed batches.

  Args:
    config: the `vaegan` section the state was trained with.
    batch_size: windows per compiled batch (a multiple of the device count).
    mesh: device mesh (default: all devices).
    with_reconstruction: also return the reconstructions 'x_hat'.

  Returns:
    `score(state: VaeganState, windows [N, L, C] in [0, 1], key=None)`
    returning float64 arrays 'R' [N], 'D' [N], 'z_norm' [N], 'z_sample_norm'
    [N], 'mu' [N, latent] and, if asked, float32 'x_hat' [N, L, C] in [0, 1].
    `key` (default `jax.random.key(0)`) draws the posterior samples; batch b
    uses `fold_in(key, b)`.
  """
  mesh = sharding.make_mesh() if mesh is None else mesh
  sharding.check_batch_size(batch_size, mesh)
  jitted = _jitted_components(ml_collections.FrozenConfigDict(config), mesh,
                              with_reconstruction)

  def score(state: vaegan_train.VaeganState, windows, key=None) -> dict[str, np.ndarray]:
    key = jax.random.key(0) if key is None else key
    x = checks.finite_array(windows, name="windows to score", ndim=3).astype(np.float32)
    if x.shape[0] == 0:
      raise ValueError("no windows to score")
    gen_vars = {"params": state.gen.params, "batch_stats": state.gen.batch_stats}
    disc_vars = {"params": state.disc.params, "batch_stats": state.disc.batch_stats}
    result = sharding.map_batches(
        lambda chunk, b: jitted(gen_vars, disc_vars, chunk, jax.random.fold_in(key, b)),
        x, batch_size, mesh)
    for k in ("R", "D", "z_norm", "z_sample_norm", "mu"):
      result[k] = result[k].astype(np.float64)
    return result

  return score


@functools.lru_cache(maxsize=32)
def _jitted_components(config: ml_collections.FrozenConfigDict, mesh,
                       with_reconstruction: bool) -> Callable:
  """The jitted per-batch scorer; cached so equal configs compile once per shape."""
  output, adversarial = config.output, bool(config.adversarial)
  variational = bool(config.variational)

  def components(gen_vars, disc_vars, x01, key):
    gen_model, disc_model = vaegan_train.make_models(config, x01.shape[1], x01.shape[2])
    x = vaegan_train.to_model_range(x01, output)
    x_hat, _, mu, logvar = gen_model.apply(gen_vars, x, train=False, sample=False)
    z_sample = mu
    if variational:
      z_sample = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
    rec = jnp.mean(jnp.square(vaegan_train.from_model_range(x_hat, output) - x01), axis=(1, 2))
    if adversarial:
      _, feats = disc_model.apply(disc_vars, jnp.concatenate([x, x_hat], axis=0),
                                  update_stats=False)
      half = x.shape[0]
      disc = jnp.mean(jnp.square(feats[:half] - feats[half:]), axis=1)
    else:
      disc = jnp.zeros_like(rec)
    out = {"R": rec, "D": disc, "z_norm": jnp.linalg.norm(mu, axis=1),
           "z_sample_norm": jnp.linalg.norm(z_sample, axis=1), "mu": mu}
    if with_reconstruction:
      out["x_hat"] = vaegan_train.from_model_range(x_hat, output)
    return out

  replicated = sharding.replicated(mesh)
  return jax.jit(components,
                 in_shardings=(replicated, replicated, sharding.batch_sharded(mesh), replicated),
                 out_shardings=replicated)
