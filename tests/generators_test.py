"""Tests of `mlts.generators`: fit / sample / impute / save / load of both generators.

Each generator is fit once (module fixture) on tiny configs, on sine windows
in odd units (50 + 10 x, float64) plus a constant feature, so that the
scaling to [0, 1] and back is exercised.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from mlts import generators, results
from mlts.metrics import temporal

N, L, C = 48, 16, 3
CONSTANT = -3.25  # the value of the last feature

TINY = {
    "diffusion": dict(
        # The KLT basis, as the generation benchmarks (configs/generation_base.py); the
        # per-channel DCT has the detectors' end-to-end tests.
        diffusion={"num_steps": 20, "representation": "klt"},
        network={"base_width": 8, "channel_mults": (1,), "num_res_blocks": 1,
                 "attention_levels": (), "num_heads": 2, "num_groups": 4},
        training={"num_steps": 3, "batch_size": 16, "ema_decay": 0.0, "log_every": 3,
                  "checkpoint_every": 3},
        optimizer={"warmup_steps": 1}, solver="ddim", sample_steps=3, impute_resample=1,
        batch_size=16),
    "vaegan": dict(
        vaegan={"gen_hidden": (4,), "disc_hidden": (4,), "latent": 2, "disc_steps": 1},
        training={"num_steps": 3, "batch_size": 16, "log_every": 3, "checkpoint_every": 3},
        impute_iterations=2, batch_size=16),
}


def make_windows(num: int = N, seed: int = 0) -> np.ndarray:
  """[num, L, C] float64: C - 1 sine features in [50, 60], then the constant feature."""
  x = 50.0 + 10.0 * temporal.sines(num, L, C - 1, seed=seed).astype(np.float64)
  return np.concatenate([x, np.full((num, L, 1), CONSTANT)], axis=-1)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
  return make_windows()


@pytest.fixture(scope="module", params=["diffusion", "vaegan"])
def fitted(request, data, tmp_path_factory):
  """(name, fitted generator, its workdir)."""
  workdir = str(tmp_path_factory.mktemp(f"work_{request.param}"))
  gen = generators.create(request.param, **TINY[request.param])
  assert gen.fit(data, workdir=workdir) is gen
  return request.param, gen, workdir


def random_mask(shape, seed: int = 1) -> np.ndarray:
  return (np.random.default_rng(seed).random(shape) > 0.3).astype(np.float32)


# ---------------------------------------------------------------- registry and config


def test_available_and_create_with_overrides():
  assert generators.available() == ["diffusion", "vaegan"]
  for variant in ("full", "no_gamma", "no_reg", "time_basis"):
    gen = generators.create("diffusion", variant=variant, solver="ddim", sample_steps=7)
    assert (gen.config.variant, gen.config.solver, gen.config.sample_steps) == (
        variant, "ddim", 7)
    assert not gen.fitted
  gen = generators.create("vaegan", training={"num_steps": 5})
  assert gen.config.training.num_steps == 5 and gen.config.training.batch_size == 64


def test_create_refuses_unknown_names_fields_and_values():
  with pytest.raises(ValueError, match="unknown generator 'gan'; available: diffusion, vaegan"):
    generators.create("gan")
  with pytest.raises(ValueError, match=r"no field 'steps'; valid fields: .*sample_steps"):
    generators.create("diffusion", steps=3)
  with pytest.raises(ValueError, match=r"diffusion.training has no field 'epochs'"):
    generators.create("diffusion", training={"epochs": 3})
  with pytest.raises(ValueError, match="training is a section; give a dict"):
    generators.create("vaegan", training=3)
  with pytest.raises(ValueError, match="variant must be one of"):
    generators.create("diffusion", variant="no_basis")
  with pytest.raises(ValueError, match="solver must be one of"):
    generators.create("diffusion", solver="euler")
  with pytest.raises(ValueError, match="sample_steps .* exceeds"):
    generators.create("diffusion", sample_steps=500)
  with pytest.raises(ValueError, match="impute_iterations must be >= 1"):
    generators.create("vaegan", impute_iterations=0)


@pytest.mark.parametrize("name", ["diffusion", "vaegan"])
def test_before_fit_every_use_raises_not_fitted(name):
  gen = generators.create(name)
  with pytest.raises(generators.NotFittedError, match=r"call fit\(windows\) before sample"):
    gen.sample(4, seed=0)
  with pytest.raises(generators.NotFittedError, match="before impute"):
    gen.impute(np.zeros((1, L, C)), np.ones((1, L, C)), seed=0, members=1)
  with pytest.raises(generators.NotFittedError, match="before save"):
    gen.save("unused")


@pytest.mark.parametrize("name", ["diffusion", "vaegan"])
def test_fit_checks_its_windows_before_training(name, data, tmp_path):
  gen = generators.create(name, **TINY[name])
  with pytest.raises(ValueError, match="windows: expected rank 3"):
    gen.fit(data[0])
  bad = data.copy()
  bad[3, 4, 1] = np.nan
  with pytest.raises(ValueError, match=r"windows: 1 non-finite .* index \(3, 4, 1\)"):
    gen.fit(bad)
  with pytest.raises(ValueError, match="windows: empty"):
    gen.fit(data[:0])
  with pytest.raises(ValueError, match="8 window.* training batch of 16.*training.batch_size"):
    gen.fit(data[:8], workdir=str(tmp_path / "work"))
  assert not os.path.exists(tmp_path / "work")  # nothing written: a later fit may use it
  # A batch that does not split over the devices: tests/multidevice_test.py.
  deeper = dict(TINY[name], network={"channel_mults": (1, 2)}) if name == "diffusion" \
      else TINY[name]
  with pytest.raises(ValueError, match="windows: length 17 is not a multiple of 2 "):
    generators.create(name, **deeper).fit(np.concatenate([data, data[:, :1]], axis=1))
  assert not gen.fitted


# ---------------------------------------------------------------- fitted generators


def test_sample_is_in_the_data_units_and_deterministic(fitted, data):
  name, gen, _ = fitted
  assert (gen.length, gen.num_features) == (L, C)
  out = gen.sample(20, seed=3)
  assert out.shape == (20, L, C) and out.dtype == np.float64
  assert np.isfinite(out).all()
  lo, hi = data.min(axis=(0, 1)), data.max(axis=(0, 1))
  span = hi - lo
  assert np.all(out >= lo - 0.01 * span) and np.all(out <= hi + 0.01 * span), name
  assert np.all(out[..., -1] == CONSTANT)
  assert np.array_equal(gen.sample(20, seed=3), out)
  assert not np.array_equal(gen.sample(20, seed=4), out)
  assert gen.sample(1, seed=3).shape == (1, L, C)


def test_impute_keeps_observed_entries_exactly(fitted, data):
  name, gen, _ = fitted
  x = data[:6].astype(np.float32)
  mask = random_mask(x.shape)
  holes = x.copy()
  holes[mask == 0] = np.nan  # missing entries are never read
  out = gen.impute(holes, mask, seed=0, members=3)
  assert out.shape == (3, 6, L, C) and out.dtype == np.float32
  assert np.isfinite(out).all()
  observed = np.broadcast_to(mask == 1, out.shape)
  assert np.array_equal(out[observed], np.broadcast_to(x, out.shape)[observed])
  lo, hi = data[..., :-1].min(), data[..., :-1].max()
  assert out[..., :-1].min() >= lo - 0.5 * (hi - lo)
  assert out[..., :-1].max() <= hi + 0.5 * (hi - lo)
  assert np.all(out[..., -1] == np.float32(CONSTANT))
  assert np.array_equal(gen.impute(holes, mask, seed=0, members=3), out)
  if name == "diffusion":  # independent draws per member and per seed
    assert not np.array_equal(out[0], out[1])
    assert not np.array_equal(gen.impute(holes, mask, seed=1, members=3), out)
  else:  # pseudo-Gibbs is deterministic: identical members
    assert np.array_equal(out[0], out[2])
  # A mask over steps only ([N, L, 1]) broadcasts over the features.
  steps = random_mask((6, L, 1), seed=2)
  out = gen.impute(data[:6], steps, seed=0, members=1)
  assert out.shape == (1, 6, L, C) and out.dtype == np.float64
  keep = np.broadcast_to(steps == 1, (6, L, C))
  assert np.array_equal(out[0][keep], data[:6][keep])


def test_sample_and_impute_check_their_arguments(fitted, data):
  _, gen, _ = fitted
  x, mask = data[:2], np.ones((2, L, C))
  with pytest.raises(ValueError, match="num must be an integer >= 1, got 0"):
    gen.sample(0, seed=0)
  with pytest.raises(ValueError, match="num must be an integer >= 1, got 2.5"):
    gen.sample(2.5, seed=0)
  with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
    gen.sample(2, seed=-1)
  with pytest.raises(ValueError, match="seed must be an integer"):
    gen.impute(x, mask, seed=1.5, members=1)
  with pytest.raises(ValueError, match="members must be an integer >= 1, got 0"):
    gen.impute(x, mask, seed=0, members=0)
  with pytest.raises(ValueError, match="windows: expected rank 3"):
    gen.impute(x[0], mask[0], seed=0, members=1)
  with pytest.raises(ValueError, match="windows: empty"):
    gen.impute(x[:0], mask[:0], seed=0, members=1)
  with pytest.raises(ValueError, match=f"length 8 .* fit on windows of length {L}"):
    gen.impute(x[:, :8], mask[:, :8], seed=0, members=1)
  with pytest.raises(ValueError, match=f"1 feature.* with {C} feature"):
    gen.impute(x[..., :1], mask[..., :1], seed=0, members=1)
  with pytest.raises(ValueError, match="mask: expected rank 3"):
    gen.impute(x, mask[0], seed=0, members=1)
  with pytest.raises(ValueError, match=rf"mask: shape \(2, 3, {C}\) does not broadcast"):
    gen.impute(x, mask[:, :3], seed=0, members=1)
  half = mask.copy()
  half[1, 2, 0] = 0.5
  with pytest.raises(ValueError, match=r"mask: values must be 0 .* 0.5 at index \(1, 2, 0\)"):
    gen.impute(x, half, seed=0, members=1)
  bad = x.copy()
  bad[0, 1, 1] = np.inf
  with pytest.raises(ValueError, match=r"windows: 1 non-finite observed .* \(0, 1, 1\)"):
    gen.impute(bad, mask, seed=0, members=1)
  bad_mask = mask.copy()
  bad_mask[0, 1, 1] = 0  # the same inf, now missing: not read
  assert np.isfinite(gen.impute(bad, bad_mask, seed=0, members=1)).all()


def test_workdir_holds_checkpoints_and_refuses_other_data(fitted):
  name, gen, workdir = fitted
  assert os.listdir(os.path.join(workdir, "checkpoints"))
  assert os.path.isdir(os.path.join(workdir, "logs"))
  other = generators.create(name, **TINY[name])
  with pytest.raises(results.ConfigMismatchError, match="data.digest"):
    other.fit(make_windows(seed=7), workdir=workdir)


def test_save_load_round_trip(fitted, data, tmp_path):
  name, gen, _ = fitted
  directory = gen.save(str(tmp_path / "saved"))
  with open(os.path.join(directory, "generator.json")) as f:
    meta = json.load(f)
  assert (meta["format"], meta["format_version"], meta["name"]) == ("mlts.generator", 1, name)
  assert meta["length"] == L and meta["num_features"] == C and meta["num_train"] == N
  scaling = meta["scaling"]
  np.testing.assert_array_equal(scaling["shift"], data.min(axis=(0, 1)))
  np.testing.assert_allclose(np.add(scaling["shift"], scaling["scale"])[:-1],
                             data.max(axis=(0, 1))[:-1])
  assert scaling["constant"] == [False] * (C - 1) + [True] and scaling["scale"][-1] == 1.0
  files = [f for _, _, fs in os.walk(directory) for f in fs]
  assert not [f for f in files if f.endswith((".pkl", ".pickle", ".npy"))]
  loaded = generators.load(directory)
  assert type(loaded) is type(gen) and loaded.fitted
  assert loaded.config.to_dict() == gen.config.to_dict()
  assert np.array_equal(loaded.sample(12, seed=5), gen.sample(12, seed=5))
  mask = random_mask((4, L, C), seed=3)
  assert np.array_equal(loaded.impute(data[:4], mask, seed=2, members=2),
                        gen.impute(data[:4], mask, seed=2, members=2))


def test_load_refuses_arrays_of_another_representation(fitted, tmp_path):
  name, gen, _ = fitted
  if name != "diffusion":
    pytest.skip("the diffusion generator's basis")
  assert np.shape(gen.process.basis) == (L * C, L * C)  # 'klt': the flattened window
  directory = gen.save(str(tmp_path / "saved"))
  meta_path = os.path.join(directory, "generator.json")
  with open(meta_path) as f:
    meta = json.load(f)
  meta["config"]["diffusion"]["representation"] = "freq"  # the arrays are a KLT model's
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  with pytest.raises(ValueError, match=rf"process.basis has shape \({L * C}, {L * C}\), "
                                       rf"expected \({L}, {L}\)"):
    generators.load(directory)


def test_load_reports_bad_directories(fitted, tmp_path):
  name, gen, _ = fitted
  if name != "vaegan":
    pytest.skip("one generator is enough for the file checks")
  good = gen.save(str(tmp_path / "good"))
  with pytest.raises(FileNotFoundError, match="generator.json not found"):
    generators.load(str(tmp_path / "nothing"))

  def edited(tag, edit):
    directory = str(tmp_path / tag)
    shutil.copytree(good, directory)
    path = os.path.join(directory, "generator.json")
    with open(path) as f:
      meta = json.load(f)
    edit(meta)
    with open(path, "w") as f:
      json.dump(meta, f)
    return directory

  with pytest.raises(ValueError, match="is not an mlts generator"):
    generators.load(edited("format", lambda m: m.update(format="mlts.detector")))
  with pytest.raises(ValueError, match="format version 99 is not 1"):
    generators.load(edited("version", lambda m: m.update(format_version=99)))
  mismatch = edited("config", lambda m: (m["config"].pop("impute_iterations"),
                                         m["config"].update(old_field=1)))
  with pytest.raises(ValueError, match=r"missing from it \['impute_iterations'\], fields this "
                     r"version does not have \['old_field'\].*allow_config_mismatch"):
    generators.load(mismatch)
  loose = generators.load(mismatch, allow_config_mismatch=True)
  assert loose.config.impute_iterations == 10  # this version's default
  assert np.array_equal(loose.sample(3, seed=1), gen.sample(3, seed=1))
  missing = str(tmp_path / "missing")
  shutil.copytree(good, missing)
  shutil.rmtree(os.path.join(missing, "arrays"))
  with pytest.raises(ValueError, match=r"missing.arrays is missing"):
    generators.load(missing)
  corrupt = str(tmp_path / "corrupt")
  shutil.copytree(good, corrupt)
  for root, _, fs in os.walk(os.path.join(corrupt, "arrays")):
    for f in fs:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"not an array")
  with pytest.raises(ValueError, match=r"corrupt.arrays cannot be read"):
    generators.load(corrupt)
