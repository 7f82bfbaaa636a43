"""β-VAEGAN training state and the jitted adversarial train step (SPEC §5).

The GAN needs two optimizers, so it brings its own pure `step(state, batch,
key)` (per-step randomness `fold_in(key, state.step)`: no key in the state, a
resumed run reproduces) and hands it to the generic loop `mlts.train.fit`
(sharded jit with donation, Orbax checkpoints and resume, a stop on a
non-finite loss): see `fit`.

The same code trains the paper's baselines (`VARIANTS`): flags in the config
switch off the discriminator (AE, VAE), the sampling and KL (AE, BeatGAN,
BeatGAN+), spectral normalization (BeatGAN) and replace the sigmoid/BCE output
by tanh/MSE on windows scaled to [-1, 1] (BeatGAN). Windows always come in
[0, 1]; `to_model_range` maps them for a tanh model.

One step = `disc_steps` discriminator updates (an unrolled loop: see the step)
followed by one generator update, both with
AdaBelief (lr 2e-4, b1 0.5, b2 0.99, eps 1e-16 by default, the paper's
settings). The discriminator always sees real and reconstructed windows in
one concatenated batch: it has no BatchNorm, so this is exact and runs one
spectral-norm power iteration per update instead of two.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlts import checks, per_series
from mlts import train as train_lib
from mlts.data import transforms
from mlts.vaegan import losses
from mlts.vaegan.model import DEFAULT_HIDDEN, OUTPUTS, BetaVAE, Discriminator
from mlts.writers import MetricWriter

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
  # Model family switches (see VARIANTS): the defaults are β-VAEGAN.
  config.variational = True  # sample z = μ + σε and add β·KL; False: z = μ (an AE)
  config.adversarial = True  # train the discriminator and the feature-matching term
  config.spectral_norm = True  # spectral normalization in the discriminator
  config.output = "sigmoid"  # decoder output: sigmoid (windows in [0, 1]) | tanh ([-1, 1])
  config.rec_loss = "bce"  # reconstruction loss: bce (sigmoid only) | mse
  # Scoring: L(x) = ‖z‖ − mode of the training-norm histogram | ‖z‖ − √(dim − 1).
  config.latent_score = "histogram"  # histogram | prior
  return config


# The models of the paper's tables, as overrides of `default_config()`.
VARIANTS = {
    # Same generator, no discriminator, deterministic.
    "ae": dict(variational=False, adversarial=False, beta=0.0),
    # Same generator, no discriminator; the paper's best VAE used β = 0 (appendix).
    "vae": dict(variational=True, adversarial=False, beta=0.0),
    # Zhou et al. 2019: AE + plain discriminator, tanh output with MSE, latent 50.
    "beatgan": dict(variational=False, adversarial=True, spectral_norm=False, output="tanh",
                    rec_loss="mse", latent=50, beta=0.0),
    # BeatGAN+: spectral norm, sigmoid output, small latent.
    "beatgan_plus": dict(variational=False, adversarial=True, beta=0.0),
    # β-VAEGAN₁ (β = 0) and β-VAEGAN₂ (β = 1e-4).
    "vaegan1": dict(variational=True, adversarial=True, beta=0.0),
    "vaegan2": dict(variational=True, adversarial=True, beta=1e-4),
}


def variant_config(name: str, base: ml_collections.ConfigDict | None = None,
                   **overrides) -> ml_collections.ConfigDict:
  """`base` (default: `default_config()`) with the overrides of `VARIANTS[name]` and `overrides`."""
  if name not in VARIANTS:
    raise ValueError(f"unknown β-VAEGAN variant {name!r}; expected one of {sorted(VARIANTS)}")
  config = ml_collections.ConfigDict(default_config() if base is None else base)
  config.update(VARIANTS[name])
  config.update(overrides)
  check_config(config)
  return config


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError for settings that cannot work together."""
  if config.output not in OUTPUTS:
    raise ValueError(f"vaegan.output must be one of {OUTPUTS}, got {config.output!r}")
  if config.rec_loss not in losses.REC_LOSSES:
    raise ValueError(
        f"vaegan.rec_loss must be one of {losses.REC_LOSSES}, got {config.rec_loss!r}")
  if config.output == "tanh" and config.rec_loss == "bce":
    raise ValueError("vaegan.rec_loss='bce' needs targets in [0, 1]; use 'mse' with tanh")
  if int(config.disc_steps) < 1:
    raise ValueError(f"disc_steps must be >= 1, got {config.disc_steps}")
  if float(config.beta) < 0:
    raise ValueError(f"vaegan.beta must be >= 0, got {config.beta}")


def to_model_range(x, output: str):
  """Windows in [0, 1] -> the decoder's range: unchanged (sigmoid) or 2x − 1 (tanh)."""
  return x if output == "sigmoid" else transforms.to_signed(x)


