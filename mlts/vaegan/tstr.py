"""TSTR: train on synthetic, test on real (Esteban et al. 2017; papers/001, Table I).

A small 1-D CNN (`ConvClassifier`) learns normal (0) versus abnormal (1)
windows. TSTR is the F1 score, on real held-out windows, of a classifier
trained on synthetic windows (a generative model's reconstructions of labelled
real windows, carrying the real labels); TRTR is the F1 of the same classifier
trained on the corresponding real windows; the normalized score of the paper is
TSTR_N = TSTR / TRTR.

Unlike the paper's code, whose classifier-train and classifier-test sets
overlap, `tstr_scores` splits the labelled windows first (stratified,
`split_indices`) and asks for synthetic windows of the classifier-train part
only, so no test window, nor its reconstruction, is ever trained on.

Both classifiers are trained with the same PRNG key, so identical inputs give
identical classifiers (an identity `synth_fn` gives TSTR == TRTR exactly).
Training is one jitted call: the batch indices of every step are drawn from the
key up front and a `lax.scan` runs all the Adam steps; the compiled function is
cached per hyperparameter set and input shape, so the real and the synthetic
classifier share one compilation.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlts import checks, scan_fit
from mlts.metrics.pointwise import pointwise

# Windows per `predict` chunk; the whole prediction is one jitted `lax.map` over chunks.
_PREDICT_CHUNK = 1024


def default_config() -> ml_collections.ConfigDict:
  """The TSTR classifier's hyperparameters and the held-out fraction."""
  config = ml_collections.ConfigDict()
  config.hidden = (16, 32)  # conv widths; each block halves the length (max-pool 2)
  config.kernel = 5  # conv kernel size (stride 1, 'SAME')
  config.dense = 32  # width of the hidden dense layer
  config.lr = 1e-3  # Adam learning rate
  config.batch_size = 32
  config.epochs = 30  # passes over the classifier-train windows
  config.min_steps = 500  # at least this many Adam steps (small validation sets need them)
  config.test_fraction = 0.5  # share of each class held out as real test windows
  return config


class ConvClassifier(nn.Module):
  """1-D CNN window classifier: [B, L, C] -> logits [B] (positive = abnormal).

  Attributes:
    hidden: channels of each conv block (conv, ReLU, max-pool 2).
    kernel: conv kernel size.
    dense: width of the hidden dense layer.
  """
  hidden: Sequence[int] = (16, 32)
  kernel: int = 5
  dense: int = 32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Classifies windows.

    Args:
      x: [B, L, C] windows, any L >= 1.

    Returns:
      [B] logits; logit > 0 predicts abnormal (1).
    """
    h = x
    for i, width in enumerate(self.hidden):
      h = nn.Conv(width, (self.kernel,), strides=(1,), padding="SAME", name=f"conv_{i}")(h)
      h = nn.relu(h)
      # 'SAME' pooling gives ceil(L / 2), so short windows never shrink to length 0.
      h = nn.max_pool(h, (2,), strides=(2,), padding="SAME")
    h = jnp.mean(h, axis=1)  # global average pool over time: [B, hidden[-1]]
    h = nn.relu(nn.Dense(self.dense, name="dense")(h))
    return nn.Dense(1, name="logit")(h)[:, 0]


def _module(config: ml_collections.ConfigDict) -> ConvClassifier:
  return ConvClassifier(hidden=tuple(int(w) for w in config.hidden), kernel=int(config.kernel),
                        dense=int(config.dense))


def _check_config(config: ml_collections.ConfigDict) -> None:
  hidden = tuple(config.hidden)
  if not hidden or any(int(w) < 1 for w in hidden):
    raise ValueError(f"config.hidden: expected positive conv widths, got {hidden}")
  for name in ("kernel", "dense", "batch_size", "epochs"):
    if int(config[name]) < 1:
      raise ValueError(f"config.{name}: must be >= 1, got {config[name]}")
  if not config.lr > 0:
    raise ValueError(f"config.lr: must be > 0, got {config.lr}")


def _windows(x, name: str) -> np.ndarray:
  """Validated [N, L, C] float32 windows."""
  return checks.finite_array(x, name=name, ndim=3).astype(np.float32)


def split_indices(labels, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Stratified split of sample indices into classifier-train and classifier-test parts.

  Each class c with n_c members puts round(n_c * test_fraction), clipped to
  [1, n_c - 1], randomly chosen members into the test part and the rest into
  the train part, so both parts hold both classes and each part's class counts
  are within one sample of the exact proportion.

  Args:
    labels: [N] {0,1} labels (1 = abnormal).
    test_fraction: share of each class to hold out, in (0, 1).
    seed: seed of the permutation (same seed, same split).

  Returns:
    (train_idx, test_idx): sorted int64 arrays, disjoint, together covering
    range(N).

  Raises:
    ValueError: labels not a 1-D {0,1} vector, test_fraction outside (0, 1), or
      a class with fewer than 2 members (it cannot appear on both sides).
  """
  y = checks.binary_vector(labels, name="labels")
  if not 0.0 < float(test_fraction) < 1.0:
    raise ValueError(f"test_fraction: must be in (0, 1), got {test_fraction}")
  rng = np.random.default_rng(seed)
  train_parts, test_parts = [], []
  for c in (0, 1):  # two classes, not samples
    members = np.flatnonzero(y == c)
    if len(members) < 2:
      raise ValueError(
          f"labels: class {c} has {len(members)} member(s); each class needs at least 2 so "
          "that both the classifier-train and the classifier-test part hold it")
    n_test = int(np.clip(round(len(members) * float(test_fraction)), 1, len(members) - 1))
    members = rng.permutation(members)
    test_parts.append(members[:n_test])
    train_parts.append(members[n_test:])
  return (np.sort(np.concatenate(train_parts)).astype(np.int64),
          np.sort(np.concatenate(test_parts)).astype(np.int64))


