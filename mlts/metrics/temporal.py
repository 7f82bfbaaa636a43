"""Time-series generation benchmark: data sets, discriminative and predictive scores.

The pieces follow the definitions of TimeGAN (Yoon, Jarrett, van der Schaar,
NeurIPS 2019) as reused by Diffusion-TS (Yuan & Qiao, ICLR 2024), so that the
numbers are comparable with the tables of those papers:

* `sines`: TimeGAN's synthetic sine data set, [num, seq_len, dim] in [0, 1].
* `real_windows`: the standard preprocessing of the Stocks and Energy series
  (`mlts.data.ucr.load_generation`): min-max scaling of each column over the
  whole series, then every overlapping window (stride 1), oldest first. This is
  Diffusion-TS's preprocessing (T - L + 1 windows, file order, exact [0, 1]);
  TimeGAN's code differs in three small ways that are not reproduced: it
  reverses the file's rows, cuts T - L windows (the last one is dropped) and
  divides by (max - min + 1e-7), so its maxima are slightly below 1.
* `discriminative_score`: a post-hoc GRU classifier learns real (1) from fake
  (0) on a random 80 % of each set and is tested on the other 20 %; the score
  is |accuracy - 0.5| (0 = indistinguishable, 0.5 = perfectly separable).
* `predictive_score`: train on synthetic, test on real. A GRU trained on the
  fake set predicts, from the first F - 1 features at steps 0..L-2, the last
  feature at steps 1..L-1; the score is its mean absolute error on the whole
  real set (lower is better).

* `correlational_score`: Diffusion-TS's cross-correlation error. Each set
  is standardized per feature over all its windows and steps (ddof = 1); for
  every feature pair (i, j), i >= j (the lower triangle with the diagonal),
  the lag-0 correlation is the mean over steps of x_i · x_j, averaged over
  windows; the score is Σ |real − fake| / 10. `correlational_runs` repeats
  it on random subsets (drawn with replacement, N / runs windows each), as
  Diffusion-TS's evaluation does.

Both networks are those of TimeGAN's metrics: one GRU layer (tanh) with
`hidden = max(F // 2, 1)` units by default (TimeGAN's int(F / 2), which would
be 0 for F = 1), then a dense layer; the classifier reads the last GRU state
and gives one logit, the predictor reads every GRU output and applies a
sigmoid (the data live in [0, 1]). Losses are TimeGAN's: the sum of the mean
binary cross-entropies of a real and a fake batch, and the mean absolute error.
Adam at 1e-3, batches of 128, 2000 classifier and 5000 predictor steps.

Known differences from the TensorFlow reference, none of which changes what
is measured: Flax's GRU cell applies the reset gate after the recurrent matrix
product (TF 1's before) and initialises differently; the batches are drawn as
consecutive random permutations of the training set (every window is seen
once per pass) instead of an independent permutation per step; all sequences
share one length (no variable-length masking).

Each score is one jitted call: the batch indices of every step are drawn from
the PRNG key up front and a `lax.scan` runs all the Adam steps, followed by the
evaluation. The compiled function is cached per hyperparameter set (and by
`jax.jit` per input shape), so repeated scores of same-shaped sets compile once.
Results are deterministic given `seed`.

These metrics are noisy: the papers report the mean (and spread) over several
seeds (Diffusion-TS: 5), which callers should do too.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlts import checks, scan_fit
from mlts.data.windows import sliding_windows


def default_config() -> ml_collections.ConfigDict:
  """Hyperparameters of the post-hoc networks of both scores (TimeGAN's values)."""
  config = ml_collections.ConfigDict()
  # GRU units; None means TimeGAN's rule max(F // 2, 1) for F features.
  config.hidden = ml_collections.config_dict.placeholder(int)
  config.lr = 1e-3  # Adam learning rate (TF's AdamOptimizer default, as in TimeGAN)
  config.batch_size = 128  # per class for the classifier (128 real + 128 fake)
  config.discriminative_steps = 2000  # Adam steps of the classifier
  config.predictive_steps = 5000  # Adam steps of the predictor
  config.train_fraction = 0.8  # share of each set the classifier trains on
  return config


# ---------------------------------------------------------------- data


def sines(num: int, seq_len: int = 24, dim: int = 5, seed: int = 0) -> np.ndarray:
  """TimeGAN's sine data set.

  Each sample and feature has its own frequency and phase, both drawn from
  U(0, 0.1); x_t = sin(freq * t + phase) for t = 0..seq_len-1, mapped to [0, 1]
  as (x + 1) / 2.

  Args:
    num: number of samples N (>= 1).
    seq_len: sequence length L (>= 1).
    dim: number of features F (>= 1).
    seed: NumPy seed (same seed, same data).

  Returns:
    float32 array [N, L, F] with values in [0, 1].

  Raises:
    ValueError: a non-positive size.
  """
  for name, value in (("num", num), ("seq_len", seq_len), ("dim", dim)):
    if int(value) < 1:
      raise ValueError(f"{name}: must be >= 1, got {value}")
  rng = np.random.default_rng(seed)
  # Draw order of TimeGAN's loops: per sample, per feature, the frequency then the phase.
  draws = rng.uniform(0.0, 0.1, size=(int(num), int(dim), 2))
  freq, phase = draws[..., 0], draws[..., 1]  # [N, F] each
  t = np.arange(int(seq_len), dtype=np.float64)[None, :, None]  # [1, L, 1]
  x = np.sin(freq[:, None, :] * t + phase[:, None, :])  # [N, L, F]
  return ((x + 1.0) * 0.5).astype(np.float32)


def minmax_scale(data) -> np.ndarray:
  """Scales each column of a series to [0, 1] over the whole series.

  (x - min) / (max - min) per column, as sklearn's MinMaxScaler; a constant
  column becomes all zeros (sklearn's convention).

  Args:
    data: [T, F] finite values.

  Returns:
    float64 array [T, F]; each non-constant column has min 0 and max 1.

  Raises:
    ValueError: not 2-D, empty, or non-finite.
  """
  x = checks.finite_array(data, name="data", ndim=2).astype(np.float64)
  lo = x.min(axis=0)
  span = x.max(axis=0) - lo
  return (x - lo) / np.where(span > 0, span, 1.0)


def real_windows(data, seq_len: int = 24) -> np.ndarray:
  """Standard preprocessing of a real generation benchmark (Stocks, Energy).

  Min-max scales each column over the whole series (`minmax_scale`), then cuts
  every overlapping window of length seq_len (stride 1) in chronological (file)
  order. Shuffle with `shuffle` if needed.

  Args:
    data: [T, F] finite raw series, e.g. `mlts.data.ucr.load_generation('stock')`.
    seq_len: window length L, 1 <= L <= T.

  Returns:
    float32 array [T - L + 1, L, F]; window i is the scaled series[i:i + L].

  Raises:
    ValueError: bad data (rank, non-finite, empty) or seq_len outside [1, T].
  """
  scaled = minmax_scale(data)
  if not 1 <= int(seq_len) <= scaled.shape[0]:
    raise ValueError(f"seq_len: must be in [1, {scaled.shape[0]}] (the series length), "
                     f"got {seq_len}")
  windows, _, _ = sliding_windows(scaled, int(seq_len), 1, name="data")
  return windows.astype(np.float32)


def shuffle(x, seed: int) -> np.ndarray:
  """Returns a copy of `x` with its first axis randomly permuted.

  Args:
    x: array [N, ...].
    seed: NumPy seed of the permutation (same seed, same order).

  Returns:
    array [N, ...], the rows of `x` in permuted order.
  """
  arr = np.asarray(x)
  if arr.ndim < 1:
    raise ValueError(f"x: expected at least one axis, got shape {arr.shape}")
  return arr[np.random.default_rng(seed).permutation(len(arr))]


# ---------------------------------------------------------------- networks


class GRUClassifier(nn.Module):
  """One GRU layer, then a dense logit from the last state: [B, L, F] -> [B].

  Attributes:
    hidden: GRU units.
  """
  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Classifies sequences.

    Args:
      x: [B, L, F] sequences.

    Returns:
      [B] logits; logit > 0 predicts real (1).
    """
    last, _ = nn.RNN(nn.GRUCell(features=self.hidden), return_carry=True, name="gru")(x)
    return nn.Dense(1, name="logit")(last)[:, 0]


class GRUPredictor(nn.Module):
  """One GRU layer, then a dense sigmoid output per step: [B, L, F] -> [B, L].

  Attributes:
    hidden: GRU units.
  """
  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Predicts one value per time step.

    Args:
      x: [B, L, F] input sequences.

    Returns:
      [B, L] predictions in (0, 1); step t sees inputs 0..t only.
    """
    h = nn.RNN(nn.GRUCell(features=self.hidden), name="gru")(x)  # [B, L, hidden]
    return nn.sigmoid(nn.Dense(1, name="out")(h))[..., 0]


# ---------------------------------------------------------------- training


@functools.lru_cache(maxsize=16)
def _make_discriminative(hidden: int, lr: float, batch_size: int, steps: int
                         ) -> Callable[..., jax.Array]:
  """Jitted `(real_tr, fake_tr, real_te, fake_te, key) -> number of correct test labels`."""
  net = GRUClassifier(hidden=hidden)
  tx = optax.adam(lr)

  def run(real_tr, fake_tr, real_te, fake_te, key):
    n_real, n_fake = real_tr.shape[0], fake_tr.shape[0]
    init_key, real_key, fake_key = jax.random.split(key, 3)
    real_idx = scan_fit.permutation_batches(real_key, n_real, min(batch_size, n_real), steps)
    fake_idx = scan_fit.permutation_batches(fake_key, n_fake, min(batch_size, n_fake), steps)
    params = net.init(init_key, real_tr[:1])["params"]

    def loss_fn(p, ir, jf):
      logit_real = net.apply({"params": p}, real_tr[ir])
      logit_fake = net.apply({"params": p}, fake_tr[jf])
      return (jnp.mean(optax.sigmoid_binary_cross_entropy(logit_real, 1.0))
              + jnp.mean(optax.sigmoid_binary_cross_entropy(logit_fake, 0.0)))

    params = scan_fit.fit(loss_fn, params, tx, (real_idx, fake_idx))
    right_real = jnp.sum(net.apply({"params": params}, real_te) > 0)
    right_fake = jnp.sum(net.apply({"params": params}, fake_te) <= 0)
    return right_real + right_fake

  return jax.jit(run)


def _predictor_inputs(x: jax.Array) -> jax.Array:
  """Inputs at steps 0..L-2: the first F-1 features, or the series itself when F = 1."""
  return x[:, :-1] if x.shape[-1] == 1 else x[:, :-1, :-1]


@functools.lru_cache(maxsize=16)
def _make_predictive(hidden: int, lr: float, batch_size: int, steps: int
                     ) -> Callable[..., jax.Array]:
  """Jitted `(fake [M, L, F], real [N, L, F], key) -> MAE on real` (train on fake)."""
  net = GRUPredictor(hidden=hidden)
  tx = optax.adam(lr)

  def run(fake, real, key):
    x_fake, y_fake = _predictor_inputs(fake), fake[:, 1:, -1]  # [M, L-1, max(F-1, 1)]
    n = fake.shape[0]
    init_key, batch_key = jax.random.split(key)
    batches = scan_fit.permutation_batches(batch_key, n, min(batch_size, n), steps)
    params = net.init(init_key, x_fake[:1])["params"]

    def loss_fn(p, idx):
      return jnp.mean(jnp.abs(net.apply({"params": p}, x_fake[idx]) - y_fake[idx]))

    params = scan_fit.fit(loss_fn, params, tx, batches)
    pred = net.apply({"params": params}, _predictor_inputs(real))
    return jnp.mean(jnp.abs(pred - real[:, 1:, -1]))

  return jax.jit(run)


# ---------------------------------------------------------------- validation


def _resolve_config(config: ml_collections.ConfigDict | None, features: int
                    ) -> tuple[int, float, int, int, int, float]:
  """Checks `config`; returns (hidden, lr, batch_size, disc_steps, pred_steps, train_fraction)."""
  config = default_config() if config is None else config
  hidden = config.get("hidden")
  hidden = max(features // 2, 1) if hidden is None else int(hidden)
  if hidden < 1:
    raise ValueError(f"config.hidden: must be >= 1 (or None), got {config.hidden}")
  for name in ("batch_size", "discriminative_steps", "predictive_steps"):
    if int(config[name]) < 1:
      raise ValueError(f"config.{name}: must be >= 1, got {config[name]}")
  if not float(config.lr) > 0:
    raise ValueError(f"config.lr: must be > 0, got {config.lr}")
  if not 0.0 < float(config.train_fraction) < 1.0:
    raise ValueError(f"config.train_fraction: must be in (0, 1), got {config.train_fraction}")
  return (hidden, float(config.lr), int(config.batch_size), int(config.discriminative_steps),
          int(config.predictive_steps), float(config.train_fraction))


def _pair(real, fake) -> tuple[np.ndarray, np.ndarray]:
  """Validated float32 real [N, L, F] and fake [M, L, F] with matching L and F."""
  r = checks.finite_array(real, name="real", ndim=3).astype(np.float32)
  f = checks.finite_array(fake, name="fake", ndim=3).astype(np.float32)
  if r.shape[1:] != f.shape[1:]:
    raise ValueError(f"real has shape {r.shape} but fake has shape {f.shape}; the sequence "
                     "length L and feature count F (axes 1 and 2) must match")
  return r, f


def _split(n: int, fraction: float, rng: np.random.Generator, name: str
           ) -> tuple[np.ndarray, np.ndarray]:
  """TimeGAN's split: a random int(n * fraction) indices train, the rest test."""
  n_train = int(n * fraction)
  if not 1 <= n_train < n:
    raise ValueError(f"{name}: {n} sequence(s) cannot be split into non-empty train and test "
                     f"parts with train_fraction={fraction}")
  perm = rng.permutation(n)
  return perm[:n_train], perm[n_train:]


# ---------------------------------------------------------------- scores


def discriminative_score(real, fake, *, seed: int = 0,
                         config: ml_collections.ConfigDict | None = None) -> float:
  """TimeGAN's discriminative score: |accuracy - 0.5| of a post-hoc GRU classifier.

  Real and fake sets are each split at random, int(train_fraction * size)
  sequences to train and the rest to test. A `GRUClassifier` learns real (1)
  from fake (0) with `config.discriminative_steps` Adam steps, each on a batch
  of min(batch_size, size) sequences of both sets, minimising the sum of the two
  mean cross-entropies. Accuracy is over the pooled test sequences of both sets
  (so unequal set sizes weigh the larger one more, as in TimeGAN).

  Args:
    real: [N, L, F] finite real sequences, N >= 2, scaled to [0, 1] (`real_windows`).
    fake: [M, L, F] finite generated sequences, M >= 2, same L and F.
    seed: seeds the split, the initialisation and the batch order.
    config: `default_config()`-like; None uses the defaults.

  Returns:
    Score in [0, 0.5]; lower means the fake set is harder to tell from the real one.

  Raises:
    ValueError: bad rank, non-finite values, mismatched L or F, a set too small
      to split, or a bad config.
  """
  r, f = _pair(real, fake)
  hidden, lr, batch_size, steps, _, fraction = _resolve_config(config, r.shape[2])
  rng = np.random.default_rng(seed)
  r_tr, r_te = _split(len(r), fraction, rng, "real")
  f_tr, f_te = _split(len(f), fraction, rng, "fake")
  run = _make_discriminative(hidden, lr, batch_size, steps)
  key = jax.random.fold_in(jax.random.key(seed), 1)
  correct = run(jnp.asarray(r[r_tr]), jnp.asarray(f[f_tr]), jnp.asarray(r[r_te]),
                jnp.asarray(f[f_te]), key)
  accuracy = int(correct) / (len(r_te) + len(f_te))
  return float(abs(accuracy - 0.5))


def predictive_score(real, fake, *, seed: int = 0,
                     config: ml_collections.ConfigDict | None = None) -> float:
  """TimeGAN's predictive score: train on fake, test on real, mean absolute error.

  A `GRUPredictor` is trained on all fake sequences with
  `config.predictive_steps` Adam steps (batches of min(batch_size, M)) to
  predict the last feature at steps 1..L-1 from the first F - 1 features at
  steps 0..L-2 (for univariate series, F = 1, from the series itself at steps
  0..L-2: one-step-ahead forecasting), with an L1 loss; the score is its MAE over all real sequences
  and steps (equal to TimeGAN's mean of per-sequence MAEs, as all sequences
  share one length).

  Args:
    real: [N, L, F] finite real sequences scaled to [0, 1], L >= 2.
    fake: [M, L, F] finite generated sequences, same L and F.
    seed: seeds the initialisation and the batch order.
    config: `default_config()`-like; None uses the defaults.

  Returns:
    MAE >= 0; lower means the fake set is more useful to learn the real dynamics.

  Raises:
    ValueError: bad rank, non-finite values, mismatched L or F, L < 2, or a bad
      config.
  """
  r, f = _pair(real, fake)
  _, length, features = r.shape
  if length < 2:
    raise ValueError(f"predictive_score needs L >= 2 steps (it predicts one step ahead), got "
                     f"shape {r.shape}")
  hidden, lr, batch_size, _, steps, _ = _resolve_config(config, features)
  run = _make_predictive(hidden, lr, batch_size, steps)
  key = jax.random.fold_in(jax.random.key(seed), 2)
  return float(run(jnp.asarray(f), jnp.asarray(r), key))


def lag0_correlations(x) -> np.ndarray:
  """[F (F + 1) / 2] mean lag-0 correlations of standardized windows x [N, L, F].

  Pairs in `np.tril_indices(F)` order (i >= j, row by row); each set is
  standardized per feature over (N, L) with ddof = 1.
  """
  a = checks.finite_array(x, name="windows", ndim=3).astype(np.float64)
  if a.shape[0] * a.shape[1] < 2:
    raise ValueError(f"windows: need at least 2 values per feature, got shape {a.shape}")
  std = a.std(axis=(0, 1), ddof=1, keepdims=True)
  z = (a - a.mean(axis=(0, 1), keepdims=True)) / np.where(std > 0, std, 1.0)
  rows, cols = np.tril_indices(a.shape[2])
  return np.mean(z[..., rows] * z[..., cols], axis=(0, 1))


def correlational_score(real, fake) -> float:
  """Σ over feature pairs (i >= j) of |lag-0 correlation of real − of fake| / 10."""
  r, f = _pair(real, fake)
  return float(np.sum(np.abs(lag0_correlations(r) - lag0_correlations(f))) / 10.0)


def correlational_runs(real, fake, *, runs: int = 5, seed: int = 0) -> list[float]:
  """`correlational_score` on `runs` random subsets of N // runs windows of each set.

  As Diffusion-TS's evaluation: the subsets are drawn with replacement from
  `np.random.default_rng(seed)`.
  """
  r, f = _pair(real, fake)
  size = max(r.shape[0] // runs, 2)
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(runs):  # a handful of subsets, each scored vectorized
    out.append(correlational_score(r[rng.integers(0, r.shape[0], size)],
                                   f[rng.integers(0, f.shape[0], size)]))
  return out
