"""Tests for sliding windows and the fixed-buffer aggregator."""

import numpy as np
import pytest

from mlts.data import windows


def test_window_starts_cover_the_end():
  # T=10, L=4, stride=3: starts 0, 3, 6 cover up to 9 exactly.
  np.testing.assert_array_equal(windows.window_starts(10, 4, 3), [0, 3, 6])
  # T=11: 0, 3, 6 stop at 9, so one window aligned to the end (start 7) is added.
  np.testing.assert_array_equal(windows.window_starts(11, 4, 3), [0, 3, 6, 7])


def test_sliding_windows_values_and_shapes():
  series = np.arange(12, dtype=float).reshape(6, 2)  # [T=6, C=2]
  w, starts, mask = windows.sliding_windows(series, 3, 2)
  np.testing.assert_array_equal(starts, [0, 2, 3])
  assert w.shape == (3, 3, 2)
  np.testing.assert_array_equal(w[1], series[2:5])
  np.testing.assert_array_equal(mask, np.ones(6))


def test_padding_replicates_edge_and_masks():
  series = np.array([1.0, 2.0, 3.0])
  w, starts, mask = windows.sliding_windows(series, 5, 1, pad=True)
  np.testing.assert_array_equal(w[0, :, 0], [1, 2, 3, 3, 3])
  np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(starts, [0])


@pytest.mark.parametrize("length,window,stride", [(50, 8, 1), (50, 8, 3), (37, 16, 5), (16, 16, 4)])
def test_aggregate_inverts_windowing(length, window, stride):
  rng = np.random.default_rng(0)
  series = rng.normal(size=(length, 3))
  w, starts, _ = windows.sliding_windows(series, window, stride)
  # Every window holds the true values, so each step's mean equals the value.
  np.testing.assert_allclose(windows.aggregate(w, starts, length), series, atol=1e-12)
  constant = np.full((length, 1), 2.5)
  wc, starts, _ = windows.sliding_windows(constant, window, stride)
  np.testing.assert_array_equal(windows.aggregate(wc, starts, length), constant)


def test_aggregate_is_per_step_mean():
  # Two windows of length 3 over T=4 (starts 0 and 1) with values 1 and 3:
  # step 0 -> 1, steps 1-2 -> mean(1, 3) = 2, step 3 -> 3.
  values = np.array([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
  np.testing.assert_array_equal(windows.aggregate(values, np.array([0, 1]), 4), [1, 2, 2, 3])


def test_aggregate_matches_loop_reference():
  rng = np.random.default_rng(1)
  values = rng.normal(size=(7, 5))
  starts = np.array([0, 2, 4, 6, 8, 10, 11])
  length = 16
  sums, counts = np.zeros(length), np.zeros(length)
  for v, s in zip(values, starts):
    sums[s:s + 5] += v
    counts[s:s + 5] += 1
  np.testing.assert_allclose(windows.aggregate(values, starts, length), sums / counts)


def test_bad_input():
  with pytest.raises(ValueError, match="longer than the series"):
    windows.sliding_windows(np.zeros((5, 1)), 8, 1)
  with pytest.raises(ValueError, match="non-finite"):
    windows.sliding_windows(np.array([0.0, np.nan, 1.0]), 2, 1, name="chan X")
  with pytest.raises(ValueError, match="empty"):
    windows.sliding_windows(np.zeros((0, 1)), 2, 1)
  with pytest.raises(ValueError, match="rank"):
    windows.sliding_windows(np.zeros((4, 2, 2)), 2, 1)
  with pytest.raises(ValueError, match="covered by no window"):
    windows.aggregate(np.ones((1, 3)), np.array([0]), 5)
