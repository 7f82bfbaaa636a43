"""ARKS: COGNOS's adaptive residual Kalman smoother with a chi-squared circuit breaker.

This module owns the whole of ARKS as SPEC §6 defines it (papers/002, §4.2 and
appendix A.3): the offline calibration of one scalar state-space model per
channel from normal validation residuals (`calibrate`), the recursion with the
circuit breaker (`arks_step`, scanned over time by `arks_filter`), the score
s_t = x_t^2 reduced over channels (`arks_score`) and online use one point at a
time (`init_carry` + `stream_step`). The ablation's alternatives (moving
average, low-pass, none) and the config dispatcher live in
`mlts.cognos.postprocess`.

How SPEC §6 is read here, per channel, on the residual series r_t:

* Calibration (NumPy, float64, vectorized over channels). Autocovariances are
  the usual biased, mean-centred estimates
  gamma(k) = (1/T) sum_t (r_t - mean)(r_{t+k} - mean), as in an ACF plot, so that
  rho_1 = gamma(1)/gamma(0) can be compared with the white-noise band
  `band`/sqrt(T). Outside the band: Mode I (leakage tracking), an AR(1) state
  seen through noise, F = phi = gamma(2)/gamma(1), sigma_x^2 = gamma(1)/phi,
  Q = sigma_x^2 (1 - phi^2), R = gamma(0) - sigma_x^2. Inside: Mode II (noise
  suppression), a random walk F = 1, R = gamma(0), Q = q R.
* The filter runs on the residuals as given (not centred): the state is the
  structural deviation, zero under normal operation.

Where SPEC §6 is ill-posed, and what is done instead:

1. Inconsistent moments in Mode I. The AR(1)-plus-noise model needs
   0 < phi <= 1 and 0 < sigma_x^2 <= gamma(0); the raw moment estimates break
   this when rho_1 < 0, when gamma(2)/gamma(1) <= 0, or when
   gamma(2)/gamma(1) < rho_1 (then R = gamma(0) - sigma_x^2 < 0 and the state
   would be more variable than the data). SPEC says "clamp phi to (0, 0.999]
   and R, Q to a small floor"; clamping phi at a fixed tiny value is not
   enough, since sigma_x^2 = gamma(1)/phi then explodes. Here, when
   gamma(1) > 0, phi is clamped to [rho_1, 0.999]: the lower end is exactly the
   value at which R = 0, i.e. the fit falls back to the noise-free Yule-Walker
   AR(1) (phi = rho_1, sigma_x^2 = gamma(0)). When gamma(1) <= 0 (negative
   lag-1 correlation, which an AR(1) state with phi > 0 cannot produce), the
   channel keeps Mode I as SPEC says but gets no state: phi = PHI_MIN,
   sigma_x^2 = 0, R = gamma(0); the estimate then stays near 0 and follows the
   residual only when the breaker trips. Finally Q and R are floored at
   `floor * gamma(0)` (relative, so the calibration is scale-free; with the
   default 1e-3 and kappa = 1e6 the breaker still makes kappa Q >= 1000 gamma(0),
   i.e. a gain within 1e-3 of 1, on every channel).
2. A constant validation channel (gamma(0) = 0) makes rho_1 undefined; gamma(0)
   is floored at MIN_VARIANCE (1e-12, i.e. a standard deviation of 1e-6, the
   activity threshold of SPEC §6 on normalized data), which gives Mode II with a
   tiny R: any later deviation trips the breaker and is followed at once.
3. Initial state. SPEC gives none. x_0 = 0 (no deviation) and P_0 = the
   steady-state posterior variance of the calibrated filter (the fixed point of
   the scalar Riccati recursion), so the filter is time-invariant from its
   first step. The stationary prior variance sigma_x^2 would also do for
   Mode I, but a random walk (Mode II) has none, and a diffuse P_0 would make
   the first step behave like a breaker trip.
4. Breaker and covariance update. On a trip P^- = F P F + kappa Q (the base Q
   replaced, not added to), S is recomputed and the update uses that P^-; the
   NIS that is reported is the test statistic, i.e. computed with the
   un-inflated S. The trip lasts one step: the next prediction uses Q again
   (paper appendix A.3.2). In Mode II kappa Q = kappa q R, so the gain on a trip
   is kappa q / (kappa q + 1) (0.999 with the defaults), not exactly 1: the
   "zero lag" is a lag of 0.1% of the jump. After a trip P ~= R, so the next S
   is ~ (1 + F^2) R instead of ~ R: this is the refractory period of appendix
   A.3.3 (a rebound's NIS is about halved in Mode II; see arks_test.py). In
   Mode I the state mean-reverts (F = phi < 1), so a sustained level shift is
   followed as a saw-tooth: the estimate decays by phi per step until the
   breaker trips again.
   The posterior variance is computed as P = K R (= (1 - K) P^- = P^- R / S):
   in a scalar filter this equals the Joseph form and is positive by
   construction, and unlike (1 - K) P^- it does not lose float32 digits when
   K is close to 1.
5. H = 1 throughout (SPEC fixes it), so it is not a parameter.

Speed: XLA's scan costs roughly a fixed amount per time step, so the filter is
one scan over time whose carry holds all C channels (the per-channel step is
`jax.vmap`-ed inside the scan body); `jax.vmap` of per-channel scans compiles to
the same program. Measured on a 2-core CPU with jax 0.10.2 (bench_cognos and
a sweep over C and unroll): while the loop body holds fewer than about 8
elements (C x unroll) XLA runs it as one tight loop (~20-60 ns per step); above
that each step pays a few hundred ns of kernel dispatch, which unroll = 4
amortizes (55 channels: ~1400 -> ~700 ns per step, i.e. ~13 ns per point and
channel). Hence `default_unroll`: 1 for C <= SMALL_CHANNELS, 4 above. Splitting
the channels into small groups of separate scans was slower (strided slices
and the concatenation of the outputs). `arks_filter` zero-pads T up to
`bucket_length(T)` (<= 12.5 % more steps) so that series of many lengths share
a few compiled programs (0.1-1 s of compilation each).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from scipy import stats

from mlts import checks

MODE_TRACKING = 1  # Mode I: AR(1) state observed with noise (leakage tracking)
MODE_SUPPRESSION = 2  # Mode II: random walk with small Q (noise suppression)

PHI_MAX = 0.999  # upper clamp of the AR(1) coefficient in Mode I
PHI_MIN = 1e-3  # phi of a Mode I channel with gamma(1) <= 0 (no AR state to track)
MIN_VARIANCE = 1e-12  # floor of gamma(0): a constant validation channel
SMALL_CHANNELS = 6  # up to this many channels the scan is not unrolled (see `default_unroll`)


class ArksParams(NamedTuple):
  """Calibrated per-channel parameters; every field is a [C] array.

  Attributes:
    F: state transition (phi in Mode I, 1 in Mode II).
    Q: process-noise variance.
    R: observation-noise variance.
    x0: initial state estimate (0).
    p0: initial posterior variance (the steady-state posterior variance).
    mode: MODE_TRACKING (1) or MODE_SUPPRESSION (2), int32.
    rho1: lag-1 autocorrelation of the validation residuals (a diagnostic).
  """
  F: jax.Array | np.ndarray
  Q: jax.Array | np.ndarray
  R: jax.Array | np.ndarray
  x0: jax.Array | np.ndarray
  p0: jax.Array | np.ndarray
  mode: jax.Array | np.ndarray
  rho1: jax.Array | np.ndarray


class ArksCarry(NamedTuple):
  """Filter state between steps: posterior mean `x` and variance `p` (scalars or [C])."""
  x: jax.Array
  p: jax.Array


class ArksOutput(NamedTuple):
  """Per-step outputs (scalars from `arks_step`, [T, C] from the scan).

  Attributes:
    estimate: the posterior state estimate x_t (the structural deviation).
    nis: the normalized innovation squared nu^2 / S, with the un-inflated S.
    breaker: whether the circuit breaker tripped (nis > threshold).
  """
  estimate: jax.Array
  nis: jax.Array
  breaker: jax.Array


@functools.lru_cache(maxsize=64)
def breaker_threshold(confidence: float) -> float:
  """The chi-squared(1) quantile at `confidence` (0.9 -> 2.706), the NIS threshold."""
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
  return float(stats.chi2.ppf(confidence, df=1))


def _steady_state_posterior(f, q, r):
  """Fixed point of the scalar Riccati recursion (float64 NumPy, [C] arrays).

  The prior variance M = F^2 M R / (M + R) + Q solves
  M^2 + b M - Q R = 0 with b = R (1 - F^2) - Q; the positive root is written in
  the form without cancellation for either sign of b. Returns the posterior
  variance M R / (M + R).
  """
  b = r * (1.0 - f * f) - q
  disc = np.sqrt(b * b + 4.0 * q * r)
  prior = np.where(b >= 0, 2.0 * q * r / (b + disc), (disc - b) / 2.0)
  return prior * r / (prior + r)


def calibrate(val_residuals, *, band: float = 1.96, q: float = 1e-3,
              floor: float = 1e-3) -> ArksParams:
  """Calibrates ARKS per channel on normal (validation) residuals.

  Args:
    val_residuals: [T, C] residuals x - x_hat of normal data, T >= 3.
    band: half-width of the white-noise band in units of 1/sqrt(T): a channel
      with |rho_1| > band / sqrt(T) is Mode I, otherwise Mode II.
    q: Mode II process noise as a fraction of R (Q = q R), q > 0.
    floor: lower bound of Q and R as a fraction of gamma(0), in (0, 1).

  Returns:
    ArksParams of float64 NumPy [C] arrays (see the module docstring for how
    inconsistent moments are handled).

  Raises:
    ValueError: wrong rank, non-finite values, fewer than 3 time steps, or
      out-of-range settings.
  """
  r = checks.finite_array(val_residuals, name="val_residuals", ndim=2).astype(np.float64)
  length = r.shape[0]
  if length < 3:
    raise ValueError(
        f"val_residuals: calibration needs at least 3 time steps (gamma(2)), got {length}")
  if band <= 0 or q <= 0 or not 0 < floor < 1:
    raise ValueError(f"need band > 0, q > 0, 0 < floor < 1; got {band=}, {q=}, {floor=}")
  d = r - r.mean(axis=0)
  gamma0 = np.maximum(np.mean(d * d, axis=0), MIN_VARIANCE)  # [C]
  gamma1 = np.sum(d[1:] * d[:-1], axis=0) / length
  gamma2 = np.sum(d[2:] * d[:-2], axis=0) / length
  rho1 = gamma1 / gamma0
  tracking = np.abs(rho1) > band / np.sqrt(length)

  # Mode I, with the clamps of the module docstring (item 1).
  positive = gamma1 > 0
  safe_gamma1 = np.where(positive, gamma1, 1.0)
  phi_raw = gamma2 / safe_gamma1
  phi = np.where(positive, np.minimum(np.maximum(phi_raw, rho1), PHI_MAX), PHI_MIN)
  var_x = np.where(positive, np.minimum(safe_gamma1 / phi, gamma0), 0.0)
  f_track = phi
  q_track = var_x * (1.0 - phi * phi)
  r_track = gamma0 - var_x

  f = np.where(tracking, f_track, 1.0)
  q_var = np.maximum(np.where(tracking, q_track, q * gamma0), floor * gamma0)
  r_var = np.maximum(np.where(tracking, r_track, gamma0), floor * gamma0)
  return ArksParams(
      F=f, Q=q_var, R=r_var, x0=np.zeros_like(f),
      p0=_steady_state_posterior(f, q_var, r_var),
      mode=np.where(tracking, MODE_TRACKING, MODE_SUPPRESSION).astype(np.int32),
      rho1=rho1)


def arks_step(params: ArksParams, carry: ArksCarry, r_t, *, threshold, kappa):
  """One ARKS step for one channel (scalars), usable for streaming.

  Args:
    params: ArksParams of one channel (scalar fields).
    carry: ArksCarry (x, p) after the previous step.
    r_t: the residual at this step (scalar).
    threshold: NIS threshold (chi-squared(1) quantile), scalar.
    kappa: process-noise inflation on a breaker trip, scalar.

  Returns:
    (ArksCarry after this step, ArksOutput(estimate, nis, breaker)).
  """
  f = params.F
  x_prior = f * carry.x
  fpf = f * carry.p * f
  p_prior = fpf + params.Q
  nu = r_t - x_prior
  nis = nu * nu / (p_prior + params.R)
  breaker = nis > threshold
  p_prior = jnp.where(breaker, fpf + kappa * params.Q, p_prior)
  s = p_prior + params.R
  gain = p_prior / s
  x = x_prior + gain * nu
  p = gain * params.R  # = (1 - K) P^-, without cancellation (docstring item 4)
  return ArksCarry(x, p), ArksOutput(x, nis, breaker)


def _as_jax_params(params: ArksParams, dtype) -> ArksParams:
  """Float fields cast to `dtype`; `mode` kept integer."""
  return ArksParams(*(jnp.asarray(v, dtype=jnp.int32 if name == "mode" else dtype)
                      for name, v in zip(ArksParams._fields, params)))


def init_carry(params: ArksParams, dtype=None) -> ArksCarry:
  """The initial carry (x0, p0), [C] each; `dtype` defaults to float32 (float64 with x64)."""
  dtype = dtype or jax.dtypes.canonicalize_dtype(jnp.float64)
  return ArksCarry(jnp.asarray(params.x0, dtype), jnp.asarray(params.p0, dtype))


def default_unroll(num_channels: int) -> int:
  """The `lax.scan` unroll that was fastest on CPU for C channels (module docstring)."""
  return 1 if num_channels <= SMALL_CHANNELS else 4


def filter_scan(params: ArksParams, residuals, threshold, kappa, *,
                unroll: int | None = None, carry: ArksCarry | None = None,
                return_carry: bool = False):
  """The ARKS recursion over [T, C] residuals; pure and traceable (not jitted).

  One `lax.scan` over time; inside its body `arks_step` is `jax.vmap`-ed over
  the C channels, so the carry holds [C] vectors.

  Args:
    params: ArksParams with [C] fields (any array type; cast to the residual dtype).
    residuals: [T, C] floating array.
    threshold: NIS threshold, scalar (an array, so changing it does not retrace).
    kappa: breaker inflation, scalar (likewise).
    unroll: `lax.scan` unroll; None picks `default_unroll(C)`.
    carry: the state to start from (default `init_carry(params)`): the carry a
      previous call returned continues that series.
    return_carry: also return the carry after the last step.

  Returns:
    ArksOutput of [T, C] arrays; with `return_carry`, (ArksOutput, ArksCarry).
  """
  dtype = residuals.dtype
  unroll = default_unroll(residuals.shape[1]) if unroll is None else unroll
  params = _as_jax_params(params, dtype)
  step = jax.vmap(functools.partial(
      arks_step, threshold=jnp.asarray(threshold, dtype), kappa=jnp.asarray(kappa, dtype)))
  start = init_carry(params, dtype) if carry is None else ArksCarry(
      *(jnp.asarray(v, dtype) for v in carry))
  last, out = lax.scan(lambda c, r_t: step(params, c, r_t), start, residuals, unroll=unroll)
  return (out, last) if return_carry else out


_filter_jit = jax.jit(filter_scan, static_argnames=("unroll", "return_carry"))


def _stream_step_impl(params, carry, r_t, threshold, kappa):
  step = jax.vmap(functools.partial(arks_step, threshold=threshold, kappa=kappa))
  return step(_as_jax_params(params, r_t.dtype), carry, r_t)


_stream_step_jit = jax.jit(_stream_step_impl)


def _float_dtype(arr: np.ndarray):
  """float32, or float64 for float64 input when x64 is enabled."""
  return jax.dtypes.canonicalize_dtype(np.result_type(arr.dtype, np.float32))


def _check_channels(params: ArksParams, num_channels: int, name: str) -> None:
  c = np.shape(params.F)
  if len(c) != 1 or c[0] != num_channels:
    raise ValueError(
        f"{name} has {num_channels} channel(s) but the ARKS parameters have shape {c}")


def _check_kappa(kappa: float) -> None:
  if not kappa >= 1.0:
    raise ValueError(f"kappa must be >= 1 (it inflates Q on a breaker trip), got {kappa}")


def bucket_length(length: int) -> int:
  """The padded length the jitted filter is compiled for: the least m 2^k >= length, 8 <= m < 16.

  Eight lengths per octave: at most 12.5 % extra steps, and a pipeline with
  series of many different lengths compiles a few programs instead of one per
  length. Zeros appended after the end cannot change a causal filter's
  earlier outputs, so the result is exact.
  """
  if length <= 8:
    return max(int(length), 1)
  shift = max(int(length - 1).bit_length() - 4, 0)
  return -(-length // (1 << shift)) << shift


def arks_filter(params: ArksParams, residuals, *, confidence: float = 0.9,
                kappa: float = 1e6) -> dict[str, jax.Array]:
  """Runs ARKS over a [T, C] residual series.

  Jitted; compiles once per dtype, channel count and `bucket_length(T)` (the
  series is zero-padded to that length and the outputs cut back to T);
  confidence and kappa are passed as arrays, so changing them never recompiles.

  Args:
    params: from `calibrate`, with C channels.
    residuals: [T, C] finite residuals.
    confidence: c of the chi-squared(1) test (0.9 -> NIS threshold 2.706).
    kappa: process-noise inflation on a breaker trip (>= 1).

  Returns:
    dict with `estimate` [T, C] (x_t), `nis` [T, C] and `breaker` [T, C] bool,
    float32 (float64 for float64 input with x64 enabled).

  Raises:
    ValueError: non-finite values, wrong rank, channel-count mismatch, bad settings.
  """
  r = checks.finite_array(residuals, name="residuals", ndim=2)
  _check_channels(params, r.shape[1], "residuals")
  _check_kappa(kappa)
  threshold = breaker_threshold(confidence)
  dtype = _float_dtype(r)
  length = r.shape[0]
  padded = bucket_length(length)
  if padded > length:
    r = np.concatenate([r, np.zeros((padded - length, r.shape[1]), r.dtype)])
  out = _filter_jit(params, jnp.asarray(r, dtype), np.asarray(threshold, dtype),
                    np.asarray(kappa, dtype))
  return {k: v[:length] if padded > length else v for k, v in out._asdict().items()}


def arks_filter_chunk(params: ArksParams, residuals, carry: ArksCarry | None = None, *,
                      confidence: float = 0.9, kappa: float = 1e6
                      ) -> tuple[dict[str, jax.Array], ArksCarry]:
  """`arks_filter` on one chunk of a longer series, carrying the state across chunks.

  Feeding a series chunk by chunk, each call given the carry the previous one
  returned (None for the first), gives the rows `arks_filter` gives on the whole
  series: the recursion is the same and restarts nowhere. The chunk is not
  padded (the carry must be that of its last real step), so every distinct chunk
  length compiles once.

  Args:
    params: from `calibrate`, with C channels.
    residuals: [T_chunk, C] finite residuals.
    carry: ArksCarry of [C] arrays from the previous chunk, or None at the start.
    confidence, kappa: as `arks_filter`.

  Returns:
    (dict as `arks_filter`'s for this chunk, the carry after its last step).
  """
  r = checks.finite_array(residuals, name="residuals", ndim=2)
  _check_channels(params, r.shape[1], "residuals")
  _check_kappa(kappa)
  dtype = _float_dtype(r)
  out, last = _filter_jit(params, jnp.asarray(r, dtype),
                          np.asarray(breaker_threshold(confidence), dtype),
                          np.asarray(kappa, dtype), carry=carry, return_carry=True)
  return out._asdict(), last


def reduce_channels(energy, reduce: str = "sum"):
  """[T, C] per-channel scores -> [T] by 'sum' or 'max' over channels."""
  if reduce == "sum":
    return energy.sum(axis=-1)
  if reduce == "max":
    return energy.max(axis=-1)
  raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")


def arks_score(params: ArksParams, residuals, *, confidence: float = 0.9,
               kappa: float = 1e6, reduce: str = "sum") -> jax.Array:
  """ARKS anomaly score s_t = x_t^2, reduced over channels.

  Args:
    params: from `calibrate`, with C channels.
    residuals: [T, C] finite residuals.
    confidence: c of the breaker's chi-squared(1) test.
    kappa: process-noise inflation on a breaker trip.
    reduce: 'sum' or 'max' over channels.

  Returns:
    [T] score.
  """
  reduce_channels(np.zeros((1, 1)), reduce)  # fail on a bad name before any work
  estimate = arks_filter(params, residuals, confidence=confidence, kappa=kappa)["estimate"]
  return reduce_channels(jnp.square(estimate), reduce)


def stream_step(params: ArksParams, carry: ArksCarry, r_t, *, confidence: float = 0.9,
                kappa: float = 1e6) -> tuple[ArksCarry, ArksOutput]:
  """Online ARKS: one time step of all C channels (jitted; same arithmetic as the scan).

  Start from `init_carry(params)` and feed each new residual vector as it
  arrives; the outputs equal the rows of `arks_filter` on the whole series.

  Args:
    params: from `calibrate`, with C channels.
    carry: ArksCarry of [C] arrays (from `init_carry` or the previous call).
    r_t: [C] residuals at this step.
    confidence: c of the breaker's chi-squared(1) test.
    kappa: process-noise inflation on a breaker trip.

  Returns:
    (new carry, ArksOutput of [C] arrays).
  """
  r = checks.finite_array(r_t, name="r_t", ndim=1)
  _check_channels(params, r.shape[0], "r_t")
  _check_kappa(kappa)
  dtype = carry.x.dtype
  return _stream_step_jit(params, carry, jnp.asarray(r, dtype),
                          np.asarray(breaker_threshold(confidence), dtype),
                          np.asarray(kappa, dtype))
