"""The training state pytree and the optimizer built from config."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from mlts import checks


class TrainState(train_state.TrainState):
  """Flax TrainState plus an exponential moving average of the parameters.

  Attributes (beyond flax's step, params, opt_state, apply_fn, tx):
    ema_params: EMA of `params` (equal to `params` when the decay is 0).
    ema_decay: the EMA decay, a static field.
  """
  ema_params: Any = None
  ema_decay: float = train_state.struct.field(pytree_node=False, default=0.0)

  def apply_gradients(self, *, grads, **kwargs) -> "TrainState":
    new = super().apply_gradients(grads=grads, **kwargs)
    decay = self.ema_decay
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, self.ema_params, new.params)
    return new.replace(ema_params=ema)


def default_optimizer_config() -> ml_collections.ConfigDict:
  """The `optimizer` config section of `make_optimizer`."""
  opt = ml_collections.ConfigDict()
  opt.name = "adamw"  # adam | adamw | adabelief
  opt.learning_rate = 1e-3  # peak learning rate
  opt.schedule = "cosine"  # constant | cosine (after linear warm-up)
  opt.warmup_steps = 100  # linear warm-up steps
  opt.weight_decay = 1e-4  # adamw only
  opt.b1 = 0.9  # first-moment decay
  opt.b2 = 0.999  # second-moment decay
  opt.eps = 1e-8  # denominator epsilon
  opt.grad_clip = 1.0  # global-norm clipping; 0 = off
  return opt


OPTIMIZERS = ("adam", "adamw", "adabelief")
SCHEDULES = ("constant", "cosine")


def validate_optimizer_config(config: ml_collections.ConfigDict, *,
                              where: str = "optimizer") -> None:
  """Checks the `optimizer` section; ValueError names the field, the value and what is allowed."""
  checks.config_choice(config, "name", OPTIMIZERS, where=where)
  checks.config_choice(config, "schedule", SCHEDULES, where=where)
  checks.config_float(config, "learning_rate", where=where, low=0.0, low_open=True)
  checks.config_int(config, "warmup_steps", where=where, minimum=0)
  checks.config_float(config, "weight_decay", where=where, low=0.0)
  for field in ("b1", "b2"):
    checks.config_float(config, field, where=where, low=0.0, high=1.0, high_open=True)
  checks.config_float(config, "eps", where=where, low=0.0, low_open=True)
  checks.config_float(config, "grad_clip", where=where, low=0.0)


def make_optimizer(config: ml_collections.ConfigDict,
                   num_steps: int) -> optax.GradientTransformation:
  """Builds the optax optimizer from `config` (the `optimizer` section).

  Fields used: name ('adam' | 'adamw' | 'adabelief'), learning_rate, warmup_steps,
  schedule ('constant' | 'cosine'), weight_decay, b1, b2, eps, grad_clip (0 = off).
  """
  # A short run (a smoke test) keeps at least half of its steps after warm-up.
  warmup = max(min(config.warmup_steps, num_steps // 2), 1)
  if config.schedule == "cosine":
    lr = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, warmup, max(num_steps, warmup + 1))
  elif config.schedule == "constant":
    lr = optax.join_schedules(
        [optax.linear_schedule(0.0, config.learning_rate, warmup),
         optax.constant_schedule(config.learning_rate)], [warmup])
  else:
    raise ValueError(f"unknown schedule {config.schedule!r}; expected 'constant' or 'cosine'")
  if config.name == "adam":
    opt = optax.adam(lr, b1=config.b1, b2=config.b2, eps=config.eps)
  elif config.name == "adamw":
    opt = optax.adamw(lr, b1=config.b1, b2=config.b2, eps=config.eps,
                      weight_decay=config.weight_decay)
  elif config.name == "adabelief":
    opt = optax.adabelief(lr, b1=config.b1, b2=config.b2, eps=config.eps)
  else:
    raise ValueError(f"unknown optimizer {config.name!r}; expected adam, adamw or adabelief")
  if config.grad_clip > 0:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
  return opt


def create_train_state(model, sample_input: jnp.ndarray, tx: optax.GradientTransformation,
                       key: jax.Array, ema_decay: float = 0.0) -> TrainState:
  """Initializes parameters and optimizer state.

  Args:
    model: a Flax Linen module.
    sample_input: an input of the right shape (batch of 1 is enough).
    tx: the optimizer.
    key: PRNG key for initialization.
    ema_decay: decay of the parameter EMA.

  Returns:
    A `TrainState` at step 0.
  """
  params = model.init(key, sample_input)["params"]
  # The EMA gets its own buffers: the train step donates the state, and two leaves
  # sharing one buffer cannot both be donated.
  ema_params = jax.tree.map(jnp.copy, params)
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx,
                           ema_params=ema_params, ema_decay=ema_decay)
