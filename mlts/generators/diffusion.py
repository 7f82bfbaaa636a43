"""The malleable-latent diffusion model as a generator (`generators.create('diffusion')`).

Training is `telemetry_models.train_diffusion` (the process of the `diffusion`
section with the ablation `variant`'s overrides, `trainer.VARIANTS`, built on
the fit windows mapped to [−1, 1]; the 1-D U-Net of `network`, trained by
`mlts.train.fit` with Orbax checkpoints under workdir/checkpoints/diffusion_<variant>).

* `sample`: x_T from the matching prior, then the probability-flow ODE
  (`solver`, `sample_steps`; the Gaussian tail on the attenuated components),
  as the generation benchmark samples (`telemetry_models.diffusion_sample`);
  clipped to the fit data's range.
* `impute`: replacement with RePaint resampling (`samplers.impute`,
  `impute_resample` repeats per step), one independent draw per member
  (`telemetry_models.diffusion_impute`).

Saved: the network parameters, the process arrays (basis U, attenuated set I,
t*, Δ; the schedule is rebuilt from the config) and the training statistics
in basis U (mean, variance, covariance) that the prior and the Gaussian tail
use, so a loaded generator samples exactly as the fitted one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import sharding, telemetry_models, train_state
from mlts.diffusion import basis as basis_lib
from mlts.diffusion import detector, schedules, trainer
from mlts.diffusion import process as process_lib
from mlts.generators import base

SOLVERS = ("ddim", "heun")


class DiffusionGenerator(base.Generator):
  """The diffusion model behind `fit` / `sample` / `impute` (see the module docstring)."""

  name = "diffusion"

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """Sized for a CPU: a fit on ~2000 windows of length 24–64 takes a few minutes."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # root seed of initialization, batch order and the process's threshold search
    config.variant = "full"  # ablation variant: full | no_gamma | no_reg | time_basis
    config.diffusion = process_lib.default_config()  # the forward process (the variant overrides)
    config.diffusion.num_steps = 200  # T of the DDPM chain
    config.network = net = ml_collections.ConfigDict()
    net.base_width = 16  # channels of the first level
    net.channel_mults = (1, 2)  # per level; each but the last halves L (L: a multiple of 2 ** 1)
    net.num_res_blocks = 1  # residual blocks per level
    net.attention_levels = (1,)  # levels with self-attention
    net.num_heads = 4
    net.num_groups = 4  # GroupNorm groups (divides every level's width)
    net.dropout = 0.0
    config.training = tr = ml_collections.ConfigDict()
    tr.num_steps = 1500  # optimizer steps
    tr.batch_size = 64  # global batch (a multiple of the device count)
    tr.ema_decay = 0.99  # the EMA parameters are the ones sampled with; 0 = the raw ones
    tr.log_every = 100  # steps between logged averages (workdir/logs)
    tr.checkpoint_every = 500  # steps between Orbax checkpoints (workdir/checkpoints)
    tr.max_checkpoints = 1  # checkpoints kept
    config.optimizer = opt = train_state.default_optimizer_config()
    opt.name = "adam"
    opt.learning_rate = 1e-3
    opt.warmup_steps = 50
    opt.weight_decay = 0.0
    config.solver = "heun"  # probability-flow ODE solver: heun | ddim (impute: always ddim)
    config.sample_steps = 40  # reverse-ODE steps of sample and impute
    config.impute_resample = 2  # RePaint repeats per conditioned step (1 = plain replacement)
    config.batch_size = 256  # windows per jitted sampling / imputation batch
    return config

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    if config.variant not in trainer.VARIANTS:
      raise ValueError(f"variant must be one of {sorted(trainer.VARIANTS)}, "
                       f"got {config.variant!r}")
    if config.solver not in SOLVERS:
      raise ValueError(f"solver must be one of {SOLVERS}, got {config.solver!r}")
    d = config.diffusion
    if d.kind not in schedules.KINDS:
      raise ValueError(f"diffusion.kind must be one of {schedules.KINDS}, got {d.kind!r}")
    if d.threshold not in process_lib.THRESHOLDS:
      raise ValueError(f"diffusion.threshold must be one of {process_lib.THRESHOLDS}, "
                       f"got {d.threshold!r}")
    if d.representation not in basis_lib.REPRESENTATIONS:
      raise ValueError(f"diffusion.representation must be one of {basis_lib.REPRESENTATIONS}, "
                       f"got {d.representation!r}")
    for field in ("sample_steps", "impute_resample", "batch_size"):
      if int(config[field]) < 1:
        raise ValueError(f"{field} must be >= 1, got {config[field]}")
    if int(d.num_steps) < 1:
      raise ValueError(f"diffusion.num_steps must be >= 1, got {d.num_steps}")
    if d.kind == "ddpm" and int(config.sample_steps) > int(d.num_steps):
      raise ValueError(f"sample_steps ({config.sample_steps}) exceeds the DDPM's "
                       f"diffusion.num_steps ({d.num_steps})")
    for field in ("num_steps", "batch_size", "log_every", "checkpoint_every", "max_checkpoints"):
      if int(config.training[field]) < 1:
        raise ValueError(f"training.{field} must be >= 1, got {config.training[field]}")
    if not 0.0 <= float(config.training.ema_decay) < 1.0:
      raise ValueError(f"training.ema_decay must be in [0, 1), got {config.training.ema_decay}")
    if not len(config.network.channel_mults):
      raise ValueError("network.channel_mults must have at least one level")

  def _check_windows(self, num: int, length: int, channels: int) -> None:
    base.check_training_batch(self.config, num)
    factor = 2 ** (len(self.config.network.channel_mults) - 1)
    if length % factor:
      raise ValueError(
          f"windows: length {length} is not a multiple of 2 ** (len(network.channel_mults) - 1) "
          f"= {factor} (each U-Net level but the last halves it); use another length or fewer "
          "levels")

  def _train_config(self) -> ml_collections.ConfigDict:
    """The sections `telemetry_models.train_diffusion` reads."""
    c = self.config
    return ml_collections.ConfigDict({
        "seed": c.seed, "diffusion": c.diffusion.to_dict(), "network": c.network.to_dict(),
        "optimizer": c.optimizer.to_dict(), "training": c.training.to_dict()})

  # ------------------------------------------------------------------ fit / sample / impute
  def _fit_model(self, x01: np.ndarray, workdir: str) -> None:
    m = telemetry_models.train_diffusion(self._train_config(), self.config.variant, x01,
                                         workdir, sharding.make_mesh())
    self._model = m
    self._train_seconds = float(m.train_seconds)

  def _sample01(self, num: int, seed: int) -> np.ndarray:
    c = self.config
    return telemetry_models.diffusion_sample(
        self._model, num, jax.random.key(seed), steps=int(c.sample_steps), solver=c.solver,
        batch=int(c.batch_size))

  def _impute01(self, x01, known, seed, members) -> np.ndarray:
    c = self.config
    return telemetry_models.diffusion_impute(
        self._model, x01, known, jax.random.key(seed), members=members,
        steps=int(c.sample_steps), batch=int(c.batch_size), resample=int(c.impute_resample))

  @property
  def process(self) -> process_lib.Process:
    """The forward process the network was trained on (after fit)."""
    self._require_fitted("process")
    return self._model.process

  # ------------------------------------------------------------------ state
  def _state(self) -> dict[str, Any]:
    m = self._model
    return {"params": m.params,
            "process": {"basis": m.process.basis, "mask": m.process.mask,
                        "t_star": m.process.t_star, "delta": m.process.delta},
            "stats": {"mean": m.stats.mean, "var": m.stats.var, "cov": m.stats.cov}}

  def _extra_json(self) -> dict[str, Any]:
    return {"process": trainer.describe(self._model.process),
            "train_seconds": self._train_seconds}

  def _restore_extra(self, extra: dict[str, Any]) -> None:
    self._train_seconds = float(extra.get("train_seconds", 0.0))

  def _set_state(self, state: dict[str, Any]) -> None:
    length, channels = self.length, self.num_features
    dcfg = trainer.variant_config(self.config.diffusion, self.config.variant)
    p, s = state["process"], state["stats"]
    n = length * channels
    shapes = {"process.basis": (np.shape(p["basis"]),
                                basis_lib.basis_shape(dcfg.representation, length, channels)),
              "process.mask": (np.shape(p["mask"]), (length, channels)),
              "stats.mean": (np.shape(s["mean"]), (length, channels)),
              "stats.var": (np.shape(s["var"]), (length, channels))}
    if np.size(s["cov"]):
      shapes["stats.cov"] = (np.shape(s["cov"]), (n, n))
    for name, (got, want) in shapes.items():
      if tuple(got) != want:
        raise ValueError(f"{name} has shape {tuple(got)}, expected {want}")
    proc = process_lib.Process(
        schedule=schedules.make_schedule(dcfg.kind, dcfg.schedule, dcfg.num_steps),
        basis=jnp.asarray(p["basis"], float), mask=jnp.asarray(p["mask"], float),
        t_star=jnp.asarray(p["t_star"], float), delta=jnp.asarray(p["delta"], float),
        num_components=n, representation=dcfg.representation)
    stats = process_lib.DataStats(mean=jnp.asarray(s["mean"], float),
                                  var=jnp.asarray(s["var"], float),
                                  cov=jnp.asarray(s["cov"], float))
    model = trainer.make_network(self.config.network, channels)
    # The parameter tree's structure and shapes must be those this config builds.
    shape = detector.network_input_shape(proc, length, channels)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape), jnp.zeros((1,)))
    expected = jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), abstract["params"])
    got = jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)),
                       state["params"])
    if expected != got:
      raise ValueError("the saved network parameters do not match the U-Net this config builds")
    self._model = telemetry_models.DiffusionModel(
        self.config.variant, dcfg, proc, model, state["params"], stats, self._train_seconds)
