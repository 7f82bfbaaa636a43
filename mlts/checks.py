"""Input validation at the library's boundary.

Every public entry point that takes user arrays calls these first, so that bad
input fails with a clear message that names where the data came from (a file, a
channel, an argument) before anything is compiled or trained.
"""

from __future__ import annotations

import numpy as np


def finite_array(x, *, name: str, ndim: int | tuple[int, ...] | None = None,
                 allow_empty: bool = False) -> np.ndarray:
  """Returns `x` as a floating NumPy array after checking rank and finiteness.

  Args:
    x: array-like.
    name: what `x` is, for the error message (a file path, 'labels', ...).
    ndim: required rank, or a tuple of allowed ranks; None accepts any rank.
    allow_empty: whether a zero-size array is acceptable.

  Returns:
    `np.asarray(x)` with a floating dtype (integers are converted to float64).

  Raises:
    ValueError: wrong rank, empty, non-numeric, or holding NaN/inf (the message
      gives the count and the first offending index).
  """
  arr = np.asarray(x)
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
  if ndim is not None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
      raise ValueError(
          f"{name}: expected rank {' or '.join(map(str, allowed))}, got shape {arr.shape}")
  if arr.size == 0 and not allow_empty:
    raise ValueError(f"{name}: empty array (shape {arr.shape})")
  if not np.issubdtype(arr.dtype, np.floating):
    arr = arr.astype(np.float64)
  bad = ~np.isfinite(arr)
  if bad.any():
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{name}: {int(bad.sum())} non-finite value(s) (NaN/inf); first at index {first}")
  return arr


def binary_vector(x, *, name: str) -> np.ndarray:
  """Returns a 1-D {0,1} vector as int8 after checking rank and values.

  Accepts any integer, bool or float dtype that holds only 0 and 1.

  Raises:
    ValueError: not 1-D, empty, or holding a value other than 0 and 1.
  """
  arr = np.asarray(x)
  if arr.ndim != 1:
    raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
  if arr.size == 0:
    raise ValueError(f"{name}: empty array")
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
    raise ValueError(f"{name}: expected numeric 0/1 values, got dtype {arr.dtype}")
  ok = (arr == 0) | (arr == 1)
  if not ok.all():
    first = int(np.argmax(~ok))
    raise ValueError(
        f"{name}: values must be 0 or 1; found {arr[first]!r} at index {first}")
  return arr.astype(np.int8)


def same_length(a: np.ndarray, b: np.ndarray, *, names: tuple[str, str]) -> None:
  """Raises ValueError if the first axes of `a` and `b` differ."""
  if len(a) != len(b):
    raise ValueError(
        f"{names[0]} has length {len(a)} but {names[1]} has length {len(b)}; they must match")


def config_int(section, field: str, *, where: str, minimum: int = 1) -> int:
  """`section[field]` as an int >= minimum, or ValueError naming `where.field`, value and rule."""
  value = section[field]
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{where}.{field} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def config_float(section, field: str, *, where: str, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
  """`section[field]` as a finite float in the given range, or ValueError naming the field.

  `low` / `high` are the bounds (None: unbounded); `*_open` excludes the bound.
  """
  value = section[field]
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
        and np.isfinite(value))
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value < high if high_open else value <= high
  if not ok:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    rule = f"{left}{lo}, {hi}{right}"
    raise ValueError(f"{where}.{field} must be a finite number in {rule}, got {value!r}")
  return float(value)


def config_choice(section, field: str, allowed, *, where: str) -> str:
  """`section[field]` if it is one of `allowed`, or ValueError listing them."""
  value = section[field]
  if value not in tuple(allowed):
    raise ValueError(f"{where}.{field} must be one of {tuple(allowed)}, got {value!r}")
  return value
