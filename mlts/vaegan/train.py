"""β-VAEGAN training state and the jitted adversarial train step (SPEC §5).

The GAN needs two optimizers, so it does not plug into `mlts.train.fit`; it
follows its conventions instead: a pure `step(state, batch, key)` whose
per-step randomness is `fold_in(key, state.step)` (no key in the state, a
resumed run reproduces), jitted with the state donated.

One step = `disc_steps` discriminator updates (an unrolled loop: see the step)
followed by one generator update, both with
AdaBelief (lr 2e-4, b1 0.5, b2 0.99, eps 1e-16 by default, the paper's
settings). The discriminator always sees real and reconstructed windows in
one concatenated batch: it has no BatchNorm, so this is exact and runs one
spectral-norm power iteration per update instead of two.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mlts.vaegan import losses
from mlts.vaegan.model import DEFAULT_HIDDEN, BetaVAE, Discriminator

StepFn = Callable[..., tuple["VaeganState", Mapping[str, jax.Array]]]


def default_config() -> ml_collections.ConfigDict:
  """The `vaegan` config section with the paper's β-VAEGAN₂ settings."""
  config = ml_collections.ConfigDict()
  config.latent = 6  # size of z (paper: 6 on MITBIH, 4 on Wafer)
  config.beta = 1e-4  # KL weight; KL summed over batch and latent dims (see losses.py)
  config.nu = 1.0  # reconstruction weight ν; not given in the paper
  config.disc_steps = 3  # discriminator updates per generator update
  config.lr = 2e-4  # AdaBelief learning rate
  config.b1 = 0.5  # AdaBelief β1
  config.b2 = 0.99  # AdaBelief β2
  config.eps = 1e-16  # AdaBelief ε
  config.gen_hidden = DEFAULT_HIDDEN  # encoder conv widths (decoder mirrors them)
  config.disc_hidden = DEFAULT_HIDDEN  # discriminator conv widths
  return config


class NetState(flax.struct.PyTreeNode):
  """One network's trained and non-trained variables and its optimizer state.

  Only arrays: the modules and optimizers are rebuilt from the config by
  `make_train_step`, so two states created from the same config have the same
  tree structure and the jitted step compiles once for both.

  Attributes:
    step: number of updates applied.
    params: the 'params' collection.
    batch_stats: BatchNorm running statistics (generator) or spectral-norm
      power-iteration vectors u and sigmas (discriminator).
    opt_state: the AdaBelief state.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any

  def apply_gradients(self, grads, tx: optax.GradientTransformation,
                      batch_stats: Any) -> "NetState":
    """One optimizer update; `batch_stats` replaces the stored statistics."""
    updates, opt_state = tx.update(grads, self.opt_state, self.params)
    return NetState(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                    batch_stats=batch_stats, opt_state=opt_state)

  @classmethod
  def create(cls, variables: Any, tx: optax.GradientTransformation) -> "NetState":
    params = variables["params"]
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               batch_stats=variables["batch_stats"], opt_state=tx.init(params))


class VaeganState(flax.struct.PyTreeNode):
  """The whole β-VAEGAN training state, a pytree.

  Attributes:
    step: number of completed `train_step`s (generator updates).
    gen: the β-VAE generator (its `step` = generator updates).
    disc: the discriminator (its `step` = discriminator updates = disc_steps · step).
  """
  step: jax.Array
  gen: NetState
  disc: NetState


def make_models(config: ml_collections.ConfigDict, length: int,
                num_features: int) -> tuple[BetaVAE, Discriminator]:
  """The generator and discriminator modules for windows [B, length, num_features]."""
  gen = BetaVAE(num_features=num_features, length=length, latent=config.latent,
                hidden=tuple(config.gen_hidden))
  disc = Discriminator(hidden=tuple(config.disc_hidden))
  return gen, disc


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdaBelief from the `lr`, `b1`, `b2`, `eps` fields."""
  return optax.adabelief(config.lr, b1=config.b1, b2=config.b2, eps=config.eps)


def create_state(config: ml_collections.ConfigDict, sample: jax.Array,
                 key: jax.Array) -> VaeganState:
  """Initializes both networks and their optimizers.

  Args:
    config: the `vaegan` section (see `default_config`).
    sample: [B, L, C] windows of the training shape (B = 1 is enough).
    key: PRNG key for initialization.

  Returns:
    A `VaeganState` at step 0.
  """
  gen, disc = make_models(config, sample.shape[1], sample.shape[2])
  k_gen, k_latent, k_disc = jax.random.split(key, 3)
  gen_vars = gen.init({"params": k_gen, "latent": k_latent}, sample, train=False)
  disc_vars = disc.init(k_disc, sample, update_stats=False)
  tx = make_optimizer(config)
  return VaeganState(step=jnp.zeros((), jnp.int32), gen=NetState.create(gen_vars, tx),
                     disc=NetState.create(disc_vars, tx))