def from_model_range(y, output: str):
  """Inverse of `to_model_range`: the decoder's range -> [0, 1]."""
  return y if output == "sigmoid" else transforms.from_signed(y)


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
    # A discriminator without spectral norm has no 'batch_stats' collection.
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params))


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
                hidden=tuple(config.gen_hidden), output=config.output)
  disc = Discriminator(hidden=tuple(config.disc_hidden), spectral_norm=config.spectral_norm)
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
  check_config(config)
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
    config: the `vaegan` section; uses beta, nu, disc_steps and the variant
      switches (variational, adversarial, output, rec_loss).
    jit: return `jax.jit(step, donate_argnums=0)` (the state passed in is
      consumed); False returns the pure function.

  Returns:
    The step. `batch` is [B, L, C] windows in the decoder's range
    (`to_model_range` of windows in [0, 1]); `key` the training stream's key
    (the same every step). Metrics are scalars: loss_g, adv, rec, kl, mse,
    grad_norm_g and, for adversarial models, loss_d, d_real, d_fake,
    grad_norm_d (the discriminator's from its last update).
  """
  check_config(config)
  # Frozen (so later edits of the caller's config cannot change a traced step) and
  # hashable: equal configs share one step function, hence one jit cache entry.
  return _train_step(ml_collections.FrozenConfigDict(config), jit)


@functools.lru_cache(maxsize=32)
def _train_step(config: ml_collections.FrozenConfigDict, jit: bool) -> StepFn:
  nu, disc_steps = float(config.nu), int(config.disc_steps)
  variational, adversarial = bool(config.variational), bool(config.adversarial)
  beta = float(config.beta) if variational else 0.0
  rec_loss = config.rec_loss

  tx = make_optimizer(config)

  def train_step(state: VaeganState, batch: jax.Array, key: jax.Array):
    # Modules are built from the (static) batch shape at trace time.
    gen_model, disc_model = make_models(config, batch.shape[1], batch.shape[2])
    step_key = jax.random.fold_in(key, state.step)
    k_fake, k_gen = jax.random.split(step_key)
    gen, disc = state.gen, state.disc
    batch_size = batch.shape[0]

    def generate(params, rng):
      return gen_model.apply(
          {"params": params, "batch_stats": gen.batch_stats}, batch, train=True,
          sample=variational, rngs={"latent": rng}, mutable=["batch_stats"])

    d_metrics = {}
    if adversarial:
      # Reconstructions for the discriminator. The generator is unchanged during the
      # discriminator updates, so one forward pass serves all of them; its BatchNorm
      # statistics update is dropped (the generator update below makes its own).
      (x_fake, _, _, _), _ = generate(gen.params, k_fake)
      both = jnp.concatenate([batch, jax.lax.stop_gradient(x_fake)], axis=0)

      def d_loss_fn(params, stats):
        (prob, _), updates = disc_model.apply(
            {"params": params, "batch_stats": stats}, both, update_stats=True,
            mutable=["batch_stats"])
        loss, metrics = losses.discriminator_loss(prob[:batch_size], prob[batch_size:])
        return loss, (metrics, updates.get("batch_stats", stats))

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
      (x_hat, _, mu, logvar), updates = generate(params, k_gen)
      feat_real = feat_fake = None
      if adversarial:
        # update_stats=False: the generator's pass must not move the discriminator's
        # power-iteration state.
        _, feats = disc_model.apply(
            {"params": disc.params, "batch_stats": disc.batch_stats},
            jnp.concatenate([batch, x_hat], axis=0), update_stats=False)
        feat_real, feat_fake = feats[:batch_size], feats[batch_size:]
      loss, metrics = losses.generator_loss(
          batch, x_hat, feat_real, feat_fake, mu, logvar, beta=beta, nu=nu, rec_loss=rec_loss)
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


@functools.lru_cache(maxsize=8)
def _jitted_create_state(config: ml_collections.FrozenConfigDict):
  """`create_state` jitted once per model config."""
  return jax.jit(functools.partial(create_state, config))


def _model_windows(windows, config: ml_collections.ConfigDict, *, ndim: int) -> np.ndarray:
  """Checked training windows in [0, 1] -> float32 in the decoder's range."""
  x = checks.finite_array(windows, name="β-VAEGAN training windows", ndim=ndim)
  if x.min() < 0.0 or x.max() > 1.0:
    raise ValueError(
        f"β-VAEGAN training windows must be scaled to [0, 1], got range "
        f"[{x.min():.4g}, {x.max():.4g}]")
  return to_model_range(x.astype(np.float32), config.output)


def fit(config: ml_collections.ConfigDict, training: ml_collections.ConfigDict,
        windows: np.ndarray, *, key: jax.Array, seed: int, checkpoint_dir: str,
        writer: MetricWriter, mesh=None, hooks=(), jit_init: bool = False) -> VaeganState:
  """Trains a β-VAEGAN (or a baseline variant) on windows, resuming from checkpoints.

  Args:
    config: the `vaegan` section.
    training: num_steps, batch_size, log_every, checkpoint_every, max_checkpoints
      (as for `mlts.train.fit`).
    windows: [N, L, C] training windows scaled to [0, 1].
    key: PRNG key; split into the initialization and the training stream.
    seed: seed of the host-side batch order.
    checkpoint_dir: Orbax checkpoint directory (a run resumes from its latest step).
    writer: metric writer.
    mesh: device mesh (default: all devices, data parallel over the batch).
    hooks: `hook(step, state)` after every step.
    jit_init: initialize the networks in one compiled call (much faster than the
      eager init, which dispatches op by op; the benchmarks' studies keep the
      eager init their results were made with).

  Returns:
    The trained `VaeganState`.

  Raises:
    ValueError: windows with NaN/inf, of the wrong rank, or outside [0, 1].
    mlts.train.NonFiniteLossError: a NaN/inf generator or discriminator loss;
      the last good checkpoint is kept.
  """
  x = _model_windows(windows, config, ndim=3)
  init_key, train_key = jax.random.split(key)
  init = (_jitted_create_state(ml_collections.FrozenConfigDict(config)) if jit_init
          else functools.partial(create_state, config))
  state = init(jnp.asarray(x[:1]), init_key)
  return train_lib.fit(state, None, x, training, key=train_key, seed=seed,
                       checkpoint_dir=checkpoint_dir, writer=writer, mesh=mesh, hooks=hooks,
                       train_step=make_train_step(config, jit=False))


class StackedState(flax.struct.PyTreeNode):
  """S β-VAEGANs, one per series, stacked on a leading axis (`fit_per_series`).

  Attributes:
    step: number of completed stacked steps (a scalar: every model takes each step).
    models: a `VaeganState` whose leaves have a leading series axis [S, ...].
  """
  step: jax.Array
  models: VaeganState


def make_stacked_train_step(config: ml_collections.ConfigDict) -> StepFn:
  """The pure step of S stacked β-VAEGANs: `step(StackedState, batch [B, S, L, C], key)`.

  `jax.vmap` of `make_train_step(config)`'s step over the series axis: model k
  sees `batch[:, k]` and the key `fold_in(key, k)`, so one stacked step equals S
  separate steps (BatchNorm statistics, spectral-norm vectors and both AdaBelief
  states are per model). Metrics are averaged over the models, plus
  `loss_g_max` (the largest generator loss).
  """
  check_config(config)
  return _stacked_train_step(ml_collections.FrozenConfigDict(config))


@functools.lru_cache(maxsize=8)
def _stacked_train_step(config: ml_collections.FrozenConfigDict) -> StepFn:
  """Cached per config, so equal configs share one jit cache entry."""
  single = _train_step(config, False)

  def step(state: StackedState, batch: jax.Array, key: jax.Array):
    num_series = batch.shape[1]
    keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(num_series))
    models, metrics = jax.vmap(single, in_axes=(0, 1, 0))(state.models, batch, keys)
    out = {name: jnp.mean(v) for name, v in metrics.items()}
    out["loss_g_max"] = jnp.max(metrics["loss_g"])
    return StackedState(step=state.step + 1, models=models), out

  return step


