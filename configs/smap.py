"""NASA SMAP (53 channels, telemetry only, P-2 left out): conv autoencoder detector.

Full run:    python -m experiments.main --config=configs/smap.py --workdir=runs/smap
CPU minutes: python -m experiments.main --config=configs/smap.py:quick --workdir=runs/smap
"""

import ml_collections

from configs import default


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  return default.get_nasa_config("smap", variant)
