"""The interface of every generator: fit on windows, sample, impute, save, load.

A `Generator` owns what is common to the generative models, once:

* input checks at the boundary (rank 3, NaN/inf, empty, the window length L
  and feature count C of sample / impute against fit's, the mask's shape and
  values, `num` / `members` / `seed`, sample or impute before fit), with
  messages naming the argument;
* units: `fit` learns a per-feature min–max scaling of its windows to [0, 1]
  (over every window and step); the models work in [0, 1] (the diffusion
  model in [−1, 1] through `transforms.to_signed`) and every output is mapped
  back to the units of the data given to `fit`. A constant feature is
  modelled as 0 and always generated as its constant;
* imputation returns the observed entries exactly as given (only missing
  entries are generated; they may hold NaN/inf, which is never read);
* save / load without unpickling: arrays through Orbax, everything else
  (config, scaling, shapes) as JSON in `generator.json`.

Subclasses implement `_fit_model(x01, workdir)`, `_sample01(num, seed)`,
`_impute01(x01, known, seed, members)` and the array state (`_state` /
`_set_state`); see `mlts.generators.diffusion` and `mlts.generators.vaegan`.
"""

from __future__ import annotations

import abc
import json
import operator
import tempfile
from typing import Any

import jax
import ml_collections
import numpy as np

from mlts import checks, estimators
from mlts.data import transforms

FORMAT = "mlts.generator"
FORMAT_VERSION = 1
CONFIG_FILE = "generator.json"
MAX_SEED = 2 ** 32  # jax.random.key keeps 32 bits of the seed without x64
MIN_SCALE = 1e-12  # a feature whose fit range is below this is constant


class NotFittedError(ValueError, AttributeError):
  """`sample` / `impute` / `save` called before `fit` (as scikit-learn's)."""


def positive_int(value, *, name: str) -> int:
  """`value` as an int >= 1; raises ValueError naming `name` otherwise (bools refused)."""
  if isinstance(value, bool):
    raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
  try:
    out = operator.index(value)
  except TypeError:
    raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
  if out < 1:
    raise ValueError(f"{name} must be an integer >= 1, got {out}")
  return int(out)


def check_seed(seed) -> int:
  """`seed` as an int in [0, 2**32); raises ValueError otherwise."""
  if not isinstance(seed, bool):
    try:
      out = operator.index(seed)
    except TypeError:
      out = None
    if out is not None and 0 <= out < MAX_SEED:
      return int(out)
  raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def float_dtype(dtype) -> np.dtype:
  """The output dtype for input of `dtype`: float32 or float64 (integers -> float64)."""
  dtype = np.dtype(dtype)
  if np.issubdtype(dtype, np.floating):
    return np.dtype(np.result_type(dtype, np.float32))
  return np.dtype(np.float64)


def _numeric(x, *, name: str) -> np.ndarray:
  arr = np.asarray(x)
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
  if np.iscomplexobj(arr):
    raise ValueError(f"{name}: expected real values, got dtype {arr.dtype}")
  return arr


def check_mask(mask, shape: tuple[int, int, int]) -> np.ndarray:
  """A {0, 1} mask of rank 3 broadcastable to `shape`, as a bool array of `shape`.

  Raises:
    ValueError: not numeric, wrong rank, not broadcastable, or a value other than 0 and 1.
  """
  arr = _numeric(mask, name="mask")
  if arr.ndim != 3:
    raise ValueError(f"mask: expected rank 3 ([N, L, C] or broadcastable such as [N, L, 1]), "
                     f"got shape {arr.shape}")
  try:
    arr = np.broadcast_to(arr, shape)
  except ValueError:
    raise ValueError(f"mask: shape {arr.shape} does not broadcast to the windows' shape "
                     f"{shape}") from None
  ok = (arr == 0) | (arr == 1)
  if not ok.all():
    first = tuple(int(i) for i in np.argwhere(~ok)[0])
    raise ValueError(f"mask: values must be 0 (missing) or 1 (observed); found "
                     f"{arr[first].item()!r} at index {first}")
  return arr.astype(bool)


def check_training_batch(config: ml_collections.ConfigDict, num: int) -> None:
  """Raises ValueError unless `num` windows fill one `training.batch_size` batch.

  The batch must also split evenly over the devices (data parallel training).
  """
  from mlts import sharding
  batch = int(config.training.batch_size)
  devices = sharding.make_mesh().size
  if batch % devices:
    raise ValueError(f"training.batch_size={batch} is not divisible by the number of devices "
                     f"({devices}); choose a multiple of {devices}")
  if num < batch:
    raise ValueError(f"windows: {num} window(s) for a training batch of {batch}; give more "
                     "windows or lower training.batch_size")


def _strip_empty(tree: Any, path: str, empties: dict[str, Any]) -> Any:
  """`tree` (nested dicts of arrays) without zero-size arrays; those go to `empties`."""
  if isinstance(tree, dict):
    return {k: _strip_empty(v, f"{path}.{k}" if path else str(k), empties)
            for k, v in tree.items()}
  arr = np.asarray(tree)
  if arr.size == 0:
    empties[path] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return {}
  return arr


