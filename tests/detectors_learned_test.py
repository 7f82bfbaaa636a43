"""The learned generative detectors, diffusion and vaegan, through the estimator interface.

Tiny configs (a few training steps of very small networks); every detector is
fit once per module and shared by the tests.
"""

from __future__ import annotations

import copy

import jax
import numpy as np
import pytest
from sklearn import covariance, svm

from mlts import detectors, per_series
from mlts.data import synthetic
from mlts.detectors import diffusion as diffusion_det
from mlts.detectors import vaegan as vaegan_det
from mlts.diffusion import detector as diffusion_lib

WINDOW = 32
SHIFT = slice(150, 230)  # the level-shift anomaly of the test series

DIFFUSION_TINY = dict(
    window=WINDOW, stride=4, eval_stride=8,
    diffusion={"num_steps": 50},
    network=dict(base_width=8, channel_mults=(1,), num_res_blocks=0, attention_levels=(),
                 num_heads=2, num_groups=4),
    training=dict(num_steps=240, batch_size=8, log_every=120, checkpoint_every=240,
                  ema_decay=0.0),
    optimizer=dict(warmup_steps=10, learning_rate=3e-3),
    detector=dict(recon_steps=3, encode_steps=4, solver="ddim", batch_size=32,
                  max_train_encoded=48))

VAEGAN_TINY = dict(
    window=WINDOW, stride=4, eval_stride=8,
    vaegan=dict(gen_hidden=(4, 8), disc_hidden=(4, 8), latent=3, disc_steps=1),
    training=dict(num_steps=40, batch_size=8, log_every=20, checkpoint_every=40),
    eval_batch_size=32, max_train_scored=64,
    composition_config=dict(num_lambda=6, num_gamma=6, num_tau=10))


@pytest.fixture(scope="module")
def data():
  s = synthetic.make_series(3, train_length=500, test_length=300, num_channels=2,
                            num_anomalies=0)
  test = s.test.copy()
  test[SHIFT] += 6.0 * s.train.std(axis=0)  # a big level shift
  return {"train": s.train, "test": test, "clean": s.test}


@pytest.fixture(scope="module")
def diffusion_recon(data):
  return detectors.create("diffusion", **DIFFUSION_TINY).fit(data["train"])


@pytest.fixture(scope="module")
def vaegan_recon(data):
  return detectors.create("vaegan", **VAEGAN_TINY).fit(data["train"])


def _labelled_validation(data):
  """A validation series with a labelled level shift, and its labels."""
  val = data["clean"][:200].copy()
  labels = np.zeros(200, np.int8)
  val[40:80] += 4.0 * data["train"].std(axis=0)
  labels[40:80] = 1
  return val, labels


def _check_outputs(det, x):
  scores, preds = det.score(x), det.predict(x)
  assert scores.dtype == np.float64 and scores.shape == (x.shape[0],)
  assert preds.dtype == np.int8 and preds.shape == (x.shape[0],)
  assert np.isfinite(scores).all()
  assert set(np.unique(preds)) <= {0, 1}
  out = det.score([x, x[:100]])
  assert isinstance(out, list) and [o.shape for o in out] == [(x.shape[0],), (100,)]
  np.testing.assert_array_equal(out[0], scores)
  preds_list = det.predict([x, x[:100]])
  assert isinstance(preds_list, list) and preds_list[1].dtype == np.int8
  return scores


def _check_save_load(det, x, tmp_path):
  before = det.score(x)
  loaded = detectors.load(det.save(str(tmp_path / det.name)))
  assert type(loaded).__name__ == type(det).__name__
  assert np.array_equal(loaded.score(x), before)
  assert np.array_equal(loaded.predict(x), det.predict(x))
  np.testing.assert_array_equal(loaded.thresholds, det.thresholds)
  return loaded


# ---------------------------------------------------------------------- diffusion


def test_diffusion_outputs_and_determinism(diffusion_recon, data):
  scores = _check_outputs(diffusion_recon, data["test"])
  assert np.array_equal(diffusion_recon.score(data["test"]), scores)  # a fixed noise draw


def test_diffusion_recon_finds_level_shift(diffusion_recon, data):
  scores = diffusion_recon.score(data["test"])
  normal = np.ones(len(scores), bool)
  normal[SHIFT.start - WINDOW:SHIFT.stop + WINDOW] = False
  assert scores[SHIFT].mean() > scores[normal].mean()


def test_diffusion_save_load_identical(diffusion_recon, data, tmp_path):
  loaded = _check_save_load(diffusion_recon, data["test"], tmp_path)
  for key in ("location", "precision", "norm_mean", "norm_std"):
    assert np.array_equal(loaded._references[0][key], diffusion_recon._references[0][key])
  before = diffusion_recon.score_components(data["test"])
  after = loaded.score_components(data["test"])
  assert set(before) == set(diffusion_det.SCORES) == set(after)
  for name in diffusion_det.SCORES:
    assert before[name].dtype == np.float64 and before[name].shape == (data["test"].shape[0],)
    assert np.isfinite(before[name]).all()
    assert np.array_equal(after[name], before[name]), name
  # score_normalization 'none': the configured score is the raw 'recon' component.
  assert np.array_equal(before["recon"], diffusion_recon.score(data["test"]))


