"""β-VAEGAN experiment on smap (see configs/vaegan_base.py for the variants).

  python -m experiments.main --config=configs/vaegan_smap.py:quick --workdir=runs/vaegan_smap
"""

from configs import vaegan_base


def get_config(variant: str = ""):
  config = vaegan_base.get_config("smap", variant)
  if variant != "tiny":
    config.data.length = 128  # the telemetry window of the detector configs (a multiple of 32)
  return config
