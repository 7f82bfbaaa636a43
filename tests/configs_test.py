"""Every shipped config loads, passes the pipeline's checks and fits the device count."""

import importlib

import pytest

from mlts import reconstruction, studies

VARIANTS = {"default": [""], "smap": ["", "quick"], "msl": ["", "quick"],
            "synthetic": ["", "quick", "tiny"]}


@pytest.mark.parametrize("name,variant", [(n, v) for n, vs in VARIANTS.items() for v in vs])
def test_config_is_consistent(name, variant):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(variant) if variant else module.get_config()
  reconstruction.check_config(config)
  assert config.training.batch_size % 4 == 0 and config.eval.batch_size % 4 == 0
  assert config.training.checkpoint_every <= config.training.num_steps


@pytest.mark.parametrize("name", ["smap", "msl", "synthetic"])
def test_unknown_variant_is_rejected(name):
  module = importlib.import_module(f"configs.{name}")
  with pytest.raises(ValueError, match="unknown variant"):
    module.get_config("fastest")


@pytest.mark.parametrize("name", ["vaegan_wafer", "vaegan_ecg", "vaegan_smap", "vaegan_msl"])
@pytest.mark.parametrize("variant", ["", "quick", "tiny"])
def test_vaegan_config_is_consistent(name, variant):
  from mlts.vaegan import model, train
  config = importlib.import_module(f"configs.{name}").get_config(variant)
  assert config.experiment == "vaegan"
  for m in config.models:
    vcfg = train.variant_config(m, config.vaegan, **dict(config.model_overrides.get(m, {})))
    model.check_length(config.data.length, len(vcfg.gen_hidden))
    model.check_length(config.data.length, len(vcfg.disc_hidden))
  assert config.training.batch_size % 4 == 0 and config.eval_batch_size % 4 == 0
  assert config.training.checkpoint_every <= config.training.num_steps
  with pytest.raises(ValueError, match="unknown variant"):
    importlib.import_module(f"configs.{name}").get_config("fastest")


def test_vae_example_config_dispatches():
  from configs import vae_synthetic
  assert vae_synthetic.get_config("tiny").experiment == "vae_example"
  config = vae_synthetic.get_config("tiny")
  config.experiment = "nonsense"
  with pytest.raises(ValueError, match="unknown experiment 'nonsense'.*cognos_ablation, detector"):
    studies.run(config, "/nonexistent")