@functools.lru_cache(maxsize=32)
def _make_fit(hidden: tuple[int, ...], kernel: int, dense: int, lr: float, batch_size: int,
              epochs: int, min_steps: int) -> Callable[[jax.Array, jax.Array, jax.Array], Any]:
  """Jitted `fit(x [N, L, C], y [N], key) -> params` for one hyperparameter set."""
  net = ConvClassifier(hidden=hidden, kernel=kernel, dense=dense)
  tx = optax.adam(lr)

  def fit(x: jax.Array, y: jax.Array, key: jax.Array) -> Any:
    n = x.shape[0]
    batch = min(batch_size, n)
    # ceil: every epoch's windows are all visited; at least min_steps steps.
    steps = max(-(-epochs * n // batch), min_steps)
    init_key, perm_key = jax.random.split(key)
    batches = scan_fit.permutation_batches(perm_key, n, batch, steps)
    yf = y.astype(jnp.float32)
    n_pos = jnp.sum(yf)
    pos_weight = (n - n_pos) / n_pos  # class balance: positives weigh n_neg / n_pos
    params = net.init(init_key, x[:1])["params"]

    def loss_fn(p, idx):
      logits = net.apply({"params": p}, x[idx])
      t = yf[idx]
      w = jnp.where(t > 0, pos_weight, 1.0)
      return jnp.mean(w * optax.sigmoid_binary_cross_entropy(logits, t))

    params = scan_fit.fit(loss_fn, params, tx, batches)
    return params

  return jax.jit(fit)


def train_classifier(x, y, config: ml_collections.ConfigDict, key: jax.Array) -> Any:
  """Trains a `ConvClassifier` with class-balanced binary cross-entropy.

  Positives are weighted by n_neg / n_pos so rare anomalies are learned. Adam
  with `config.lr` runs max(ceil(epochs * N / batch), min_steps) steps on batches of
  min(batch_size, N) windows drawn as consecutive per-epoch permutations. The
  whole run is one jitted call and is deterministic given `key`.

  Args:
    x: [N, L, C] finite float windows.
    y: [N] {0,1} labels holding both classes.
    config: `default_config()`-like; uses hidden, kernel, dense, lr,
      batch_size, epochs and min_steps.
    key: PRNG key for the initialization and the batch order.

  Returns:
    The trained 'params' pytree of `ConvClassifier`.

  Raises:
    ValueError: bad shapes or values of `x` or `y`, a single class in `y`, or a
      bad config.
  """
  _check_config(config)
  xa = _windows(x, "x")
  ya = checks.binary_vector(y, name="y")
  checks.same_length(xa, ya, names=("x", "y"))
  n_pos = int(ya.sum())
  if n_pos in (0, len(ya)):
    raise ValueError(f"y: needs both classes to train a classifier, got {n_pos} of {len(ya)} "
                     "abnormal")
  fit = _make_fit(tuple(int(w) for w in config.hidden), int(config.kernel), int(config.dense),
                  float(config.lr), int(config.batch_size), int(config.epochs),
                  int(config.get("min_steps", 0)))
  return fit(jnp.asarray(xa), jnp.asarray(ya, jnp.int32), key)


@functools.lru_cache(maxsize=32)
def _make_predict(hidden: tuple[int, ...], kernel: int, dense: int
                  ) -> Callable[[Any, jax.Array], jax.Array]:
  """Jitted `logits(params, x [K, chunk, L, C]) -> [K, chunk]`, one chunk at a time."""
  net = ConvClassifier(hidden=hidden, kernel=kernel, dense=dense)
  return jax.jit(lambda params, xs: jax.lax.map(lambda xb: net.apply({"params": params}, xb),
                                                xs))


def predict(params: Any, x, config: ml_collections.ConfigDict) -> np.ndarray:
  """Predicted labels of windows.

  Args:
    params: from `train_classifier` with the same `config`.
    x: [N, L, C] finite float windows.
    config: the classifier's config (hidden, kernel, dense).

  Returns:
    int8 array [N] of {0,1}: 1 (abnormal) where the logit is > 0.
  """
  xa = _windows(x, "x")
  n = len(xa)
  chunk = min(_PREDICT_CHUNK, n)
  k = -(-n // chunk)
  padded = np.concatenate([xa, np.zeros((k * chunk - n,) + xa.shape[1:], np.float32)])
  logits_fn = _make_predict(tuple(int(w) for w in config.hidden), int(config.kernel),
                            int(config.dense))
  logits = logits_fn(params, jnp.asarray(padded.reshape((k, chunk) + xa.shape[1:])))
  return (np.asarray(logits).reshape(-1)[:n] > 0).astype(np.int8)


def tstr_scores(real_x, labels, synth_fn: Callable[[np.ndarray], Any],
                config: ml_collections.ConfigDict, seed: int) -> dict:
  """TSTR, TRTR and TSTR_N of a generative model on labelled real windows.

  The windows are split first (`split_indices`, stratified, disjoint);
  `synth_fn` sees only the classifier-train windows. Both classifiers use the
  same PRNG key, derived from `seed`.

  Args:
    real_x: [N, L, C] finite real windows.
    labels: [N] {0,1} window labels (1 = abnormal); each class needs >= 2 members.
    synth_fn: maps the classifier-train windows [N_train, L, C] (a NumPy copy)
      to synthetic windows of the same shape, e.g. the model's reconstructions.
    config: `default_config()`-like.
    seed: seeds the split and the classifiers' key.

  Returns:
    dict with float `tstr` (F1 on the real test windows of the classifier
    trained on synthetic windows), `trtr` (F1 of the classifier trained on the
    real train windows), `tstr_n` = tstr / trtr (nan if trtr == 0), and int
    `num_train`, `num_test`. F1 has abnormal (1) as the positive class.

  Raises:
    ValueError: bad `real_x`, `labels` or config, or a `synth_fn` output that is
      non-finite or of the wrong shape.
  """
  _check_config(config)
  x = _windows(real_x, "real_x")
  y = checks.binary_vector(labels, name="labels")
  checks.same_length(x, y, names=("real_x", "labels"))
  tr, te = split_indices(y, config.test_fraction, seed)
  x_train = x[tr]
  synth = checks.finite_array(synth_fn(x_train.copy()), name="synth_fn output")
  if synth.shape != x_train.shape:
    raise ValueError(f"synth_fn output: expected shape {x_train.shape} (the classifier-train "
                     f"windows), got {synth.shape}")
  key = jax.random.fold_in(jax.random.key(seed), 1)
  params_real = train_classifier(x_train, y[tr], config, key)
  params_synth = train_classifier(synth, y[tr], config, key)
  trtr = pointwise(y[te], predict(params_real, x[te], config))["f1"]
  tstr = pointwise(y[te], predict(params_synth, x[te], config))["f1"]
  return {
      "tstr": float(tstr),
      "trtr": float(trtr),
      "tstr_n": float(tstr / trtr) if trtr > 0 else float("nan"),
      "num_train": int(len(tr)),
      "num_test": int(len(te)),
  }
