"""A small temporal embedding for generation-quality metrics on time-series windows.

FID and KID (`mlts.metrics.generative.frechet_distance`,
`kernel_inception_distance`) compare feature distributions and the Inception
Score (`inception_score`) rates class probabilities; on images both come from
an Inception network. For telemetry windows this module supplies the
equivalent: `ChannelClassifier`, a 1-D CNN trained to tell which source channel
(e.g. which of the 55 NASA SMAP channels) a window was cut from. Its
penultimate activations (`features`) are the embedding for FID/KID and its
softmax (`probs`) is the classifier for IS.

Training follows `mlts.vaegan.tstr`: the batch indices of every Adam step are
drawn from the key up front (with replacement) and one jitted `lax.scan` runs
all the steps, so a run is deterministic given its key; compiled functions are
cached per hyperparameter set; `embed` is one jitted `lax.map` over fixed-size,
zero-padded chunks of windows.

Typical use::

  params = train_classifier(x_train, channel_ids, num_classes=55, config=cfg, key=key)
  feats_real, _ = embed(params, real_windows, cfg, 55)
  feats_fake, probs_fake = embed(params, fake_windows, cfg, 55)
  fid = generative.frechet_distance(feats_real, feats_fake)
  is_ = generative.inception_score(probs_fake)
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

# Windows per `embed` chunk by default; the whole embedding is one jitted `lax.map` over chunks.
_EMBED_CHUNK = 1024


def default_config() -> ml_collections.ConfigDict:
  """The channel classifier's hyperparameters."""
  config = ml_collections.ConfigDict()
  config.hidden = (16, 32, 64)  # conv widths; each block max-pools by 2 while length >= 2
  config.kernel = 5  # conv kernel size (stride 1, 'SAME')
  config.features = 64  # width of the penultimate (embedding) layer
  config.lr = 1e-3  # Adam learning rate
  config.batch_size = 64  # windows per Adam step (capped at N), drawn with replacement
  config.steps = 1500  # Adam steps
  return config


