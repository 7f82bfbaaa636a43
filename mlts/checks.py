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
