"""β-VAEGAN as a detector (`mlts.vaegan`, papers/001): window score components, composed.

`fit` trains one model of `mlts.vaegan.train.VARIANTS` (default 'vaegan1',
the study's β-VAEGAN₁; the variant's switches override the `vaegan` section,
which supplies everything else) on the windows of the normalized fit parts,
min–max scaled to [0, 1] per channel with the statistics of each training
series' own fit part (the sigmoid decoder's range; applied on top of the base
normalization, stored per series). A series is cut into windows of stride
`eval_stride`; each window gets the components of `scoring.make_scorer` —
R (reconstruction MSE), D (discriminator feature MSE; adversarial variants
only) and L (latent norm minus the mode of the training latent norms, or
minus √(dim − 1) with `vaegan.latent_score = 'prior'`) — composed by
`composition`:

* 'recon': R alone (label-free; the default);
* 'sum': each component z-scored with the mean / std of the pooled validation
  windows, then added (label-free);
* 'grid': A* = (1−λ−γ)R + λD + γL (or (1−λ)R + λL without D) with (λ, γ, τ)
  maximizing F1 on the labelled validation windows
  (`composition.fit_linear_grid3` / `fit_linear_grid`); the score is A* − τ;
* 'svm': an RBF SVC on the components (`composition.fit_svm`); the score is
  its decision function.

'grid' and 'svm' are fit on labelled validation data: `fit(train,
validation=..., validation_labels=...)` with per-step labels of the
validation series (a window is anomalous if any of its steps is); their
components are min–max scaled on the validation windows first, as the study
does. The composition is fit on the validation windows of all series
pooled. Window scores reach steps through `base.window_scores_to_steps`.

`per_series=True` trains one model per training series (a NASA channel) on
that series' windows only, all S models in one vmapped jitted step
(`mlts.vaegan.train.fit_per_series`, `mlts.per_series`); series k is scored
by model k, with its own latent-norm mode, and 'sum' standardizes each
series' components with its own validation windows. 'grid' and 'svm' stay
fit on the validation windows of all series pooled (labels are few).

Saved (Orbax arrays, nothing pickled): the generator's (and discriminator's)
variables, the min–max statistics, the latent-norm mode and the composition
as arrays (an SVM as support vectors, dual coefficients, intercept and γ; its
RBF decision function is computed with NumPy).
"""

from __future__ import annotations

import os
import tempfile
import types
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import checks, sharding, writers
from mlts.data import windows as windows_lib
from mlts.detectors import base
from mlts.vaegan import composition as composition_lib
from mlts.vaegan import model as vaegan_model
from mlts.vaegan import scoring
from mlts.vaegan import train as vaegan_train

COMPOSITIONS = ("recon", "sum", "grid", "svm")
LABELLED = ("grid", "svm")
_TRAIN_STREAM = 11  # fold_in(key(seed), 11): the training key, as `telemetry_models`'


def svm_arrays(svc) -> dict[str, np.ndarray]:
  """A fitted binary RBF `sklearn.svm.SVC` as arrays.

  Returns:
    'support_vectors' [M, k], 'dual_coef' [M], 'intercept' [1], 'gamma' [1]
    (the γ the SVC used, also when it was given as 'scale').
  """
  if svc.kernel != "rbf" or len(svc.classes_) != 2:
    raise ValueError("svm_arrays takes a binary SVC with kernel='rbf'")
  return {"support_vectors": np.asarray(svc.support_vectors_, np.float64),
          "dual_coef": np.asarray(svc.dual_coef_, np.float64).reshape(-1),
          "intercept": np.asarray(svc.intercept_, np.float64).reshape(1),
          "gamma": np.array([float(svc._gamma)], np.float64)}


