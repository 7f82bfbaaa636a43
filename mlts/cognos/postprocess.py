"""Post-processing of residual series into anomaly scores: none | ARKS | MA | LP.

This module owns the COGNOS ablation's smoothing stage (SPEC §0 and §6): each
method maps the per-channel aggregated residual series r [T, C] (x - x_hat
after the fixed-buffer aggregator) to a smoothed estimate [T, C]; the score is
estimate^2 reduced over channels (sum or max), so the four methods differ only
in the smoother:

* 'none': the estimate is r itself (score = r^2 reduced).
* 'arks': `mlts.cognos.arks` (calibrated on the validation residuals).
* 'ma': a trailing (causal) moving average over `ma_window` steps.
* 'lp': a first-order low-pass y_t = alpha r_t + (1 - alpha) y_{t-1}.

Both alternatives are causal, like ARKS, so the comparison is fair: a centred
moving average would see up to window/2 future steps, which a streaming
detector cannot, and would shift the score's onset earlier than any causal
method can. `make_postprocessor` is the one entry point the pipeline uses.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_collections
import numpy as np
from scipy import signal

from mlts import checks
from mlts.cognos import arks

NAMES = ("none", "arks", "ma", "lp")


def default_config() -> ml_collections.ConfigDict:
  """The `postprocess` config section."""
  config = ml_collections.ConfigDict()
  config.name = "none"  # none | arks | ma (moving average) | lp (first-order low-pass)
  config.reduce = "sum"  # channel reduction of the per-channel score estimate^2: sum | max
  config.confidence = 0.9  # ARKS breaker: chi-squared(1) test confidence c (0.9 -> NIS > 2.706)
  config.kappa = 1e6  # ARKS breaker: process-noise inflation factor on a trip
  config.q = 1e-3  # ARKS Mode II: Q = q R (random-walk smoothing strength)
  config.band = 1.96  # ARKS calibration: Mode I when |rho_1| > band / sqrt(T_val)
  config.ma_window = 10  # moving average: trailing window length in steps
  config.lp_alpha = 0.2  # low-pass: weight of the new residual, in (0, 1]
  return config


def validate_config(config: ml_collections.ConfigDict, *, where: str = "postprocess") -> None:
  """Checks the `postprocess` section; ValueError names the field, the value and what is allowed."""
  if "name" in config:
    checks.config_choice(config, "name", NAMES, where=where)
  checks.config_choice(config, "reduce", ("sum", "max"), where=where)
  checks.config_float(config, "confidence", where=where, low=0.0, high=1.0, low_open=True,
                      high_open=True)
  for field in ("kappa", "q", "band"):
    checks.config_float(config, field, where=where, low=0.0, low_open=True)
  checks.config_int(config, "ma_window", where=where, minimum=1)
  checks.config_float(config, "lp_alpha", where=where, low=0.0, high=1.0, low_open=True)


def moving_average(r, window: int) -> np.ndarray:
  """Trailing (causal) moving average of each channel.

  y_t = mean(r_{t-w+1}, ..., r_t); for t < w - 1 the mean is over the t + 1
  points available (no zero padding, which would bias the start towards 0).
  Computed with a float64 cumulative sum.

  Args:
    r: [T, C] finite residuals.
    window: w >= 1.

  Returns:
    [T, C] float64.
  """
  x = checks.finite_array(r, name="residuals", ndim=2).astype(np.float64)
  if int(window) != window or window < 1:
    raise ValueError(f"ma_window must be a positive integer, got {window}")
  window = int(window)
  csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)], axis=0)  # [T+1, C]
  t = np.arange(x.shape[0])
  lo = np.maximum(t + 1 - window, 0)
  return (csum[t + 1] - csum[lo]) / (t + 1 - lo)[:, None]


def low_pass(r, alpha: float) -> np.ndarray:
  """First-order low-pass (exponential smoothing) of each channel.

  y_t = alpha r_t + (1 - alpha) y_{t-1} with y_{-1} = 0, the same "no
  deviation" start as ARKS's x_0 = 0 (scipy.signal.lfilter, zero initial state).

  Args:
    r: [T, C] finite residuals.
    alpha: in (0, 1]; 1 returns r unchanged.

  Returns:
    [T, C] float64.
  """
  x = checks.finite_array(r, name="residuals", ndim=2).astype(np.float64)
  if not 0.0 < alpha <= 1.0:
    raise ValueError(f"lp_alpha must lie in (0, 1], got {alpha}")
  return signal.lfilter([alpha], [1.0, alpha - 1.0], x, axis=0)


Apply = Callable[[np.ndarray], np.ndarray]


def make_postprocessor(name: str, config: ml_collections.ConfigDict | None = None
                       ) -> Callable[[np.ndarray | None], Apply]:
  """The post-processing named `name`, with its settings from `config`.

  Usage: `score = make_postprocessor(cfg.name, cfg)(val_residuals)(test_residuals)`.

  Args:
    name: 'none' | 'arks' | 'ma' | 'lp' (usually `config.name`; the ablation
      passes each name with one config).
    config: a `postprocess` section as from `default_config()`; None uses the
      defaults.

  Returns:
    fit(val_residuals [V, C]) -> apply(residuals [T, C]) -> score [T] (NumPy).
    ARKS calibrates on `val_residuals` in `fit`; the other methods only use
    them (if given) to check that `apply` gets the same number of channels.
    `apply.stream(chunk, state) -> (score, state)` scores a long series chunk by
    chunk with the same result (bounded memory; state None at the start).

  Raises:
    ValueError: an unknown name or reduction (at once); bad residuals (in fit/apply).
  """
  config = default_config() if config is None else config
  if name not in NAMES:
    raise ValueError(f"unknown post-processing {name!r}; expected one of {NAMES}")
  reduce = config.reduce
  # Settings are checked here, before any fitting (a bad config fails at once).
  arks.reduce_channels(np.zeros((1, 1)), reduce)
  if name == "arks":
    arks.breaker_threshold(config.confidence)
    if not config.kappa >= 1:
      raise ValueError(f"kappa must be >= 1, got {config.kappa}")
  elif name == "ma":
    moving_average(np.zeros((1, 1)), config.ma_window)
  elif name == "lp":
    low_pass(np.zeros((1, 1)), config.lp_alpha)

  def fit(val_residuals=None) -> Apply:
    num_channels = None
    params = None
    if name == "arks":
      params = arks.calibrate(val_residuals, band=config.band, q=config.q)
      num_channels = len(params.F)
    elif val_residuals is not None:
      num_channels = checks.finite_array(val_residuals, name="val_residuals", ndim=2).shape[1]

    def checked(residuals) -> np.ndarray:
      r = checks.finite_array(residuals, name="residuals", ndim=2)
      if num_channels is not None and r.shape[1] != num_channels:
        raise ValueError(f"residuals have {r.shape[1]} channel(s); fit saw {num_channels}")
      return r

    def apply(residuals) -> np.ndarray:
      r = checked(residuals)
      if name == "none":
        estimate = r
      elif name == "arks":
        estimate = np.asarray(arks.arks_filter(
            params, r, confidence=config.confidence, kappa=config.kappa)["estimate"])
      elif name == "ma":
        estimate = moving_average(r, config.ma_window)
      else:
        estimate = low_pass(r, config.lp_alpha)
      return np.asarray(arks.reduce_channels(np.square(estimate), reduce))

    def stream(residuals, state=None):
      """`apply` on one chunk of a longer series: (score [T_chunk], state for the next).

      Start with state None; the concatenated chunk scores equal `apply` on the
      whole series (ARKS carries its Kalman state, the moving average the last
      w − 1 residuals, the low-pass its filter state).
      """
      r = checked(residuals)
      if name == "none":
        estimate = r
      elif name == "arks":
        out, state = arks.arks_filter_chunk(params, r, state, confidence=config.confidence,
                                            kappa=config.kappa)
        estimate = np.asarray(out["estimate"])
      elif name == "ma":
        tail = np.zeros((0, r.shape[1])) if state is None else state
        joined = np.concatenate([tail, r.astype(np.float64)])
        estimate = moving_average(joined, config.ma_window)[tail.shape[0]:]
        state = joined[max(joined.shape[0] - (config.ma_window - 1), 0):]
      else:
        alpha = config.lp_alpha
        zi = np.zeros((1, r.shape[1])) if state is None else state
        estimate, state = signal.lfilter([alpha], [1.0, alpha - 1.0], r.astype(np.float64),
                                         axis=0, zi=zi)
      return np.asarray(arks.reduce_channels(np.square(estimate), reduce)), state

    apply.stream = stream
    return apply

  return fit
