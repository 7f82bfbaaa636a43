"""The malleable-latent forward process: per-component two-phase γ (SPEC §2, papers/000).

In basis coordinates c = Uᵀx (basis.py), every component i evolves as

    c_t,i = a(t) c_0,i + s_i(t) ε_i,   s_i(t) = σ̄(t) γ_i(t),   ε ~ N(0, I),

i.e. x_t = a x_0 + σ̄ U(γ_t ⊙ Uᵀε), with a and σ̄ from the schedule and

    γ_i(t) = 1                              for t ≤ t* or i ∉ I,
    γ_i(t) = (1/n)^{(t − t*)/Δ}              for t > t* and i ∈ I,

n = L·C the number of components. Δ defaults to the value that makes γ reach
`gamma_end` (1e-3) at the end of time; Δ = 1 is the proposal's literal form.
In I the process becomes an almost deterministic shrinkage after t*: the
latent keeps a scaled copy of the data there (what the latent metrics read).

The network predicts the *scaled* noise n = γ_t ⊙ ε (in basis U), the noise as
it enters x_t: x_t = a x_0 + σ̄ U n. This stays well conditioned as γ → 0 (the
unscaled ε_i of an attenuated component is almost invisible in x_t), and
everything else follows from it: x̂_0 = (x_t − σ̄ U n̂)/a, ε̂ = n̂ / γ.

Functions here are pure and jittable: `q_sample`, the targets and the
regularizer L_reg on the model's implied latent x̂_T, the matching prior
N(a_T m, U diag(s_T² + a_T² σ²) Uᵀ), and the threshold t* (`snr`, `fixed`, or
`gaussianity`, host-side with scikit-learn).
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlts import checks
from mlts.diffusion import basis as basis_lib
from mlts.diffusion import moments as moments_lib
from mlts.diffusion import schedules
from mlts.metrics import generative

THRESHOLDS = ("snr", "gaussianity", "fixed")


def default_config() -> ml_collections.ConfigDict:
  """The `diffusion` config section."""
  config = ml_collections.ConfigDict()
  config.kind = "ddpm"  # ddpm (discrete) | vp | ve (score SDE, continuous t in [0, 1])
  config.schedule = "linear"  # linear | cosine
  config.num_steps = 1000  # T (DDPM); time-grid size for the SDEs
  config.representation = "freq"  # time (U = I) | freq (DCT-II) | both (DCT + extra inputs) | klt
  config.attenuate = True  # the two-phase γ; False = the standard isotropic process
  config.threshold = "snr"  # t*: snr | gaussianity | fixed
  config.snr_level = 0.1  # 'snr': first t with a/σ̄ below this
  config.t_star = 0.5  # 'fixed': t* as a fraction of the time range
  config.gaussianity_level = 0.05  # 'gaussianity': test level of the MMD two-sample test
  config.gaussianity_components = 4  # mixture components of the Gaussian-mixture fit
  config.gaussianity_grid = 20  # candidate times scanned
  config.energy_keep = 0.95  # I = components outside the top set holding this energy fraction
  config.indices = ()  # explicit attenuated time-basis indices (overrides energy_keep)
  config.gamma_end = 1e-3  # γ on I at the end of time (sets Δ); ignored if delta > 0
  config.delta = 0.0  # Δ; 0 = from gamma_end, 1 = the proposal's literal form
  config.reg_weight = 0.1  # weight of L_reg (0 = off)
  # The network predicts the correction to the exact noise predictor of the training
  # windows' diagonal Gaussian in basis U (`losses.make_noise_fn`); False = the plain network.
  config.gaussian_residual = False
  return config


class Process(flax.struct.PyTreeNode):
  """A forward process: schedule, basis U, attenuated set I and the γ law.

  Attributes:
    schedule: a(t), σ̄(t).
    basis: U: [L, L] along time, or [L·C, L·C] for 'klt' (`basis.to_basis`).
    mask: [L, C] float, 1 on the attenuated components I.
    t_star: t* in the schedule's time units.
    delta: Δ in the same units.
    num_components: n = L·C (static).
    representation: 'time' | 'freq' | 'both' (static).
  """
  schedule: schedules.Schedule
  basis: jnp.ndarray
  mask: jnp.ndarray
  t_star: jnp.ndarray
  delta: jnp.ndarray
  num_components: int = flax.struct.field(pytree_node=False)
  representation: str = flax.struct.field(pytree_node=False, default="freq")

  @property
  def t_max(self) -> float:
    return self.schedule.t_max

  def _t(self, t):
    """t as a float array of shape [B, 1, 1] for broadcasting over windows."""
    t = jnp.asarray(t, float)
    return t.reshape(t.shape + (1, 1))

  def a(self, t):
    """[B] -> [B, 1, 1] signal scale."""
    return self.schedule.a(self._t(t))

  def sigma(self, t):
    """[B] -> [B, 1, 1] isotropic noise scale σ̄."""
    return self.schedule.sigma(self._t(t))

  def gamma(self, t):
    """[B] -> [B, L, C] per-component γ (1 outside I and before t*)."""
    excess = jnp.maximum(self._t(t) - self.t_star, 0.0)
    decay = jnp.exp(-math.log(self.num_components) * excess / self.delta)
    return 1.0 + self.mask * (decay - 1.0)

  def noise_scale(self, t):
    """[B] -> [B, L, C] s(t) = σ̄(t) γ(t) in basis U."""
    return self.sigma(t) * self.gamma(t)


def make_process(config: ml_collections.ConfigDict, train_windows: np.ndarray | None = None,
                 *, length: int | None = None, channels: int | None = None,
                 key: jax.Array | None = None,
                 moments: moments_lib.WindowMoments | None = None) -> Process:
  """Builds the process of a `diffusion` config section.

  Args:
    config: see `default_config`.
    train_windows: [N, L, C] training windows (needed for `energy_keep`
      selection, the 'klt' basis and the 'gaussianity' threshold).
    length, channels: L and C when no training windows are given (then I
      comes from `config.indices`, or is empty).
    key: PRNG key of the 'gaussianity' threshold search.
    moments: instead of `train_windows`, their `moments.WindowMoments` (flat
      for 'klt'): all that the basis and I need, e.g. joined over the data
      shards of several processes. Not for the 'gaussianity' threshold.

  Returns:
    The `Process`.
  """
  if config.threshold not in THRESHOLDS:
    raise ValueError(f"threshold must be one of {THRESHOLDS}, got {config.threshold!r}")
  if train_windows is not None and moments is not None:
    raise ValueError("give training windows or their moments, not both")
  if train_windows is not None:
    train_windows = checks.finite_array(train_windows, name="training windows", ndim=3)
    length, channels = train_windows.shape[1:]
  if moments is not None:
    length, channels = moments.window_shape
    if config.threshold == "gaussianity":
      raise ValueError("diffusion.threshold='gaussianity' tests samples of the training windows "
                       "and cannot be fit from their moments (data shards); use 'snr' or "
                       "'fixed'")
  if length is None or channels is None:
    raise ValueError("give training windows or both length and channels")
  sched = schedules.make_schedule(config.kind, config.schedule, config.num_steps)
  if moments is not None and config.representation == "klt":
    if moments.count < 2:
      raise ValueError(f"the 'klt' basis needs >= 2 training windows, got {moments.count}")
    u = basis_lib.klt_of_covariance(moments.covariance())
  else:
    u = basis_lib.basis_matrix(config.representation, length, train_windows)
  if not config.attenuate:
    mask = np.zeros((length, channels), bool)
  elif len(config.indices):
    mask = basis_lib.indices_mask(config.indices, length, channels)
  elif train_windows is not None:
    mask = basis_lib.select_components(train_windows, u, config.energy_keep)
  elif moments is not None:
    mask = basis_lib.select_by_energy(moments.coefficient_energy(u), config.energy_keep)
  else:
    raise ValueError("attenuation needs training windows (energy_keep) or explicit indices")
  n = length * channels
  t_star = threshold(config, sched, train_windows, u, key)
  span = sched.t_max - t_star
  if config.delta > 0:
    delta = float(config.delta)
  else:
    if not 0.0 < config.gamma_end < 1.0:
      raise ValueError(f"gamma_end must be in (0, 1), got {config.gamma_end}")
    # (1/n)^{span/Δ} = gamma_end.
    delta = span * math.log(n) / -math.log(config.gamma_end) if span > 0 else 1.0
    delta = max(delta, 1e-12)
  return Process(schedule=sched, basis=jnp.asarray(u, float),
                 mask=jnp.asarray(mask, float), t_star=jnp.asarray(t_star, float),
                 delta=jnp.asarray(delta, float), num_components=n,
                 representation=config.representation)


def threshold(config, sched: schedules.Schedule, train_windows, basis,
              key: jax.Array | None = None) -> float:
  """t* in the schedule's units, by `config.threshold`."""
  grid = np.linspace(0.0, sched.t_max, sched.num_steps + 1)
  if config.threshold == "fixed":
    if not 0.0 <= config.t_star <= 1.0:
      raise ValueError(f"t_star is a fraction of the time range in [0, 1], got {config.t_star}")
    return float(config.t_star * sched.t_max)
  if config.threshold == "snr":
    snr = np.asarray(sched.a(jnp.asarray(grid[1:], float)) /
                     sched.sigma(jnp.asarray(grid[1:], float)))
    below = np.flatnonzero(snr < config.snr_level)
    return float(grid[1:][below[0]]) if below.size else float(sched.t_max)
  if train_windows is None:
    raise ValueError("the 'gaussianity' threshold needs training windows")
  return gaussianity_threshold(train_windows, sched, basis, config,
                               jax.random.key(0) if key is None else key)