class ChannelClassifier(nn.Module):
  """1-D CNN that classifies a window by its source channel.

  Each conv block is Conv(kernel, 'SAME') -> ReLU -> max-pool 2, the pool being
  skipped once the length has fallen below 2. The conv output is averaged over
  time, mapped by Dense + ReLU to the embedding, then by Dense to the logits.

  Attributes:
    hidden: channels of each conv block.
    kernel: conv kernel size.
    features: width of the penultimate (embedding) layer.
    num_classes: number of classes (source channels).
  """
  hidden: Sequence[int] = (16, 32, 64)
  kernel: int = 5
  features: int = 64
  num_classes: int = 2

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Embeds and classifies windows.

    Args:
      x: [B, L, C] windows, any L >= 1.

    Returns:
      (features [B, features] (non-negative, post-ReLU), logits [B, num_classes]).
    """
    h = x
    for i, width in enumerate(self.hidden):
      h = nn.Conv(width, (self.kernel,), strides=(1,), padding="SAME", name=f"conv_{i}")(h)
      h = nn.relu(h)
      if h.shape[1] >= 2:  # static shape: decided at trace time
        # 'SAME' pooling gives ceil(L / 2): an odd length keeps its last step.
        h = nn.max_pool(h, (2,), strides=(2,), padding="SAME")
    h = jnp.mean(h, axis=1)  # global average pool over time: [B, hidden[-1]]
    feats = nn.relu(nn.Dense(self.features, name="features")(h))
    logits = nn.Dense(self.num_classes, name="logits")(feats)
    return feats, logits


def _arch(config: ml_collections.ConfigDict) -> tuple[tuple[int, ...], int, int]:
  """(hidden, kernel, features) of `config` as hashable ints, after validation."""
  hidden = tuple(config.hidden)
  if not hidden or any(int(w) < 1 for w in hidden):
    raise ValueError(f"config.hidden: expected positive conv widths, got {hidden}")
  for name in ("kernel", "features"):
    if int(config[name]) < 1:
      raise ValueError(f"config.{name}: must be >= 1, got {config[name]}")
  return tuple(int(w) for w in hidden), int(config.kernel), int(config.features)


def _check_train_config(config: ml_collections.ConfigDict) -> None:
  for name in ("batch_size", "steps"):
    if int(config[name]) < 1:
      raise ValueError(f"config.{name}: must be >= 1, got {config[name]}")
  if not float(config.lr) > 0:
    raise ValueError(f"config.lr: must be > 0, got {config.lr}")


def _num_classes(num_classes) -> int:
  if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
    raise ValueError(f"num_classes: must be an integer >= 2, got {num_classes!r}")
  return int(num_classes)


def _windows(x, name: str) -> np.ndarray:
  """Validated [N, L, C] float32 windows."""
  return checks.finite_array(x, name=name, ndim=3).astype(np.float32)


def _labels(labels, num_classes: int, name: str = "labels") -> np.ndarray:
  """Validated [N] int32 class labels in [0, num_classes)."""
  arr = np.asarray(labels)
  if arr.ndim != 1:
    raise ValueError(f"{name}: expected a 1-D array of class ids, got shape {arr.shape}")
  if arr.size == 0:
    raise ValueError(f"{name}: empty array")
  if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
    raise ValueError(f"{name}: expected integer class ids, got dtype {arr.dtype}")
  if not np.issubdtype(arr.dtype, np.integer):
    integral = np.isfinite(arr) & (arr == np.round(arr))
    if not integral.all():
      first = int(np.argmax(~integral))
      raise ValueError(f"{name}: class ids must be integers; found {arr[first]!r} at index "
                       f"{first}")
  bad = (arr < 0) | (arr >= num_classes)
  if bad.any():
    first = int(np.argmax(bad))
    raise ValueError(
        f"{name}: class ids must lie in [0, {num_classes}) (num_classes={num_classes}); found "
        f"{arr[first]!r} at index {first} ({int(bad.sum())} out of range)")
  return arr.astype(np.int32)


def _check_channels(params: Any, xa: np.ndarray) -> None:
  """Raises ValueError if the windows' channel count differs from the trained one."""
  try:
    expected = int(params["conv_0"]["kernel"].shape[1])
  except (KeyError, TypeError, AttributeError, IndexError):
    return  # not the usual params layout; let flax report any mismatch
  if xa.shape[2] != expected:
    raise ValueError(f"x: the classifier was trained on windows with {expected} channel(s), "
                     f"got shape {xa.shape}")


@functools.lru_cache(maxsize=32)
def _make_fit(hidden: tuple[int, ...], kernel: int, features: int, num_classes: int, lr: float,
              batch_size: int, steps: int) -> Callable[[jax.Array, jax.Array, jax.Array], Any]:
  """Jitted `fit(x [N, L, C], y [N], key) -> params` for one hyperparameter set."""
  net = ChannelClassifier(hidden=hidden, kernel=kernel, features=features,
                          num_classes=num_classes)
  tx = optax.adam(lr)

  def fit(x: jax.Array, y: jax.Array, key: jax.Array) -> Any:
    n = x.shape[0]
    batch = min(batch_size, n)
    init_key, batch_key = jax.random.split(key)
    batches = jax.random.randint(batch_key, (steps, batch), 0, n)  # [steps, batch]
    params = net.init(init_key, x[:1])["params"]

    def loss_fn(p, idx):
      _, logits = net.apply({"params": p}, x[idx])
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]))

    params = scan_fit.fit(loss_fn, params, tx, batches)
    return params

  return jax.jit(fit)


