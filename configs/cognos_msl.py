"""COGNOS ablation on NASA MSL (all 55 columns).

Grid: backbones x {MSE, GWNR} x {none, ARKS, MA, LP}.

Full grid:
  python -m experiments.main --config=configs/cognos_msl.py --workdir=runs/cognos_msl
CPU minutes:
  python -m experiments.main --config=configs/cognos_msl.py:quick \\
    --workdir=runs/cognos_msl_quick
"""

import ml_collections

from configs import default


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  return default.get_cognos_config("msl", variant)