def gaussianity_threshold(train_windows, sched: schedules.Schedule, basis, config,
                          key: jax.Array, max_windows: int = 512) -> float:
  """First time at which x_t looks like a Gaussian mixture (host-side, scikit-learn).

  For each of `config.gaussianity_grid` candidate times (increasing), the
  isotropic marginal x_t of up to `max_windows` training windows is fit by a
  `GaussianMixture` (`gaussianity_components` components, diagonal
  covariances); an RBF-MMD permutation test (median bandwidth, 200
  permutations) compares held-out x_t with samples of the fitted mixture; the
  first t whose p-value exceeds `gaussianity_level` is t*.
  """
  from sklearn import mixture

  x = np.asarray(train_windows, np.float64)
  rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
  if x.shape[0] > max_windows:
    x = x[rng.choice(x.shape[0], max_windows, replace=False)]
  flat = x.reshape(x.shape[0], -1)
  half = flat.shape[0] // 2
  if half < 8:
    raise ValueError(f"the gaussianity threshold needs >= 16 training windows, got {x.shape[0]}")
  times = np.linspace(0.0, sched.t_max, int(config.gaussianity_grid) + 1)[1:]
  for t in times:
    a = float(sched.a(float(t)))
    s = float(sched.sigma(float(t)))
    xt = a * flat + s * rng.standard_normal(flat.shape)
    gmm = mixture.GaussianMixture(int(config.gaussianity_components), covariance_type="diag",
                                  random_state=0).fit(xt[:half])
    samples = gmm.sample(flat.shape[0] - half)[0]
    _, p_value = generative.mmd_permutation_test(xt[half:], samples,
                                                 seed=int(rng.integers(2 ** 31)))
    if p_value > config.gaussianity_level:
      return float(t)
  return float(sched.t_max)


