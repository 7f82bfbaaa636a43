"""Data protocols of the β-VAEGAN experiments (papers/001 §IV, the issue's §3).

Classification sets (Wafer, ECG200), one series = one sample:

* normal = UCR class 1 -> label 0, abnormal = class −1 -> label 1;
* series resampled to the paper's length 160 by linear interpolation (the
  paper upsamples MITBIH from 152 the same way; ECG200 has 96 steps);
* each series min–max scaled to [0, 1] on its own (BeatGAN's per-sample
  normalization, here to the sigmoid's range);
* `ucr_folds`: per fold, `train_fraction` (85 %) of the normal series train the
  model; the remaining normal and ALL abnormal series are split 50/50,
  stratified, into a labelled validation split (fits every composition) and
  the test split (reported). Folds are independent seeded shuffles (the
  paper's "5-fold cross-validation" cannot be a partition with 85 % train).

Wafer ships as the UCR TRAIN file only (1000 series, 903 normal, 97 abnormal);
ECG200 is its TRAIN and TEST files together (200 series, 133 / 67).

Telemetry (SMAP, MSL): `mlts.data.telemetry.nasa_windows`.
"""

from __future__ import annotations

import numpy as np

from mlts import checks
from mlts.data import ucr

UCR_SETS = ("Wafer", "ECG200")


def resample(x, length: int) -> np.ndarray:
  """Linear interpolation of each row to `length` points over the same span.

  Args:
    x: [N, L0] series.
    length: new length (>= 2).

  Returns:
    [N, length] float64; the first and last points are kept exactly.
  """
  x = checks.finite_array(x, name="series to resample", ndim=2).astype(np.float64)
  if length < 2 or x.shape[1] < 2:
    raise ValueError(f"resampling needs >= 2 points on both sides, got {x.shape[1]} -> {length}")
  pos = np.linspace(0.0, x.shape[1] - 1, length)
  left = np.minimum(np.floor(pos).astype(np.int64), x.shape[1] - 2)
  frac = pos - left
  return x[:, left] * (1.0 - frac) + x[:, left + 1] * frac


def minmax_rows(x) -> np.ndarray:
  """Scales each row [N, ...] to [0, 1] by its own min and max (a constant row -> 0)."""
  x = np.asarray(x, dtype=np.float64)
  flat = x.reshape(x.shape[0], -1)
  lo, hi = flat.min(axis=1), flat.max(axis=1)
  span = np.where(hi > lo, hi - lo, 1.0)
  return ((flat - lo[:, None]) / span[:, None]).reshape(x.shape)


def load_ucr_set(name: str, length: int = 160) -> tuple[np.ndarray, np.ndarray]:
  """A classification set as windows and binary labels.

  Args:
    name: 'Wafer' (TRAIN file only) or 'ECG200' (TRAIN + TEST).
    length: series length after resampling.

  Returns:
    (windows [N, length, 1] float32 in [0, 1], labels [N] int8, 1 = abnormal).
  """
  if name not in UCR_SETS:
    raise ValueError(f"unknown β-VAEGAN dataset {name!r}; expected one of {UCR_SETS}")
  splits = ["train"] if name == "Wafer" else ["train", "test"]
  parts = [ucr.load_ucr(name, s) for s in splits]
  series = np.concatenate([p[0] for p in parts])
  classes = np.concatenate([p[1] for p in parts])
  labels = (classes == -1).astype(np.int8)
  x = minmax_rows(resample(series, length))
  return x[:, :, None].astype(np.float32), labels


def ucr_folds(labels, *, num_folds: int = 5, train_fraction: float = 0.85,
              seed: int = 0) -> list[dict[str, np.ndarray]]:
  """The paper's splits: train on normals only; val/test stratified halves of the rest.

  Args:
    labels: [N] in {0, 1} (1 = abnormal).
    num_folds: number of independent shuffles.
    train_fraction: fraction of the normal samples in the training split.
    seed: fold k uses the generator seeded with (seed, k).

  Returns:
    A list of {'train', 'val', 'test'} sorted, pairwise disjoint index arrays
    covering all samples; 'train' holds normals only, 'val' and 'test' both
    classes with counts differing by at most one per class.
  """
  y = checks.binary_vector(labels, name="labels")
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
  normal, abnormal = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
  num_train = int(round(train_fraction * normal.size))
  if abnormal.size < 2 or normal.size - num_train < 2:
    raise ValueError(
        f"need >= 2 abnormal and >= 2 held-out normal samples for a validation and a test "
        f"split, got {abnormal.size} abnormal and {normal.size - num_train} held-out normal")
  folds = []
  for k in range(num_folds):
    rng = np.random.default_rng([seed, k])
    normal_perm = rng.permutation(normal)
    abnormal_perm = rng.permutation(abnormal)
    rest_normal = normal_perm[num_train:]
    half_n, half_a = rest_normal.size // 2, abnormal_perm.size // 2
    folds.append({
        "train": np.sort(normal_perm[:num_train]),
        "val": np.sort(np.concatenate([rest_normal[:half_n], abnormal_perm[:half_a]])),
        "test": np.sort(np.concatenate([rest_normal[half_n:], abnormal_perm[half_a:]])),
    })
  return folds
