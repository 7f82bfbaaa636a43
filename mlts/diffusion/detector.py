"""Diffusion as an anomaly detector: per-window scores mapped to time steps (issue 5 §3).

For every window x_0 (after the pipeline's per-channel normalization):

(a) reconstruction: noise to t_a = `recon_t` · t_max with a fixed draw,
    x_{t_a} = q_sample(x_0, t_a, ε), and denoise deterministically (the
    probability-flow ODE from t_a to the clean end) to x̂_0. The aggregated
    residual x − x̂ per step is the score input (squared, or through ARKS via
    the pipeline's post-processing, like every reconstruction detector);
(b) latent: z = x_T by DDIM/Heun inversion, then
    * subspace energy Σ_{i∈I} (Uᵀz)_i² (large when a window leaves the
      low-energy structure of the training data),
    * Mahalanobis distance of Uᵀz to the training latents (Ledoit–Wolf
      covariance, scikit-learn),
    * latent-norm deviation |‖z‖ − mean| / std of the training latent norms.

Window scores reach time steps through the fixed-buffer aggregator (the mean
over the windows covering a step). All network evaluations run in fixed-size
jitted batches.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from sklearn import covariance

from mlts import latent, sharding
from mlts.data import windows as windows_lib
from mlts.diffusion import basis as basis_lib
from mlts.diffusion import process as process_lib
from mlts.diffusion import samplers
from mlts.diffusion.process import Process

LATENT_SCORES = ("energy", "mahalanobis", "norm")


def default_config() -> ml_collections.ConfigDict:
  """The `detector` section."""
  config = ml_collections.ConfigDict()
  config.recon_t = 0.3  # t_a as a fraction of the time range
  config.recon_steps = 20  # ODE steps from t_a back to 0
  config.encode_steps = 50  # ODE steps of the inversion x_0 -> z
  config.solver = "heun"  # ddim | heun
  config.batch_size = 256  # windows per jitted batch
  config.max_train_encoded = 1024  # training windows encoded for the latent statistics
  return config


def partial_times(process: Process, t_a: float, num_steps: int) -> jnp.ndarray:
  """Decreasing times from t_a to the clean end (the sampler grid cut at t_a)."""
  grid = np.asarray(samplers.time_grid(process, num_steps))
  below = grid[grid < t_a]
  return jnp.asarray(np.concatenate([[t_a], below[::-1]]), float)


def make_window_fn(process: Process, noise_fn_of: Callable, config: ml_collections.ConfigDict
                   ) -> Callable:
  """Returns jitted `fn(params, x [B, L, C], key) -> (x_hat [B, L, C], z [B, L, C])`.

  Args:
    process: the trained model's process.
    noise_fn_of: `params -> noise_fn`.
    config: the `detector` section.
  """
  t_a = float(config.recon_t) * process.t_max
  back = partial_times(process, t_a, config.recon_steps)
  encode_times = samplers.time_grid(process, config.encode_steps)
  step = samplers.ddim_step if config.solver == "ddim" else samplers.heun_step

  def run(noise_fn, x, times):
    def body(x, pair):
      return step(process, noise_fn, x, pair[0], pair[1]), None
    return jax.lax.scan(body, x, (times[:-1], times[1:]))[0]

  def fn(params, x, key):
    noise_fn = noise_fn_of(params)
    noise = jax.random.normal(key, x.shape, x.dtype)
    x_ta = process_lib.q_sample(process, x, jnp.full((x.shape[0],), t_a), noise)
    x_hat = run(noise_fn, x_ta, back)
    z = run(noise_fn, x, encode_times)
    return x_hat, z

  return jax.jit(fn)


def process_arrays(process: Process) -> dict[str, jax.Array]:
  """The data-dependent arrays of a process: 'mask' [L, C], 't_star' [], 'delta' []."""
  return {"mask": process.mask, "t_star": process.t_star, "delta": process.delta}


def make_process_window_fn(template: Process, noise_fn_of: Callable,
                           config: ml_collections.ConfigDict) -> Callable:
  """As `make_window_fn`, with the process's arrays an argument: one compilation for S processes.

  Returns jitted `fn(params, arrays, x [B, L, C], key) -> (x_hat, z)` where
  `arrays` (`process_arrays`) replace the template's attenuated set, t* and Δ.
  The time grids are the template's (its schedule; t* is not added to them,
  so a second-order solver loses its order on the step straddling t*).

  Args:
    template: a process of the same schedule, basis and representation (its
      mask, t* and Δ are unused).
    noise_fn_of, config: as for `make_window_fn`.
  """
  t_a = float(config.recon_t) * template.t_max
  iso = template.replace(mask=jnp.zeros_like(template.mask))  # grids without t*
  back = partial_times(iso, t_a, config.recon_steps)
  encode_times = samplers.time_grid(iso, config.encode_steps)
  step = samplers.ddim_step if config.solver == "ddim" else samplers.heun_step

  def fn(params, arrays, x, key):
    process = template.replace(**arrays)
    noise_fn = noise_fn_of(params)

    def run(x, times):
      def body(x, pair):
        return step(process, noise_fn, x, pair[0], pair[1]), None
      return jax.lax.scan(body, x, (times[:-1], times[1:]))[0]

    noise = jax.random.normal(key, x.shape, x.dtype)
    x_ta = process_lib.q_sample(process, x, jnp.full((x.shape[0],), t_a), noise)
    return run(x_ta, back), run(x, encode_times)

  return jax.jit(fn)


def run_windows(fn: Callable, params, windows: np.ndarray, batch_size: int, key: jax.Array
                ) -> tuple[np.ndarray, np.ndarray]:
  """Applies `fn` in fixed batches (the last one padded); batch b uses fold_in(key, b)."""
  return sharding.map_batches(lambda chunk, b: fn(params, chunk, jax.random.fold_in(key, b)),
                              windows, batch_size)


class LatentReference:
  """Training-latent statistics for the latent scores."""

  def __init__(self, process: Process, train_latents: np.ndarray):
    """train_latents: [N, L, C] encodings z of training windows."""
    coeffs = self._coeffs(process, train_latents)
    self.mask = np.asarray(process.mask, bool).reshape(-1)
    self.cov = covariance.LedoitWolf().fit(coeffs)
    norms = np.linalg.norm(coeffs, axis=1)
    self.norm_mean, self.norm_std = float(norms.mean()), float(max(norms.std(), 1e-12))
    self.process = process

  @staticmethod
  def _coeffs(process: Process, z: np.ndarray) -> np.ndarray:
    c = basis_lib.coefficients(z, process.basis)
    return c.reshape(c.shape[0], -1)

  def scores(self, z: np.ndarray) -> dict[str, np.ndarray]:
    """{'energy', 'mahalanobis', 'norm'}: [N] each, for latents z [N, L, C]."""
    c = self._coeffs(self.process, z)
    return {
        "energy": latent.subspace_energy(c, self.mask),
        "mahalanobis": np.sqrt(np.maximum(self.cov.mahalanobis(c), 0.0)),
        "norm": np.abs(np.linalg.norm(c, axis=1) - self.norm_mean) / self.norm_std,
    }


def score_series(process: Process, noise_fn_of: Callable, params, series_parts,
                 train_windows: np.ndarray, window: int, stride: int,
                 config: ml_collections.ConfigDict, key: jax.Array) -> dict:
  """Residuals and latent scores of every series part.

  Args:
    process, noise_fn_of, params: the trained model.
    series_parts: {'val': [V_k, C] list, 'test': [T_k, C] list} over series.
    train_windows: [N, L, C] training windows (a subsample is encoded).
    window, stride: evaluation windows.
    config: the `detector` section.
    key: PRNG key (noise of the partial noising, subsample choice).

  Returns:
    {'residuals': {part: list of [T_k, C]}, 'latent': {score: {part: list of [T_k]}}}.
  """
  fn = make_window_fn(process, noise_fn_of, config)
  k_train, k_eval = jax.random.split(key)
  rng = np.random.default_rng(np.asarray(jax.random.key_data(k_train)).ravel().tolist())
  sub = train_windows
  if sub.shape[0] > config.max_train_encoded:
    sub = sub[np.sort(rng.choice(sub.shape[0], config.max_train_encoded, replace=False))]
  _, z_train = run_windows(fn, params, sub.astype(np.float32), config.batch_size, k_train)
  reference = LatentReference(process, z_train)

  out = {"residuals": {}, "latent": {name: {} for name in LATENT_SCORES}}
  for p_idx, (part, series) in enumerate(series_parts.items()):
    cut = [windows_lib.sliding_windows(s, window, stride, pad=True, name=f"{part} series {k}")
           for k, s in enumerate(series)]
    all_windows = np.concatenate([w for w, _, _ in cut]).astype(np.float32)
    x_hat, z = run_windows(fn, params, all_windows, config.batch_size,
                           jax.random.fold_in(k_eval, p_idx))
    latent = reference.scores(z)
    residuals, per_score, offset = [], {n: [] for n in LATENT_SCORES}, 0
    for s, (w, starts, mask) in zip(series, cut):
      n = w.shape[0]
      recon = windows_lib.aggregate(x_hat[offset:offset + n], starts, mask.shape[0])
      residuals.append(np.asarray(s, np.float64) - recon[:s.shape[0]])
      for name in LATENT_SCORES:
        tiled = np.broadcast_to(latent[name][offset:offset + n, None], (n, window))
        per_score[name].append(windows_lib.aggregate(tiled, starts, mask.shape[0])[:s.shape[0]])
      offset += n
    out["residuals"][part] = residuals
    for name in LATENT_SCORES:
      out["latent"][name][part] = per_score[name]
  return out


def network_input_shape(process: Process, window: int, channels: int) -> tuple[int, int, int]:
  """[1, L, C_in] shape of the network's input for `process.representation`."""
  extra = channels if process.representation == "both" else 0
  return (1, window, channels + extra)


def pairs(per_part: dict, parts: Sequence[str] = ("val", "test")) -> list:
  """{'val': [...], 'test': [...]} -> [(val_k, test_k)] per series."""
  return list(zip(*(per_part[p] for p in parts)))

