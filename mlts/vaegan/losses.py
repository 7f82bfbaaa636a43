"""β-VAEGAN losses (papers/001 eq. 3-4, SPEC §5) as pure functions of arrays.

    L_D = BCE(D(x), 1) + BCE(D(x̂), 0)
    L_G = ‖f(x) − f(x̂)‖² + ν·BCE(x̂, x) + β·KL(q(z|x) ‖ N(0, I))

Normalization, following the paper's appendix: the reconstruction BCE is
averaged over length × channels × batch, and the feature-matching term is the
mean squared feature difference (as BeatGAN), while the KL term is *summed*
over latent dimensions and the batch. That is the reading under which the
paper's "β = 1e-4 ≙ unscaled β = 160 · 1 · 256 · 1e-4 = 4.096" holds: dividing
an unnormalized sum-BCE + 4.096·KL_sum by 40960 gives mean-BCE + 1e-4·KL_sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Probabilities are clipped to [EPS, 1 - EPS] before the log, so a saturated
# sigmoid gives a large finite loss instead of inf/NaN (float32 holds 1 - 1e-7).
EPS = 1e-7


def bce(p: jax.Array, target: jax.Array) -> jax.Array:
  """Elementwise binary cross-entropy −[t·log p + (1 − t)·log(1 − p)], numerically safe.

  Args:
    p: probabilities, any shape.
    target: targets in [0, 1] (hard labels or soft targets such as scaled
      windows), broadcastable to `p`.

  Returns:
    The elementwise loss, shape of `p` (broadcast with `target`).
  """
  p = jnp.clip(p, EPS, 1.0 - EPS)
  return -(target * jnp.log(p) + (1.0 - target) * jnp.log1p(-p))


def kl_standard_normal(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(μ, diag σ²) ‖ N(0, I)) per example, summed over the latent dimensions.

  Args:
    mu: [..., K] posterior means.
    logvar: [..., K] posterior log-variances log σ².

  Returns:
    [...] KL divergences (nats).
  """
  return 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


REC_LOSSES = ("bce", "mse")


def generator_loss(x: jax.Array, x_hat: jax.Array, feat_real: jax.Array | None,
                   feat_fake: jax.Array | None, mu: jax.Array, logvar: jax.Array, *,
                   beta: float, nu: float, rec_loss: str = "bce"
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L_G = mean (f(x) − f(x̂))² + ν·mean rec(x̂, x) + β·Σ KL.

  Args:
    x: [B, L, C] windows (the reconstruction targets; in [0, 1] for 'bce').
    x_hat: [B, L, C] reconstructions ((0, 1) for 'bce').
    feat_real: [B, F] discriminator features f(x), treated as a constant target;
      None (with `feat_fake` None) for a model without a discriminator: the
      adversarial term is then 0 (the AE and VAE baselines).
    feat_fake: [B, F] discriminator features f(x̂), or None.
    mu: [B, K] posterior means.
    logvar: [B, K] posterior log-variances.
    beta: KL weight (0 for the deterministic models).
    nu: reconstruction weight.
    rec_loss: 'bce' (sigmoid outputs, the paper's choice) or 'mse' (the
      original BeatGAN with tanh outputs); either is a mean over L · C · B.

  Returns:
    (scalar loss, metrics dict with 'adv', 'rec', 'kl' (the unweighted terms)
    and 'mse' (mean squared reconstruction error)).
  """
  if rec_loss not in REC_LOSSES:
    raise ValueError(f"rec_loss must be one of {REC_LOSSES}, got {rec_loss!r}")
  if (feat_real is None) != (feat_fake is None):
    raise ValueError("feat_real and feat_fake must both be given or both be None")
  if feat_real is None:
    adv = jnp.zeros((), x_hat.dtype)
  else:
    # f(x) is the target of feature matching; only the generator moves f(x̂).
    adv = jnp.mean(jnp.square(jax.lax.stop_gradient(feat_real) - feat_fake))
  if rec_loss == "bce":
    rec = jnp.mean(bce(x_hat, x))  # / (L · C · B)
  else:
    rec = jnp.mean(jnp.square(x_hat - x))
  kl = jnp.sum(kl_standard_normal(mu, logvar))  # summed over batch: see module docstring
  loss = adv + nu * rec + beta * kl
  mse = jnp.mean(jnp.square(x - x_hat))
  return loss, {"adv": adv, "rec": rec, "kl": kl, "mse": mse}


def discriminator_loss(p_real: jax.Array, p_fake: jax.Array
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L_D = mean BCE(D(x), 1) + mean BCE(D(x̂), 0).

  Args:
    p_real: [B] discriminator probabilities on real windows.
    p_fake: [B] discriminator probabilities on reconstructions.

  Returns:
    (scalar loss, metrics dict with 'd_real' and 'd_fake', the mean probabilities).
  """
  loss = jnp.mean(bce(p_real, 1.0)) + jnp.mean(bce(p_fake, 0.0))
  return loss, {"d_real": jnp.mean(p_real), "d_fake": jnp.mean(p_fake)}
