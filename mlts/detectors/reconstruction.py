"""The learned reconstruction detectors: conv_ae, lstm_ae, dlinear, modern_tcn, transformer.

Each trains its backbone (`mlts.models`) on the windows of the normalized fit
parts with the MSE or GWNR loss through `mlts.reconstruction.train_backbone`
(the detector study's code: `mlts.train.fit`, sharded jit, Orbax checkpoints,
NaN stop), then scores a series by its aggregated reconstruction residual
through the post-processing `postprocess` (none | arks | ma | lp), fit per
training series on that series' validation residuals, exactly as the detector
study does.

Saved: the scoring parameters (Orbax) and the validation residuals the
post-processors are fit on (so ARKS recalibrates identically on load).
"""

from __future__ import annotations

import tempfile

import jax
import ml_collections
import numpy as np

from mlts import models, reconstruction, sharding, train, train_state
from mlts.cognos import gwnr, postprocess
from mlts.data import series as series_lib
from mlts.detectors import base

BACKBONES = tuple(models.REGISTRY)
LOSSES = ("mse", "gwnr")


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

  @classmethod
  def _pipeline_config(cls, config) -> ml_collections.ConfigDict:
    """The detector study's config shape, which `reconstruction.train_backbone` reads."""
    out = ml_collections.ConfigDict()
    out.seed = config.seed
    out.data = ml_collections.ConfigDict(dict(window=config.window, stride=config.stride,
                                              eval_stride=config.eval_stride))
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
    if workdir is None:
      with tempfile.TemporaryDirectory(prefix="mlts_detector_") as tmp:
        trained = reconstruction.train_backbone(cfg, prepared, tmp)
    else:
      from mlts import results
      results.start_run(cfg, workdir)  # a workdir of another config stops here
      trained = reconstruction.train_backbone(cfg, prepared, workdir)
    self.step = trained.step
    self._params = jax.device_get(trained.params)
    self._build_runner()

  def _build_runner(self) -> None:
    cfg = self._pipeline_config(self.config)
    model = models.get_model(cfg.model, self.num_features)
    self._run = reconstruction.make_batched_apply(model.apply, self.config.eval_batch_size,
                                                  sharding.make_mesh())

  def _residual(self, x: np.ndarray) -> np.ndarray:
    recon = reconstruction.reconstruct_series(
        self._run, self._params, [x.astype(np.float32)], self.config.window,
        self.config.eval_stride)[0]
    return x.astype(np.float32).astype(np.float64) - recon

  def _prepare_scoring(self, val_parts) -> None:
    self._val_residuals = [self._residual(v) for v in val_parts]
    self._fit_postprocessors()

  def _fit_postprocessors(self) -> None:
    cfg = self._pipeline_config(self.config).postprocess
    self._post = [postprocess.make_postprocessor(cfg.name, cfg)(r) for r in self._val_residuals]

  def _score_normalized(self, x, k):
    return np.asarray(self._post[k](self._residual(x)), np.float64)

  # ------------------------------------------------------------------ state
  def _state(self):
    return {"params": self._params,
            "val_residuals": {str(k): r for k, r in enumerate(self._val_residuals)}}

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
    expected = jax.tree.map(lambda a: (a.shape, str(a.dtype)), abstract["params"])
    got = jax.tree.map(lambda a: (tuple(np.shape(a)), str(np.asarray(a).dtype)), state["params"])
    if expected != got:
      raise ValueError("the saved parameters do not match the model this config builds")
    self._params = state["params"]
    residuals = state["val_residuals"]
    self._val_residuals = [np.asarray(residuals[str(k)]) for k in range(len(residuals))]
    self._build_runner()
    self._fit_postprocessors()
