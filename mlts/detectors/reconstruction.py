"""The learned reconstruction detectors: conv_ae, lstm_ae, dlinear, modern_tcn, transformer, mlp_ae.

Each trains its backbone (`mlts.models`) on the windows of the normalized fit
parts with the MSE or GWNR loss through `mlts.reconstruction.train_backbone`
(the detector study's code: `mlts.train.fit`, sharded jit, Orbax checkpoints,
NaN stop), then scores a series by its aggregated reconstruction residual
through the post-processing `postprocess` (none | arks | ma | lp), fit per
training series on that series' validation residuals, exactly as the detector
study does.

`per_series=True` trains one parameter set per training series (a NASA
channel), all series at once: the stacked parameters are updated by one jitted,
vmapped step (`mlts.reconstruction.train_backbone_per_series`,
`mlts.per_series`); series k is scored with its own parameters.

`objective='forecast'` makes the backbone a forecaster, telemanom style: it
sees the window with its last `horizon` steps hidden (the last observed value
held) and predicts them; a step's residual is its value minus the mean of its
forecasts (`mlts.reconstruction.forecast_series`).

Scores (`score`): one component, or several joined by '+':

* `residual`: the post-processed reconstruction residual (above);
* `window_error`: each window's own mean squared reconstruction (or forecast)
  error, spread to its steps like the window baselines (the error of every
  window separately, where `residual` is the error of the reconstruction
  averaged over windows, in which overlapping windows partly cancel);
* `latent_knn`: window novelty in the backbone's bottleneck: the Euclidean
  distance of a window's code (`encode`, flattened) to the nearest code of the
  series' own fit-part windows (conv_ae, lstm_ae, mlp_ae), spread to steps like
  the window baselines. It sees a window at an unusual level or with an unusual
  shape even when the decoder reconstructs it well;
* `window_knn`: the same distance between the (normalized) windows themselves;
* several, e.g. `residual+latent_knn`: the sum of the components, each
  standardized by its mean and std on the series' validation part (normal
  data, no labels).

Saved: the scoring parameters (Orbax), the validation residuals the
post-processors are fit on (so ARKS recalibrates identically on load), and for
the latent scores the reference codes and the validation statistics.
"""

from __future__ import annotations

import tempfile

import jax
import ml_collections
import numpy as np

from mlts import models, reconstruction, sharding, train, train_state
from mlts.cognos import gwnr, postprocess
from mlts.data import series as series_lib
from mlts.data import windows as windows_lib
from mlts.detectors import base

BACKBONES = tuple(models.REGISTRY)
LOSSES = ("mse", "gwnr")
OBJECTIVES = ("reconstruct", "forecast")
# The components of `score` (one, or several joined by '+').
SCORES = ("residual", "window_error", "latent_knn", "window_knn")


def score_components(score: str) -> tuple[str, ...]:
  """'residual+latent_knn' -> ('residual', 'latent_knn'); ValueError for an unknown part."""
  parts = tuple(p.strip() for p in str(score).split("+"))
  bad = [p for p in parts if p not in SCORES]
  if bad or len(set(parts)) != len(parts):
    raise ValueError(f"score must be one of {SCORES} or several joined by '+' (each once), "
                     f"got {score!r}")
  return parts