def make_train_step(config: ml_collections.ConfigDict, *, jit: bool = True) -> StepFn:
  """Returns `train_step(state, batch, key) -> (state, metrics)`.

  Args:
    config: the `vaegan` section; uses beta, nu and disc_steps.
    jit: return `jax.jit(step, donate_argnums=0)` (the state passed in is
      consumed); False returns the pure function.

  Returns:
    The step. `batch` is [B, L, C] windows in [0, 1]; `key` the training
    stream's key (the same every step). Metrics are scalars: loss_g, loss_d,
    adv, rec, kl, mse, d_real, d_fake, grad_norm_g, grad_norm_d (the
    discriminator's from its last update).
  """
  # Frozen: later edits of the caller's config cannot change a traced step.
  config = ml_collections.FrozenConfigDict(config)
  beta, nu, disc_steps = float(config.beta), float(config.nu), int(config.disc_steps)
  if disc_steps < 1:
    raise ValueError(f"disc_steps must be >= 1, got {disc_steps}")

  tx = make_optimizer(config)

  def train_step(state: VaeganState, batch: jax.Array, key: jax.Array):
    # Modules are built from the (static) batch shape at trace time.
    gen_model, disc_model = make_models(config, batch.shape[1], batch.shape[2])
    step_key = jax.random.fold_in(key, state.step)
    k_fake, k_gen = jax.random.split(step_key)
    gen, disc = state.gen, state.disc
    batch_size = batch.shape[0]

    # Reconstructions for the discriminator. The generator is unchanged during the
    # discriminator updates, so one forward pass serves all of them; its BatchNorm
    # statistics update is dropped (the generator update below makes its own).
    (x_fake, _, _, _), _ = gen_model.apply(
        {"params": gen.params, "batch_stats": gen.batch_stats}, batch, train=True,
        rngs={"latent": k_fake}, mutable=["batch_stats"])
    both = jnp.concatenate([batch, jax.lax.stop_gradient(x_fake)], axis=0)

    def d_loss_fn(params, stats):
      (prob, _), updates = disc_model.apply(
          {"params": params, "batch_stats": stats}, both, update_stats=True,
          mutable=["batch_stats"])
      loss, metrics = losses.discriminator_loss(prob[:batch_size], prob[batch_size:])
      return loss, (metrics, updates["batch_stats"])

    def d_update(d):
      (loss, (metrics, stats)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
          d.params, d.batch_stats)
      d = d.apply_gradients(grads, tx, stats)
      return d, {"loss_d": loss, "grad_norm_d": optax.tree.norm(grads), **metrics}

    # Unrolled rather than `lax.fori_loop`: XLA:CPU ran the convolutions inside the
    # loop body ~30x slower (0.8 s vs 25 ms per update at B = 64, L = 160), and the
    # count is small and static. Metrics are the last update's.
    for _ in range(disc_steps):
      disc, d_metrics = d_update(disc)

    def g_loss_fn(params):
      (x_hat, _, mu, logvar), updates = gen_model.apply(
          {"params": params, "batch_stats": gen.batch_stats}, batch, train=True,
          rngs={"latent": k_gen}, mutable=["batch_stats"])
      # update_stats=False: the generator's pass must not move the discriminator's
      # power-iteration state.
      _, feats = disc_model.apply(
          {"params": disc.params, "batch_stats": disc.batch_stats},
          jnp.concatenate([batch, x_hat], axis=0), update_stats=False)
      loss, metrics = losses.generator_loss(
          batch, x_hat, feats[:batch_size], feats[batch_size:], mu, logvar, beta=beta, nu=nu)
      return loss, (metrics, updates["batch_stats"])

    (loss_g, (g_metrics, gen_stats)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
        gen.params)
    gen = gen.apply_gradients(grads, tx, gen_stats)
    metrics = {"loss_g": loss_g, "grad_norm_g": optax.tree.norm(grads), **g_metrics,
               **d_metrics}
    return VaeganState(step=state.step + 1, gen=gen, disc=disc), metrics

  if jit:
    return jax.jit(train_step, donate_argnums=0)
  return train_step
