"""Orthonormal bases along time and the choice of attenuated components (SPEC §2).

A window x [L, C] is handled in an orthonormal basis U [L, L] applied along
time, per channel: the coefficients are c = Uᵀx, i.e. `to_basis(x, U)`, and
`from_basis(c, U)` = U c inverts it exactly. `representation`:

* 'time': U = I (the time domain);
* 'freq': U = the orthonormal DCT-II matrix (column k is the k-th cosine);
* 'both': U = DCT-II, and the network also receives the DCT coefficients of
  its input as extra channels (`network_input`).

A component is one (k, c) pair: n = L·C components in all.
`select_components` picks the set I that the forward process attenuates: the
components outside the smallest set holding `energy_keep` of the training
energy in basis U (mean squared coefficient over training windows).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mlts import checks

REPRESENTATIONS = ("time", "freq", "both")


def dct_matrix(length: int) -> np.ndarray:
  """Orthonormal DCT-II matrix U [L, L] whose column k is the k-th basis vector.

  U[l, k] = √(2/L) cos(π (l + ½) k / L), column 0 scaled by 1/√2, so that
  Uᵀx equals `scipy.fft.dct(x, norm='ortho')` and UᵀU = I.
  """
  if length < 1:
    raise ValueError(f"length must be >= 1, got {length}")
  steps = np.arange(length)[:, None]
  k = np.arange(length)[None, :]
  u = np.sqrt(2.0 / length) * np.cos(np.pi * (steps + 0.5) * k / length)
  u[:, 0] /= np.sqrt(2.0)
  return u


def basis_matrix(representation: str, length: int) -> np.ndarray:
  """U [L, L] for a representation: identity ('time') or DCT-II ('freq', 'both')."""
  if representation not in REPRESENTATIONS:
    raise ValueError(
        f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
  return np.eye(length) if representation == "time" else dct_matrix(length)


def to_basis(x, basis):
  """Coefficients c = Uᵀx along time: [..., L, C] -> [..., L, C]."""
  return jnp.einsum("lk,...lc->...kc", basis, x)


def from_basis(c, basis):
  """Windows x = U c: [..., L, C] coefficients -> [..., L, C]."""
  return jnp.einsum("lk,...kc->...lc", basis, c)


def network_input(x, basis, representation: str):
  """What the network sees: x [B, L, C], plus Uᵀx as C more channels for 'both'."""
  if representation == "both":
    return jnp.concatenate([x, to_basis(x, basis)], axis=-1)
  return x


def component_energy(train_windows, basis) -> np.ndarray:
  """Mean squared coefficient per component over training windows: [N, L, C] -> [L, C]."""
  x = checks.finite_array(train_windows, name="training windows", ndim=3)
  c = np.einsum("lk,nlc->nkc", np.asarray(basis, np.float64), x)
  return np.mean(c ** 2, axis=0)


def select_components(train_windows, basis, energy_keep: float = 0.95) -> np.ndarray:
  """The attenuated set I as a mask [L, C]: everything outside the top-energy set.

  Components are sorted by training energy (descending; ties by index); the
  smallest leading set whose energy reaches `energy_keep` of the total is kept
  isotropic and every other component is in I.

  Args:
    train_windows: [N, L, C] training windows.
    basis: U [L, L].
    energy_keep: fraction of the energy kept outside I, in (0, 1].

  Returns:
    bool [L, C]: True for components in I (attenuated).
  """
  if not 0.0 < energy_keep <= 1.0:
    raise ValueError(f"energy_keep must be in (0, 1], got {energy_keep}")
  energy = component_energy(train_windows, basis)
  flat = energy.reshape(-1)
  total = flat.sum()
  if total <= 0:
    raise ValueError("training windows have zero energy in every component")
  order = np.argsort(-flat, kind="stable")
  cumulative = np.cumsum(flat[order])
  num_kept = int(np.searchsorted(cumulative, energy_keep * total * (1 - 1e-12)) + 1)
  mask = np.ones(flat.size, bool)
  mask[order[:min(num_kept, flat.size)]] = False
  return mask.reshape(energy.shape)


def indices_mask(indices, length: int, channels: int) -> np.ndarray:
  """A mask [L, C] from explicit component indices along time (same for every channel)."""
  idx = np.asarray(indices, dtype=np.int64).reshape(-1)
  if idx.size and (idx.min() < 0 or idx.max() >= length):
    raise ValueError(f"component indices must lie in [0, {length}), got {idx.tolist()}")
  mask = np.zeros((length, channels), bool)
  mask[idx, :] = True
  return mask