def test_diffusion_latent_scores_match_latent_reference(diffusion_recon):
  rng = np.random.default_rng(0)
  proc = diffusion_recon._processes[0]
  z_train = rng.standard_normal((64, WINDOW, 2))
  reference = diffusion_lib.LatentReference(proc, z_train)
  det = copy.copy(diffusion_recon)
  det._references = [diffusion_det.latent_reference_arrays(
      diffusion_lib.LatentReference._coeffs(proc, z_train))]
  z = 1.5 * rng.standard_normal((20, WINDOW, 2))
  ours, theirs = det.latent_scores(z), reference.scores(z)
  for name in diffusion_lib.LATENT_SCORES:
    np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-8, err_msg=name)


def test_mahalanobis_matches_sklearn():
  rng = np.random.default_rng(1)
  coeffs = rng.standard_normal((200, 12)) @ rng.standard_normal((12, 12)) + 3.0
  arrays = diffusion_det.latent_reference_arrays(coeffs)
  fitted = covariance.LedoitWolf().fit(coeffs)
  queries = rng.standard_normal((50, 12)) * 2.0
  ours = diffusion_det.squared_mahalanobis(queries, arrays["location"], arrays["precision"])
  np.testing.assert_allclose(ours, fitted.mahalanobis(queries), rtol=1e-8)
  norms = np.linalg.norm(coeffs, axis=1)
  np.testing.assert_allclose(arrays["norm_mean"][0], norms.mean(), rtol=1e-12)
  np.testing.assert_allclose(arrays["norm_std"][0], norms.std(), rtol=1e-12)


def test_diffusion_config_errors():
  with pytest.raises(ValueError, match="variant"):
    detectors.create("diffusion", variant="nope")
  with pytest.raises(ValueError, match="score"):
    detectors.create("diffusion", score="nope")
  with pytest.raises(ValueError, match="multiple"):
    detectors.create("diffusion", window=30)
  with pytest.raises(ValueError, match="representation='klt' is supported by the generators"):
    detectors.create("diffusion", diffusion={"representation": "klt"})


# ---------------------------------------------------------------------- vaegan


def test_vaegan_outputs(vaegan_recon, data):
  _check_outputs(vaegan_recon, data["test"])


def test_vaegan_recon_finds_level_shift(vaegan_recon, data):
  scores = vaegan_recon.score(data["test"])
  normal = np.ones(len(scores), bool)
  normal[SHIFT.start - WINDOW:SHIFT.stop + WINDOW] = False
  assert scores[SHIFT].mean() > scores[normal].mean()


def test_vaegan_save_load_identical(vaegan_recon, data, tmp_path):
  _check_save_load(vaegan_recon, data["test"], tmp_path)


@pytest.mark.parametrize("composition", ["sum", "grid", "svm"])
def test_vaegan_compositions_save_load(composition, data, tmp_path):
  val, labels = _labelled_validation(data)
  det = detectors.create("vaegan", composition=composition, **VAEGAN_TINY)
  if composition == "sum":  # label-free; checkpoints and logs in a workdir
    kwargs = {"workdir": str(tmp_path / "run")}
  else:
    kwargs = {"validation": val, "validation_labels": labels}
  det.fit(data["train"], **kwargs)
  _check_outputs(det, data["test"])
  _check_save_load(det, data["test"], tmp_path)
  if composition == "sum":
    assert (tmp_path / "run" / "config.json").is_file()
    assert any((tmp_path / "run" / "checkpoints" / "vaegan1").iterdir())


def test_vaegan_two_series_grid(data):
  val, labels = _labelled_validation(data)
  trains = [data["train"], data["train"][::-1] * 2.0]
  det = detectors.create("vaegan", composition="grid", **VAEGAN_TINY)
  det.fit(trains, validation=[val, val[::-1] * 2.0], validation_labels=[labels, labels[::-1]])
  out = det.score([data["test"], data["test"][:120] * 2.0])
  assert [o.shape for o in out] == [(300,), (120,)] and all(o.dtype == np.float64 for o in out)
  assert det.thresholds.shape == (2,)
  with pytest.raises(ValueError, match="2 series"):
    det.score(data["test"])
  with pytest.raises(ValueError, match="label series"):
    det.fit(trains, validation=[val, val], validation_labels=labels)


def test_vaegan_label_using_composition_errors(data):
  val, labels = _labelled_validation(data)
  for composition in ("grid", "svm"):
    det = detectors.create("vaegan", composition=composition, **VAEGAN_TINY)
    with pytest.raises(ValueError, match="validation_labels"):
      det.fit(data["train"])
    with pytest.raises(ValueError, match="validation_labels"):
      det.fit(data["train"], validation=val)
  det = detectors.create("vaegan", **VAEGAN_TINY)
  with pytest.raises(ValueError, match="validation=..."):
    det.fit(data["train"], validation_labels=labels)
  with pytest.raises(ValueError, match="steps"):
    det.fit(data["train"], validation=val, validation_labels=labels[:-1])
  with pytest.raises(ValueError, match="0 or 1"):
    det.fit(data["train"], validation=val, validation_labels=labels * 2)
  det = detectors.create("vaegan", composition="svm", **VAEGAN_TINY)
  with pytest.raises(ValueError, match="single class"):
    det.fit(data["train"], validation=val, validation_labels=np.zeros_like(labels))


