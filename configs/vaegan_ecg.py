"""β-VAEGAN experiment on ecg200 (see configs/vaegan_base.py for the variants).

  python -m experiments.main --config=configs/vaegan_ecg.py:quick --workdir=runs/vaegan_ecg
"""

from configs import vaegan_base


def get_config(variant: str = ""):
  return vaegan_base.get_config("ecg200", variant)
