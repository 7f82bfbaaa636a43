"""NASA MSL (27 channels, telemetry only): conv autoencoder detector.

Full run:   python -m experiments.main --config=configs/msl.py --workdir=runs/msl
CPU minutes: python -m experiments.main --config=configs/msl.py:quick --workdir=runs/msl
"""

from configs import default


def get_config(variant: str = "") -> "ml_collections.ConfigDict":  # noqa: F821
  config = default.get_config()
  config.data.dataset = "msl"
  config.data.features = "telemetry"
  config.training.num_steps = 5000
  if variant == "quick":
    config.training.num_steps = 2000
    config.training.log_every = 100
    config.training.checkpoint_every = 500
    config.training.eval_every = 250
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of configs/msl.py; expected 'quick' or none")
  return config
