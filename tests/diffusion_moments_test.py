"""Moments of training windows (mlts/diffusion/moments.py): the process fit shard by shard."""

import numpy as np
import pytest

from mlts.diffusion import basis as basis_lib
from mlts.diffusion import moments as moments_lib
from mlts.diffusion import process


def _windows(n=90, length=8, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length)[None, :, None]
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
  mix = np.asarray([1.0, -0.5, 0.3])[None, None, :channels]
  return (np.sin(2 * np.pi * t / 5 + phase) * mix + 2.0
          + 0.1 * rng.normal(size=(n, length, channels))).astype(np.float32)


@pytest.mark.parametrize("flat", [True, False])
def test_joined_parts_have_the_moments_of_all_windows(flat):
  x = _windows()
  parts = [moments_lib.WindowMoments.of(x[a:b], flat=flat) for a, b in ((0, 7), (7, 50), (50, 90))]
  joined = moments_lib.join(parts)
  whole = moments_lib.WindowMoments.of(x, flat=flat)
  assert joined.count == 90
  np.testing.assert_allclose(joined.mean, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(joined.scatter, whole.scatter, rtol=1e-10, atol=1e-10)
  cov = np.cov(x.reshape(90, -1).astype(np.float64), rowvar=False, bias=True)
  if flat:
    np.testing.assert_allclose(joined.covariance(), cov, rtol=1e-10, atol=1e-12)
  else:  # channel c's block of the flat covariance
    c4 = cov.reshape(8, 3, 8, 3)
    for c in range(3):
      np.testing.assert_allclose(joined.scatter[c] / 90, c4[:, c, :, c], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="needs flat moments"):
      joined.covariance()


@pytest.mark.parametrize("representation,flat", [("time", False), ("freq", False), ("freq", True),
                                                 ("klt", True)])
def test_coefficient_statistics_equal_those_of_the_coefficients(representation, flat):
  x = _windows()
  u = basis_lib.basis_matrix(representation, 8, x)
  m = moments_lib.WindowMoments.of(x, flat=flat)
  c = basis_lib.coefficients(x, u)
  mean, var = m.coefficient_mean_var(u)
  np.testing.assert_allclose(mean, c.mean(0), rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(var, c.var(0), rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(m.coefficient_energy(u), basis_lib.component_energy(x, u),
                             rtol=1e-10, atol=1e-10)


def _dcfg(representation):
  dcfg = process.default_config()
  dcfg.representation = representation
  dcfg.num_steps = 50
  return dcfg


@pytest.mark.parametrize("representation", ["klt", "freq"])
def test_a_process_from_moments_is_the_process_of_the_windows(representation):
  x = _windows()
  dcfg = _dcfg(representation)
  from_windows = process.make_process(dcfg, x)
  parts = [moments_lib.WindowMoments.of(x[k::3], flat=representation == "klt") for k in range(3)]
  from_moments = process.make_process(dcfg, moments=moments_lib.join(parts))
  np.testing.assert_allclose(from_moments.basis, from_windows.basis, atol=1e-6)
  np.testing.assert_array_equal(from_moments.mask, from_windows.mask)
  assert 0 < float(np.sum(from_moments.mask)) < x[0].size  # some, not all, attenuated
  assert float(from_moments.t_star) == float(from_windows.t_star)
  assert float(from_moments.delta) == pytest.approx(float(from_windows.delta))
  direct = process.data_stats(from_windows, x, full_covariance=representation == "klt")
  stats = process.data_stats(from_moments, full_covariance=representation == "klt",
                             moments=moments_lib.join(parts))
  np.testing.assert_allclose(stats.mean, direct.mean, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(stats.var, direct.var, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats.cov, direct.cov, rtol=1e-4, atol=1e-5)


def test_moments_refuse_what_they_cannot_give():
  x = _windows()
  dcfg = _dcfg("freq")
  dcfg.threshold = "gaussianity"
  m = moments_lib.WindowMoments.of(x, flat=False)
  with pytest.raises(ValueError, match="threshold='gaussianity' .* use 'snr' or 'fixed'"):
    process.make_process(dcfg, moments=m)
  with pytest.raises(ValueError, match="windows or their moments, not both"):
    process.make_process(_dcfg("freq"), x, moments=m)
  with pytest.raises(ValueError, match="cannot join moments of windows"):
    m + moments_lib.WindowMoments.of(x[:, :4], flat=False)
  with pytest.raises(ValueError, match="training windows.*NaN|non-finite|NaN"):
    moments_lib.WindowMoments.of(np.full((3, 8, 3), np.nan), flat=True)
