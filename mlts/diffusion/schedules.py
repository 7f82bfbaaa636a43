"""Noise schedules: signal scale a(t) and isotropic noise scale σ̄(t) (SPEC §2).

Every process here has Gaussian marginals x_t = a(t) x_0 + σ̄(t) · noise; the
per-component γ (process.py) multiplies σ̄. Three families:

* 'ddpm': discrete steps t = 0, 1, ..., T with ᾱ_0 = 1 and ᾱ_t = Π_{j≤t}(1 − β_j)
  from a 'linear' (Ho et al. 2020: β from 1e-4 to 0.02) or 'cosine' (Nichol &
  Dhariwal 2021) schedule; a = √ᾱ, σ̄ = √(1 − ᾱ). Non-integer t interpolates
  log ᾱ linearly (used only by continuous-time code paths).
* 'vp': continuous t ∈ [0, 1], the VP SDE of Song et al. 2021: 'linear'
  ᾱ(t) = exp(−β_min t − ½(β_max − β_min) t²) (β_min 0.1, β_max 20) or 'cosine'.
* 've': continuous t ∈ [0, 1], a = 1 and σ̄(t) = σ_min (σ_max/σ_min)^t.

`Schedule` is a pytree (its arrays can be passed through jit); `a(t)` and
`sigma(t)` take t of any shape and broadcast.
"""

from __future__ import annotations

import flax.struct
import jax.numpy as jnp
import numpy as np

KINDS = ("ddpm", "vp", "ve")


def linear_betas(num_steps: int, beta_min: float = 1e-4, beta_max: float = 0.02) -> np.ndarray:
  """[T] β_t rising linearly (DDPM)."""
  return np.linspace(beta_min, beta_max, num_steps, dtype=np.float64)


def cosine_alpha_bars(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
  """[T + 1] ᾱ_t of the cosine schedule with β_t clipped at `max_beta`; ᾱ_0 = 1."""
  t = np.arange(num_steps + 1, dtype=np.float64) / num_steps
  f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
  betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, max_beta)
  return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def alpha_bar_table(schedule: str, num_steps: int, **kwargs) -> np.ndarray:
  """[T + 1] ᾱ_t for t = 0..T of a discrete schedule ('linear' or 'cosine').

  'linear' scales the β range by 1000 / T (Nichol & Dhariwal 2021), so a
  shorter chain ends as close to pure noise as DDPM's T = 1000 does.
  """
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if schedule == "linear":
    scale = 1000.0 / num_steps
    beta_min = kwargs.pop("beta_min", 1e-4) * scale
    beta_max = min(kwargs.pop("beta_max", 0.02) * scale, 0.999)
    betas = linear_betas(num_steps, beta_min, beta_max)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])
  if schedule == "cosine":
    return cosine_alpha_bars(num_steps, **kwargs)
  raise ValueError(f"unknown schedule {schedule!r}; expected 'linear' or 'cosine'")


class Schedule(flax.struct.PyTreeNode):
  """a(t) and σ̄(t) of one process family.

  Attributes:
    kind: 'ddpm', 'vp' or 've' (static).
    name: 'linear' or 'cosine' (static; 've' ignores it).
    num_steps: T for 'ddpm'; the number of training/time-grid steps otherwise.
    log_alpha_bar: [T + 1] log ᾱ_t table ('ddpm'; empty otherwise).
    beta_min, beta_max: VP linear parameters; sigma_min, sigma_max: VE.
  """
  kind: str = flax.struct.field(pytree_node=False)
  name: str = flax.struct.field(pytree_node=False)
  num_steps: int = flax.struct.field(pytree_node=False)
  log_alpha_bar: jnp.ndarray
  beta_min: float = flax.struct.field(pytree_node=False, default=0.1)
  beta_max: float = flax.struct.field(pytree_node=False, default=20.0)
  sigma_min: float = flax.struct.field(pytree_node=False, default=0.01)
  sigma_max: float = flax.struct.field(pytree_node=False, default=50.0)

  @property
  def t_max(self) -> float:
    """The end of time: T ('ddpm') or 1."""
    return float(self.num_steps) if self.kind == "ddpm" else 1.0

  def log_alpha_bar_at(self, t):
    """log ᾱ(t) (VP families; VE has a = 1, so 0)."""
    t = jnp.asarray(t, float) if not hasattr(t, "dtype") else t
    if self.kind == "ddpm":
      table = self.log_alpha_bar
      lo = jnp.clip(jnp.floor(t), 0, self.num_steps - 1).astype(jnp.int32)
      frac = t - lo
      return table[lo] * (1 - frac) + table[lo + 1] * frac
    if self.kind == "vp":
      if self.name == "linear":
        return -(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t ** 2)
      s = 0.008
      f = jnp.cos((t + s) / (1 + s) * jnp.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
      return jnp.log(jnp.clip(f, 1e-12, 1.0))
    return jnp.zeros_like(t)

  def a(self, t):
    """Signal scale a(t) = √ᾱ(t) (VP, DDPM) or 1 (VE)."""
    return jnp.exp(0.5 * self.log_alpha_bar_at(t))

  def sigma(self, t):
    """Isotropic noise scale σ̄(t) = √(1 − ᾱ(t)) (VP, DDPM) or σ_min (σ_max/σ_min)^t (VE)."""
    if self.kind == "ve":
      t = jnp.asarray(t)
      return self.sigma_min * (self.sigma_max / self.sigma_min) ** t
    return jnp.sqrt(-jnp.expm1(self.log_alpha_bar_at(t)))


def make_schedule(kind: str, name: str = "linear", num_steps: int = 1000, **kwargs) -> Schedule:
  """Builds a `Schedule`.

  Args:
    kind: 'ddpm' (discrete), 'vp' or 've' (continuous t in [0, 1]).
    name: 'linear' or 'cosine'.
    num_steps: T (the DDPM step count; for SDEs the number of steps of the
      time grid used by threshold search and default samplers).
    **kwargs: beta_min/beta_max (DDPM β range, or the VP SDE's β(t) range),
      sigma_min/sigma_max (VE).

  Returns:
    The schedule.
  """
  if kind not in KINDS:
    raise ValueError(f"unknown process kind {kind!r}; expected one of {KINDS}")
  if kind == "ddpm":
    table = alpha_bar_table(name, num_steps, **kwargs)
    return Schedule(kind=kind, name=name, num_steps=num_steps,
                    log_alpha_bar=jnp.asarray(np.log(table), float))
  if name not in ("linear", "cosine"):
    raise ValueError(f"unknown schedule {name!r}; expected 'linear' or 'cosine'")
  return Schedule(kind=kind, name=name, num_steps=num_steps,
                  log_alpha_bar=jnp.zeros((0,), float), **kwargs)
