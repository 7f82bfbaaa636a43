"""COGNOS ablation on NASA SMAP (telemetry column only).

Grid: backbones x {MSE, GWNR} x {none, ARKS, MA, LP}.

Full grid:
  python -m experiments.main --config=configs/cognos_smap.py --workdir=runs/cognos_smap
CPU minutes:
  python -m experiments.main --config=configs/cognos_smap.py:quick \\
    --workdir=runs/cognos_smap_quick
"""

import ml_collections

from configs import default


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  return default.get_cognos_config("smap", variant)
