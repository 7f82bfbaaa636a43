"""Label-free thresholds on the scores of the series being scored: telemanom's dynamic rule.

Hundman et al. (KDD 2018, "Detecting spacecraft anomalies using LSTMs and
nonparametric dynamic thresholding"), Section 3.2, read and re-implemented:

1. the scores are smoothed by an exponentially weighted moving average
   (`smoothing` = its span in steps; 1 = no smoothing);
2. candidate thresholds ε = μ + z·σ of the smoothed scores for z on a grid;
   each is rated by how much removing the points above it lowers the mean and
   the standard deviation, relative to how many points and sequences it flags:
   (Δμ/μ + Δσ/σ) / (|E_seq|² + |e_a|), where e_a are the flagged points (each
   widened by `buffer` steps on both sides) and E_seq their runs; candidates
   flagging half the series or more, or more than `max_sequences` runs, are
   refused; the best-rated ε is kept (none: nothing is flagged);
3. pruning: the maximum score of every flagged run is sorted in decreasing
   order, followed by the largest unflagged score; walking down that list, a
   run is kept while some later maximum still drops by more than `prune`
   (relative) from its predecessor, i.e. runs whose maxima do not stand out
   from the normal scores are un-flagged.

No labels and no other series are used: the threshold depends only on the
scores passed in. `window > 0` applies the rule to consecutive blocks of
`window` steps separately (telemanom's error windows); 0 uses the whole series.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from mlts import checks


def default_config() -> ml_collections.ConfigDict:
  """The dynamic threshold's settings (telemanom's published defaults where it has them)."""
  config = ml_collections.ConfigDict()
  config.smoothing = 1  # EWMA span of the scores (telemanom: 5 % of its error window); 1 = off
  config.z_min = 2.5  # smallest z of the grid
  config.z_max = 12.0  # largest z (telemanom's sd_lim)
  config.z_step = 0.5  # grid step
  config.buffer = 10  # steps added on both sides of each flagged point (telemanom: 100)
  config.max_sequences = 5  # candidates flagging more runs are refused
  config.max_fraction = 0.5  # candidates flagging this fraction of steps or more are refused
  config.prune = 0.13  # minimum relative drop between sorted run maxima (telemanom's p)
  config.window = 0  # block length of separate thresholds; 0 = the whole series
  return config


def validate_config(config: ml_collections.ConfigDict, *, where: str = "dynamic") -> None:
  """Checks the settings; ValueError names the field, the value and what is allowed."""
  checks.config_int(config, "smoothing", where=where, minimum=1)
  checks.config_int(config, "buffer", where=where, minimum=0)
  checks.config_int(config, "max_sequences", where=where, minimum=1)
  checks.config_int(config, "window", where=where, minimum=0)
  checks.config_float(config, "z_min", where=where, low=0.0)
  checks.config_float(config, "z_step", where=where, low=0.0, low_open=True)
  checks.config_float(config, "max_fraction", where=where, low=0.0, high=1.0, low_open=True)
  checks.config_float(config, "prune", where=where, low=0.0)
  if config.z_max < config.z_min:
    raise ValueError(f"{where}.z_max={config.z_max} is below {where}.z_min={config.z_min}")


@dataclasses.dataclass(frozen=True)
class DynamicThreshold:
  """The outcome on one block of scores.

  Attributes:
    epsilon: the chosen threshold on the smoothed scores (inf when none was chosen).
    z: its z (nan when none).
    flagged: [T] int8, the flagged steps after pruning.
  """
  epsilon: float
  z: float
  flagged: np.ndarray


def ewma(x: np.ndarray, span: int) -> np.ndarray:
  """Exponentially weighted moving average with α = 2 / (span + 1), bias-corrected.

  y_t = Σ_{i≤t} (1−α)^{t−i} x_i / Σ_{i≤t} (1−α)^{t−i} (pandas' `ewm(span).mean()`,
  adjust=True), computed by a cumulative sum in log-stable blocks.
  """
  x = np.asarray(x, np.float64)
  if span <= 1 or x.size == 0:
    return x.copy()
  decay = 1.0 - 2.0 / (span + 1.0)
  out = np.empty_like(x)
  # y_t = (decay * num_{t-1} + x_t) / (decay * den_{t-1} + 1): a linear recurrence,
  # solved per block of B steps with powers decay^0..decay^(B-1) (no overflow).
  block = max(1, min(x.size, int(np.floor(-30.0 / np.log(decay)))))
  num = den = 0.0
  for begin in range(0, x.size, block):  # blocks of steps, not single steps
    chunk = x[begin:begin + block]
    powers = decay ** np.arange(chunk.size)
    # num_t = decay^(t+1) num_prev + Σ_{i≤t} decay^(t−i) x_i
    inv = decay ** -np.arange(chunk.size)
    nums = powers * (np.cumsum(chunk * inv) + decay * num)
    dens = powers * (np.cumsum(inv) + decay * den)
    out[begin:begin + chunk.size] = nums / dens
    num, den = nums[-1], dens[-1]
  return out


def _runs(mask: np.ndarray) -> np.ndarray:
  """[R, 2] half-open [start, end) of the runs of True in a boolean vector."""
  padded = np.concatenate(([False], mask, [False]))
  edges = np.flatnonzero(padded[1:] != padded[:-1])
  return edges.reshape(-1, 2)


def _widen(mask: np.ndarray, buffer: int) -> np.ndarray:
  """Each True spread `buffer` steps to both sides (a binary dilation)."""
  if buffer == 0 or not mask.any():
    return mask.copy()
  counts = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
  idx = np.arange(mask.size)
  lo = np.maximum(idx - buffer, 0)
  hi = np.minimum(idx + buffer + 1, mask.size)
  return counts[hi] - counts[lo] > 0


def _choose(e: np.ndarray, config) -> tuple[float, float]:
  """(ε, z) maximizing telemanom's criterion on smoothed scores e [T]; (inf, nan) if none."""
  mean, std = float(e.mean()), float(e.std())
  if std <= 0 or mean == 0:
    return np.inf, np.nan
  best, best_eps, best_z = -np.inf, np.inf, np.nan
  for z in np.arange(config.z_min, config.z_max + 1e-9, config.z_step):  # a grid of ~20 z
    eps = mean + z * std
    above = e >= eps
    if not above.any() or above.all():
      continue
    flagged = _widen(above, config.buffer)
    num_flagged = int(flagged.sum())
    runs = _runs(flagged)
    if num_flagged >= config.max_fraction * e.size or len(runs) > config.max_sequences:
      continue
    below = e[~above]
    criterion = ((mean - below.mean()) / mean + (std - below.std()) / std) / (
        len(runs) ** 2 + num_flagged)
    if criterion > best:
      best, best_eps, best_z = criterion, eps, float(z)
  return best_eps, best_z


