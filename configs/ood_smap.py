"""OOD detection on SMAP telemetry windows: anomalous and cross-spacecraft (mlts/studies/ood.py).

  python -m experiments.main --config=configs/ood_smap.py:quick --workdir=runs/ood_smap

'' = sized for one GPU, 'quick' = 2 CPU cores under 15 minutes, 'tiny' = tests.
"""

from configs import telemetry_base


def get_config(variant: str = ""):
  return telemetry_base.get_config("smap", "ood", variant)
