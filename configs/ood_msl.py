"""OOD detection on MSL telemetry windows: anomalous and cross-spacecraft (mlts/studies/ood.py).

  python -m experiments.main --config=configs/ood_msl.py:quick --workdir=runs/ood_msl

'' = sized for one GPU, 'quick' = 2 CPU cores under 15 minutes, 'tiny' = tests.
"""

from configs import telemetry_base


def get_config(variant: str = ""):
  return telemetry_base.get_config("msl", "ood", variant)
