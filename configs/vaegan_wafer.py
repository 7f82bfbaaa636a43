"""β-VAEGAN experiment on wafer (see configs/vaegan_base.py for the variants).

  python -m experiments.main --config=configs/vaegan_wafer.py:quick --workdir=runs/vaegan_wafer
"""

from configs import vaegan_base


def get_config(variant: str = ""):
  return vaegan_base.get_config("wafer", variant)