# ----------------------------------------------------------------------------
# Sampling x_t, targets, the regularizer, the prior.


def q_sample(process: Process, x0, t, noise):
  """x_t = a x_0 + σ̄ U(γ_t ⊙ Uᵀ ε).

  Args:
    process: the process.
    x0: [B, L, C] clean windows.
    t: [B] times.
    noise: [B, L, C] ε ~ N(0, I) (time domain; Uᵀε is again N(0, I)).

  Returns:
    [B, L, C] x_t.
  """
  scaled = basis_lib.from_basis(process.gamma(t) * basis_lib.to_basis(noise, process.basis),
                                process.basis)
  return process.a(t) * x0 + process.sigma(t) * scaled


def scaled_noise(process: Process, t, noise):
  """The training target n = γ_t ⊙ Uᵀε in basis U: [B, L, C]."""
  return process.gamma(t) * basis_lib.to_basis(noise, process.basis)


def predict_x0(process: Process, x_t, t, n_hat):
  """x̂_0 = (x_t − σ̄ U n̂) / a from the predicted scaled noise n̂ (basis U). [B, L, C]."""
  return (x_t - process.sigma(t) * basis_lib.from_basis(n_hat, process.basis)) / process.a(t)


def implied_latent(process: Process, x_t, t, n_hat):
  """The model's deterministic latent estimate x̂_T (DDIM-style), time domain [B, L, C].

  x̂_T = a_T x̂_0 + σ̄_T U(γ_T ⊙ ε̂) with ε̂ = n̂ / γ_t: one DDIM step from t to T.
  """
  t_end = jnp.full_like(jnp.asarray(t, float), process.t_max)
  eps_hat = n_hat / process.gamma(t)
  x0_hat = predict_x0(process, x_t, t, n_hat)
  noise_part = basis_lib.from_basis(process.gamma(t_end) * eps_hat, process.basis)
  return process.a(t_end) * x0_hat + process.sigma(t_end) * noise_part


def latent_regularizer(process: Process, x_t, t, n_hat):
  """L_reg per window: Σ_{i∈I} (Uᵀ x̂_T)_i² for t > t*, else 0. [B].

  With n̂ = 0 this is (ᾱ_T/ᾱ_t) Σ_{i∈I} (Uᵀx_t)_i² (VP/DDPM).
  """
  latent = basis_lib.to_basis(implied_latent(process, x_t, t, n_hat), process.basis)
  per_window = jnp.sum(process.mask * latent ** 2, axis=(1, 2))
  active = jnp.asarray(t, float) > process.t_star
  return jnp.where(active, per_window, 0.0)