def test_svm_decision_function_matches_sklearn():
  rng = np.random.default_rng(2)
  x = rng.uniform(size=(120, 3))
  y = (x.sum(axis=1) + 0.3 * rng.standard_normal(120) > 1.6).astype(int)
  clf = svm.SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced").fit(x, y)
  queries = rng.uniform(-0.5, 1.5, size=(300, 3))
  ours = vaegan_det.svm_decision_function(vaegan_det.svm_arrays(clf), queries, chunk=64)
  np.testing.assert_allclose(ours, clf.decision_function(queries), rtol=1e-8, atol=1e-10)


def test_window_labels():
  labels = np.zeros(40, np.int8)
  labels[35] = 1
  out = vaegan_det.window_labels(labels, 16, 8)  # starts 0, 8, 16, 24
  np.testing.assert_array_equal(out, [0, 0, 0, 1])


def test_vaegan_config_errors():
  with pytest.raises(ValueError, match="variant"):
    detectors.create("vaegan", variant="nope")
  with pytest.raises(ValueError, match="composition"):
    detectors.create("vaegan", composition="nope")
  with pytest.raises(ValueError, match="multiple"):
    detectors.create("vaegan", window=48)


def test_vaegan_per_series_models_are_independent(data, tmp_path):
  """Series 0's β-VAEGAN does not depend on series 1's data; save / load is exact."""
  tiny = dict(VAEGAN_TINY, training=dict(VAEGAN_TINY["training"], num_steps=6,
                                         checkpoint_every=6))
  first = data["train"]
  other = [data["train"][::-1] * 2.0, data["train"][:300] + 1.0]
  fitted = []
  for second in other:
    det = detectors.create("vaegan", composition="sum", per_series=True, **tiny)
    fitted.append(det.fit([first, second]))
  a, b = fitted
  assert all(leaf.shape[0] == 2 for leaf in jax.tree.leaves(a._gen))
  for got, want in zip(jax.tree.leaves(per_series.take(a._gen, 0)),
                       jax.tree.leaves(per_series.take(b._gen, 0))):
    np.testing.assert_array_equal(got, want)
  assert not np.array_equal(jax.tree.leaves(per_series.take(a._gen, 1))[0],
                            jax.tree.leaves(per_series.take(b._gen, 1))[0])
  scores = a.score([data["test"], data["test"]])
  np.testing.assert_array_equal(scores[0], b.score([data["test"], data["test"]])[0])
  assert a._latent_mode.shape == (2,) and a._composition["mean"].shape == (2, 3)
  pair = [data["test"], data["test"][:120]]
  loaded = detectors.load(a.save(str(tmp_path / "vaegan_pc")))
  for got, want in zip(loaded.score(pair), a.score(pair)):
    np.testing.assert_array_equal(got, want)


def test_diffusion_per_series_fit_score_and_reload(data, tmp_path):
  """Per series: each series its own process and U-Net (stacked); reloads bit-identical.

  That a series' parameters do not depend on another's data is the shared
  machinery's property (tests/per_series_test.py; the β-VAEGAN test above).
  """
  tiny = dict(DIFFUSION_TINY, training=dict(DIFFUSION_TINY["training"], num_steps=6,
                                            checkpoint_every=6))
  t = np.arange(400)[:, None]
  smooth = np.concatenate([np.sin(2 * np.pi * t / 40), np.cos(2 * np.pi * t / 40)], axis=1)
  constant = np.full((400, 2), 3.0)  # a stuck sensor: nothing to attenuate, plain diffusion
  det = detectors.create("diffusion", per_series=True, **tiny).fit(
      [data["train"], smooth, constant])
  assert all(leaf.shape[0] == 3 for leaf in jax.tree.leaves(det._params))
  masks = [np.asarray(p.mask) for p in det._processes]
  assert masks[0].shape == masks[1].shape == (WINDOW, 2)
  assert not np.array_equal(masks[0], masks[1])  # each series' own attenuated set
  assert masks[0].any() and not masks[2].any()
  pair = [data["test"], data["test"][:120], constant[:100]]
  comps = det.score_components(pair)
  assert all(np.isfinite(c[n]).all() for c in comps for n in diffusion_det.SCORES)
  loaded = detectors.load(det.save(str(tmp_path / "diffusion_pc")))
  for got, want in zip(loaded.score(pair), det.score(pair)):
    np.testing.assert_array_equal(got, want)
  for got, want in zip(loaded.score_components(pair), comps):
    for name in diffusion_det.SCORES:
      np.testing.assert_array_equal(got[name], want[name])