def svm_decision_function(arrays: dict[str, np.ndarray], features: np.ndarray,
                          chunk: int = 4096) -> np.ndarray:
  """The RBF SVC decision function from `svm_arrays`: [N, k] -> [N] (> 0 leans class 1).

  Σ_m dual_coef_m · exp(−γ ‖sv_m − x‖²) + intercept, as scikit-learn's
  `decision_function` of a binary SVC; rows go in chunks of `chunk`.
  """
  x = np.asarray(features, np.float64)
  sv = np.asarray(arrays["support_vectors"], np.float64)
  coef = np.asarray(arrays["dual_coef"], np.float64).reshape(-1)
  gamma = float(np.asarray(arrays["gamma"]).reshape(-1)[0])
  intercept = float(np.asarray(arrays["intercept"]).reshape(-1)[0])
  out = []
  for begin in range(0, x.shape[0], chunk):  # chunks of rows, vectorized within
    diff = x[begin:begin + chunk, None, :] - sv[None, :, :]  # [n, M, k]
    out.append(np.exp(-gamma * np.sum(diff * diff, axis=-1)) @ coef + intercept)
  return np.concatenate(out) if out else np.zeros(0)


def window_labels(labels: np.ndarray, window: int, stride: int) -> np.ndarray:
  """Per-step labels [T] -> int8 labels [N] of the windows `sliding_windows(pad=True)` cuts.

  A window is anomalous if any of its steps is (padding repeats the last label).
  """
  w, _, _ = windows_lib.sliding_windows(np.asarray(labels, np.float64)[:, None], window,
                                        stride, pad=True, name="validation labels")
  return (w.max(axis=(1, 2)) > 0).astype(np.int8)


