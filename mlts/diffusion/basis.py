"""Orthonormal bases along time and the choice of attenuated components (SPEC §2).

A window x [L, C] is handled in an orthonormal basis U [L, L] applied along
time, per channel: the coefficients are c = Uᵀx, i.e. `to_basis(x, U)`, and
`from_basis(c, U)` = U c inverts it exactly. `representation`:

* 'time': U = I (the time domain);
* 'freq': U = the orthonormal DCT-II matrix (column k is the k-th cosine);
* 'both': U = DCT-II, and the network also receives the DCT coefficients of
  its input as extra channels (`network_input`);
* 'klt': the Karhunen–Loève transform of whole windows, U [L·C, L·C] whose
  columns are the principal directions of the flattened training windows
  (`klt_matrix`). It acts on the window flattened time-major, so it mixes
  channels as well as time steps: the training covariance is diagonal in it
  and its leading components are the energy-optimal subspace (the DCT is the
  KLT of a stationary process, one channel at a time). The diagonal Gaussian
  of the training windows in this basis is their full-covariance Gaussian.

A component is one (k, c) pair for the bases along time, one principal
direction (index k·C + c of the flattened [L, C] array) for 'klt': n = L·C
components in all. `to_basis` and `from_basis` tell the two kinds apart by the
basis' size: [L, L] acts along time, [L·C, L·C] on the flattened window.
`select_components` picks the set I that the forward process attenuates: the
components outside the smallest set holding `energy_keep` of the training
energy in basis U (mean squared coefficient over training windows).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mlts import checks

REPRESENTATIONS = ("time", "freq", "both", "klt")


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


def klt_matrix(train_windows) -> np.ndarray:
  """Karhunen–Loève basis U [L·C, L·C] of training windows [N, L, C] (flattened time-major).

  The eigenvectors of the windows' covariance (about their mean), by
  decreasing eigenvalue; each column's sign makes its largest-magnitude entry
  positive, so the basis is a deterministic function of the data. UᵀU = I.
  """
  x = checks.finite_array(train_windows, name="training windows", ndim=3)
  flat = x.reshape(x.shape[0], -1)
  if flat.shape[0] < 2:
    raise ValueError(f"the 'klt' basis needs >= 2 training windows, got {flat.shape[0]}")
  return klt_of_covariance(np.cov(flat, rowvar=False, bias=True).reshape(
      flat.shape[1], flat.shape[1]))


def klt_of_covariance(covariance) -> np.ndarray:
  """`klt_matrix` from the windows' covariance [L·C, L·C] (e.g. `moments.covariance()`)."""
  eigvals, vectors = np.linalg.eigh(np.asarray(covariance, np.float64))
  vectors = vectors[:, np.argsort(-eigvals, kind="stable")]
  peak = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])]
  return vectors * np.where(peak < 0, -1.0, 1.0)


def basis_matrix(representation: str, length: int, train_windows=None) -> np.ndarray:
  """U: identity ('time') or DCT-II ('freq', 'both') [L, L]; KLT ('klt') [L·C, L·C].

  `train_windows` [N, L, C]: needed by (only) 'klt'.
  """
  if representation not in REPRESENTATIONS:
    raise ValueError(
        f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
  if representation == "klt":
    if train_windows is None:
      raise ValueError("the 'klt' representation needs training windows to build its basis")
    return klt_matrix(train_windows)
  return np.eye(length) if representation == "time" else dct_matrix(length)


def basis_shape(representation: str, length: int, channels: int) -> tuple[int, int]:
  """The shape of U for a representation and windows [L, C]."""
  n = length * channels if representation == "klt" else length
  return (n, n)


def acts_on_flat(x_shape, basis_shape) -> bool:
  """True for a basis over the flattened window [L·C, L·C], False for one along time."""
  length, channels = x_shape[-2:]
  if basis_shape[0] == length:
    return False
  if basis_shape[0] == length * channels:
    return True
  raise ValueError(f"basis of shape {tuple(basis_shape)} fits neither the length {length} nor "
                   f"the flattened size {length * channels} of windows {tuple(x_shape[-2:])}")


def to_basis(x, basis):
  """Coefficients c = Uᵀx: [..., L, C] -> [..., L, C] (along time, or of the flattened window)."""
  if acts_on_flat(x.shape, basis.shape):
    flat = x.reshape(x.shape[:-2] + (-1,))
    return jnp.matmul(flat, basis).reshape(x.shape)
  return jnp.einsum("lk,...lc->...kc", basis, x)


def from_basis(c, basis):
  """Windows x = U c: [..., L, C] coefficients -> [..., L, C]."""
  if acts_on_flat(c.shape, basis.shape):
    flat = c.reshape(c.shape[:-2] + (-1,))
    return jnp.matmul(flat, basis.T).reshape(c.shape)
  return jnp.einsum("lk,...kc->...lc", basis, c)


def coefficients(x, basis) -> np.ndarray:
  """Host-side `to_basis` in float64: [N, L, C] -> [N, L, C] NumPy coefficients."""
  x = np.asarray(x, np.float64)
  u = np.asarray(basis, np.float64)
  if acts_on_flat(x.shape, u.shape):
    return (x.reshape(x.shape[0], -1) @ u).reshape(x.shape)
  return np.einsum("lk,nlc->nkc", u, x)


def network_input(x, basis, representation: str):
  """What the network sees: x [B, L, C], plus Uᵀx as C more channels for 'both'."""
  if representation == "both":
    return jnp.concatenate([x, to_basis(x, basis)], axis=-1)
  return x


def component_energy(train_windows, basis) -> np.ndarray:
  """Mean squared coefficient per component over training windows: [N, L, C] -> [L, C]."""
  x = checks.finite_array(train_windows, name="training windows", ndim=3)
  return np.mean(coefficients(x, basis) ** 2, axis=0)


def select_components(train_windows, basis, energy_keep: float = 0.95) -> np.ndarray:
  """The attenuated set I as a mask [L, C]: everything outside the top-energy set.

  Components are sorted by training energy (descending; ties by index); the
  smallest leading set whose energy reaches `energy_keep` of the total is kept
  isotropic and every other component is in I.

  Args:
    train_windows: [N, L, C] training windows.
    basis: U ([L, L] or [L·C, L·C], see `to_basis`).
    energy_keep: fraction of the energy kept outside I, in (0, 1].

  Returns:
    bool [L, C]: True for components in I (attenuated).
  """
  return select_by_energy(component_energy(train_windows, basis), energy_keep)


def select_by_energy(energy, energy_keep: float = 0.95) -> np.ndarray:
  """`select_components` from the component energies [L, C] (mean squared coefficient)."""
  if not 0.0 < energy_keep <= 1.0:
    raise ValueError(f"energy_keep must be in (0, 1], got {energy_keep}")
  energy = np.asarray(energy, np.float64)
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