def _put_empty(tree: dict[str, Any], empties: dict[str, Any]) -> dict[str, Any]:
  """Puts the zero-size arrays recorded by `_strip_empty` back."""
  for path, spec in empties.items():
    node = tree
    *parents, leaf = path.split(".")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = np.zeros(tuple(spec["shape"]), np.dtype(spec["dtype"]))
  return tree


class Generator(abc.ABC):
  """Base class: checks, units and persistence around a generative model.

  Attributes:
    name: the registry name.
    config: the generator's ConfigDict.
    length: L of the fit windows (None before fit).
    num_features: C of the fit windows (None before fit).
  """

  name = "generator"

  def __init__(self, config: ml_collections.ConfigDict):
    self.validate_config(config)
    self.config = config
    self._fitted = False
    self.length: int | None = None
    self.num_features: int | None = None
    self.num_train: int | None = None
    self._dtype = np.dtype(np.float64)
    self._shift = self._scale = None  # [C] float64: x01 = (x - shift) / scale
    self._constant = None  # [C] bool: features constant in the fit windows

  # ------------------------------------------------------------------ to override
  @classmethod
  @abc.abstractmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    """The generator's config with its defaults."""

  @classmethod
  def validate_config(cls, config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming a field whose value cannot work."""
    return None

  def _check_windows(self, num: int, length: int, channels: int) -> None:
    """Raises ValueError when the model cannot train on `num` windows [length, channels].

    Called by `fit` before anything is written; messages name `windows` or the config field.
    """
    return None

  @abc.abstractmethod
  def _fit_model(self, x01: np.ndarray, workdir: str) -> None:
    """Trains on float32 windows [N, L, C] in [0, 1]; checkpoints and logs under `workdir`."""

  @abc.abstractmethod
  def _sample01(self, num: int, seed: int) -> np.ndarray:
    """[num, L, C] samples in [0, 1] units."""

  @abc.abstractmethod
  def _impute01(self, x01: np.ndarray, known: np.ndarray, seed: int,
                members: int) -> np.ndarray:
    """[members, N, L, C] imputations in [0, 1] units of float32 x01 [N, L, C].

    `known` is a float32 {0, 1} array [N, L, C]; missing entries of x01 hold 0.5.
    """

  def _state(self) -> dict[str, Any]:
    """The model's arrays (nested dicts of NumPy arrays) for Orbax."""
    return {}

  def _set_state(self, state: dict[str, Any]) -> None:
    """Restores what `_state` returned (after `_restore_extra`)."""
    return None

  def _extra_json(self) -> dict[str, Any]:
    """JSON-ready facts beside the arrays, for subclasses."""
    return {}

  def _restore_extra(self, extra: dict[str, Any]) -> None:
    """Reads `_extra_json`'s facts back (before `_set_state`)."""
    return None

  # ------------------------------------------------------------------ the interface
  def fit(self, windows, *, workdir: str | None = None) -> "Generator":
    """Fits the model on windows.

    Args:
      windows: [N, L, C] finite values in any units.
      workdir: directory of the training checkpoints and logs (a rerun with
        the same config and data resumes there; another config or other data
        stops with `mlts.results.ConfigMismatchError`). Default: a temporary
        directory, removed after fit.

    Returns:
      self.
    """
    x = checks.finite_array(windows, name="windows", ndim=3)
    n, length, channels = x.shape
    self._check_windows(n, length, channels)
    flat = x.reshape(-1, channels)
    norm = transforms.fit_normalizer(flat, "minmax", min_scale=MIN_SCALE, name="windows")
    shift, scale = norm.shift.astype(np.float64), norm.scale.astype(np.float64)
    constant = (flat.max(axis=0) - flat.min(axis=0)).astype(np.float64) < MIN_SCALE
    x01 = ((x.astype(np.float64) - shift) / scale).astype(np.float32)
    self._fitted = False
    if workdir is None:
      with tempfile.TemporaryDirectory(prefix="mlts_generator_") as tmp:
        self._fit_model(x01, tmp)
    else:
      from mlts import results
      run_config = ml_collections.ConfigDict(
          {"generator": self.name, "config": self.config.to_dict(),
           "data": {"shape": list(x.shape), "digest": _digest(x01)}})
      results.start_run(run_config, workdir)  # another config or other data stops here
      self._fit_model(x01, workdir)
    self.length, self.num_features, self.num_train = int(length), int(channels), int(n)
    self._dtype = float_dtype(x.dtype)
    self._shift, self._scale, self._constant = shift, scale, constant
    self._fitted = True
    return self

  def sample(self, num: int, *, seed: int = 0) -> np.ndarray:
    """Draws new windows.

    Args:
      num: number of windows (>= 1).
      seed: integer in [0, 2**32); the same seed gives the same windows.

    Returns:
      [num, L, C] windows in the units of the data given to `fit` (the fit
      data's float dtype; integers give float64).
    """
    self._require_fitted("sample")
    num = positive_int(num, name="num")
    seed = check_seed(seed)
    out = np.asarray(self._sample01(num, seed), np.float64)
    return self._to_units(out).astype(self._dtype)

  def impute(self, windows, mask, *, seed: int = 0, members: int = 1) -> np.ndarray:
    """Fills the missing entries of windows.

    Args:
      windows: [N, L, C] with the fit data's L and C; entries where `mask` is
        1 must be finite, the others are not read (NaN is fine there).
      mask: [N, L, C] or broadcastable (e.g. [N, L, 1]): 1 = observed, 0 = missing.
      seed: integer in [0, 2**32); the same seed gives the same imputations.
      members: ensemble size S (>= 1).

    Returns:
      [S, N, L, C] in the units of the data, equal to `windows` (exactly)
      where observed; dtype: the float dtype of `windows` (integers give float64).
    """
    self._require_fitted("impute")
    x = _numeric(windows, name="windows")
    if x.ndim != 3:
      raise ValueError(f"windows: expected rank 3 [N, L, C], got shape {x.shape}")
    if x.size == 0:
      raise ValueError(f"windows: empty array (shape {x.shape})")
    self._check_fit_shape(x.shape)
    known = check_mask(mask, x.shape)
    members = positive_int(members, name="members")
    seed = check_seed(seed)
    dtype = float_dtype(x.dtype)
    x = x.astype(dtype)
    bad = known & ~np.isfinite(x)
    if bad.any():
      first = tuple(int(i) for i in np.argwhere(bad)[0])
      raise ValueError(f"windows: {int(bad.sum())} non-finite observed value(s) (NaN/inf where "
                       f"mask is 1); first at index {first}")
    x01 = np.where(known, (x.astype(np.float64) - self._shift) / self._scale, 0.5)
    filled = np.asarray(self._impute01(x01.astype(np.float32), known.astype(np.float32), seed,
                                       members), np.float64)
    expected = (members,) + x.shape
    if filled.shape != expected:
      raise RuntimeError(f"{self.name}: imputation returned shape {filled.shape}, not {expected}")
    return np.where(known[None], x[None], self._to_units(filled).astype(dtype))

  # ------------------------------------------------------------------ save / load
  def save(self, directory: str) -> str:
    """Writes everything needed to sample and impute later: generator.json + Orbax arrays.

    Returns:
      The directory (absolute).
    """
    self._require_fitted("save")
    import mlts
    empties: dict[str, Any] = {}
    arrays = _strip_empty({"model": jax.device_get(self._state())}, "", empties)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "mlts_version": mlts.__version__,
        "name": self.name, "config": json.loads(self.config.to_json_best_effort()),
        "length": self.length, "num_features": self.num_features,
        "num_train": self.num_train, "dtype": str(self._dtype),
        "scaling": {"method": "minmax", "shift": self._shift.tolist(),
                    "scale": self._scale.tolist(), "constant": self._constant.tolist()},
        "empty_arrays": empties, "extra": self._extra_json(),
    }
    return estimators.save(directory, CONFIG_FILE, meta, arrays)

  def _restore(self, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Restores a saved generator from its JSON and its arrays (see `load`)."""
    self.length, self.num_features = int(meta["length"]), int(meta["num_features"])
    self.num_train = int(meta["num_train"])
    self._dtype = np.dtype(meta["dtype"])
    scaling = meta["scaling"]
    self._shift = np.asarray(scaling["shift"], np.float64).reshape(self.num_features)
    self._scale = np.asarray(scaling["scale"], np.float64).reshape(self.num_features)
    self._constant = np.asarray(scaling["constant"], bool).reshape(self.num_features)
    if not np.all(self._scale > 0):
      raise ValueError("scaling.scale must be positive")
    arrays = _put_empty(arrays, meta.get("empty_arrays", {}))
    self._restore_extra(meta.get("extra", {}))
    self._set_state(arrays["model"])
    self._fitted = True

  # ------------------------------------------------------------------ helpers
  @property
  def fitted(self) -> bool:
    return self._fitted

  def _require_fitted(self, what: str) -> None:
    if not self._fitted:
      raise NotFittedError(f"{self.name}: call fit(windows) before {what}()")

  def _check_fit_shape(self, shape: tuple[int, ...]) -> None:
    if shape[1] != self.length or shape[2] != self.num_features:
      raise ValueError(
          f"windows: shape {tuple(shape)} has length {shape[1]} and {shape[2]} feature(s), but "
          f"the generator was fit on windows of length {self.length} with "
          f"{self.num_features} feature(s)")

  def _to_units(self, x01: np.ndarray) -> np.ndarray:
    """[..., C] model units -> data units (a constant feature gives its constant)."""
    return np.where(self._constant, self._shift, x01 * self._scale + self._shift)

  def __repr__(self) -> str:
    shape = f"L={self.length}, C={self.num_features}" if self._fitted else "not fitted"
    return f"{type(self).__name__}({self.name!r}, {shape})"


def _digest(x: np.ndarray) -> str:
  """A short SHA-256 of an array's shape and bytes (identifies the fit data of a workdir)."""
  import hashlib
  h = hashlib.sha256(str(x.shape).encode())
  h.update(np.ascontiguousarray(x).tobytes())
  return h.hexdigest()[:16]