class DataStats(flax.struct.PyTreeNode):
  """Training statistics in basis U.

  Attributes:
    mean: [L, C] m, the mean of Uᵀx.
    var: [L, C] σ²_i, the per-component variance.
    cov: [n, n] full covariance of the flattened coefficients (n = L·C), or an
      empty [0, 0] array when only the diagonal is kept.
  """
  mean: jnp.ndarray
  var: jnp.ndarray
  cov: jnp.ndarray


def data_stats(process: Process, train_windows=None, *, full_covariance: bool = True,
               moments: moments_lib.WindowMoments | None = None) -> DataStats:
  """m, σ²_i (and the full covariance) of Uᵀx over training windows [N, L, C].

  The SPEC's prior uses the diagonal σ²_i; with attenuation the latent keeps a
  scaled copy of the data in I, so correlations between components survive to
  x_T and the full covariance is the exact Gaussian prior (the default when
  n = L·C is small enough to hold an n × n matrix; see `prior_sample`).
  `moments` (instead of the windows, see `make_process`) gives the diagonal
  statistics, and the full covariance for a basis over the flattened window.
  """
  if moments is not None:
    if train_windows is not None:
      raise ValueError("give training windows or their moments, not both")
    mean, var = moments.coefficient_mean_var(process.basis)
    cov = np.zeros((0, 0))
    if full_covariance:
      if process.basis.shape[0] != mean.size:
        raise ValueError("the full covariance from moments needs a basis over the flattened "
                         "window ('klt'); pass full_covariance=False")
      u = np.asarray(process.basis, np.float64)
      cov = u.T @ moments.covariance() @ u
    return DataStats(mean=jnp.asarray(mean, float), var=jnp.asarray(var, float),
                     cov=jnp.asarray(cov, float))
  x = checks.finite_array(train_windows, name="training windows", ndim=3)
  c = basis_lib.coefficients(x, process.basis)
  flat = c.reshape(c.shape[0], -1)
  cov = np.cov(flat, rowvar=False, bias=True).reshape(flat.shape[1], flat.shape[1]) \
      if full_covariance else np.zeros((0, 0))
  return DataStats(mean=jnp.asarray(c.mean(axis=0), float),
                   var=jnp.asarray(c.var(axis=0), float),
                   cov=jnp.asarray(cov, float))


def gaussian_noise_fn(process: Process, stats: DataStats):
  """The exact scaled-noise predictor of a Gaussian with diagonal covariance in basis U.

  For c_0,i ~ N(m_i, σ²_i) independently, c_t,i = a c_0,i + σ̄ γ_i ε_i gives

      E[γ_i ε_i | c_t] = σ̄ γ_i² (c_t,i − a m_i) / (a² σ²_i + σ̄² γ_i²),

  elementwise (no solve). Returns `noise_fn(x_t [B, L, C], t [B]) -> n̂ [B, L, C]`
  in basis U, the form the samplers take.
  """

  def noise_fn(x_t, t):
    c = basis_lib.to_basis(x_t, process.basis)
    a, sbar, gamma = process.a(t), process.sigma(t), process.gamma(t)
    var = a ** 2 * stats.var + (sbar * gamma) ** 2
    return sbar * gamma ** 2 * (c - a * stats.mean) / jnp.maximum(var, 1e-30)

  return noise_fn


def prior_std(process: Process, stats: DataStats):
  """[L, C] marginal std of the prior in basis U: √(s_T² + a_T² σ²_i)."""
  t_end = jnp.full((1,), process.t_max, float)
  s = process.noise_scale(t_end)[0]
  a = process.a(t_end)[0]
  return jnp.sqrt(s ** 2 + a ** 2 * stats.var)


def prior_sample(process: Process, stats: DataStats, key: jax.Array, num: int):
  """x_T ~ N(a_T m, U (diag s_T² + a_T² Σ) Uᵀ): [num, L, C].

  Σ is the full training covariance in basis U if `stats` holds it, else
  diag σ²_i (the SPEC's form). Both are ≈ N(0, I) without attenuation at a
  long schedule's end, where a_T ≈ 0 and s_T ≈ 1.
  """
  t_end = jnp.full((1,), process.t_max, float)
  a = process.a(t_end)[0]
  shape = stats.mean.shape
  z = jax.random.normal(key, (num,) + shape)
  if stats.cov.size:
    s2 = (process.noise_scale(t_end)[0] ** 2).reshape(-1)
    cov = a.reshape(()) ** 2 * stats.cov + jnp.diag(s2)
    chol = jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(cov.shape[0]))
    coeffs = a * stats.mean + (z.reshape(num, -1) @ chol.T).reshape((num,) + shape)
  else:
    coeffs = a * stats.mean + prior_std(process, stats) * z
  return basis_lib.from_basis(coeffs, process.basis)
