"""Tests for mlts.features: constructed data with a known answer, hand-worked BH, bad input.

The data are built so that each feature's type is clear-cut: a real mode the synthetic set
lacks ('real-only'), a synthetic mode the real set lacks ('synthetic-only'), and identical
N(0, 1) marginals ('common'). Seeds are fixed, so every assertion is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlts import features

NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
EXPECTED = ["common", "synthetic-only", "common", "common", "real-only", "common"]


def _constructed(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """R, S [n, 6]: N(0, 1) everywhere except feature 1 of S and feature 4 of R.

  Feature 1: S is 0.75 N(0, 1) + 0.25 N(4, 0.5²), a mode R lacks -> 'synthetic-only'.
  Feature 4: R is ±2 + N(0, 1) (bimodal), S is N(0, 1); R's outer halves lie where S has
  little mass -> 'real-only'.
  """
  rng = np.random.default_rng(seed)
  real = rng.standard_normal((n, 6))
  fake = rng.standard_normal((n, 6))
  fake[:, 1] = np.where(rng.random(n) < 0.25, 4.0 + 0.5 * rng.standard_normal(n), fake[:, 1])
  real[:, 4] = rng.choice([-2.0, 2.0], n) + rng.standard_normal(n)
  return real, fake


@pytest.fixture(scope="module")
def constructed():
  real, fake = _constructed()
  return real, fake, features.characterize(real, fake, names=NAMES)


# --------------------------------------------------------------------------
# Classification.


def test_characterize_exact_types(constructed):
  _, _, result = constructed
  assert list(result["type"]) == EXPECTED
  assert result["names"] == NAMES
  np.testing.assert_array_equal(result["differs"], [t != "common" for t in EXPECTED])
  # The direction is clear-cut, not a near tie.
  assert result["fake_uncovered"][1] > result["real_uncovered"][1] + 0.15
  assert result["real_uncovered"][4] > result["fake_uncovered"][4] + 0.3
  for key in ("ks_stat", "ks_p", "mmd", "mmd_p", "ks_q", "mmd_q", "real_uncovered",
              "fake_uncovered"):
    assert result[key].shape == (6,), key
  np.testing.assert_array_equal(result["differs"], result["ks_reject"] | result["mmd_reject"])


def test_shift_is_detected_and_uncovers_both_sides():
  rng = np.random.default_rng(3)
  real = rng.standard_normal((600, 6))
  fake = rng.standard_normal((600, 6))
  fake[:, 2] += 1.0
  result = features.characterize(real, fake)
  np.testing.assert_array_equal(result["differs"], [False, False, True, False, False, False])
  assert result["type"][2] in ("real-only", "synthetic-only")
  # A pure shift uncovers mass on both sides (null level is 1 - HDR_MASS = 0.05).
  assert result["real_uncovered"][2] > 0.1 and result["fake_uncovered"][2] > 0.1


def test_null_flags_at_most_one_feature():
  """Same distribution, D = 20: BH over 40 tests at FDR 0.05 bounds P(any flag) by ~0.05."""
  rng = np.random.default_rng(11)
  real = rng.standard_normal((500, 20))
  fake = rng.standard_normal((400, 20))
  result = features.characterize(real, fake, seed=5)
  assert result["differs"].sum() <= 1
  assert np.sum(result["type"] != "common") <= 1


def test_two_sample_tests_values():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((7, 2))
  y = rng.standard_normal((5, 2)) + np.array([0.0, 3.0])
  out = features.two_sample_tests(x, y, num_permutations=50, seed=0)
  assert set(out) == {"ks_stat", "ks_p", "mmd", "mmd_p"}
  # Unbiased MMD² of feature 0 by the textbook formula (median-heuristic RBF).
  a, b = x[:, 0], y[:, 0]
  z = np.concatenate([a, b])
  dist = np.abs(z[:, None] - z[None, :])
  sigma = np.median(dist[np.triu_indices(z.size, 1)])
  k = np.exp(-dist ** 2 / (2 * sigma ** 2))
  kxx, kyy, kxy = k[:7, :7], k[7:, 7:], k[:7, 7:]
  expected = ((kxx.sum() - np.trace(kxx)) / 42 + (kyy.sum() - np.trace(kyy)) / 20
              - 2 * kxy.mean())
  np.testing.assert_allclose(out["mmd"][0], expected, rtol=1e-10)
  # p-values live on the permutation grid {1/51, ..., 1}; the shifted feature is extreme.
  assert np.all((out["mmd_p"] >= 1 / 51) & (out["mmd_p"] <= 1))
  assert out["mmd_p"][1] == pytest.approx(1 / 51)
  assert out["mmd"][1] > out["mmd"][0]
  assert out["ks_stat"][1] == pytest.approx(1.0)


def test_two_sample_tests_is_seeded():
  real, fake = _constructed(n=200)
  a = features.two_sample_tests(real, fake, num_permutations=30, seed=4)
  b = features.two_sample_tests(real, fake, num_permutations=30, seed=4)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key])


# --------------------------------------------------------------------------
# Benjamini-Hochberg, worked by hand.


@pytest.mark.parametrize("pvalues, alpha, expected", [
    # Sorted 0.01, 0.03, 0.04, 0.2 vs k·0.05/4 = 0.0125, 0.025, 0.0375, 0.05: only k = 1.
    ([0.01, 0.04, 0.03, 0.2], 0.05, [True, False, False, False]),
    # Step-up: p_(2) = 0.03 > 0.025 fails but p_(3) = 0.034 <= 0.0375, so k* = 3.
    ([0.6, 0.034, 0.001, 0.03], 0.05, [False, True, True, True]),
    # All pass (p_(k) <= k·0.05/4 for every k).
    ([0.04, 0.01, 0.02, 0.03], 0.05, [True, True, True, True]),
    # None passes: 0.02 > 0.05/3.
    ([0.02, 0.5, 0.9], 0.05, [False, False, False]),
    # Ties at the boundary are rejected together (p <= threshold is inclusive).
    ([0.05, 0.05], 0.05, [True, True]),
    # Larger alpha: thresholds 0.1/3, 0.2/3, 0.1 -> sorted 0.02, 0.05, 0.5 -> k* = 2.
    ([0.5, 0.02, 0.05], 0.1, [False, True, True]),
])
def test_benjamini_hochberg_by_hand(pvalues, alpha, expected):
  np.testing.assert_array_equal(features.benjamini_hochberg(pvalues, alpha), expected)


def test_bh_adjusted_agrees_with_rejections():
  p = np.random.default_rng(2).random(200) ** 3
  for alpha in (0.01, 0.05, 0.2):
    np.testing.assert_array_equal(features._bh_adjusted(p) <= alpha,
                                  features.benjamini_hochberg(p, alpha))


# --------------------------------------------------------------------------
# Attribution.


def test_attribution_top_feature():
  rng = np.random.default_rng(7)
  reference = rng.standard_normal((500, 6))
  x = rng.standard_normal((4, 6)) * 0.3
  x[2, 3] = 25.0
  x[0, 5] = -12.0
  x[0, 1] = 6.0
  out = features.attribution(x, reference, top_k=3)
  assert out["zscores"].shape == (4, 6)
  assert out["top_features"].shape == (4, 3)
  assert out["top_features"][2, 0] == 3
  np.testing.assert_array_equal(out["top_features"][0, :2], [5, 1])
  assert np.argmax(out["atypicality"]) == 2
  np.testing.assert_allclose(out["atypicality"], np.abs(out["zscores"]).max(axis=1))
  # Sorted by |z| descending in every row.
  ranked = np.take_along_axis(np.abs(out["zscores"]), out["top_features"], axis=1)
  assert np.all(np.diff(ranked, axis=1) <= 0)


def test_attribution_robust_z_by_hand_and_degenerate_scale():
  reference = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [100.0, 5.0]])
  # Feature 0: median 3, |dev| = 2, 1, 0, 1, 97 -> MAD 1 -> scale 1.4826.
  # Feature 1: constant -> MAD and mean AD are 0 -> floor; z stays finite.
  out = features.attribution([[6.0, 5.0], [3.0, 6.0]], reference, top_k=5)
  np.testing.assert_allclose(out["zscores"][0], [3.0 / 1.4826, 0.0])
  assert np.isfinite(out["zscores"]).all() and out["zscores"][1, 1] > 1e6
  assert out["top_features"].shape == (2, 2)  # top_k clipped to D
  assert out["top_features"][1, 0] == 1


# --------------------------------------------------------------------------
# Reports.


def test_report_markdown_lists_every_feature(constructed):
  real, fake, result = constructed
  samples = features.attribution(fake[:50], real)
  text = features.report_markdown(result, top_samples=samples)
  for name in NAMES:
    assert f"| {name} |" in text
  for kind in ("real-only", "synthetic-only", "common"):
    assert kind in text
  assert "Most atypical samples" in text
  assert text.count("\n| ") >= 6 + 2  # six feature rows and at least the sample rows' header


def test_report_figure_writes_png(constructed, tmp_path):
  real, fake, result = constructed
  path = tmp_path / "features.png"
  features.report_figure(str(path), real, fake, result, max_features=5)
  data = path.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


# --------------------------------------------------------------------------
# Bad input.


def test_bad_input_raises():
  rng = np.random.default_rng(0)
  real = rng.standard_normal((20, 3))
  fake = rng.standard_normal((20, 3))
  nan = real.copy()
  nan[4, 1] = np.nan
  with pytest.raises(ValueError, match="non-finite"):
    features.characterize(nan, fake)
  with pytest.raises(ValueError, match="must match"):
    features.characterize(real, fake[:, :2])
  with pytest.raises(ValueError, match="must match"):
    features.two_sample_tests(real, fake[:, :2])
  with pytest.raises(ValueError, match="rank"):
    features.two_sample_tests(real[:, 0], fake[:, 0])
  with pytest.raises(ValueError, match="names"):
    features.characterize(real, fake, names=["a", "b"])
  with pytest.raises(ValueError, match="alpha"):
    features.characterize(real, fake, alpha=1.5)
  with pytest.raises(ValueError, match="num_permutations"):
    features.two_sample_tests(real, fake, num_permutations=0)
  with pytest.raises(ValueError, match="must match"):
    features.attribution(real, fake[:, :2])
  with pytest.raises(ValueError, match="non-finite"):
    features.attribution(nan, fake)
  with pytest.raises(ValueError, match="top_k"):
    features.attribution(real, fake, top_k=0)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    features.benjamini_hochberg([0.1, 1.2])
  with pytest.raises(ValueError, match="non-finite"):
    features.benjamini_hochberg([0.1, np.nan])
  result = features.characterize(real, fake)
  with pytest.raises(ValueError, match="features"):
    features.report_figure("unused.png", real[:, :2], fake[:, :2], result)
