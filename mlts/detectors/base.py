"""The estimator interface of every detector: fit on normal series, score, predict, save, load.

A `Detector` owns what the detector study does around a model, once:

* input checks at the boundary (rank, NaN/inf, empty series, the feature count
  of fit vs score, score before fit), with messages naming the argument;
* the protocol: each training series is split in time (the last
  `val_fraction` is validation, held out of fitting) unless `validation` is
  given, and normalized with the statistics of its own fit part;
* calibration on validation scores only (`mlts.evaluation.calibrate`): a
  per-series threshold (and optional score normalization), never test labels;
* save / load without unpickling: arrays through Orbax, everything else
  (config, calibration, shapes) as JSON.

Subclasses implement `_fit_model(fit_parts, val_parts)`, `_score_normalized(x, k)` and
the array state (`_state` / `_set_state`); see `mlts.detectors.baselines`.

Which statistics a series is scored with: the detector is fit on S series. A
list of S series scores series k with the normalization and threshold of
training series k (the benchmark protocol); with S = 1 any series uses those
of the one training series; otherwise pass `series=k`.
"""

from __future__ import annotations

import abc
import json
from typing import Any

import ml_collections
import numpy as np

from mlts import checks, estimators, evaluation, thresholds
from mlts.data import transforms

FORMAT = "mlts.detector"
FORMAT_VERSION = 1
CONFIG_FILE = "detector.json"


class NotFittedError(ValueError, AttributeError):
  """`score` / `predict` / `save` called before `fit` (as scikit-learn's)."""


