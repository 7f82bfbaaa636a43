"""COGNOS ablation on the synthetic series (no data files); ':tiny' is the test setting.

  python -m experiments.main --config=configs/cognos_synthetic.py:tiny --workdir=runs/cognos_syn
"""

import ml_collections

from configs import default, synthetic


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = default.add_cognos_ablation(synthetic.get_config(variant))
  if variant == "tiny":
    config.ablation.backbones = ("dlinear", "lstm_ae")
    config.model.lstm_ae.hidden_size = 8
    config.model.lstm_ae.latent = 4
    config.model.dlinear.latent = 4
    config.model.dlinear.moving_avg = 5
  return config
