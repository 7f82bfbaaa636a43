"""The strong simple baselines as detectors: every learned detector is compared with them.

Per-step baselines (on the normalized series, channels reduced by `reduce`):

* `abs_value`: |z|, the magnitude under the training statistics;
* `range_deviation`: how far a value lies outside the range of the fit part
  (0 inside it).

Window baselines (windows of `window` steps, flattened over channels; a window
score is spread to its steps by the fixed-buffer aggregator; training windows
come from the fit parts, stride `stride`; scored windows use `eval_stride`; by
default each training series has its own model, `per_series=False` pools them):

* `knn_window`: mean Euclidean distance to the k nearest training windows;
* `pca_window`: mean squared reconstruction error on the principal components
  that keep `components` of the variance (or that many components);
* `kmeans_window`: distance to the nearest of `clusters` k-means centroids;
* `iforest_window`: scikit-learn's IsolationForest anomaly score (−score_samples).

scikit-learn fits each model; what is saved are its arrays (training windows,
components and mean, centroids, the trees' nodes), and scoring runs on those
arrays, so a loaded detector scores exactly as the fitted one without pickles.
"""

from __future__ import annotations

import abc
from typing import Any

import ml_collections
import numpy as np

from mlts.data import windows as windows_lib
from mlts.detectors import base

REDUCE = ("max", "mean")


class _StepBaseline(base.Detector):
  """A per-step score of the normalized series, reduced over channels."""

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    config = base.common_config()
    config.reduce = "max"  # channel reduction: max | mean
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    base.validate_common(config)
    if config.reduce not in REDUCE:
      raise ValueError(f"reduce must be one of {REDUCE}, got {config.reduce!r}")

  def _reduce(self, per_channel: np.ndarray) -> np.ndarray:
    return per_channel.max(axis=1) if self.config.reduce == "max" else per_channel.mean(axis=1)


class AbsValue(_StepBaseline):
  """|z| with the training statistics of the series."""

  name = "abs_value"

  def _fit_model(self, fit_parts, val_parts) -> None:
    del fit_parts, val_parts  # the statistics are the normalization itself

  def _score_normalized(self, x, k):
    return self._reduce(np.abs(x))


class RangeDeviation(_StepBaseline):
  """Distance outside the [min, max] of the fit part, per channel, in normalized units."""

  name = "range_deviation"

  def _fit_model(self, fit_parts, val_parts) -> None:
    del val_parts
    self._low = np.stack([p.min(axis=0) for p in fit_parts])  # [S, C]
    self._high = np.stack([p.max(axis=0) for p in fit_parts])

  def _score_normalized(self, x, k):
    outside = np.maximum(np.maximum(self._low[k] - x, x - self._high[k]), 0.0)
    return self._reduce(outside)

  def _state(self):
    return {"low": self._low, "high": self._high}

  def _set_state(self, state):
    self._low, self._high = np.asarray(state["low"]), np.asarray(state["high"])