def _prune(e: np.ndarray, flagged: np.ndarray, prune: float) -> np.ndarray:
  """Un-flags the runs whose maxima do not stand out (step 3 of the module docstring)."""
  runs = _runs(flagged)
  if len(runs) == 0:
    return flagged
  maxima = np.array([e[a:b].max() for a, b in runs])  # one per run (at most max_sequences)
  order = np.argsort(-maxima, kind="stable")
  normal = e[~flagged]
  sorted_max = np.append(maxima[order], normal.max() if normal.size else 0.0)
  drops = (sorted_max[:-1] - sorted_max[1:]) / np.maximum(np.abs(sorted_max[:-1]), 1e-12)
  significant = np.flatnonzero(drops > prune)
  keep_count = 0 if significant.size == 0 else int(significant.max()) + 1
  out = np.zeros_like(flagged)
  for j in order[:keep_count]:
    a, b = runs[j]
    out[a:b] = True
  return out


def dynamic_block(scores, config: ml_collections.ConfigDict) -> DynamicThreshold:
  """The dynamic threshold of one block of scores [T] (see the module docstring)."""
  e = ewma(checks.finite_array(scores, name="scores", ndim=1).astype(np.float64),
           config.smoothing)
  eps, z = _choose(e, config)
  if not np.isfinite(eps):
    return DynamicThreshold(epsilon=np.inf, z=np.nan, flagged=np.zeros(e.size, np.int8))
  flagged = _prune(e, _widen(e >= eps, config.buffer), config.prune)
  return DynamicThreshold(epsilon=float(eps), z=z, flagged=flagged.astype(np.int8))


def dynamic_predict(scores, config: ml_collections.ConfigDict | None = None) -> np.ndarray:
  """int8 [T] predictions of the dynamic threshold, block by block when `config.window > 0`."""
  config = default_config() if config is None else config
  validate_config(config)
  s = checks.finite_array(scores, name="scores", ndim=1)
  size = s.size if config.window == 0 else config.window
  out = np.zeros(s.size, np.int8)
  for begin in range(0, s.size, max(size, 1)):  # blocks, not steps
    out[begin:begin + size] = dynamic_block(s[begin:begin + size], config).flagged
  return out