def common_config() -> ml_collections.ConfigDict:
  """The fields every detector has: the protocol and the validation calibration."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # root seed of everything random in fit
  config.val_fraction = 0.2  # last fraction of each training series held out as validation
  config.normalization = "zscore"  # per-series statistics of the fit part: zscore | minmax | none
  # quantile | sigma (mean + k std) of validation scores, or 'dynamic': telemanom's
  # label-free rule on the scored series itself (mlts.thresholds, settings `dynamic`)
  config.threshold = "quantile"
  config.threshold_quantile = 0.99  # rule 'quantile'
  config.threshold_sigma = 3.0  # rule 'sigma'
  config.dynamic = thresholds.default_config()  # rule 'dynamic'
  config.score_normalization = "none"  # scores as they are | 'validation' mean/std per series
  config.min_score_scale = 1e-6  # floor of the validation score std
  return config


def validate_common(config: ml_collections.ConfigDict) -> None:
  """Checks the common fields; raises ValueError naming the field, value and what is allowed."""
  if not 0.0 < config.val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in (0, 1), got {config.val_fraction}")
  if config.normalization not in transforms.METHODS:
    raise ValueError(f"normalization must be one of {transforms.METHODS}, "
                     f"got {config.normalization!r}")
  if config.threshold not in evaluation.THRESHOLDS:
    raise ValueError(f"threshold must be one of {evaluation.THRESHOLDS}, "
                     f"got {config.threshold!r}")
  thresholds.validate_config(config.dynamic, where="dynamic")
  if not 0.0 < config.threshold_quantile < 1.0:
    raise ValueError(f"threshold_quantile must be in (0, 1), got {config.threshold_quantile}")
  if config.score_normalization not in ("none", "validation"):
    raise ValueError("score_normalization must be 'none' or 'validation', got "
                     f"{config.score_normalization!r}")


def as_series_list(x, *, name: str) -> tuple[list[np.ndarray], bool]:
  """Checks one series ([T, C] or [T]) or a list of them; returns ([T, C] float64 list, was_list).

  Raises:
    ValueError: an empty list, a series of the wrong rank, empty, non-numeric or
      holding NaN/inf (named `name[k]` for the k-th series of a list).
  """
  was_list = isinstance(x, (list, tuple))
  items = list(x) if was_list else [x]
  if not items:
    raise ValueError(f"{name}: an empty list; give at least one series")
  out = []
  for k, item in enumerate(items):
    label = f"{name}[{k}]" if was_list else name
    arr = checks.finite_array(item, name=label, ndim=(1, 2)).astype(np.float64)
    out.append(arr[:, None] if arr.ndim == 1 else arr)
  return out, was_list


class Detector(abc.ABC):
  """Base class: the protocol around a model (see the module docstring).

  Attributes:
    name: the registry name.
    config: the detector's ConfigDict (common fields + its own).
  """

  name = "detector"
  fit_options: tuple[str, ...] = ()  # extra keywords `fit` accepts

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.validate_config(config)
    self._fitted = False
    self._shift = self._scale = None  # [S, C] fit-part statistics per training series
    self._calibration: list[evaluation.ScoreCalibration] = []
    self.num_features: int | None = None

  # ------------------------------------------------------------------ to override
  @classmethod
  def named(cls, name: str) -> type["Detector"]:
    """The class registered as `name` (a family such as the backbones binds its name)."""
    del name
    return cls

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    return common_config()

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    validate_common(config)

  @abc.abstractmethod
  def _fit_model(self, fit_parts: list[np.ndarray], val_parts: list[np.ndarray],
                 **options) -> None:
    """Fits the model on normalized fit parts (list of [T_k, C]).

    `val_parts` (normalized validation parts) may only guide training (a
    validation loss), never test data; `options` are `fit`'s extra keywords.
    """

  def _prepare_scoring(self, val_parts: list[np.ndarray]) -> None:
    """After `_fit_model`, before calibration: per-series state from validation (optional)."""
    return None

  @abc.abstractmethod
  def _score_normalized(self, x: np.ndarray, k: int) -> np.ndarray:
    """Raw per-step scores [T] of one normalized series [T, C], with the state of series k."""

  # ------------------------------------------------------------------ chunked scoring
  @property
  def score_chunk(self) -> int:
    """Series longer than this many steps are scored chunk by chunk; 0 = in one piece.

    Chunked scores equal one-piece scores (to float rounding) for detectors whose
    scores are window-local (`_score_grid`); peak memory then depends on the chunk,
    not on the series length. An execution setting, not part of the saved model.
    """
    return self._score_chunk

  @score_chunk.setter
  def score_chunk(self, steps: int) -> None:
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
      raise ValueError(f"score_chunk must be an integer >= 0 (0 = no chunking), got {steps!r}")
    self._score_chunk = int(steps)

  _score_chunk = 1 << 17

  def _score_grid(self) -> tuple[int, int] | None:
    """(window, stride) if scores are window-local, else None (scored in one piece).

    Window-local: the per-step quantities of `_local_parts` at step t depend only
    on the windows of the grid 0, stride, 2 stride, ... (plus the one aligned to
    the series end) that cover t, so any slice that holds those windows gives the
    same values; what depends on the past is left to `_finish`, which carries a
    state from chunk to chunk.
    """
    return None

  def _local_parts(self, x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Window-local per-step quantities of a normalized slice x [n, C], each [n, ...]."""
    return {"score": self._score_normalized(x, k)}

  def _finish(self, parts: dict[str, np.ndarray], k: int, state) -> tuple[np.ndarray, Any]:
    """Raw scores [m] of one chunk from its local parts, and the state for the next chunk."""
    return parts["score"], state

  def _score_series(self, x: np.ndarray, k: int) -> np.ndarray:
    """Raw per-step scores of a normalized series; in chunks when it is long (same result).

    Chunk [a, b) is computed from the slice x[lo, hi) that holds every grid
    window covering it (lo the first grid start after a − window; hi the end of
    the last grid window starting before b, or the series end when the
    end-aligned window reaches into the chunk), so the windows, the network's
    inputs and the aggregation are those of the whole series; the slice's parts
    are cut to [a, b) and finished in order. Memory: O(chunk + window) windows,
    whatever T.
    """
    chunk = self.score_chunk
    grid = self._score_grid()
    length = x.shape[0]
    if not chunk or grid is None or length <= chunk or length < grid[0]:
      return self._score_normalized(x, k)
    window, stride = grid
    out = np.empty(length, np.float64)
    state = None
    for a in range(0, length, chunk):  # chunks, not time steps
      b = min(a + chunk, length)
      lo = max(0, -(-(a - window + 1) // stride) * stride)
      hi = ((b - 1) // stride) * stride + window
      if hi >= length or length - window < b:  # the end-aligned window is needed
        hi = length
      parts = {name: v[a - lo:b - lo] for name, v in self._local_parts(x[lo:hi], k).items()}
      out[a:b], state = self._finish(parts, k, state)
    return out

  def _state(self) -> dict[str, Any]:
    """The model's arrays (a pytree of non-empty NumPy arrays) for Orbax."""
    return {}

  def _set_state(self, state: dict[str, Any]) -> None:
    """Restores what `_state` returned."""
    return None

  # ------------------------------------------------------------------ the interface
  @property
  def num_series(self) -> int:
    return 0 if self._shift is None else int(self._shift.shape[0])

  def fit(self, train, *, validation=None, **options) -> "Detector":
    """Fits on normal data.

    Args:
      train: [T, C] or [T] array, or a list of them (one series each).
      validation: the same form and count; default = the last `val_fraction`
        of each training series (then held out of fitting).
      **options: detector-specific (learned detectors: `workdir` for the
        checkpoints and logs).

    Returns:
      self.
    """
    unknown = sorted(set(options) - set(self.fit_options))
    if unknown:
      raise ValueError(f"{self.name}.fit() got unknown keyword(s) {unknown}; it accepts "
                       f"train, validation{''.join(', ' + o for o in self.fit_options)}")
    series, _ = as_series_list(train, name="train")
    widths = {s.shape[1] for s in series}
    if len(widths) > 1:
      raise ValueError(f"train: every series needs the same number of features, got {widths}")
    if validation is None:
      pairs = [transforms.split_train_val(s, self.config.val_fraction, name=f"train[{k}]")
               for k, s in enumerate(series)]
    else:
      val, _ = as_series_list(validation, name="validation")
      if len(val) != len(series):
        raise ValueError(f"validation: {len(val)} series for {len(series)} training series")
      for k, v in enumerate(val):
        if v.shape[1] != series[0].shape[1]:
          raise ValueError(f"validation[{k}] has {v.shape[1]} features, train has "
                           f"{series[0].shape[1]}")
      pairs = list(zip(series, val))
    norms = [transforms.fit_normalizer(fit, self.config.normalization, name=f"train[{k}]")
             for k, (fit, _) in enumerate(pairs)]
    self.num_features = series[0].shape[1]
    self._shift = np.stack([n.shift for n in norms]).astype(np.float64)
    self._scale = np.stack([n.scale for n in norms]).astype(np.float64)
    fit_parts = [self._normalize(fit, k) for k, (fit, _) in enumerate(pairs)]
    val_parts = [self._normalize(v, k) for k, (_, v) in enumerate(pairs)]
    self._fit_model(fit_parts, val_parts, **options)
    self._prepare_scoring(val_parts)
    self._calibration = [
        evaluation.calibrate(self._score_normalized(v, k), self.config,
                             name=f"{self.name} validation scores of series {k}")
        for k, v in enumerate(val_parts)]
    self._fitted = True
    return self

  def score(self, x, *, series: int | None = None):
    """Per-step anomaly scores (higher = more anomalous).

    Args:
      x: [T, C] or [T] array, or a list of them.
      series: score with the statistics of training series `series` (see the
        module docstring); default: matched by position.

    Returns:
      float64 [T] (a list of them for a list in).
    """
    items, was_list, index = self._check_input(x, series)
    out = self._scores(items, index)
    return out if was_list else out[0]

  def predict(self, x, *, series: int | None = None):
    """int8 [T] predictions: 1 where the score exceeds the validation threshold.

    With `threshold='dynamic'` the threshold is telemanom's, computed from the
    scores of each series passed in (no labels; `mlts.thresholds`).
    """
    items, was_list, index = self._check_input(x, series)
    if self.config.threshold == "dynamic":  # label-free, from the scored series itself
      out = [thresholds.dynamic_predict(s, self.config.dynamic)
             for s in self._scores(items, index)]
    else:
      out = [(s > self._calibration[k].threshold).astype(np.int8)
             for s, k in zip(self._scores(items, index), index)]
    return out if was_list else out[0]

  def _scores(self, items: list[np.ndarray], index: list[int]) -> list[np.ndarray]:
    return [self._calibration[k].normalize(self._score_series(self._normalize(s, k), k))
            for s, k in zip(items, index)]

  @property
  def thresholds(self) -> np.ndarray:
    """[S] the validation thresholds, one per training series (on the score scale)."""
    self._require_fitted("thresholds")
    return np.array([c.threshold for c in self._calibration])

  # ------------------------------------------------------------------ save / load
  def save(self, directory: str) -> str:
    """Writes everything needed to score later: detector.json + Orbax arrays.

    Returns:
      The directory.
    """
    self._require_fitted("save")
    import mlts
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "mlts_version": mlts.__version__,
        "name": self.name, "config": json.loads(self.config.to_json_best_effort()),
        "num_series": self.num_series, "num_features": self.num_features,
        "calibration": [{"center": c.center, "scale": c.scale, "threshold": c.threshold}
                        for c in self._calibration],
        "extra": self._extra_json(),
    }
    arrays = {"shift": self._shift, "scale": self._scale, "model": self._state()}
    return estimators.save(directory, CONFIG_FILE, meta, arrays)

  def _extra_json(self) -> dict[str, Any]:
    """JSON-ready facts beside the arrays (shapes needed to restore), for subclasses."""
    return {}

  def _restore(self, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    self.num_features = int(meta["num_features"])
    self._shift = np.asarray(arrays["shift"], np.float64)
    self._scale = np.asarray(arrays["scale"], np.float64)
    self._calibration = [evaluation.ScoreCalibration(**c) for c in meta["calibration"]]
    self._restore_extra(meta.get("extra", {}))
    self._set_state(arrays.get("model", {}))
    self._fitted = True

  def _restore_extra(self, extra: dict[str, Any]) -> None:
    """Reads `_extra_json`'s facts back (before `_set_state`)."""
    return None

  # ------------------------------------------------------------------ helpers
  def _require_fitted(self, what: str) -> None:
    if not self._fitted:
      raise NotFittedError(f"{self.name}: call fit(train) before {what}()")

  def _normalize(self, x: np.ndarray, k: int) -> np.ndarray:
    return (x - self._shift[k]) / self._scale[k]

  def _check_input(self, x, series):
    self._require_fitted("score")
    items, was_list = as_series_list(x, name="x")
    for j, s in enumerate(items):
      if s.shape[1] != self.num_features:
        label = f"x[{j}]" if was_list else "x"
        raise ValueError(f"{label} has {s.shape[1]} feature(s) but the detector was fit on "
                         f"{self.num_features}")
    if series is not None:
      if not 0 <= int(series) < self.num_series:
        raise ValueError(f"series={series}: the detector was fit on {self.num_series} series")
      index = [int(series)] * len(items)
    elif self.num_series == 1:
      index = [0] * len(items)
    elif was_list and len(items) == self.num_series:
      index = list(range(len(items)))
    else:
      raise ValueError(
          f"x: the detector was fit on {self.num_series} series, each with its own "
          "normalization and threshold; score a list of that many series (matched by "
          "position) or pass series=k")
    return items, was_list, index


def window_scores_to_steps(values: np.ndarray, starts: np.ndarray, window: int,
                           length: int) -> np.ndarray:
  """Per-window scores [N] -> per-step [length] means over the covering windows.

  `starts` come from `windows.sliding_windows(..., pad=True)`; padded steps
  (beyond `length`) are dropped.
  """
  from mlts.data import windows as windows_lib
  padded = max(length, window)
  per_step = np.broadcast_to(np.asarray(values, np.float64)[:, None], (values.shape[0], window))
  return windows_lib.aggregate(per_step, starts, padded)[:length]