class _WindowBaseline(base.Detector):
  """Window scores from a model of the training windows, spread to steps.

  With `per_series` (the default) every training series gets its own model,
  fit on its own windows, and series k is scored by model k (each NASA channel
  is a different sensor); otherwise one model is fit on the windows of all
  series pooled.
  """

  @classmethod
  def default_config(cls) -> ml_collections.ConfigDict:
    config = base.common_config()
    config.window = 64  # window length L
    config.stride = 1  # stride of the training windows
    config.eval_stride = 1  # stride of the scored windows
    config.max_train_windows = 20000  # cap (evenly spaced subsample) on the windows of a model
    config.per_series = True  # one model per training series | one for all series pooled
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    base.validate_common(config)
    for field in ("window", "stride", "eval_stride", "max_train_windows"):
      if int(config[field]) != config[field] or config[field] < 1:
        raise ValueError(f"{field} must be a positive integer, got {config[field]!r}")
    if not isinstance(config.per_series, bool):
      raise ValueError(f"per_series must be True or False, got {config.per_series!r}")

  def _windows(self, x: np.ndarray, stride: int, name: str):
    w, starts, _ = windows_lib.sliding_windows(x, self.config.window, stride, pad=True, name=name)
    return w.reshape(w.shape[0], -1), starts

  def _cap(self, flat: np.ndarray) -> np.ndarray:
    if flat.shape[0] > self.config.max_train_windows:
      keep = np.linspace(0, flat.shape[0] - 1, self.config.max_train_windows).round()
      flat = flat[np.unique(keep.astype(np.int64))]
    return flat

  def _fit_model(self, fit_parts, val_parts) -> None:
    del val_parts
    flats = [self._windows(p, self.config.stride, f"train[{k}] fit part")[0]
             for k, p in enumerate(fit_parts)]
    if self.config.per_series:
      self._models = [self._fit_windows(self._cap(f)) for f in flats]
    else:
      self._models = [self._fit_windows(self._cap(np.concatenate(flats)))]

  def _score_grid(self):  # window scores spread to steps: window-local (chunked when long)
    return self.config.window, self.config.eval_stride

  def _score_normalized(self, x, k):
    flat, starts = self._windows(x, self.config.eval_stride, "x")
    model = self._models[k if self.config.per_series else 0]
    return base.window_scores_to_steps(self._window_scores(model, flat), starts,
                                       self.config.window, x.shape[0])

  def _state(self):
    return {str(k): model for k, model in enumerate(self._models)}

  def _set_state(self, state):
    self._models = [{name: np.asarray(v) for name, v in state[str(k)].items()}
                    for k in range(len(state))]

  @abc.abstractmethod
  def _fit_windows(self, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of a window model fit on flattened training windows [N, L * C]."""

  @abc.abstractmethod
  def _window_scores(self, model: dict[str, np.ndarray], flat: np.ndarray) -> np.ndarray:
    """[N] scores of flattened windows [N, L * C] under `model`, higher = more anomalous."""


class KnnWindow(_WindowBaseline):
  """Mean distance of each window to its k nearest training windows (brute force, exact)."""

  name = "knn_window"

  @classmethod
  def default_config(cls):
    config = super().default_config()
    config.k = 1  # neighbours averaged
    return config

  @classmethod
  def validate_config(cls, config) -> None:
    super().validate_config(config)
    if config.k < 1:
      raise ValueError(f"k must be >= 1, got {config.k}")

  def _fit_windows(self, flat):
    return {"train_windows": flat}

  def _window_scores(self, model, flat):
    from sklearn.neighbors import NearestNeighbors
    train = model["train_windows"]
    nn = NearestNeighbors(n_neighbors=min(self.config.k, train.shape[0]),
                          algorithm="brute").fit(train)
    distances, _ = nn.kneighbors(flat)
    return distances.mean(axis=1)


class PcaWindow(_WindowBaseline):
  """Mean squared reconstruction error of each window on the principal components."""

  name = "pca_window"

  @classmethod
  def default_config(cls):
    config = super().default_config()
    config.components = 0.9  # a fraction in (0, 1) of the variance kept, or a count >= 1
    return config

  def _fit_windows(self, flat):
    from sklearn.decomposition import PCA
    n = self.config.components
    if not 0 < n < 1:
      n = int(min(n, flat.shape[0], flat.shape[1]))
    pca = PCA(n_components=n, svd_solver="full").fit(flat)
    return {"mean": pca.mean_, "components": pca.components_}

  def _window_scores(self, model, flat):
    centred = flat - model["mean"]
    components = model["components"]
    recon = (centred @ components.T) @ components
    return np.mean(np.square(centred - recon), axis=1)


class KMeansWindow(_WindowBaseline):
  """Distance of each window to the nearest k-means centroid of the training windows."""

  name = "kmeans_window"

  @classmethod
  def default_config(cls):
    config = super().default_config()
    config.clusters = 20  # k of k-means (capped at the number of training windows)
    config.n_init = 4  # k-means restarts
    return config

  def _fit_windows(self, flat):
    from sklearn.cluster import KMeans
    km = KMeans(n_clusters=min(self.config.clusters, flat.shape[0]), n_init=self.config.n_init,
                random_state=self.config.seed).fit(flat)
    return {"centroids": km.cluster_centers_}

  def _window_scores(self, model, flat):
    from scipy.spatial import distance
    return distance.cdist(flat, model["centroids"]).min(axis=1)


class IForestWindow(_WindowBaseline):
  """scikit-learn IsolationForest on the windows; scored from the trees' node arrays."""

  name = "iforest_window"

  @classmethod
  def default_config(cls):
    config = super().default_config()
    config.trees = 100  # n_estimators
    config.max_samples = 256  # samples per tree (capped at the training windows)
    return config

  def _fit_windows(self, flat):
    from sklearn.ensemble import IsolationForest
    forest = IsolationForest(n_estimators=self.config.trees,
                             max_samples=min(self.config.max_samples, flat.shape[0]),
                             random_state=self.config.seed).fit(flat)
    return forest_arrays(forest)

  def _window_scores(self, model, flat):
    return -forest_score_samples(model, flat)


def forest_arrays(forest) -> dict[str, np.ndarray]:
  """A fitted IsolationForest as arrays: padded node tables [trees, nodes] and the normalizer.

  `path` holds, per node, what a sample ending there adds to its depth sum:
  depth + c(n_node_samples) − 1, as scikit-learn computes it.
  """
  from sklearn.ensemble._iforest import _average_path_length
  trees = forest.estimators_
  size = max(t.tree_.node_count for t in trees)
  left = np.full((len(trees), size), -1, np.int64)
  right = np.full((len(trees), size), -1, np.int64)
  feature = np.zeros((len(trees), size), np.int64)
  threshold = np.zeros((len(trees), size), np.float64)
  path = np.zeros((len(trees), size), np.float64)
  for t, (est, features) in enumerate(zip(trees, forest.estimators_features_)):
    tree, n = est.tree_, est.tree_.node_count
    left[t, :n], right[t, :n] = tree.children_left, tree.children_right
    internal = tree.feature >= 0
    feature[t, :n] = np.where(internal, np.asarray(features)[np.maximum(tree.feature, 0)], 0)
    threshold[t, :n] = tree.threshold
    path[t, :n] = (tree.compute_node_depths() + _average_path_length(tree.n_node_samples) - 1.0)
  denominator = len(trees) * float(_average_path_length([forest._max_samples])[0])
  return {"left": left, "right": right, "feature": feature, "threshold": threshold,
          "path": path, "denominator": np.array([denominator])}


def forest_score_samples(arrays: dict[str, Any], x: np.ndarray) -> np.ndarray:
  """IsolationForest.score_samples from `forest_arrays`: −2^(−mean depth / c(ψ)).

  Higher = more normal, as scikit-learn's. Samples descend every tree together
  (a loop over trees and depth, vectorized over samples); values are compared
  in float32 as scikit-learn's trees do.
  """
  x32 = np.asarray(x, np.float32).astype(np.float64)
  rows = np.arange(x32.shape[0])
  depths = np.zeros(x32.shape[0])
  for t in range(arrays["left"].shape[0]):
    left, right = arrays["left"][t], arrays["right"][t]
    feature, threshold = arrays["feature"][t], arrays["threshold"][t]
    node = np.zeros(x32.shape[0], np.int64)
    while True:
      inner = left[node] >= 0
      if not inner.any():
        break
      go_left = x32[rows, feature[node]] <= threshold[node]
      node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    depths += arrays["path"][t][node]
  denominator = float(np.asarray(arrays["denominator"]).reshape(-1)[0])
  if denominator == 0:  # a single training sample: scikit-learn's score is −1
    return -np.ones_like(depths)
  return -(2.0 ** (-depths / denominator))
