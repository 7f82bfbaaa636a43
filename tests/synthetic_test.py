"""Tests for the seeded synthetic generator."""

import numpy as np
import pytest

from mlts.data import synthetic


def test_seeded_and_shapes():
  a = synthetic.make_series(3, train_length=500, test_length=800, num_channels=2,
                            num_anomalies=4)
  b = synthetic.make_series(3, train_length=500, test_length=800, num_channels=2,
                            num_anomalies=4)
  c = synthetic.make_series(4, train_length=500, test_length=800, num_channels=2,
                            num_anomalies=4)
  np.testing.assert_array_equal(a.test, b.test)
  assert not np.array_equal(a.test, c.test)
  assert a.train.shape == (500, 2) and a.test.shape == (800, 2) and a.labels.shape == (800,)


def test_labels_are_exactly_the_modified_steps():
  s = synthetic.make_series(7, num_anomalies=8)
  runs = np.flatnonzero(np.diff(np.concatenate([[0], s.labels, [0]])))
  segments = runs.reshape(-1, 2)
  assert len(segments) == 8  # one contiguous segment per anomaly
  kinds = {int(s.kinds[a]) for a, _ in segments}
  assert kinds == {1, 2, 3, 4}  # all four kinds present
  spike = [(a, b) for a, b in segments if s.kinds[a] == 1]
  assert all(b - a == 1 for a, b in spike)  # spikes are single steps
  changed = (s.test != s.test_clean).any(axis=1)
  assert not changed[s.labels == 0].any()  # nothing outside the labels was modified
  for a, b in segments:  # and every labelled segment was
    assert changed[a:b].mean() > 0.9
  # Anomalous steps deviate far more from the seasonal pattern than normal ones:
  # compare with the training series' spread.
  z = np.abs(s.test - s.test.mean(0)) / s.train.std(0)
  assert z[s.kinds == 1].max() > 3.0


def test_unknown_kind_raises():
  with pytest.raises(ValueError, match="unknown anomaly kinds"):
    synthetic.make_series(0, kinds=("spike", "drift"))
