"""The estimator API of mlts.detectors: fit/score/predict/save/load on arrays, 1-D input and
lists; hand-checked baseline scores; the reconstruction detector equals the detector study;
validation-only thresholds; every bad input named."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest
from scipy.spatial import distance
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from mlts import detectors, metrics, studies
from mlts.data import windows as windows_lib
from mlts.detectors import baselines

BASELINES = ("abs_value", "range_deviation", "knn_window", "pca_window", "kmeans_window",
             "iforest_window")
SMALL = {"window": 16, "stride": 2, "eval_stride": 4}


def _series(seed=0, length=600, channels=2):
  rng = np.random.default_rng(seed)
  t = np.arange(length)
  x = np.stack([np.sin(2 * np.pi * t / 50 + c) for c in range(channels)], axis=1)
  return 5.0 + 3.0 * x + 0.1 * rng.normal(size=x.shape)


def _create(name, **kw):
  return detectors.create(name, **({**SMALL, **kw} if name.endswith("_window") else kw))


def test_available_lists_every_required_detector():
  names = detectors.available()
  assert names == sorted(names)
  assert set(BASELINES) | {"conv_ae", "lstm_ae", "dlinear", "modern_tcn", "transformer",
                           "vaegan", "diffusion"} <= set(names)
  with pytest.raises(ValueError, match="unknown detector 'knn'.*knn_window"):
    detectors.create("knn")


def test_overrides_are_checked_against_the_config():
  with pytest.raises(ValueError, match="knn_window has no field 'windw'; valid fields:.*window"):
    detectors.create("knn_window", windw=3)
  with pytest.raises(ValueError, match=r"conv_ae.training has no field 'num_stepz'"):
    detectors.create("conv_ae", training={"num_stepz": 3})
  with pytest.raises(ValueError, match="threshold_quantile must be in"):
    detectors.create("abs_value", threshold_quantile=1.5)
  assert detectors.create("knn_window", k=3).config.k == 3


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_shapes_lists_and_save_load(name, tmp_path, monkeypatch):
  train, test = _series(0), _series(1, length=300)
  test[100:130] += 4.0  # a level shift
  det = _create(name).fit(train)
  s, p = det.score(test), det.predict(test)
  assert s.dtype == np.float64 and s.shape == (300,)
  assert p.dtype == np.int8 and p.shape == (300,) and set(np.unique(p)) <= {0, 1}
  np.testing.assert_array_equal(p, (s > det.thresholds[0]).astype(np.int8))
  both = det.score([test, test[:50]])
  assert isinstance(both, list) and len(both) == 2 and both[1].shape == (50,)
  np.testing.assert_array_equal(both[0], s)
  det.save(str(tmp_path / name))

  def refuse(*args, **kwargs):
    raise AssertionError("loading a detector unpickled something")
  for attr in ("load", "loads", "Unpickler"):  # loading runs no code: nothing is unpickled
    monkeypatch.setattr(pickle, attr, refuse)
  loaded = detectors.load(str(tmp_path / name))
  monkeypatch.undo()
  assert type(loaded).__name__ == type(det).__name__
  np.testing.assert_array_equal(loaded.score(test), s)
  np.testing.assert_array_equal(loaded.predict(test), p)
  assert s[100:130].mean() > s[200:].mean()  # the shift scores above normal data


def test_one_dimensional_input_is_one_channel():
  x = _series(0, channels=1)[:, 0]
  det = detectors.create("abs_value").fit(x)
  np.testing.assert_array_equal(det.score(x), det.score(x[:, None]))


def test_abs_value_and_range_deviation_by_hand():
  train = np.array([[0.0], [2.0], [4.0], [2.0], [0.0], [2.0], [4.0], [2.0], [0.0], [4.0]])
  det = detectors.create("abs_value").fit(train)  # fit part = first 8 rows: mean 2, std sqrt 2
  x = np.array([2.0, 5.0, -1.0])
  np.testing.assert_allclose(det.score(x), np.abs(x - 2.0) / np.sqrt(2.0))
  rd = detectors.create("range_deviation").fit(train)  # fit range [0, 4] -> [-sqrt2, sqrt2]
  np.testing.assert_allclose(rd.score(np.array([1.0, 4.0, 6.0, -3.0])),
                             [0.0, 0.0, 2.0 / np.sqrt(2.0), 3.0 / np.sqrt(2.0)])


def test_window_baselines_equal_direct_computations():
  train, test = _series(0), _series(2, length=200)
  for name in ("knn_window", "pca_window", "kmeans_window", "iforest_window"):
    det = _create(name).fit(train)
    fit = (train[:480] - det._shift[0]) / det._scale[0]  # fit part = first 80 %
    z = (test - det._shift[0]) / det._scale[0]
    w_fit = windows_lib.sliding_windows(fit, 16, 2)[0].reshape(-1, 32)
    w_test, starts, _ = windows_lib.sliding_windows(z, 16, 4)
    w_test = w_test.reshape(-1, 32)
    if name == "knn_window":
      expected = distance.cdist(w_test, w_fit).min(axis=1)
    elif name == "pca_window":
      pca = PCA(n_components=0.9, svd_solver="full").fit(w_fit)
      expected = np.mean(np.square(w_test - pca.inverse_transform(pca.transform(w_test))), 1)
    elif name == "kmeans_window":
      km = KMeans(n_clusters=20, n_init=4, random_state=0).fit(w_fit)
      expected = km.transform(w_test).min(axis=1)
    else:
      forest = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(w_fit)
      expected = -forest.score_samples(w_test)
    per_step = windows_lib.aggregate(np.repeat(expected[:, None], 16, axis=1), starts, 200)
    np.testing.assert_allclose(det.score(test), per_step, rtol=1e-9, atol=1e-12, err_msg=name)


def test_forest_arrays_score_like_scikit_learn_with_feature_subsets():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(300, 7))
  forest = IsolationForest(n_estimators=30, max_features=0.6, random_state=1).fit(x)
  arrays = baselines.forest_arrays(forest)
  np.testing.assert_allclose(baselines.forest_score_samples(arrays, x), forest.score_samples(x),
                             rtol=1e-12)


def test_thresholds_come_from_validation_only():
  train, test = _series(0), _series(1, length=300)
  det = detectors.create("abs_value").fit(train)
  val = (train[480:] - det._shift[0]) / det._scale[0]  # the last 20 % of the training series
  assert det.thresholds[0] == pytest.approx(np.quantile(np.abs(val).max(axis=1), 0.99))
  before = det.thresholds.copy()
  det.score(test + 100.0)  # scoring (any data, labelled or not) never moves a threshold
  np.testing.assert_array_equal(det.thresholds, before)
  explicit = detectors.create("abs_value").fit(train, validation=train[:100] * 1.5)
  assert explicit.thresholds[0] != before[0]


def test_a_list_fit_scores_each_series_with_its_own_statistics():
  a, b = _series(0), 100.0 + 10.0 * _series(1)
  det = detectors.create("abs_value").fit([a, b])
  sa, sb = det.score([a[:50], b[:50]])
  np.testing.assert_allclose(sa, detectors.create("abs_value").fit(a).score(a[:50]))
  np.testing.assert_allclose(sb, detectors.create("abs_value").fit(b).score(b[:50]))
  np.testing.assert_allclose(det.score(b[:50], series=1), sb)
  with pytest.raises(ValueError, match="fit on 2 series.*series=k"):
    det.score(a)
  with pytest.raises(ValueError, match="series=5: the detector was fit on 2 series"):
    det.score(a, series=5)


def test_a_series_shorter_than_the_window_still_scores():
  det = detectors.create("knn_window", window=64).fit(_series(0))
  s = det.score(_series(1, length=30))
  assert s.shape == (30,) and np.isfinite(s).all()


def test_bad_input_is_named():
  good = _series(0)
  det = detectors.create("abs_value")
  with pytest.raises(detectors.NotFittedError, match="call fit"):
    det.score(good)
  bad = good.copy()
  bad[5, 1] = np.nan
  with pytest.raises(ValueError, match=r"train: 1 non-finite value.*\(5, 1\)"):
    det.fit(bad)
  with pytest.raises(ValueError, match=r"train\[1\]: expected rank 1 or 2"):
    det.fit([good, good[None]])
  with pytest.raises(ValueError, match="train: empty"):
    det.fit(np.zeros((0, 2)))
  with pytest.raises(ValueError, match="train: an empty list"):
    det.fit([])
  with pytest.raises(ValueError, match="validation: 1 series for 2"):
    det.fit([good, good], validation=[good])
  det.fit(good)
  with pytest.raises(ValueError, match="x has 3 feature.*fit on 2"):
    det.score(np.zeros((10, 3)))
  with pytest.raises(ValueError, match=r"x: 2 non-finite value.*\(3, 0\)"):
    det.score(np.where(np.arange(20)[:, None] == 3, np.inf, 0.0) + np.zeros((20, 2)))
  with pytest.raises(ValueError, match="unknown keyword.*workdir"):
    det.fit(good, workdir="/tmp/x")


def test_load_refuses_other_config_versions_and_corrupt_arrays(tmp_path):
  det = detectors.create("knn_window", **SMALL).fit(_series(0))
  path = det.save(str(tmp_path / "knn"))
  meta_path = os.path.join(path, "detector.json")
  meta = json.load(open(meta_path))
  meta["config"]["old_field"] = 1
  del meta["config"]["k"]
  json.dump(meta, open(meta_path, "w"))
  with pytest.raises(ValueError,
                     match=r"another version.*missing from it \['k'\].*\['old_field'\]"):
    detectors.load(path)
  relaxed = detectors.load(path, allow_config_mismatch=True)
  np.testing.assert_array_equal(relaxed.score(_series(1)), det.score(_series(1)))
  with pytest.raises(FileNotFoundError, match="not a saved detector"):
    detectors.load(str(tmp_path / "nothing"))
  shutil.rmtree(os.path.join(path, "arrays"))
  with pytest.raises(ValueError, match="arrays is missing"):
    detectors.load(path, allow_config_mismatch=True)
  path = det.save(str(tmp_path / "knn2"))
  for root, _, names in os.walk(os.path.join(path, "arrays")):
    for n in names:
      if n.endswith("_METADATA") or n == "manifest.ocdbt":
        with open(os.path.join(root, n), "wb") as f:
          f.write(b"\x00garbage")
  with pytest.raises(ValueError, match=r"arrays (cannot be read|does not match)"):
    detectors.load(path)


def test_reconstruction_detector_equals_the_detector_study(tmp_path):
  """conv_ae through mlts.detectors gives the scores and thresholds of configs/synthetic.py:tiny."""
  from configs import synthetic as synthetic_config
  from mlts.data import series as series_lib
  config = synthetic_config.get_config("tiny")
  studies.run(config, str(tmp_path / "study"))
  saved = np.load(tmp_path / "study" / "scores.npz")
  report = json.load(open(tmp_path / "study" / "metrics.json"))
  _, series = series_lib.load_series(config.data)
  det = detectors.create(
      "conv_ae", window=32, stride=4, eval_stride=8, eval_batch_size=32,
      model={"hidden": (8,), "latent": 4},
      training={"num_steps": 20, "batch_size": 16, "log_every": 5, "checkpoint_every": 10},
      optimizer={"warmup_steps": 2})
  det.fit([s.train for s in series], workdir=str(tmp_path / "det"))
  scores = np.concatenate(det.score([s.test for s in series]))
  np.testing.assert_allclose(scores, saved["scores/conv_ae"], rtol=1e-5, atol=1e-7)
  thresholds = [report["methods"]["conv_ae"]["per_channel"][s.name]["threshold"] for s in series]
  np.testing.assert_allclose(det.thresholds, thresholds, rtol=1e-6)
  assert metrics.auroc(saved["labels"], scores) > 0.5
  det.save(str(tmp_path / "saved"))
  again = detectors.load(str(tmp_path / "saved"))
  np.testing.assert_array_equal(np.concatenate(again.score([s.test for s in series])), scores)
  # The workdir remembers its config: refitting it with another loss stops before training.
  other = detectors.create("conv_ae", loss="gwnr", window=32, stride=4, eval_stride=8,
                           eval_batch_size=32, model={"hidden": (8,), "latent": 4},
                           training={"num_steps": 20, "batch_size": 16})
  with pytest.raises(ValueError, match="training.loss"):
    other.fit([s.train for s in series], workdir=str(tmp_path / "det"))


def test_per_series_window_models_see_only_their_own_series():
  a, b = _series(0), _series(5) * 3.0 + 1.0
  det = _create("knn_window").fit([a, b])
  assert len(det._models) == 2
  # Series 1's model holds only series 1's fit-part windows ...
  fit_b = (b[:480] - det._shift[1]) / det._scale[1]
  w_b = windows_lib.sliding_windows(fit_b, 16, 2)[0].reshape(-1, 32)
  np.testing.assert_allclose(det._models[1]["train_windows"], w_b)
  # ... so changing series 0 leaves series 1's scores unchanged.
  other = _create("knn_window").fit([_series(9), b])
  test = _series(2, length=200)
  np.testing.assert_allclose(det.score(test, series=1), other.score(test, series=1))
  pooled = _create("knn_window", per_series=False).fit([a, b])
  assert len(pooled._models) == 1
  assert pooled._models[0]["train_windows"].shape[0] == 2 * w_b.shape[0]
  # A nearest neighbour among more windows is never farther.
  z = (test - det._shift[1]) / det._scale[1]
  w_test = windows_lib.sliding_windows(z, 16, 4)[0].reshape(-1, 32)
  own = distance.cdist(w_test, w_b).min(axis=1)
  both = distance.cdist(w_test, pooled._models[0]["train_windows"]).min(axis=1)
  assert np.all(both <= own + 1e-12)