@functools.lru_cache(maxsize=8)
def _jitted_create_stacked(config: ml_collections.FrozenConfigDict, num_series: int):
  """`(sample, key) -> VaeganState [S, ...]`: S initializations in one compiled call."""
  return jax.jit(lambda sample, key: per_series.init_stacked(
      lambda k: create_state(config, sample, k), key, num_series))


def fit_per_series(config: ml_collections.ConfigDict, training: ml_collections.ConfigDict,
                   windows: np.ndarray, *, key: jax.Array, seed: int, checkpoint_dir: str,
                   writer: MetricWriter, mesh=None, hooks=()) -> StackedState:
  """Trains one β-VAEGAN per series, all in one vmapped jitted step (`mlts.per_series`).

  Args:
    config, training, seed, checkpoint_dir, writer, mesh, hooks: as for `fit`
      (`training.batch_size` is the batch of each series).
    windows: [N, S, L, C] training windows in [0, 1], column k holding only
      series k's windows (`mlts.per_series.stacked_windows`).
    key: PRNG key; split into the initialization (one key per series) and the
      training stream.

  Returns:
    The trained `StackedState`; `mlts.per_series.take(state.models, k)` is model k.

  Raises:
    As `fit`.
  """
  x = _model_windows(windows, config, ndim=4)
  init_key, train_key = jax.random.split(key)
  models = _jitted_create_stacked(ml_collections.FrozenConfigDict(config), x.shape[1])(
      jnp.asarray(x[:1, 0]), init_key)
  state = StackedState(step=jnp.zeros((), jnp.int32), models=models)
  return train_lib.fit(state, None, x, training, key=train_key, seed=seed,
                       checkpoint_dir=checkpoint_dir, writer=writer, mesh=mesh, hooks=hooks,
                       train_step=make_stacked_train_step(config), series_axis=True)
