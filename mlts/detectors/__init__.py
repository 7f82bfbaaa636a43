"""Detectors with one estimator interface: `create(name).fit(train).score(x)`.

  from mlts import detectors
  detectors.available()                       # sorted names
  det = detectors.create("knn_window", window=128)
  det = detectors.create("recommended")       # the leaderboards' pick (README "Results")
  det.fit(train)                              # [T, C] / [T] array or a list (normal data)
  det.score(x); det.predict(x)                # float64 [T] / int8 [T] (lists in -> lists out)
  det.save("my_detector"); detectors.load("my_detector")

See `mlts.detectors.base` for the protocol (validation split, per-series
normalization, thresholds fit on validation scores only) and
`mlts.detectors.baselines` / `mlts.detectors.reconstruction` for the detectors.
"""

from __future__ import annotations

import importlib

from mlts import estimators
from mlts.detectors.base import Detector, NotFittedError  # noqa: F401

# name -> (module under mlts.detectors, class name); imported when first used.
REGISTRY = {
    "abs_value": ("baselines", "AbsValue"),
    "range_deviation": ("baselines", "RangeDeviation"),
    "knn_window": ("baselines", "KnnWindow"),
    "pca_window": ("baselines", "PcaWindow"),
    "kmeans_window": ("baselines", "KMeansWindow"),
    "iforest_window": ("baselines", "IForestWindow"),
    "conv_ae": ("reconstruction", "ReconstructionDetector"),
    "lstm_ae": ("reconstruction", "ReconstructionDetector"),
    "dlinear": ("reconstruction", "ReconstructionDetector"),
    "modern_tcn": ("reconstruction", "ReconstructionDetector"),
    "transformer": ("reconstruction", "ReconstructionDetector"),
    "mlp_ae": ("reconstruction", "ReconstructionDetector"),
    "vaegan": ("vaegan", "VaeganDetector"),
    "diffusion": ("diffusion", "DiffusionDetector"),
}


# The detector README recommends, as (registered name, config overrides): one MLP
# autoencoder per channel (trained together, vmapped), scored by each window's own
# reconstruction error. Chosen from the quick leaderboards (configs/leaderboard_{smap,msl}.py,
# method 'mlp_ae_pc_window_error'): the best mean per-channel VUS-PR over SMAP and MSL;
# README "Results" lists the settings that were chosen by looking at those results.
RECOMMENDED = ("mlp_ae", {
    "per_series": True, "score": "window_error", "window": 64, "stride": 2, "eval_stride": 4,
    "model": {"hidden": (64,), "latent": 16},
    "training": {"num_steps": 1000, "batch_size": 32, "checkpoint_every": 1000,
                 "log_every": 250, "eval_every": 0},
})


def available() -> list[str]:
  """The detector names, sorted ('recommended' names the detector of `RECOMMENDED`)."""
  return sorted([*REGISTRY, "recommended"])


def _merged(settings: dict, overrides: dict) -> dict:
  """`overrides` on top of `settings`, sections (dicts) merged field by field."""
  out = dict(settings)
  for key, value in overrides.items():
    if isinstance(value, dict) and isinstance(out.get(key), dict):
      out[key] = _merged(out[key], value)
    else:
      out[key] = value
  return out


def detector_class(name: str) -> type[Detector]:
  """The class implementing `name`.

  Raises:
    ValueError: an unknown name (the known ones are listed).
  """
  if name == "recommended":
    name = RECOMMENDED[0]
  if name not in REGISTRY:
    raise ValueError(f"unknown detector {name!r}; available: {', '.join(available())}")
  module, cls = REGISTRY[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), cls).named(name)


def default_config(name: str):
  """The config of detector `name` with its defaults (a ConfigDict)."""
  if name == "recommended":
    return create("recommended").config
  return detector_class(name).default_config()


def create(name: str, **overrides) -> Detector:
  """A new, unfitted detector `name` with config fields overridden.

  Args:
    name: one of `available()`.
    **overrides: fields of that detector's config (`default_config(name)`); a
      section takes a dict, e.g. `training={'num_steps': 500}`.

  Raises:
    ValueError: an unknown name or field (the valid ones are listed), or a
      value the detector refuses (named).
  """
  if name == "recommended":  # the recommended detector's settings, then the caller's
    return create(RECOMMENDED[0], **_merged(RECOMMENDED[1], overrides))
  cls = detector_class(name)
  return cls(estimators.apply_overrides(cls.default_config(), overrides, where=name))


def load(directory: str, *, allow_config_mismatch: bool = False) -> Detector:
  """Loads a detector written by `Detector.save` (JSON + Orbax arrays; nothing is unpickled).

  Args:
    directory: the saved detector.
    allow_config_mismatch: load even when the saved config's fields differ
      from this version's `default_config(name)` (fields added or removed).

  Raises:
    FileNotFoundError: no detector.json in `directory`.
    ValueError: not a detector directory, another format version, an unknown
      detector, a config whose fields differ from this version's (listed), or
      arrays that are missing, corrupt or do not match (the path is named).
  """
  from mlts.detectors import base
  path, meta = estimators.read_meta(directory, base.CONFIG_FILE, fmt=base.FORMAT,
                                    version=base.FORMAT_VERSION, what="detector")
  cls = detector_class(meta.get("name", "?"))
  config = estimators.saved_config(cls.default_config(), meta.get("config", {}), path=path,
                                   name=meta["name"], what="detector",
                                   allow_mismatch=allow_config_mismatch)
  detector = cls(config)
  estimators.restore_into(directory, path, lambda arrays: detector._restore(meta, arrays))
  return detector