def train_classifier(x, labels, num_classes: int, config: ml_collections.ConfigDict,
                     key: jax.Array) -> Any:
  """Trains a `ChannelClassifier` with softmax cross-entropy.

  Adam with `config.lr` runs `config.steps` steps, each on min(batch_size, N)
  windows drawn uniformly with replacement; all batch indices are drawn from
  `key` up front and the whole run is one jitted `lax.scan`, so it is
  deterministic given `key`.

  Args:
    x: [N, L, C] finite float windows, N >= 2.
    labels: [N] integer class ids in [0, num_classes) (e.g. source channel index).
    num_classes: K >= 2, the number of classes.
    config: `default_config()`-like; uses hidden, kernel, features, lr,
      batch_size and steps.
    key: PRNG key for the initialization and the batch indices.

  Returns:
    The trained 'params' pytree of `ChannelClassifier`.

  Raises:
    ValueError: `x` not a finite rank-3 array, fewer than 2 windows, `labels`
      not 1-D integers in range, mismatched lengths, or a bad config.
  """
  k = _num_classes(num_classes)
  arch = _arch(config)
  _check_train_config(config)
  xa = _windows(x, "x")
  ya = _labels(labels, k)
  checks.same_length(xa, ya, names=("x", "labels"))
  if len(xa) < 2:
    raise ValueError(f"x: needs at least 2 windows to train a classifier, got {len(xa)}")
  fit = _make_fit(*arch, k, float(config.lr), int(config.batch_size), int(config.steps))
  return fit(jnp.asarray(xa), jnp.asarray(ya), key)


@functools.lru_cache(maxsize=32)
def _make_embed(hidden: tuple[int, ...], kernel: int, features: int, num_classes: int
                ) -> Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]:
  """Jitted `(params, x [M, chunk, L, C]) -> (features [M, chunk, D], probs [M, chunk, K])`."""
  net = ChannelClassifier(hidden=hidden, kernel=kernel, features=features,
                          num_classes=num_classes)

  def one_chunk(params, xb):
    feats, logits = net.apply({"params": params}, xb)
    return feats, jax.nn.softmax(logits, axis=-1)

  return jax.jit(lambda params, xs: jax.lax.map(lambda xb: one_chunk(params, xb), xs))


def embed(params: Any, x, config: ml_collections.ConfigDict, num_classes: int, *,
          chunk: int = _EMBED_CHUNK) -> tuple[np.ndarray, np.ndarray]:
  """Penultimate features and class probabilities of windows.

  The windows are zero-padded to a whole number of chunks of min(chunk, N)
  windows and run through one jitted `lax.map` (one compiled chunk shape); the
  padding is dropped from the outputs. Each window's outputs depend only on
  that window, so the chunk size does not change the result.

  Args:
    params: from `train_classifier` with the same `config` and `num_classes`.
    x: [N, L, C] finite float windows; C must match the training windows.
    config: the classifier's config (hidden, kernel, features).
    num_classes: K, as passed to `train_classifier`.
    chunk: windows per chunk, >= 1.

  Returns:
    (features [N, features] float64, probs [N, K] float64 softmax rows summing to 1).

  Raises:
    ValueError: bad `x`, `chunk`, `num_classes` or config.
  """
  k = _num_classes(num_classes)
  arch = _arch(config)
  if isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1:
    raise ValueError(f"chunk: must be an integer >= 1, got {chunk!r}")
  xa = _windows(x, "x")
  _check_channels(params, xa)
  n = len(xa)
  size = min(int(chunk), n)
  m = -(-n // size)
  padded = np.concatenate([xa, np.zeros((m * size - n,) + xa.shape[1:], np.float32)])
  feats, probs = _make_embed(*arch, k)(
      params, jnp.asarray(padded.reshape((m, size) + xa.shape[1:])))
  feats = np.asarray(feats, np.float64).reshape(m * size, -1)[:n]
  probs = np.asarray(probs, np.float64).reshape(m * size, k)[:n]
  return feats, probs


def accuracy(params: Any, x, labels, config: ml_collections.ConfigDict,
             num_classes: int) -> float:
  """Share of windows whose most probable class is their label.

  Args:
    params: from `train_classifier` with the same `config` and `num_classes`.
    x: [N, L, C] finite float windows.
    labels: [N] integer class ids in [0, num_classes).
    config: the classifier's config (hidden, kernel, features).
    num_classes: K, as passed to `train_classifier`.

  Returns:
    Accuracy in [0, 1].

  Raises:
    ValueError: bad `x` or `labels`, or mismatched lengths.
  """
  k = _num_classes(num_classes)
  xa = _windows(x, "x")
  ya = _labels(labels, k)
  checks.same_length(xa, ya, names=("x", "labels"))
  _, probs = embed(params, xa, config, k)
  return float(np.mean(np.argmax(probs, axis=1) == ya))
