"""Detectors with one estimator interface: `create(name).fit(train).score(x)`.

  from mlts import detectors
  detectors.available()                       # sorted names
  det = detectors.create("knn_window", window=128)
  det.fit(train)                              # [T, C] / [T] array or a list (normal data)
  det.score(x); det.predict(x)                # float64 [T] / int8 [T] (lists in -> lists out)
  det.save("my_detector"); detectors.load("my_detector")

See `mlts.detectors.base` for the protocol (validation split, per-series
normalization, thresholds fit on validation scores only) and
`mlts.detectors.baselines` / `mlts.detectors.reconstruction` for the detectors.
"""

from __future__ import annotations

import importlib
import json
import os

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
    "vaegan": ("vaegan", "VaeganDetector"),
    "diffusion": ("diffusion", "DiffusionDetector"),
}


def available() -> list[str]:
  """The detector names, sorted."""
  return sorted(REGISTRY)


def detector_class(name: str) -> type[Detector]:
  """The class implementing `name`.

  Raises:
    ValueError: an unknown name (the known ones are listed).
  """
  if name not in REGISTRY:
    raise ValueError(f"unknown detector {name!r}; available: {', '.join(available())}")
  module, cls = REGISTRY[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), cls).named(name)


def default_config(name: str):
  """The config of detector `name` with its defaults (a ConfigDict)."""
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
  from mlts.detectors import base
  cls = detector_class(name)
  config = base.apply_overrides(cls.default_config(), overrides, where=name)
  return cls(config)


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
      arrays that are corrupt or do not match (the path is named).
  """
  from mlts import results
  from mlts.detectors import base
  path = os.path.join(directory, base.CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {directory} is not a saved detector "
                            "(Detector.save writes detector.json and arrays/)")
  try:
    with open(path) as f:
      meta = json.load(f)
  except json.JSONDecodeError as err:
    raise ValueError(f"{path} is not valid JSON ({err})") from err
  if not isinstance(meta, dict) or meta.get("format") != base.FORMAT:
    raise ValueError(f"{path} is not an mlts detector (format {meta.get('format')!r})"
                     if isinstance(meta, dict) else f"{path} is not an mlts detector")
  if meta.get("format_version") != base.FORMAT_VERSION:
    raise ValueError(f"{path}: format version {meta.get('format_version')} is not "
                     f"{base.FORMAT_VERSION}, the one this mlts reads")
  cls = detector_class(meta["name"])
  config = cls.default_config()
  saved_fields = set(results.flatten(meta["config"]))
  known_fields = set(results.flatten(json.loads(config.to_json_best_effort())))
  added, removed = sorted(known_fields - saved_fields), sorted(saved_fields - known_fields)
  if (added or removed) and not allow_config_mismatch:
    raise ValueError(
        f"{path} was written with another version of the {meta['name']!r} config: fields "
        f"missing from it {added or 'none'}, fields this version does not have "
        f"{removed or 'none'}. Pass allow_config_mismatch=True to load it with this "
        "version's defaults for the missing fields, or refit the detector")
  flat_saved = results.flatten(meta["config"])
  _set_flat(config, {k: v for k, v in flat_saved.items() if k in known_fields})
  detector = cls(config)
  arrays_path = os.path.join(directory, base.ARRAYS_DIR)
  try:
    import orbax.checkpoint as ocp
    checkpointer = ocp.StandardCheckpointer()
    arrays = checkpointer.restore(os.path.abspath(arrays_path))
    checkpointer.close()
  except Exception as err:  # orbax raises many types; all mean "cannot read these arrays"
    raise ValueError(f"{arrays_path} cannot be read ({type(err).__name__}: {err})") from err
  try:
    detector._restore(meta, arrays)
  except (KeyError, ValueError, TypeError) as err:
    raise ValueError(f"{arrays_path} does not match {path} ({type(err).__name__}: {err})"
                     ) from err
  return detector


def _set_flat(config, flat: dict) -> None:
  """Sets dotted fields of a ConfigDict from JSON values (lists back to tuples)."""
  for key, value in flat.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    current = node[leaf]
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(value)
    if isinstance(current, dict) or hasattr(current, "keys"):
      continue  # an empty section
    node[leaf] = value
