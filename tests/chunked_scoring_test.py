"""Long series are scored chunk by chunk with the scores of scoring them in one piece."""

import numpy as np
import pytest

from mlts import detectors
from mlts.cognos import postprocess

TRAINING = dict(num_steps=20, batch_size=16, log_every=10, checkpoint_every=20, eval_every=0)


def _series(length: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  t = np.arange(length)
  x = np.stack([np.sin(2 * np.pi * t / 37), np.cos(2 * np.pi * t / 53)], axis=1)
  return x + 0.1 * rng.normal(size=x.shape)


def _chunked_and_whole(det, x, chunk):
  slices = []
  local = det._local_parts
  det._local_parts = lambda part, k: slices.append(part.shape[0]) or local(part, k)
  det.score_chunk = chunk
  chunked = det.score(x)
  det._local_parts = local
  # One slice per chunk, each at most the chunk plus the windows reaching into it.
  assert len(slices) == -(-len(x) // chunk) and max(slices) <= chunk + 2 * det.config.window
  det.score_chunk = 0
  return chunked, det.score(x)


@pytest.mark.parametrize("name, options", [
    # the recommended detector's shape: one model per series, each window's own error
    ("mlp_ae", dict(per_series=True, score="window_error")),
    # a pooled model, the residual of the window-averaged reconstruction through ARKS, and
    # a k-NN component fused with it
    ("conv_ae", dict(postprocess="arks", score="residual+window_knn")),
])
def test_a_reconstruction_detector_scores_a_long_series_in_chunks_exactly(name, options):
  det = detectors.create(name, window=16, stride=4, eval_stride=3, training=TRAINING,
                         **options).fit(_series(1200, 0))
  test = _series(2311, 1)  # (2311 - 16) % 3 != 0: the series ends on the end-aligned window
  test[1500:1530] += 2.0
  for chunk in (97, 500):  # chunk boundaries inside windows, several chunks
    chunked, whole = _chunked_and_whole(det, test, chunk)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-9)


def test_the_knn_window_baseline_scores_in_chunks_exactly():
  det = detectors.create("knn_window", window=24, eval_stride=5).fit(_series(900, 2))
  test = _series(1703, 3)
  chunked, whole = _chunked_and_whole(det, test, 211)
  # scikit-learn's brute-force distances are GEMMs over query blocks: equal to rounding.
  np.testing.assert_allclose(chunked, whole, rtol=1e-9)


@pytest.mark.parametrize("name", ["none", "arks", "ma", "lp"])
def test_postprocessing_streams_with_its_state(name):
  rng = np.random.default_rng(4)
  val = rng.normal(size=(400, 3))
  r = 0.1 * np.cumsum(rng.normal(size=(1900, 3)), axis=0) + rng.normal(size=(1900, 3))
  r[900:940] += 4.0
  apply = postprocess.make_postprocessor(name)(val)
  state, parts = None, []
  for a in range(0, r.shape[0], 333):
    score, state = apply.stream(r[a:a + 333], state)
    parts.append(score)
  whole = apply(r)
  if name == "ma":  # cumulative sums from another origin: equal to rounding
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-10)
  else:  # the same recursion, restarted nowhere
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_score_chunk_is_checked():
  det = detectors.create("knn_window")
  assert det.score_chunk == 1 << 17  # the default: chunked beyond 131072 steps
  for bad in (-1, 2.5, True):
    with pytest.raises(ValueError, match="score_chunk must be an integer >= 0"):
      det.score_chunk = bad