class ReconstructionDetector(base.Detector):
  """A reconstruction backbone + loss + post-processing (see the module docstring)."""

  name = "conv_ae"
  fit_options = ("workdir",)

  @classmethod
  def named(cls, name: str) -> type["ReconstructionDetector"]:
    if name not in BACKBONES:
      raise ValueError(f"unknown backbone {name!r}; available: {BACKBONES}")
    return type(f"ReconstructionDetector[{name}]", (cls,), {"name": name})

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    config = base.common_config()
    config.window = 128  # window length L (each backbone checks what it can take)
    config.stride = 8  # stride of training windows
    config.eval_stride = 16  # stride of scored windows (aggregated back per step)
    config.loss = "mse"  # mse | gwnr
    config.postprocess = "none"  # residual -> score: none | arks | ma | lp
    model = models.default_config()
    config.model = model[cls.name]  # this backbone's own fields
    config.model.revin = model.revin  # per-window instance normalization
    config.training = train.default_config()
    del config.training["loss"]  # the detector's `loss` field
    config.training.eval_every = 0  # validation-loss curve (logs only); 0 = off
    config.optimizer = train_state.default_optimizer_config()
    config.gwnr = gwnr.default_config()  # used when loss == 'gwnr'
    post = postprocess.default_config()
    del post["name"]  # the detector's `postprocess` field
    config.postprocess_config = post  # ARKS / MA / LP settings
    config.eval_batch_size = 256  # windows per scoring batch (a multiple of the device count)
    config.per_series = False  # one parameter set per training series (vmapped) | one for all
    config.objective = "reconstruct"  # reconstruct the window | forecast its last `horizon` steps
    config.horizon = 8  # steps forecast from the window - horizon before them ('forecast')
    config.score = "residual"  # residual | latent_knn | window_knn, or several joined by '+'
    config.latent_max_windows = 4000  # reference codes per series (evenly spaced subsample)
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    base.validate_common(config)
    if config.loss not in LOSSES:
      raise ValueError(f"loss must be one of {LOSSES}, got {config.loss!r}")
    if config.postprocess not in postprocess.NAMES:
      raise ValueError(f"postprocess must be one of {postprocess.NAMES}, "
                       f"got {config.postprocess!r}")
    for field in ("window", "stride", "eval_stride", "eval_batch_size"):
      if config[field] < 1:
        raise ValueError(f"{field} must be >= 1, got {config[field]}")
    for field in ("num_steps", "batch_size", "checkpoint_every", "log_every", "max_checkpoints"):
      if config.training[field] < 1:
        raise ValueError(f"training.{field} must be >= 1, got {config.training[field]}")
    models.check_window(cls._pipeline_config(config).model, config.window)
    if config.objective not in OBJECTIVES:
      raise ValueError(f"objective must be one of {OBJECTIVES}, got {config.objective!r}")
    if config.objective == "forecast":
      if not 1 <= config.horizon < config.window:
        raise ValueError(f"horizon must be in [1, window={config.window}), got {config.horizon}")
      if config.eval_stride > config.horizon:
        raise ValueError(f"eval_stride={config.eval_stride} exceeds horizon={config.horizon}: "
                         "some steps would never be forecast; use eval_stride <= horizon")
      if config.loss != "mse":
        raise ValueError("objective='forecast' trains with loss='mse' (GWNR shapes "
                         f"reconstruction residuals), got loss={config.loss!r}")
    parts = score_components(config.score)
    if "latent_knn" in parts and not hasattr(models.REGISTRY[cls.name], "encode"):
      raise ValueError(f"score={config.score!r} needs a backbone with a bottleneck (encode): "
                       f"{sorted(n for n, m in models.REGISTRY.items() if hasattr(m, 'encode'))}"
                       f"; {cls.name} has none")
    if not isinstance(config.per_series, bool):
      raise ValueError(f"per_series must be True or False, got {config.per_series!r}")

  @classmethod
  def _pipeline_config(cls, config) -> ml_collections.ConfigDict:
    """The detector study's config shape, which `reconstruction.train_backbone` reads."""
    out = ml_collections.ConfigDict()
    out.seed = config.seed
    out.per_series = config.per_series
    out.data = ml_collections.ConfigDict(dict(
        window=config.window, stride=config.stride, eval_stride=config.eval_stride,
        horizon=config.horizon if config.objective == "forecast" else 0))
    model = config.model.to_dict()
    revin = model.pop("revin")
    out.model = ml_collections.ConfigDict({"name": cls.name, "revin": revin, cls.name: model})
    out.training = ml_collections.ConfigDict(config.training.to_dict())
    out.training.loss = config.loss
    out.optimizer = ml_collections.ConfigDict(config.optimizer.to_dict())
    out.gwnr = ml_collections.ConfigDict(config.gwnr.to_dict())
    out.postprocess = ml_collections.ConfigDict(
        {"name": config.postprocess, **config.postprocess_config.to_dict()})
    out.eval = ml_collections.ConfigDict(dict(batch_size=config.eval_batch_size))
    return out

  # ------------------------------------------------------------------ fit / score
  def _fit_model(self, fit_parts, val_parts, workdir: str | None = None) -> None:
    cfg = self._pipeline_config(self.config)
    prepared = [series_lib.PreparedSeries(f"series {k}", f.astype(np.float32),
                                          v.astype(np.float32), v[:0].astype(np.float32),
                                          np.zeros(0, np.int8))
                for k, (f, v) in enumerate(zip(fit_parts, val_parts))]
    train_fn = (reconstruction.train_backbone_per_series if self.config.per_series
                else reconstruction.train_backbone)
    if workdir is None:
      with tempfile.TemporaryDirectory(prefix="mlts_detector_") as tmp:
        trained = train_fn(cfg, prepared, tmp)
    else:
      from mlts import results
      results.start_run(cfg, workdir)  # a workdir of another config stops here
      trained = train_fn(cfg, prepared, workdir)
    self.step = trained.step
    self._params = jax.device_get(trained.params)
    self._build_runner()
    self._codes = {space: [self._reference_codes(f, k, space) for k, f in enumerate(fit_parts)]
                   for space in self._knn_spaces()}

  def _build_runner(self) -> None:
    cfg = self._pipeline_config(self.config)
    model = models.get_model(cfg.model, self.num_features)
    mesh = sharding.make_mesh()
    apply = model.apply
    if self.config.objective == "forecast":
      horizon = self.config.horizon
      apply = lambda variables, w: model.apply(  # noqa: E731
          variables, reconstruction.forecast_input(w, horizon))
    self._run = reconstruction.make_batched_apply(apply, self.config.eval_batch_size, mesh)
    if hasattr(model, "encode"):
      self._encode = reconstruction.make_batched_apply(
          lambda variables, w: model.apply(variables, w, code=True),
          self.config.eval_batch_size, mesh)

  def _params_of(self, k: int):
    """The parameters scoring series k (its own with per_series)."""
    if not self.config.per_series:
      return self._params
    from mlts import per_series
    return per_series.take(self._params, k)

  def _residual(self, x: np.ndarray, k: int) -> np.ndarray:
    """x − its reconstruction (or, objective 'forecast', its forecast), [T, C]."""
    if self.config.objective == "forecast":
      recon = reconstruction.forecast_series(
          self._run, self._params_of(k), [x.astype(np.float32)], self.config.window,
          self.config.eval_stride, self.config.horizon)[0]
    else:
      recon = reconstruction.reconstruct_series(
          self._run, self._params_of(k), [x.astype(np.float32)], self.config.window,
          self.config.eval_stride)[0]
    return x.astype(np.float32).astype(np.float64) - recon

  def _knn_spaces(self) -> list[str]:
    """The spaces of the k-NN components in `score`: 'latent' and / or 'window'."""
    return [p.split("_")[0] for p in score_components(self.config.score) if p.endswith("_knn")]

  def _codes_of(self, x: np.ndarray, k: int, stride: int, space: str):
    """Flattened codes [N, D] of the windows of x [T, C] in `space`, and their starts."""
    w, starts, _ = windows_lib.sliding_windows(x.astype(np.float32), self.config.window, stride,
                                               pad=True, name="x")
    codes = self._encode(self._params_of(k), w) if space == "latent" else w
    return codes.reshape(codes.shape[0], -1).astype(np.float64), starts

  def _reference_codes(self, fit: np.ndarray, k: int, space: str) -> np.ndarray:
    codes, _ = self._codes_of(fit, k, self.config.stride, space)
    if codes.shape[0] > self.config.latent_max_windows:
      keep = np.linspace(0, codes.shape[0] - 1, self.config.latent_max_windows).round()
      codes = codes[np.unique(keep.astype(np.int64))]
    return codes

  def _window_error(self, x: np.ndarray, k: int) -> np.ndarray:
    """[T] per-window mean squared error (the horizon's when forecasting), spread to steps."""
    w, starts, _ = windows_lib.sliding_windows(x.astype(np.float32), self.config.window,
                                               self.config.eval_stride, pad=True, name="x")
    pred = self._run(self._params_of(k), w)
    if self.config.objective == "forecast":
      pred, w = pred[:, -self.config.horizon:], w[:, -self.config.horizon:]
    errors = np.mean(np.square(pred.astype(np.float64) - w), axis=(1, 2))
    return base.window_scores_to_steps(errors, starts, self.config.window, x.shape[0])

  def _knn(self, x: np.ndarray, k: int, space: str) -> np.ndarray:
    from scipy.spatial import distance
    codes, starts = self._codes_of(x, k, self.config.eval_stride, space)
    nearest = distance.cdist(codes, self._codes[space][k]).min(axis=1)
    return base.window_scores_to_steps(nearest, starts, self.config.window, x.shape[0])

  def _components(self, x: np.ndarray, k: int, residual: np.ndarray | None = None):
    """The raw components of `score` for series x [T, C] (x normalized), in order."""
    out = []
    for part in score_components(self.config.score):
      if part == "residual":
        r = self._residual(x, k) if residual is None else residual
        out.append(np.asarray(self._post[k](r), np.float64))
      elif part == "window_error":
        out.append(self._window_error(x, k))
      else:
        out.append(self._knn(x, k, part.split("_")[0]))
    return out

  def _prepare_scoring(self, val_parts) -> None:
    self._val_residuals = [self._residual(v, k) for k, v in enumerate(val_parts)]
    self._fit_postprocessors()
    if len(score_components(self.config.score)) > 1:  # standardize on validation (normal) data
      stats = []
      for k, v in enumerate(val_parts):
        parts = self._components(v, k, residual=self._val_residuals[k])
        stats.append([[float(np.mean(p)), float(max(np.std(p), self.config.min_score_scale))]
                      for p in parts])
      self._fusion_stats = np.asarray(stats)  # [S, components, (mean, std)]

  def _fit_postprocessors(self) -> None:
    cfg = self._pipeline_config(self.config).postprocess
    self._post = [postprocess.make_postprocessor(cfg.name, cfg)(r) for r in self._val_residuals]

  def _score_normalized(self, x, k):
    return self._fuse(self._components(x, k), k)

  def _fuse(self, parts: list[np.ndarray], k: int) -> np.ndarray:
    """One component as it is; several standardized by their validation statistics and summed."""
    if len(parts) == 1:
      return parts[0]
    stats = self._fusion_stats[k]
    return sum((p - m) / sd for p, (m, sd) in zip(parts, stats))

  # Chunked scoring (base.Detector._score_series): every component is window-local on the
  # eval grid except the post-processing of the residual, which streams its state.
  def _score_grid(self):
    if self.config.objective == "forecast":  # forecasts pad the series' front: not local
      return None
    return self.config.window, self.config.eval_stride

  def _local_parts(self, x, k):
    out = {}
    for part in score_components(self.config.score):
      if part == "residual":
        out[part] = self._residual(x, k)
      elif part == "window_error":
        out[part] = self._window_error(x, k)
      else:
        out[part] = self._knn(x, k, part.split("_")[0])
    return out

  def _finish(self, parts, k, state):
    state = {} if state is None else state
    components = []
    for part, v in parts.items():
      if part == "residual":
        score, state["post"] = self._post[k].stream(v, state.get("post"))
        components.append(np.asarray(score, np.float64))
      else:
        components.append(v)
    return self._fuse(components, k), state

  # ------------------------------------------------------------------ state
  def _state(self):
    state = {"params": self._params,
             "val_residuals": {str(k): r for k, r in enumerate(self._val_residuals)}}
    for space, codes in self._codes.items():
      state[f"codes_{space}"] = {str(k): c for k, c in enumerate(codes)}
    if len(score_components(self.config.score)) > 1:
      state["fusion_stats"] = self._fusion_stats
    return state

  def _extra_json(self):
    return {"step": int(self.step)}

  def _restore_extra(self, extra):
    self.step = int(extra.get("step", 0))

  def _set_state(self, state):
    # The parameter tree's structure and shapes must be those this config builds.
    cfg = self._pipeline_config(self.config)
    model = models.get_model(cfg.model, self.num_features)
    abstract = jax.eval_shape(model.init, jax.random.key(0),
                              np.zeros((1, self.config.window, self.num_features), np.float32))
    lead = (len(state["val_residuals"]),) if self.config.per_series else ()
    expected = jax.tree.map(lambda a: (lead + a.shape, str(a.dtype)), abstract["params"])
    got = jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)), state["params"])
    if expected != got:
      raise ValueError("the saved parameters do not match the model this config builds")
    self._params = state["params"]
    residuals = state["val_residuals"]
    self._val_residuals = [np.asarray(residuals[str(k)]) for k in range(len(residuals))]
    self._codes = {space: [np.asarray(state[f"codes_{space}"][str(k)])
                           for k in range(len(residuals))] for space in self._knn_spaces()}
    if len(score_components(self.config.score)) > 1:
      self._fusion_stats = np.asarray(state["fusion_stats"])
    self._build_runner()
    self._fit_postprocessors()
