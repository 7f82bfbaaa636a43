"""The malleable-latent diffusion model as a detector (`mlts.diffusion`, the diffusion study).

`fit` trains one ablation variant (`variant`: 'full', 'no_gamma', 'no_reg',
'time_basis'; `mlts.diffusion.trainer.VARIANTS`) of the 1-D U-Net on the
windows of the normalized fit parts through `trainer.train_variant` (the
study's code: `mlts.train.fit`, sharded jit, Orbax checkpoints, NaN stop).
A series is scored as the study scores it (`mlts.diffusion.detector`): every
window of stride `eval_stride` is noised to t_a with a fixed draw and denoised
(partial-noise reconstruction) and encoded to its latent z; then `score` is

* 'recon': the aggregated residual x − x̂ per step through the post-processing
  `postprocess` (none | arks | ma | lp), fit per training series on that
  series' validation residuals, as every reconstruction detector;
* 'energy' | 'mahalanobis' | 'norm': a latent score of each window (subspace
  energy, Mahalanobis distance to the Ledoit–Wolf fit of encoded training
  windows, latent-norm deviation) spread to its steps.

The latent reference is fit whatever `score` is (it costs one encoding pass
over at most `detector.max_train_encoded` training windows), so
`score_components(x)` returns all four raw per-step scores of the one trained
model, as the study reports them. The noise of the partial noising comes from
a key derived from `seed` only and each series is scored on its own, so a
series scores the same every time, whatever else is scored with it, and after
save / load (the study draws it per batch of all series concatenated).

`per_series=True` gives every training series (a NASA channel) its own
process (attenuated set I, t*, Δ from its own windows) and its own U-Net,
the S U-Nets trained together by one vmapped jitted step
(`trainer.train_variant_per_series`, `mlts.per_series`); series k is scored
by model k under process k, with its own latent reference. Scoring passes
the process's arrays to one compiled window function
(`make_process_window_fn`), whose time grids do not include t*.

Saved (Orbax arrays, nothing pickled): the U-Net parameters, the process's
data-dependent arrays (attenuated set I, t*, Δ; the schedule and basis are
rebuilt from the config), the latent reference as arrays (location,
precision, norm mean / std; the Mahalanobis distance is computed with NumPy
from them) and the validation residuals the post-processors are fit on.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import latent, sharding, train, train_state
from mlts.cognos import postprocess
from mlts.data import series as series_lib
from mlts.data import windows as windows_lib
from mlts.detectors import base
from mlts.diffusion import basis as basis_lib
from mlts.diffusion import detector as diffusion_detector
from mlts.diffusion import losses, process, schedules, trainer

SCORES = ("recon",) + diffusion_detector.LATENT_SCORES
SOLVERS = ("ddim", "heun")
_SCORE_STREAM = 7  # fold_in(key(seed), 7): the scoring stream, as the diffusion study's
_WINDOW_FNS: dict[tuple, Any] = {}  # compiled window functions (see `_build_runner`)
_MAX_CACHED = 4


def default_network_config() -> ml_collections.ConfigDict:
  """The `network` section (the 'quick' U-Net of configs/diffusion_base.py)."""
  net = ml_collections.ConfigDict()
  net.base_width = 16  # channels of the first level
  net.channel_mults = (1, 2, 2)  # per level; each but the last halves the length
  net.num_res_blocks = 1  # residual blocks per level
  net.attention_levels = (2,)  # levels with self-attention (the low resolutions)
  net.num_heads = 4  # attention heads
  net.num_groups = 4  # GroupNorm groups (divides base_width * every mult)
  net.dropout = 0.0
  return net


def latent_reference_arrays(coeffs: np.ndarray) -> dict[str, np.ndarray]:
  """The Ledoit–Wolf fit and norm statistics of training-latent coefficients, as arrays.

  Args:
    coeffs: [N, D] coefficients Uᵀz of encoded training windows, flattened.

  Returns:
    'location' [D], 'precision' [D, D] (scikit-learn's `LedoitWolf` location_
    and precision_), 'norm_mean' [1], 'norm_std' [1] (floored at 1e-12): the
    statistics of `mlts.diffusion.detector.LatentReference`.
  """
  from sklearn import covariance
  c = np.asarray(coeffs, np.float64)
  fitted = covariance.LedoitWolf().fit(c)
  norms = np.linalg.norm(c, axis=1)
  return {"location": np.asarray(fitted.location_, np.float64),
          "precision": np.asarray(fitted.precision_, np.float64),
          "norm_mean": np.array([norms.mean()], np.float64),
          "norm_std": np.array([max(norms.std(), 1e-12)], np.float64)}


def squared_mahalanobis(coeffs: np.ndarray, location: np.ndarray,
                        precision: np.ndarray) -> np.ndarray:
  """(c − m)ᵀ P (c − m) per row: [N, D] coefficients -> [N] (`LedoitWolf.mahalanobis`)."""
  centred = np.asarray(coeffs, np.float64) - location
  return np.sum((centred @ precision) * centred, axis=1)


class DiffusionDetector(base.Detector):
  """A malleable-latent diffusion variant + window score (see the module docstring)."""

  name = "diffusion"
  fit_options = ("workdir",)

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    config = base.common_config()
    config.window = 64  # window length L (a multiple of 2 ** (len(channel_mults) - 1))
    config.stride = 16  # stride of training windows
    config.eval_stride = 64  # stride of scored windows (aggregated back per step)
    config.variant = "full"  # ablation variant: full | no_gamma | no_reg | time_basis
    config.per_series = False  # one process + U-Net per training series (vmapped) | one for all
    config.score = "recon"  # recon | energy | mahalanobis | norm
    config.postprocess = "none"  # 'recon' residual -> score: none | arks | ma | lp
    post = postprocess.default_config()
    del post["name"]  # the detector's `postprocess` field
    config.postprocess_config = post  # ARKS / MA / LP settings
    config.diffusion = process.default_config()  # the forward process (before the variant)
    config.diffusion.num_steps = 200
    config.network = default_network_config()
    config.training = train.default_config()
    del config.training["loss"]  # the diffusion loss is fixed
    del config.training["eval_every"]  # no validation-loss hook
    config.training.num_steps = 500  # the study's 'quick' 600, trimmed to fit a CPU minute
    config.training.batch_size = 64
    config.training.ema_decay = 0.99
    config.training.checkpoint_every = 250
    config.optimizer = train_state.default_optimizer_config()
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 50
    config.optimizer.weight_decay = 0.0
    config.detector = diffusion_detector.default_config()  # reconstruction / encoding
    config.detector.recon_steps = 8
    config.detector.encode_steps = 16
    config.detector.max_train_encoded = 512
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    base.validate_common(config)
    choices = {"variant": tuple(trainer.VARIANTS), "score": SCORES,
               "postprocess": postprocess.NAMES}
    for field, allowed in choices.items():
      if config[field] not in allowed:
        raise ValueError(f"{field} must be one of {allowed}, got {config[field]!r}")
    for field in ("window", "stride", "eval_stride"):
      if int(config[field]) != config[field] or config[field] < 1:
        raise ValueError(f"{field} must be a positive integer, got {config[field]!r}")
    for field in ("num_steps", "batch_size", "checkpoint_every", "log_every", "max_checkpoints"):
      if config.training[field] < 1:
        raise ValueError(f"training.{field} must be >= 1, got {config.training[field]}")
    for field in ("recon_steps", "encode_steps", "batch_size", "max_train_encoded"):
      if config.detector[field] < 1:
        raise ValueError(f"detector.{field} must be >= 1, got {config.detector[field]}")
    if config.detector.solver not in SOLVERS:
      raise ValueError(f"detector.solver must be one of {SOLVERS}, got "
                       f"{config.detector.solver!r}")
    if not 0.0 < config.detector.recon_t <= 1.0:
      raise ValueError(f"detector.recon_t must be in (0, 1], got {config.detector.recon_t}")
    if config.diffusion.kind not in schedules.KINDS:
      raise ValueError(f"diffusion.kind must be one of {schedules.KINDS}, got "
                       f"{config.diffusion.kind!r}")
    if config.diffusion.threshold not in process.THRESHOLDS:
      raise ValueError(f"diffusion.threshold must be one of {process.THRESHOLDS}, got "
                       f"{config.diffusion.threshold!r}")
    if config.diffusion.representation not in basis_lib.REPRESENTATIONS:
      raise ValueError(f"diffusion.representation must be one of {basis_lib.REPRESENTATIONS}, "
                       f"got {config.diffusion.representation!r}")
    if config.diffusion.representation == "klt":
      # Its basis is fit to the training windows: the detector's saved arrays and its
      # latent scores hold a basis along time only.
      raise ValueError("diffusion.representation='klt' is supported by the generators "
                       "(mlts.generators) and the generation study, not by the diffusion "
                       "detector; use 'freq', 'time' or 'both'")
    if not isinstance(config.per_series, bool):
      raise ValueError(f"per_series must be True or False, got {config.per_series!r}")
    trainer.require_plain_network(config.diffusion, "the diffusion detector")
    factor = 2 ** (len(config.network.channel_mults) - 1)
    if config.window % factor:
      raise ValueError(f"window {config.window} is not a multiple of 2 ** (len(network."
                       f"channel_mults) - 1) = {factor}: each U-Net level but the last halves "
                       "the length")
    postprocess.make_postprocessor(config.postprocess, cls._postprocess_config(config))

  @staticmethod
  def _postprocess_config(config) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {"name": config.postprocess, **config.postprocess_config.to_dict()})

  def _variant_config(self) -> ml_collections.ConfigDict:
    return trainer.variant_config(self.config.diffusion, self.config.variant)

  def _keys(self) -> tuple[jax.Array, jax.Array]:
    """(reference key, evaluation key): split of fold_in(key(seed), 7), as the study's."""
    k_train, k_eval = jax.random.split(
        jax.random.fold_in(jax.random.key(self.config.seed), _SCORE_STREAM))
    return k_train, k_eval

  # ------------------------------------------------------------------ fit
  def _fit_model(self, fit_parts, val_parts, workdir: str | None = None) -> None:
    del val_parts  # only the fit parts train; validation calibrates
    prepared = [series_lib.PreparedSeries(f"series {k}", f.astype(np.float32),
                                          f[:0].astype(np.float32), f[:0].astype(np.float32),
                                          np.zeros(0, np.int8))
                for k, f in enumerate(fit_parts)]
    per = [series_lib.training_windows([p], self.config.window, self.config.stride)
           for p in prepared]
    dcfg = self._variant_config()
    mesh = sharding.make_mesh()
    train_fn = (trainer.train_variant_per_series if self.config.per_series
                else trainer.train_variant)
    data = per if self.config.per_series else np.concatenate(per)
    if workdir is None:
      with tempfile.TemporaryDirectory(prefix="mlts_detector_") as tmp:
        procs, _, params, seconds = train_fn(self.config, dcfg, data, tmp,
                                             self.config.variant, mesh)
    else:
      from mlts import results
      results.start_run(self.config, workdir)  # a workdir of another config stops here
      procs, _, params, seconds = train_fn(self.config, dcfg, data, workdir,
                                           self.config.variant, mesh)
    self._processes = list(procs) if self.config.per_series else [procs]
    self._params = params
    self.train_seconds = float(seconds)
    self._build_runner()
    groups = per if self.config.per_series else [np.concatenate(per)]
    self._references = [self._fit_reference(w, k) for k, w in enumerate(groups)]

  def _build_runner(self) -> None:
    # The jitted window function closes over the network (and, pooled, the process): one
    # compiled function per (config, process arrays), shared by every detector holding them
    # (a loaded copy of a fitted detector compiles nothing). Per series, the processes'
    # arrays are an argument: one compilation serves all S.
    per = self.config.per_series
    proc = self._template_process() if per else self._processes[0]
    cache_key = (
        per, self.config.variant, self.config.window, self.num_features,
        *(json.dumps(self.config[s].to_dict(), sort_keys=True, default=str)
          for s in ("diffusion", "network", "detector")),
        *(() if per else (np.asarray(a).tobytes() for a in (proc.mask, proc.t_star,
                                                            proc.delta))))
    if cache_key not in _WINDOW_FNS:
      model = trainer.make_network(self.config.network, self.num_features)

      def noise_fn_of(params):
        return losses.make_noise_fn(model.apply, params, proc)

      while len(_WINDOW_FNS) >= _MAX_CACHED:
        _WINDOW_FNS.pop(next(iter(_WINDOW_FNS)))
      make = (diffusion_detector.make_process_window_fn if per
              else diffusion_detector.make_window_fn)
      _WINDOW_FNS[cache_key] = make(proc, noise_fn_of, self.config.detector)
    self._window_fn = _WINDOW_FNS[cache_key]

  def _run(self, windows: np.ndarray, key: jax.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(x̂, z) [N, L, C] of windows under the model (and process) of series k."""
    fn, params = self._window_fn, self._params
    if self.config.per_series:
      from mlts import per_series
      arrays = diffusion_detector.process_arrays(self._processes[k])
      params = per_series.take(params, k)
      general = self._window_fn

      def fn(p, x, kk):
        return general(p, arrays, x, kk)
    return diffusion_detector.run_windows(fn, params, windows.astype(np.float32),
                                          self.config.detector.batch_size, key)

  def _fit_reference(self, train_windows: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The latent reference of (a subsample of) model k's training windows, as `score_series`."""
    k_train, _ = self._keys()
    seed = np.asarray(jax.random.key_data(k_train)).ravel().tolist()
    rng = np.random.default_rng(seed + [k] if self.config.per_series else seed)
    sub = train_windows
    cap = self.config.detector.max_train_encoded
    if sub.shape[0] > cap:
      sub = sub[np.sort(rng.choice(sub.shape[0], cap, replace=False))]
    _, z_train = self._run(sub, k_train, k)
    return latent_reference_arrays(self._coeffs(z_train))

  def _coeffs(self, z: np.ndarray) -> np.ndarray:
    """[N, L, C] latents -> [N, L·C] coefficients Uᵀz (float64)."""
    c = np.einsum("lk,nlc->nkc", np.asarray(self._processes[0].basis, np.float64),
                  np.asarray(z, np.float64))
    return c.reshape(c.shape[0], -1)

  # ------------------------------------------------------------------ score
  def latent_scores(self, z: np.ndarray, k: int = 0) -> dict[str, np.ndarray]:
    """{'energy', 'mahalanobis', 'norm'}: [N] each, for latents z [N, L, C] of model k.

    As `mlts.diffusion.detector.LatentReference.scores`, from the stored arrays.
    """
    k = k if self.config.per_series else 0
    ref = self._references[k]
    c = self._coeffs(z)
    mask = np.asarray(self._processes[k].mask, bool).reshape(-1)
    return {
        "energy": latent.subspace_energy(c, mask),
        "mahalanobis": np.sqrt(np.maximum(
            squared_mahalanobis(c, ref["location"], ref["precision"]), 0.0)),
        "norm": (np.abs(np.linalg.norm(c, axis=1) - float(ref["norm_mean"][0]))
                 / float(ref["norm_std"][0])),
    }

  def _windows_out(self, x: np.ndarray, k: int):
    """Cuts and runs one normalized series [T, C] with model k: (x32, x̂, z, starts, T_pad)."""
    x32 = np.asarray(x, np.float32)
    w, starts, mask = windows_lib.sliding_windows(x32, self.config.window,
                                                  self.config.eval_stride, pad=True, name="x")
    _, k_eval = self._keys()
    x_hat, z = self._run(w, k_eval, k)
    return x32, x_hat, z, starts, mask.shape[0]

  @staticmethod
  def _residual_of(x32, x_hat, starts, padded) -> np.ndarray:
    """x − x̂ of the aggregated reconstruction, [T, C] float64 (as `score_series`)."""
    recon = windows_lib.aggregate(x_hat, starts, padded)
    return x32.astype(np.float64) - recon[:x32.shape[0]]

  def _step_scores(self, x: np.ndarray, k: int, names) -> dict[str, np.ndarray]:
    """The per-step scores `names` (of SCORES) of one normalized series, with series k's state."""
    x32, x_hat, z, starts, padded = self._windows_out(x, k)
    out = {}
    if "recon" in names:
      out["recon"] = np.asarray(self._post[k](self._residual_of(x32, x_hat, starts, padded)),
                                np.float64)
    latent_names = [n for n in names if n != "recon"]
    if latent_names:
      values = self.latent_scores(z, k)
      for name in latent_names:
        tiled = np.broadcast_to(values[name][:, None], (values[name].shape[0],
                                                        self.config.window))
        out[name] = windows_lib.aggregate(tiled, starts, padded)[:x32.shape[0]]
    return out

  def score_components(self, x, *, series: int | None = None):
    """Every score kind of the one fitted model, per step, before calibration.

    The study reports all four methods of a trained variant; `score` returns the
    configured one (normalized as the calibration says). Here, raw:

    Args:
      x: [T, C] or [T] array, or a list of them.
      series: as for `score`.

    Returns:
      {'recon', 'energy', 'mahalanobis', 'norm'}: float64 [T] each ('recon' through
      `postprocess`), or a list of such dicts for a list in.
    """
    items, was_list, index = self._check_input(x, series)
    out = [self._step_scores(self._normalize(s, k), k, SCORES) for s, k in zip(items, index)]
    return out if was_list else out[0]

  def _prepare_scoring(self, val_parts) -> None:
    self._val_residuals = []
    for k, v in enumerate(val_parts):
      x32, x_hat, _, starts, padded = self._windows_out(v, k)
      self._val_residuals.append(self._residual_of(x32, x_hat, starts, padded))
    self._fit_postprocessors()

  def _fit_postprocessors(self) -> None:
    cfg = self._postprocess_config(self.config)
    self._post = [postprocess.make_postprocessor(cfg.name, cfg)(r) for r in self._val_residuals]

  def _score_normalized(self, x, k):
    return self._step_scores(x, k, (self.config.score,))[self.config.score]

  # ------------------------------------------------------------------ state
  def _state(self) -> dict[str, Any]:
    def stack(arrays):  # [S, ...] per series, one model's arrays as they are when pooled
      arrays = [np.asarray(a) for a in arrays]
      return np.stack(arrays) if self.config.per_series else arrays[0]

    procs = self._processes
    state: dict[str, Any] = {
        "params": self._params,
        "process": {"mask": stack([p.mask for p in procs]),
                    "t_star": stack([np.asarray(p.t_star).reshape(1) for p in procs]),
                    "delta": stack([np.asarray(p.delta).reshape(1) for p in procs])}}
    state["reference"] = {name: stack([r[name] for r in self._references])
                          for name in self._references[0]}
    state["val_residuals"] = {str(k): r for k, r in enumerate(self._val_residuals)}
    return state

  def _extra_json(self) -> dict[str, Any]:
    described = [trainer.describe(p) for p in self._processes]
    return {"train_seconds": self.train_seconds,
            "process": described if self.config.per_series else described[0]}

  def _restore_extra(self, extra) -> None:
    self.train_seconds = float(extra.get("train_seconds", 0.0))

  def _template_process(self) -> process.Process:
    """The process of this config without its data-dependent arrays (schedule and basis)."""
    dcfg = self._variant_config()
    dcfg.attenuate, dcfg.threshold, dcfg.t_star = False, "fixed", 0.0
    return process.make_process(dcfg, length=self.config.window, channels=self.num_features)

  def _set_state(self, state) -> None:
    template = self._template_process()
    saved = state["process"]
    per = self.config.per_series
    lead = (self.num_series,) if per else ()
    mask = np.asarray(saved["mask"])
    if mask.shape != lead + tuple(template.mask.shape):
      raise ValueError(f"the saved process mask has shape {mask.shape}, this config builds "
                       f"{lead + tuple(template.mask.shape)}")
    t_star = np.asarray(saved["t_star"]).reshape(lead + (1,))
    delta = np.asarray(saved["delta"]).reshape(lead + (1,))

    def process_of(m, ts, d):
      return template.replace(mask=jnp.asarray(m), t_star=jnp.asarray(ts.reshape(())),
                              delta=jnp.asarray(d.reshape(())))

    self._processes = ([process_of(mask[k], t_star[k], delta[k]) for k in range(lead[0])]
                       if per else [process_of(mask, t_star, delta)])
    model = trainer.make_network(self.config.network, self.num_features)
    shape = diffusion_detector.network_input_shape(template, self.config.window,
                                                   self.num_features)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape), jnp.zeros((1,)))
    expected = jax.tree.map(lambda a: (lead + tuple(a.shape), str(a.dtype)), abstract["params"])
    got = jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)), state["params"])
    if expected != got:
      raise ValueError("the saved parameters do not match the U-Net this config builds")
    self._params = state["params"]
    ref = state["reference"]
    names = ("location", "precision", "norm_mean", "norm_std")
    arrays = {k: np.asarray(ref[k], np.float64) for k in names}
    self._references = ([{n: arrays[n][k] for n in names} for k in range(lead[0])]
                        if per else [arrays])
    residuals = state["val_residuals"]
    self._val_residuals = [np.asarray(residuals[str(k)]) for k in range(len(residuals))]
    self._build_runner()
    self._fit_postprocessors()
