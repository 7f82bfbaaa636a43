"""Seeded synthetic multivariate series with injected anomalies and exact labels.

Seasonal sines (a few harmonics per channel, random phases and amplitudes) plus
Gaussian noise. The test part carries four anomaly kinds, each a contiguous
segment whose labels are exactly the modified steps:
  spike     a single-step jump of several standard deviations,
  level     a level shift over a segment,
  frequency the seasonal period changes over a segment,
  noise     a burst of extra noise over a segment.
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("spike", "level", "frequency", "noise")


@dataclasses.dataclass(frozen=True)
class SyntheticSeries:
  """One synthetic channel group.

  Attributes:
    train: [T_train, C] anomaly-free series.
    test: [T_test, C] series with anomalies.
    labels: [T_test] int8, 1 on every anomalous step.
    kinds: [T_test] int8, 0 normal, 1 + KINDS.index(kind) on anomalous steps.
    test_clean: [T_test, C] the test series before the anomalies were injected.
  """
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray
  kinds: np.ndarray
  test_clean: np.ndarray


def make_series(seed: int, *, train_length: int = 2000, test_length: int = 2000,
                num_channels: int = 3, num_anomalies: int = 8, min_segment: int = 10,
                max_segment: int = 60, noise_std: float = 0.1,
                kinds: tuple[str, ...] = KINDS) -> SyntheticSeries:
  """Generates one seeded train/test pair.

  Args:
    seed: the seed; the same seed gives the same arrays.
    train_length, test_length: lengths of the two parts.
    num_channels: C.
    num_anomalies: anomalies injected into the test part, on non-overlapping
      segments separated by at least `min_segment` normal steps.
    min_segment, max_segment: segment lengths (spikes are one step).
    noise_std: standard deviation of the additive Gaussian noise.
    kinds: the anomaly kinds to draw from (cycled in order).

  Returns:
    A `SyntheticSeries`.
  """
  unknown = set(kinds) - set(KINDS)
  if unknown:
    raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; expected a subset of {KINDS}")
  rng = np.random.default_rng(seed)
  total = train_length + test_length
  periods = rng.uniform(20.0, 80.0, size=(num_channels,))
  amps = rng.uniform(0.5, 1.5, size=(num_channels, 2))
  phases = rng.uniform(0.0, 2 * np.pi, size=(num_channels, 2))
  t = np.arange(total, dtype=np.float64)[:, None]  # [T, 1]

  def seasonal(time, period_scale):
    base = 2 * np.pi * time / (periods * period_scale)  # [T, C]
    return amps[:, 0] * np.sin(base + phases[:, 0]) + amps[:, 1] * np.sin(2 * base + phases[:, 1])

  clean = seasonal(t, 1.0)
  series = clean + noise_std * rng.standard_normal((total, num_channels))
  train, test = series[:train_length].copy(), series[train_length:].copy()
  test_clean = test.copy()
  t_test = t[train_length:]

  kind_codes = np.zeros(test_length, dtype=np.int8)
  slot = test_length // max(num_anomalies, 1)
  if slot < max_segment + 2 * min_segment:
    raise ValueError(
        f"test_length {test_length} is too short for {num_anomalies} anomalies of up to "
        f"{max_segment} steps")
  for i in range(num_anomalies):  # a handful of anomalies, not a loop over time steps
    kind = kinds[i % len(kinds)]
    seg_len = 1 if kind == "spike" else int(rng.integers(min_segment, max_segment + 1))
    lo = i * slot + min_segment
    start = int(rng.integers(lo, lo + slot - seg_len - min_segment + 1))
    seg = slice(start, start + seg_len)
    channel = int(rng.integers(num_channels))
    sign = rng.choice([-1.0, 1.0])
    if kind == "spike":
      test[seg, channel] += sign * rng.uniform(4.0, 6.0) * amps[channel].sum()
    elif kind == "level":
      test[seg, channel] += sign * rng.uniform(1.0, 2.0) * amps[channel].sum()
    elif kind == "frequency":
      faster = seasonal(t_test[seg], rng.uniform(0.3, 0.5))
      test[seg, channel] += faster[:, channel] - clean[train_length:][seg, channel]
    else:  # noise burst
      test[seg, channel] += rng.uniform(5.0, 10.0) * noise_std * rng.standard_normal(seg_len)
    kind_codes[seg] = 1 + KINDS.index(kind)
  labels = (kind_codes > 0).astype(np.int8)
  return SyntheticSeries(train=train, test=test, labels=labels, kinds=kind_codes,
                         test_clean=test_clean)
