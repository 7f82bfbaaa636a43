"""NASA MSL (27 channels, telemetry only): conv autoencoder detector.

Full run:    python -m experiments.main --config=configs/msl.py --workdir=runs/msl
CPU minutes: python -m experiments.main --config=configs/msl.py:quick --workdir=runs/msl
"""

import ml_collections

from configs import default


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  return default.get_nasa_config("msl", variant)