class VaeganDetector(base.Detector):
  """β-VAEGAN window components + a composition (see the module docstring)."""

  name = "vaegan"
  fit_options = ("workdir", "validation_labels")

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    config = base.common_config()
    config.window = 64  # window length L, a multiple of 2 ** len(vaegan.gen_hidden)
    config.stride = 16  # stride of training windows
    config.eval_stride = 16  # stride of scored windows (window scores spread to steps)
    config.variant = "vaegan1"  # a model of mlts.vaegan.train.VARIANTS (β-VAEGAN₁)
    config.per_series = False  # one model per training series (vmapped) | one for all
    config.composition = "recon"  # recon | sum (label-free) | grid | svm (validation labels)
    config.composition_config = comp = ml_collections.ConfigDict()
    comp.num_lambda = 50  # 'grid' without D: λ grid of (1−λ)R + λL
    comp.num_gamma = 50  # 'grid' with D: values per axis of the triangular (λ, γ) grid
    comp.num_tau = 100  # 'grid': thresholds per weight vector
    comp.svm_C = 1.0  # 'svm': RBF SVC regularization (gamma='scale', balanced classes)
    comp.min_scale = 1e-6  # 'sum': floor of a component's validation std
    config.vaegan = vaegan_train.default_config()  # the variant's switches override it
    config.vaegan.gen_hidden = config.vaegan.disc_hidden = (16, 32, 64, 128, 256)
    config.training = training = ml_collections.ConfigDict()
    training.num_steps = 400  # generator updates
    training.batch_size = 64  # global batch (a multiple of the device count)
    training.log_every = 100  # steps between logged averages
    training.checkpoint_every = 200  # steps between Orbax checkpoints
    training.max_checkpoints = 1  # checkpoints kept
    config.eval_batch_size = 256  # windows per scoring batch (a multiple of the device count)
    config.max_train_scored = 4096  # training windows scored for the latent-norm mode
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    base.validate_common(config)
    if config.variant not in vaegan_train.VARIANTS:
      raise ValueError(f"variant must be one of {tuple(vaegan_train.VARIANTS)}, got "
                       f"{config.variant!r}")
    if not isinstance(config.per_series, bool):
      raise ValueError(f"per_series must be True or False, got {config.per_series!r}")
    if config.composition not in COMPOSITIONS:
      raise ValueError(f"composition must be one of {COMPOSITIONS}, got "
                       f"{config.composition!r}")
    for field in ("window", "stride", "eval_stride", "eval_batch_size", "max_train_scored"):
      if int(config[field]) != config[field] or config[field] < 1:
        raise ValueError(f"{field} must be a positive integer, got {config[field]!r}")
    for field in ("num_steps", "batch_size", "checkpoint_every", "log_every", "max_checkpoints"):
      if config.training[field] < 1:
        raise ValueError(f"training.{field} must be >= 1, got {config.training[field]}")
    comp = config.composition_config
    for field in ("num_lambda", "num_tau"):
      if comp[field] < 1:
        raise ValueError(f"composition_config.{field} must be >= 1, got {comp[field]}")
    if comp.num_gamma < 2:
      raise ValueError(f"composition_config.num_gamma must be >= 2, got {comp.num_gamma}")
    if config.vaegan.latent_score not in ("histogram", "prior"):
      raise ValueError("vaegan.latent_score must be 'histogram' or 'prior', got "
                       f"{config.vaegan.latent_score!r}")
    vcfg = cls._model_config(config)
    vaegan_model.check_length(config.window, len(vcfg.gen_hidden))
    vaegan_model.check_length(config.window, len(vcfg.disc_hidden))

  @staticmethod
  def _model_config(config) -> ml_collections.ConfigDict:
    """The `vaegan` section with the variant's switches (checked)."""
    return vaegan_train.variant_config(config.variant, config.vaegan)

  @property
  def _components(self) -> tuple[str, ...]:
    """The components composed: R alone, or R, D, L (R, L without a discriminator)."""
    if self.config.composition == "recon":
      return ("R",)
    return ("R", "D", "L") if self._vcfg.adversarial else ("R", "L")

  @property
  def _vcfg(self) -> ml_collections.ConfigDict:
    return self._model_config(self.config)

  # ------------------------------------------------------------------ fit
  def fit(self, train, *, validation=None, **options) -> "VaeganDetector":
    """Fits on normal data; see `base.Detector.fit`.

    Args:
      train: [T, C] or [T] array, or a list of them.
      validation: the same form and count; default = the last `val_fraction`.
      **options: `workdir` (checkpoints and logs) and `validation_labels`:
        per-step {0, 1} labels of `validation` ([V] per series, the same form),
        needed by the 'grid' and 'svm' compositions (requires `validation`).

    Returns:
      self.

    Raises:
      ValueError: a label-using composition without `validation_labels`,
        `validation_labels` without `validation`, or labels whose count or
        lengths do not match `validation`.
    """
    labels = options.get("validation_labels")
    if labels is not None and validation is None:
      raise ValueError(
          f"{self.name}.fit(): validation_labels label the steps of `validation`; pass the "
          "labelled validation series explicitly as validation=... (the default split of "
          "train holds no labels)")
    if self.config.composition in LABELLED and labels is None:
      raise ValueError(
          f"{self.name}: composition={self.config.composition!r} is fit on labelled "
          "validation data; call fit(train, validation=..., validation_labels=...) with per-step "
          "0/1 labels of the validation series, or use a label-free composition "
          "('recon' or 'sum')")
    if labels is not None:
      val, was_list = base.as_series_list(validation, name="validation")
      items = list(labels) if isinstance(labels, (list, tuple)) else [labels]
      if isinstance(labels, (list, tuple)) != was_list or len(items) != len(val):
        raise ValueError(f"validation_labels: {len(items)} label series for {len(val)} "
                         "validation series (give the same form as validation)")
      checked = []
      for k, (lab, v) in enumerate(zip(items, val)):
        name = f"validation_labels[{k}]" if was_list else "validation_labels"
        lab = np.asarray(lab)
        y = checks.binary_vector(lab[:, 0] if lab.ndim == 2 and lab.shape[1] == 1 else lab,
                                 name=name)
        if y.shape[0] != v.shape[0]:
          raise ValueError(f"{name} has {y.shape[0]} steps, validation has {v.shape[0]}")
        checked.append(y)
      pooled = np.concatenate(checked)
      if self.config.composition in LABELLED and pooled.min() == pooled.max():
        raise ValueError(
            f"validation_labels hold a single class (all {int(pooled[0])}); "
            f"composition={self.config.composition!r} needs normal and anomalous steps")
      options["validation_labels"] = checked
    return super().fit(train, validation=validation, **options)

  def _fit_model(self, fit_parts, val_parts, workdir: str | None = None,
                 validation_labels: list[np.ndarray] | None = None) -> None:
    del val_parts
    self._val_labels = validation_labels  # read by _prepare_scoring
    self._lo = np.stack([p.min(axis=0) for p in fit_parts])  # [S, C]
    span = np.stack([p.max(axis=0) - p.min(axis=0) for p in fit_parts])
    self._span = np.where(span > 0, span, 1.0)
    per = [np.clip(self._cut(self._scaled(p, k), self.config.stride)[0], 0.0, 1.0)
           for k, p in enumerate(fit_parts)]  # [0, 1] up to rounding
    mesh = sharding.make_mesh()
    if self.config.per_series:
      from mlts import per_series
      windows = per_series.stacked_windows(per, self.config.seed).astype(np.float32)
    else:
      windows = np.concatenate(per).astype(np.float32)
    if workdir is None:
      with tempfile.TemporaryDirectory(prefix="mlts_detector_") as tmp:
        state = self._train(windows, tmp, mesh)
    else:
      from mlts import results
      results.start_run(self.config, workdir)  # a workdir of another config stops here
      state = self._train(windows, workdir, mesh)
    self.step = int(jax.device_get(state.step))
    models = state.models if self.config.per_series else state
    self._gen = jax.device_get({"params": models.gen.params,
                                "batch_stats": models.gen.batch_stats})
    self._disc = (jax.device_get({"params": models.disc.params,
                                  "batch_stats": models.disc.batch_stats})
                  if self._vcfg.adversarial else {"params": {}, "batch_stats": {}})
    self._build_scorer()
    self._latent_mode = None
    if "L" in self._components and self._vcfg.latent_score == "histogram":
      # Per model: the mode of the latent norms of (a subsample of) its own training windows.
      groups = per if self.config.per_series else [np.concatenate(per)]
      modes = []
      for k, sub in enumerate(groups):
        if sub.shape[0] > self.config.max_train_scored:
          rng = np.random.default_rng([self.config.seed, k] if self.config.per_series
                                      else self.config.seed)
          sub = sub[np.sort(rng.choice(sub.shape[0], self.config.max_train_scored,
                                       replace=False))]
        modes.append(composition_lib.latent_norm_mode(
            self._raw(sub.astype(np.float32), k)["z_norm"]))
      self._latent_mode = np.array(modes, np.float64)  # [S] or [1]

  def _train(self, windows: np.ndarray, workdir: str, mesh):
    writer = writers.MetricWriter(os.path.join(workdir, "logs", self.config.variant),
                                  tensorboard=False)
    key = jax.random.fold_in(jax.random.key(self.config.seed), _TRAIN_STREAM)
    try:
      if self.config.per_series:
        return vaegan_train.fit_per_series(
            self._vcfg, self.config.training, windows, key=key, seed=self.config.seed,
            checkpoint_dir=os.path.join(workdir, "checkpoints", self.config.variant),
            writer=writer, mesh=mesh)
      return vaegan_train.fit(
          self._vcfg, self.config.training, windows, key=key, seed=self.config.seed,
          checkpoint_dir=os.path.join(workdir, "checkpoints", self.config.variant),
          writer=writer, mesh=mesh, jit_init=True)
    finally:
      writer.close()

  def _build_scorer(self) -> None:
    self._scorer = scoring.make_scorer(self._vcfg, batch_size=self.config.eval_batch_size,
                                       mesh=sharding.make_mesh())

  def _state_view(self, k: int):
    """The (gen, disc) variables scoring series k (its own model with `per_series`)."""
    gen, disc = self._gen, self._disc
    if self.config.per_series:
      from mlts import per_series
      gen, disc = per_series.take(gen, k), per_series.take(disc, k)
    return types.SimpleNamespace(gen=types.SimpleNamespace(**gen),
                                 disc=types.SimpleNamespace(**disc))

  # ------------------------------------------------------------------ components
  def _scaled(self, x: np.ndarray, k: int) -> np.ndarray:
    """Normalized [T, C] -> min–max scaled with the fit-part statistics of series k."""
    return (x - self._lo[k]) / self._span[k]

  def _cut(self, x: np.ndarray, stride: int):
    w, starts, _ = windows_lib.sliding_windows(x, self.config.window, stride, pad=True,
                                               name="series")
    return w.astype(np.float32), starts

  def _raw(self, windows: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The components of windows [N, L, C] in [0, 1] under the model of series k."""
    return self._scorer(self._state_view(k), windows,
                        jax.random.fold_in(jax.random.key(self.config.seed), 0))

  def _window_components(self, x: np.ndarray, k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The components of the windows of one normalized series [T, C] with the state of series k.

    Returns:
      ({'R', 'D', 'L'}: float64 [N] each, 'L' only when the composition uses it;
      starts [N]).
    """
    w, starts = self._cut(self._scaled(x, k), self.config.eval_stride)
    raw = self._raw(w, k)
    out = {"R": raw["R"], "D": raw["D"]}
    if "L" in self._components:
      if self._vcfg.latent_score == "histogram":
        out["L"] = raw["z_norm"] - self._latent_mode[k if self.config.per_series else 0]
      else:
        out["L"] = composition_lib.latent_norm_score_prior(raw["z_norm"],
                                                           int(self._vcfg.latent))
    return out, starts

  def _compose(self, comps: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Window scores [N] of series k from the components (the fitted composition)."""
    kind = self.config.composition
    if kind == "recon":
      return np.asarray(comps["R"], np.float64)
    fitted = self._composition
    stacked = np.stack([comps[c] for c in self._components], axis=1)  # [N, k]
    if kind == "sum":
      row = k if self.config.per_series else 0  # per-series statistics with per_series
      return np.sum((stacked - fitted["mean"][row]) / fitted["std"][row], axis=1)
    scaled = (stacked - fitted["lo"]) / fitted["scale"]
    if kind == "grid":
      total = fitted["weights"][0] * scaled[:, 0]
      for j in range(1, scaled.shape[1]):
        total = total + fitted["weights"][j] * scaled[:, j]
      return total - float(fitted["tau"][0])
    return svm_decision_function(fitted, scaled)

  def _prepare_scoring(self, val_parts) -> None:
    kind = self.config.composition
    self._composition = {}
    if kind == "recon":
      return
    per_series = [self._window_components(v, k)[0] for k, v in enumerate(val_parts)]
    stacked = np.stack([np.concatenate([c[name] for c in per_series])
                        for name in self._components], axis=1)  # [N_val, k]
    if kind == "sum":
      # Each model's components have their own scales: with per_series each series is
      # standardized with its own validation windows ([S, k]), otherwise all pooled ([1, k]).
      groups = ([np.stack([c[name] for name in self._components], axis=1) for c in per_series]
                if self.config.per_series else [stacked])
      floor = self.config.composition_config.min_scale
      self._composition = {
          "mean": np.stack([g.mean(axis=0) for g in groups]),
          "std": np.stack([np.maximum(g.std(axis=0), floor) for g in groups])}
      return
    labels = np.concatenate([window_labels(y, self.config.window, self.config.eval_stride)
                             for y in self._val_labels])
    scalers = [composition_lib.MinMax.fit(stacked[:, j]) for j in range(stacked.shape[1])]
    lo = np.array([s.lo for s in scalers])
    scale = np.array([s.scale for s in scalers])
    scaled = (stacked - lo) / scale
    comp = self.config.composition_config
    fitted: dict[str, np.ndarray] = {"lo": lo, "scale": scale}
    if kind == "grid":
      if scaled.shape[1] == 3:
        params = composition_lib.fit_linear_grid3(*scaled.T, labels, num=comp.num_gamma,
                                                  num_tau=comp.num_tau)
        lam, gam = params["lambda"], params["gamma"]
        weights = [max(1.0 - lam - gam, 0.0), lam, gam]
      else:
        params = composition_lib.fit_linear_grid(*scaled.T, labels, num_lambda=comp.num_lambda,
                                                 num_tau=comp.num_tau)
        weights = [1.0 - params["lambda"], params["lambda"]]
      fitted.update(weights=np.array(weights), tau=np.array([params["tau"]]),
                    f1=np.array([params["f1"]]))
    else:
      svm = composition_lib.fit_svm(scaled, labels, C=comp.svm_C)
      fitted.update(svm_arrays(svm.svc))
    self._composition = fitted

  def _score_normalized(self, x, k):
    comps, starts = self._window_components(x, k)
    return base.window_scores_to_steps(self._compose(comps, k), starts, self.config.window,
                                       x.shape[0])

  # ------------------------------------------------------------------ state
  def _state(self) -> dict[str, Any]:
    state: dict[str, Any] = {"min": self._lo, "span": self._span,
                             "gen": {k: v for k, v in self._gen.items() if v}}
    disc = {k: v for k, v in self._disc.items() if v}
    if disc:
      state["disc"] = disc
    if self._latent_mode is not None:
      state["latent_mode"] = np.asarray(self._latent_mode, np.float64)
    if self._composition:
      state["composition"] = dict(self._composition)
    return state

  def _extra_json(self) -> dict[str, Any]:
    extra: dict[str, Any] = {"step": int(self.step)}
    if self.config.composition == "grid":
      extra["grid"] = {"weights": self._composition["weights"].tolist(),
                       "tau": float(self._composition["tau"][0]),
                       "validation_f1": float(self._composition["f1"][0])}
    return extra

  def _restore_extra(self, extra) -> None:
    self.step = int(extra.get("step", 0))

  def _set_state(self, state) -> None:
    vcfg = self._vcfg
    sample = jax.ShapeDtypeStruct((1, self.config.window, self.num_features), jnp.float32)

    def create(x):
      if not self.config.per_series:
        return vaegan_train.create_state(vcfg, x, jax.random.key(0))
      keys = jax.random.split(jax.random.key(0), self.num_series)
      return jax.vmap(lambda k: vaegan_train.create_state(vcfg, x, k))(keys)

    abstract = jax.eval_shape(create, sample)
    expected = {"gen": {"params": abstract.gen.params, "batch_stats": abstract.gen.batch_stats}}
    got = {"gen": {"params": state["gen"]["params"],
                   "batch_stats": state["gen"].get("batch_stats", {})}}
    if vcfg.adversarial:
      expected["disc"] = {"params": abstract.disc.params,
                          "batch_stats": abstract.disc.batch_stats}
      disc = state.get("disc", {})
      got["disc"] = {"params": disc.get("params", {}), "batch_stats": disc.get("batch_stats", {})}

    def shapes(tree):
      return jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), tree)

    if shapes(expected) != shapes(got):
      raise ValueError("the saved β-VAEGAN variables do not match the model this config builds")
    self._gen = got["gen"]
    self._disc = got.get("disc", {"params": {}, "batch_stats": {}})
    self._lo = np.asarray(state["min"], np.float64)
    self._span = np.asarray(state["span"], np.float64)
    self._latent_mode = (np.asarray(state["latent_mode"], np.float64).reshape(-1)
                         if "latent_mode" in state else None)
    self._composition = {k: np.asarray(v, np.float64)
                         for k, v in state.get("composition", {}).items()}
    if self.config.composition == "sum":  # saved before per_series: [k] -> [1, k]
      for name in ("mean", "std"):
        self._composition[name] = self._composition[name].reshape(
            -1, len(self._components))
    self._build_scorer()
