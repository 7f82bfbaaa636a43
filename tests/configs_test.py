"""Every shipped config loads, passes the pipeline's checks and fits the device count."""

import importlib

import pytest

from mlts import pipeline

VARIANTS = {"default": [""], "smap": ["", "quick"], "msl": ["", "quick"],
            "synthetic": ["", "quick", "tiny"]}


@pytest.mark.parametrize("name,variant", [(n, v) for n, vs in VARIANTS.items() for v in vs])
def test_config_is_consistent(name, variant):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(variant) if variant else module.get_config()
  pipeline.check_config(config)
  assert config.training.batch_size % 4 == 0 and config.eval.batch_size % 4 == 0
  assert config.training.checkpoint_every <= config.training.num_steps


@pytest.mark.parametrize("name", ["smap", "msl", "synthetic"])
def test_unknown_variant_is_rejected(name):
  module = importlib.import_module(f"configs.{name}")
  with pytest.raises(ValueError, match="unknown variant"):
    module.get_config("fastest")
