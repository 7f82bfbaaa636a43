"""β-VAEGAN as a generator (`generators.create('vaegan')`).

Training is `telemetry_models.train_vaegan` (`mlts.vaegan.train.fit`: the
β-VAE generator against the spectral-norm discriminator, Orbax checkpoints
under workdir/checkpoints/vaegan) on the fit windows scaled to [0, 1].

* `sample`: decoded draws z ~ N(mean, cov) of a Gaussian fit to the training
  windows' posterior means (`telemetry_models.vaegan_sample`): with β = 1e-4
  the aggregate posterior is far from N(0, I), so decoding prior draws would
  measure the prior mismatch, not the generator.
* `impute`: pseudo-Gibbs (`telemetry_models.vaegan_impute`): missing entries
  start at the mean of the window's observed values, then `impute_iterations`
  times: reconstruct (z = μ, deterministic), restore the observed part. The
  procedure is deterministic, so every member is the same imputation and the
  seed has no effect (the ensemble axis is kept for the common interface).

Saved: the generator's and the discriminator's parameters and statistics (the
optimizer states are not kept) and the training posterior means.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import sharding, telemetry_models
from mlts.generators import base
from mlts.vaegan import train as vaegan_train


class VaeganGenerator(base.Generator):
  """β-VAEGAN behind `fit` / `sample` / `impute` (see the module docstring)."""

  name = "vaegan"

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """Sized for a CPU: a fit on ~2000 windows of length 24–64 takes about a minute."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # root seed of initialization and batch order
    config.vaegan = vaegan_train.variant_config("vaegan2")  # β-VAEGAN₂ (β = 1e-4)
    # Depth 3: L must be a multiple of 2 ** 3 = 8 (24, 32, 64 are).
    config.vaegan.gen_hidden = (16, 32, 64)
    config.vaegan.disc_hidden = (16, 32, 64)
    config.training = tr = ml_collections.ConfigDict()
    tr.num_steps = 1000  # generator updates
    tr.batch_size = 64  # global batch (a multiple of the device count)
    tr.log_every = 100  # steps between logged averages (workdir/logs)
    tr.checkpoint_every = 200  # steps between Orbax checkpoints (workdir/checkpoints)
    tr.max_checkpoints = 1  # checkpoints kept
    config.impute_iterations = 10  # pseudo-Gibbs passes
    config.batch_size = 256  # windows per jitted encode / decode batch (a multiple of the devices)
    return config

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    vaegan_train.check_config(config.vaegan)
    if int(config.vaegan.latent) < 1:
      raise ValueError(f"vaegan.latent must be >= 1, got {config.vaegan.latent}")
    for field in ("gen_hidden", "disc_hidden"):
      if not len(config.vaegan[field]):
        raise ValueError(f"vaegan.{field} must have at least one conv width")
    for field in ("impute_iterations", "batch_size"):
      if int(config[field]) < 1:
        raise ValueError(f"{field} must be >= 1, got {config[field]}")
    for field in ("num_steps", "batch_size", "log_every", "checkpoint_every", "max_checkpoints"):
      if int(config.training[field]) < 1:
        raise ValueError(f"training.{field} must be >= 1, got {config.training[field]}")

  def _check_windows(self, num: int, length: int, channels: int) -> None:
    base.check_training_batch(self.config, num)
    if num < 2:
      raise ValueError("windows: the sampling Gaussian's covariance needs at least 2 windows")
    devices = sharding.make_mesh().size
    if int(self.config.batch_size) % devices:
      raise ValueError(f"batch_size={self.config.batch_size} is not divisible by the number of "
                       f"devices ({devices}); choose a multiple of {devices}")
    depth = max(len(self.config.vaegan.gen_hidden), len(self.config.vaegan.disc_hidden))
    factor = 2 ** depth
    if length % factor:
      raise ValueError(
          f"windows: length {length} is not a multiple of 2 ** {depth} = {factor} (each of the "
          f"{depth} conv blocks of vaegan.gen_hidden / disc_hidden halves it); use another "
          "length or fewer blocks")

  def _model_config(self) -> ml_collections.ConfigDict:
    """The sections the `telemetry_models` β-VAEGAN functions read."""
    c = self.config
    return ml_collections.ConfigDict({"seed": c.seed, "vaegan": c.vaegan.to_dict(),
                                      "vaegan_training": c.training.to_dict()})

  # ------------------------------------------------------------------ fit / sample / impute
  def _fit_model(self, x01: np.ndarray, workdir: str) -> None:
    mesh = sharding.make_mesh()
    cfg = self._model_config()
    state, seconds = telemetry_models.train_vaegan(cfg, x01, workdir, mesh)
    # Host copies without the optimizer states: the same arrays a loaded generator holds.
    self._vstate = _inference_state(jax.device_get(state))
    self._train_seconds = float(seconds)
    self._train_mu = telemetry_models.vaegan_encode(
        cfg, self._vstate, x01, batch=int(self.config.batch_size), mesh=mesh)["mu"]

  def _sample01(self, num: int, seed: int) -> np.ndarray:
    out = telemetry_models.vaegan_sample(
        self._model_config(), self._vstate, self._train_mu, num,
        (self.length, self.num_features), np.random.default_rng(seed),
        batch=int(self.config.batch_size))
    return np.clip(out, 0.0, 1.0)

  def _impute01(self, x01, known, seed, members) -> np.ndarray:
    del seed  # deterministic (see the module docstring)
    filled = telemetry_models.vaegan_impute(
        self._model_config(), self._vstate, x01, known,
        iterations=int(self.config.impute_iterations), batch=int(self.config.batch_size),
        mesh=sharding.make_mesh())
    return np.broadcast_to(filled[None], (members,) + filled.shape)

  @property
  def train_posterior_means(self) -> np.ndarray:
    """[N, latent] posterior means of the training windows (after fit)."""
    self._require_fitted("train_posterior_means")
    return self._train_mu

  # ------------------------------------------------------------------ state
  def _state(self) -> dict[str, Any]:
    s = self._vstate
    return {"gen": {"params": s.gen.params, "batch_stats": s.gen.batch_stats},
            "disc": {"params": s.disc.params, "batch_stats": s.disc.batch_stats},
            "train_mu": self._train_mu,
            "steps": np.asarray([s.step, s.gen.step, s.disc.step], np.int64)}

  def _extra_json(self) -> dict[str, Any]:
    return {"train_seconds": self._train_seconds}

  def _restore_extra(self, extra: dict[str, Any]) -> None:
    self._train_seconds = float(extra.get("train_seconds", 0.0))

  def _set_state(self, state: dict[str, Any]) -> None:
    vcfg = self.config.vaegan
    gen, disc = vaegan_train.make_models(vcfg, self.length, self.num_features)
    sample = jnp.zeros((1, self.length, self.num_features))
    abstract = {
        "gen": jax.eval_shape(lambda: gen.init({"params": jax.random.key(0),
                                                "latent": jax.random.key(1)},
                                               sample, train=False)),
        "disc": jax.eval_shape(lambda: disc.init(jax.random.key(0), sample,
                                                 update_stats=False))}
    for net in ("gen", "disc"):
      for collection in ("params", "batch_stats"):
        want = jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)),
                            abstract[net].get(collection, {}))
        got = jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)),
                           state[net].get(collection, {}))
        if want != got:
          raise ValueError(f"the saved {net}.{collection} do not match the β-VAEGAN this "
                           "config builds")
    mu = np.asarray(state["train_mu"], np.float64)
    if mu.ndim != 2 or mu.shape[1] != int(vcfg.latent):
      raise ValueError(f"train_mu has shape {mu.shape}, expected [N, {vcfg.latent}]")
    steps = np.asarray(state.get("steps", np.zeros(3)), np.int64).reshape(3)
    self._vstate = vaegan_train.VaeganState(
        step=np.int32(steps[0]),
        gen=vaegan_train.NetState(step=np.int32(steps[1]), params=state["gen"]["params"],
                                  batch_stats=state["gen"].get("batch_stats", {}),
                                  opt_state=None),
        disc=vaegan_train.NetState(step=np.int32(steps[2]), params=state["disc"]["params"],
                                   batch_stats=state["disc"].get("batch_stats", {}),
                                   opt_state=None))
    self._train_mu = mu


def _inference_state(state: vaegan_train.VaeganState) -> vaegan_train.VaeganState:
  """`state` without the optimizer states (what scoring and decoding read)."""
  def net(s: vaegan_train.NetState) -> vaegan_train.NetState:
    return vaegan_train.NetState(step=np.int32(s.step), params=s.params,
                                 batch_stats=s.batch_stats, opt_state=None)
  return vaegan_train.VaeganState(step=np.int32(state.step), gen=net(state.gen),
                                  disc=net(state.disc))
