"""Tests for the β-VAEGAN protocols, baselines, training loop, scoring and experiment."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import vaegan_base, vaegan_msl, vaegan_wafer
from mlts import studies, writers
from mlts import train as train_lib
from mlts.data import telemetry
from mlts.studies import vaegan as experiment
from mlts.vaegan import losses, model, protocol, scoring
from mlts.vaegan import train as vaegan_train

HIDDEN = (4, 8, 8)  # depth 3: lengths must be multiples of 8


def tiny(name="vaegan2", **overrides):
  settings = dict(latent=3, gen_hidden=HIDDEN, disc_hidden=HIDDEN, disc_steps=1)
  settings.update(overrides)
  return vaegan_train.variant_config(name, **settings)


def training_config(num_steps=4, **overrides):
  config = ml_collections.ConfigDict(dict(num_steps=num_steps, batch_size=8, log_every=2,
                                          checkpoint_every=2, max_checkpoints=2))
  config.update(overrides)
  return config


def windows(n=32, length=32, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length)[None, :, None]
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
  return (0.5 + 0.4 * np.sin(2 * np.pi * t / 16 + phase)).astype(np.float32)


# ---------------------------------------------------------------- protocol


def test_resample_is_exact_on_linear_series_and_keeps_endpoints():
  x = np.stack([np.linspace(0, 1, 152), np.linspace(3, -2, 152)])
  y = protocol.resample(x, 160)
  np.testing.assert_allclose(y, np.stack([np.linspace(0, 1, 160), np.linspace(3, -2, 160)]),
                             atol=1e-12)
  z = protocol.resample(np.random.default_rng(0).normal(size=(3, 96)), 160)
  assert z.shape == (3, 160)
  with pytest.raises(ValueError, match="non-finite"):
    protocol.resample(np.array([[0.0, np.nan, 1.0]]), 5)


def test_minmax_rows():
  x = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
  np.testing.assert_allclose(protocol.minmax_rows(x), [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("name,count,abnormal", [("Wafer", 1000, 97), ("ECG200", 200, 67)])
def test_ucr_sets(name, count, abnormal):
  x, y = protocol.load_ucr_set(name)
  assert x.shape == (count, 160, 1) and x.dtype == np.float32
  assert int(y.sum()) == abnormal
  np.testing.assert_allclose(x.min(axis=(1, 2)), 0.0)
  np.testing.assert_allclose(x.max(axis=(1, 2)), 1.0)


def test_ucr_folds_follow_the_paper_protocol():
  _, y = protocol.load_ucr_set("Wafer")
  folds = protocol.ucr_folds(y, num_folds=5, train_fraction=0.85, seed=3)
  assert len(folds) == 5
  for f in folds:
    parts = [f["train"], f["val"], f["test"]]
    allidx = np.concatenate(parts)
    assert np.array_equal(np.sort(allidx), np.arange(y.size))  # disjoint and covering
    assert y[f["train"]].sum() == 0 and f["train"].size == round(0.85 * 903)
    assert abs(int(y[f["val"]].sum()) - int(y[f["test"]].sum())) <= 1
    assert abs(int((y[f["val"]] == 0).sum()) - int((y[f["test"]] == 0).sum())) <= 1
  assert not np.array_equal(folds[0]["val"], folds[1]["val"])
  again = protocol.ucr_folds(y, num_folds=5, train_fraction=0.85, seed=3)
  assert all(np.array_equal(a["test"], b["test"]) for a, b in zip(folds, again))
  with pytest.raises(ValueError, match="abnormal"):
    protocol.ucr_folds(np.array([0] * 20 + [1]))


def test_nasa_windows_split_and_labels():
  data = telemetry.nasa_windows("msl", window=64, train_stride=32, val_fraction=0.3,
                               channels="C-1,T-12")
  from mlts.data import nasa
  for name, val, test in zip(("C-1", "T-12"), data.val, data.test):
    labels = nasa.load_channel(name).labels
    cut = int(round(0.3 * labels.size))
    np.testing.assert_array_equal(val.point_labels, labels[:cut])
    np.testing.assert_array_equal(test.point_labels, labels[cut:])
    for part in (val, test):
      # Non-overlapping windows except the last, which is aligned to the end.
      assert np.all(np.diff(part.starts)[:-1] == 64)
      expected = np.array([part.point_labels[s:s + 64].max() for s in part.starts])
      np.testing.assert_array_equal(part.labels, expected)
  assert data.train.shape[1:] == (64, 1)
  assert 0.0 <= data.train.min() and data.train.max() <= 1.0
  # Constant window values map back to the same constant on every point.
  values = np.concatenate([np.full(p.windows.shape[0], i + 1.0) for i, p in enumerate(data.test)])
  points = telemetry.point_scores(data.test, values)
  np.testing.assert_array_equal(
      points, np.concatenate([np.full(p.point_labels.size, i + 1.0)
                              for i, p in enumerate(data.test)]))
  with pytest.raises(ValueError, match="unknown msl channel"):
    telemetry.nasa_windows("msl", window=64, train_stride=32, channels="X-99")


# ---------------------------------------------------------------- baselines


def test_variant_configs_and_bad_combinations():
  assert vaegan_train.variant_config("beatgan").latent == 50
  assert not vaegan_train.variant_config("ae").adversarial
  assert vaegan_train.variant_config("vaegan2").beta == 1e-4
  with pytest.raises(ValueError, match="unknown β-VAEGAN variant"):
    vaegan_train.variant_config("gan")
  with pytest.raises(ValueError, match="'bce' needs targets in"):
    vaegan_train.variant_config("beatgan", rec_loss="bce")


def test_tanh_decoder_and_plain_discriminator():
  x = jnp.asarray(windows(2) * 2 - 1)
  vae = model.BetaVAE(num_features=1, length=32, latent=3, hidden=HIDDEN, output="tanh")
  v = vae.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x, train=False)
  x_hat = vae.apply(v, x, train=False, sample=False)[0]
  assert float(x_hat.min()) < 0.0 and float(jnp.abs(x_hat).max()) < 1.0
  disc = model.Discriminator(hidden=HIDDEN, spectral_norm=False)
  dv = disc.init(jax.random.key(2), x, update_stats=False)
  assert "batch_stats" not in dv
  sn = model.Discriminator(hidden=HIDDEN).init(jax.random.key(2), x, update_stats=False)
  assert "batch_stats" in sn


def test_generator_loss_mse_and_no_discriminator():
  x = jnp.array([[[0.0], [1.0]]])
  x_hat = jnp.array([[[0.5], [0.5]]])
  mu, logvar = jnp.zeros((1, 2)), jnp.zeros((1, 2))
  loss, m = losses.generator_loss(x, x_hat, None, None, mu, logvar, beta=1.0, nu=2.0,
                                  rec_loss="mse")
  assert float(m["adv"]) == 0.0 and float(m["kl"]) == 0.0
  np.testing.assert_allclose(float(loss), 2.0 * 0.25, rtol=1e-6)
  with pytest.raises(ValueError, match="both be given"):
    losses.generator_loss(x, x_hat, jnp.zeros((1, 3)), None, mu, logvar, beta=0, nu=1)


@pytest.mark.parametrize("name", sorted(vaegan_train.VARIANTS))
def test_every_variant_trains(name):
  config = tiny(name, latent=5 if name == "beatgan" else 3)
  x = vaegan_train.to_model_range(jnp.asarray(windows(8)), config.output)
  state = vaegan_train.create_state(config, x[:1], jax.random.key(0))
  disc_before = jax.tree_util.tree_map(np.asarray, state.disc.params)
  step = vaegan_train.make_train_step(config)
  state, metrics = step(state, x, jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert ("loss_d" in metrics) == config.adversarial
  moved = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda a, b: bool(np.any(np.asarray(a) != b)), state.disc.params, disc_before))
  assert any(moved) == config.adversarial
  if not config.variational:
    assert float(metrics["kl"]) >= 0.0  # reported, not weighted


def test_deterministic_models_do_not_sample():
  config = tiny("beatgan_plus")
  x = jnp.asarray(windows(8))
  state = vaegan_train.create_state(config, x[:1], jax.random.key(0))
  step = vaegan_train.make_train_step(config)  # donates its state: pass copies
  _, m1 = step(jax.tree_util.tree_map(jnp.copy, state), x, jax.random.key(1))
  _, m2 = step(jax.tree_util.tree_map(jnp.copy, state), x, jax.random.key(2))
  np.testing.assert_allclose(float(m1["loss_g"]), float(m2["loss_g"]), rtol=1e-6)


# ---------------------------------------------------------------- fit and scoring


def test_fit_resumes_to_the_same_state(tmp_path):
  config = tiny("vaegan2")
  x = windows(32)
  full = vaegan_train.fit(config, training_config(6), x, key=jax.random.key(0), seed=0,
                          checkpoint_dir=str(tmp_path / "a"),
                          writer=writers.MetricWriter(str(tmp_path / "la"), tensorboard=False))

  class Stop(Exception):
    pass

  def stop_at_3(step, state):
    if step == 3:
      raise Stop

  with pytest.raises(Stop):
    vaegan_train.fit(config, training_config(6, checkpoint_every=1), x, key=jax.random.key(0),
                     seed=0, checkpoint_dir=str(tmp_path / "b"),
                     writer=writers.MetricWriter(str(tmp_path / "lb"), tensorboard=False),
                     hooks=[stop_at_3])
  resumed = vaegan_train.fit(config, training_config(6, checkpoint_every=1), x,
                             key=jax.random.key(0), seed=0, checkpoint_dir=str(tmp_path / "b"),
                             writer=writers.MetricWriter(str(tmp_path / "lb"),
                                                         tensorboard=False))
  assert int(resumed.step) == 6
  for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_fit_rejects_bad_windows_and_stops_on_nan_loss(tmp_path):
  config = tiny("vaegan2")
  writer = writers.MetricWriter(str(tmp_path / "l"), tensorboard=False)
  bad = windows(16)
  bad[3, 5, 0] = np.nan
  with pytest.raises(ValueError, match="non-finite"):
    vaegan_train.fit(config, training_config(), bad, key=jax.random.key(0), seed=0,
                     checkpoint_dir=str(tmp_path / "c"), writer=writer)
  with pytest.raises(ValueError, match=r"scaled to \[0, 1\]"):
    vaegan_train.fit(config, training_config(), windows(16) * 3, key=jax.random.key(0), seed=0,
                     checkpoint_dir=str(tmp_path / "c"), writer=writer)
  with pytest.raises(train_lib.NonFiniteLossError, match="non-finite loss_g"):
    vaegan_train.fit(tiny("vaegan2", nu=float("nan")), training_config(), windows(16),
                     key=jax.random.key(0), seed=0, checkpoint_dir=str(tmp_path / "d"),
                     writer=writer)


@pytest.mark.parametrize("name", ["vaegan2", "beatgan", "ae", "vae"])
def test_scorer_matches_direct_computation(name):
  config = tiny(name, latent=3)
  x = windows(10)
  state = vaegan_train.create_state(
      config, vaegan_train.to_model_range(jnp.asarray(x[:1]), config.output), jax.random.key(0))
  out = scoring.make_scorer(config, batch_size=4, with_reconstruction=True)(state, x)
  gen, disc = vaegan_train.make_models(config, 32, 1)
  xm = vaegan_train.to_model_range(jnp.asarray(x), config.output)
  x_hat, _, mu, _ = gen.apply({"params": state.gen.params, "batch_stats": state.gen.batch_stats},
                              xm, train=False, sample=False)
  x_hat01 = np.asarray(vaegan_train.from_model_range(x_hat, config.output))
  np.testing.assert_allclose(out["R"], ((x_hat01 - x) ** 2).mean(axis=(1, 2)), rtol=1e-4)
  np.testing.assert_allclose(out["z_norm"], np.linalg.norm(np.asarray(mu), axis=1), rtol=1e-4)
  if config.variational:  # posterior samples: not the mean, reproducible by key
    assert not np.allclose(out["z_sample_norm"], out["z_norm"])
    s2 = scoring.make_scorer(config, batch_size=4)(state, x, jax.random.key(0))
    np.testing.assert_array_equal(s2["z_sample_norm"], out["z_sample_norm"])
  else:
    np.testing.assert_allclose(out["z_sample_norm"], out["z_norm"], rtol=1e-6)
  np.testing.assert_allclose(out["x_hat"], x_hat01, rtol=1e-4, atol=1e-6)
  if config.adversarial:
    dv = {"params": state.disc.params, "batch_stats": state.disc.batch_stats}
    _, f_real = disc.apply(dv, xm, update_stats=False)
    _, f_fake = disc.apply(dv, x_hat, update_stats=False)
    np.testing.assert_allclose(out["D"], ((np.asarray(f_real) - np.asarray(f_fake)) ** 2).mean(1),
                               rtol=1e-4, atol=1e-9)
  else:
    assert np.all(out["D"] == 0.0)
  # The padded last batch does not change anything.
  again = scoring.make_scorer(config, batch_size=8)(state, x)
  np.testing.assert_allclose(again["R"], out["R"], rtol=1e-5)


# ---------------------------------------------------------------- composition on splits


def test_compose_fits_on_validation_only():
  rng = np.random.default_rng(0)

  def split(n):
    y = (rng.random(n) < 0.3).astype(np.int8)
    comps = {"R": rng.random(n) + 2.0 * y, "D": rng.random(n), "L": rng.random(n) + y}
    return comps, y

  val, val_y = split(200)
  test, test_y = split(300)
  cfg = vaegan_base.get_config("wafer", "tiny").composition
  out = experiment.compose(val, val_y, test, True, cfg)
  assert set(out) == set(experiment.ADVERSARIAL_METHODS)
  for name, m in out.items():
    assert m["scalers"]["R"] == [val["R"].min(), val["R"].max()]
    metrics = experiment.window_metrics(test_y, m["preds"], m["scores"])
    assert metrics["F1"] > 0.8 and metrics["AUROC"] > 0.9, name
  # Changing the test labels cannot change anything (they are never passed in), while
  # changing validation labels changes the fit.
  flipped = experiment.compose(val, 1 - val_y, test, True, cfg)
  assert not np.array_equal(flipped["λ=0"]["preds"], out["λ=0"]["preds"])
  plain = experiment.compose(val, val_y, test, False, cfg)
  assert set(plain) == set(experiment.PLAIN_METHODS)


def test_mean_std_skips_undefined():
  rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": float("nan")}]
  assert experiment.mean_std(rows) == {"a": [2.0, 1.0], "b": [None, None]}


# ---------------------------------------------------------------- whole experiments


def _small(config):
  config.models = ("ae", "vaegan2")
  config.chi.betas = (0.01,)
  return config


def test_wafer_experiment_end_to_end(tmp_path):
  config = _small(vaegan_wafer.get_config("tiny"))
  results = studies.run(config, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["dataset"] == "Wafer" and set(saved["models"]) == {"ae", "vaegan2"}
  table = (tmp_path / "tables.md").read_text()
  for name in ("β-VAEGAN₂", "SVM_γ", "TSTR_N", "χ check"):
    assert name in table
  for fig in ("chi.png", "reconstructions_vaegan2.png", "components_ae.png"):
    assert os.path.getsize(tmp_path / "figures" / fig) > 0
  # The summary is the mean over the folds' test metrics.
  r = results["models"]["vaegan2"]
  f1s = [f["methods"]["SVM_γ"]["F1"] for f in r["folds"]]
  np.testing.assert_allclose(r["methods"]["SVM_γ"]["F1"], [np.mean(f1s), np.std(f1s)])
  assert len(r["folds"]) == 2 and "tstr" in r
  # A second run resumes from the checkpoints and reproduces the numbers.
  again = studies.run(config, str(tmp_path))
  assert again["models"]["vaegan2"]["methods"] == r["methods"]


def test_telemetry_experiment_reports_point_metrics(tmp_path):
  config = _small(vaegan_msl.get_config("tiny"))
  config.data.channels = "C-1,C-2,T-12"
  config.num_folds = 1
  config.tstr.enabled = False
  config.chi.betas = ()
  results = studies.run(config, str(tmp_path))
  points = results["models"]["vaegan2"]["points"]
  assert set(points) == set(experiment.ADVERSARIAL_METHODS)
  assert 0.0 <= points["SVM_γ"]["AUROC"] <= 1.0 and "Aff-F1" in points["SVM_γ"]
  assert "Point-wise metrics" in (tmp_path / "tables.md").read_text()


def test_window_metrics_match_scikit_learn():
  from sklearn import metrics as skm
  rng = np.random.default_rng(0)
  y = (rng.random(300) < 0.3).astype(np.int8)
  p = (rng.random(300) < 0.4).astype(np.int8)
  s = rng.random(300) + y
  m = experiment.window_metrics(y, p, s)
  np.testing.assert_allclose(m["F1"], skm.f1_score(y, p))
  np.testing.assert_allclose(m["wF1"], skm.f1_score(y, p, average="weighted"))
  np.testing.assert_allclose(m["MCC"], skm.matthews_corrcoef(y, p))
  np.testing.assert_allclose(m["AUROC"], skm.roc_auc_score(y, s))
