"""Every config field is validated before any data is loaded or anything compiles (issue 13 §4)."""

import os

import pytest

from configs import diffusion_synthetic, synthetic
from mlts import detectors, studies

CASES = [
    ("training.batch_size", 0), ("training.batch_size", -4), ("training.checkpoint_every", 0),
    ("training.log_every", 0), ("training.num_steps", 0), ("training.max_checkpoints", 0),
    ("eval.batch_size", 0), ("eval.threshold_quantile", 1.0), ("eval.threshold_quantile", 0.0),
    ("postprocess.name", "arksx"), ("eval.threshold", "median"),
    ("eval.score_normalization", "zscore"), ("optimizer.learning_rate", 0.0),
    ("optimizer.name", "sgd"), ("data.stride", 0), ("data.val_fraction", 1.0),
    ("data.dataset", "mydata"), ("training.loss", "mae"), ("postprocess.ma_window", 0),
]


def _set(config, field, value):
  section, leaf = field.rsplit(".", 1)
  node = config
  for part in section.split("."):
    node = node[part]
  node[leaf] = value


@pytest.mark.parametrize("field,value", CASES)
def test_a_bad_field_is_named_before_any_work(field, value, tmp_path):
  config = synthetic.get_config("tiny")
  _set(config, field, value)
  workdir = tmp_path / "w"
  with pytest.raises(ValueError) as err:
    studies.run(config, str(workdir))
  message = str(err.value)
  assert field in message and repr(value) in message, message
  assert not os.path.exists(workdir)  # nothing was written, loaded or trained


def test_the_ablation_and_diffusion_studies_check_first(tmp_path):
  from configs import cognos_synthetic
  config = cognos_synthetic.get_config("tiny")
  config.eval.threshold = "median"
  with pytest.raises(ValueError, match="eval.threshold must be one of"):
    studies.run(config, str(tmp_path / "a"))
  config = diffusion_synthetic.get_config("tiny")
  config.training.batch_size = 0
  with pytest.raises(ValueError, match="training.batch_size must be an integer >= 1, got 0"):
    studies.run(config, str(tmp_path / "d"))
  assert not os.listdir(tmp_path)


def test_batch_sizes_must_split_over_the_devices(tmp_path):
  config = synthetic.get_config("tiny")
  config.training.batch_size = 6  # 4 forced host devices in the tests
  with pytest.raises(ValueError, match="training.batch_size=6 does not split over the 4 devices"):
    studies.run(config, str(tmp_path / "w"))


def test_detector_configs_are_checked_at_create():
  with pytest.raises(ValueError, match=r"training.num_steps must be >= 1, got 0"):
    detectors.create("conv_ae", training={"num_steps": 0})
