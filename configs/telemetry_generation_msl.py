"""Generation quality on MSL telemetry windows (mlts/studies/telemetry_generation.py).

  python -m experiments.main --config=configs/telemetry_generation_msl.py:quick \
      --workdir=runs/telemetry_generation_msl

'' = sized for one GPU, 'quick' = 2 CPU cores under 15 minutes, 'tiny' = tests.
"""

from configs import telemetry_base


def get_config(variant: str = ""):
  return telemetry_base.get_config("msl", "generation", variant)
