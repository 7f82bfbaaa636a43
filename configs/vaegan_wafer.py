"""β-VAEGAN experiment on wafer (see configs/vaegan_base.py for the variants).

  python -m experiments.main --config=configs/vaegan_wafer.py:quick --workdir=runs/vaegan_wafer
"""

from configs import vaegan_base


def get_config(variant: str = ""):
  config = vaegan_base.get_config("wafer", variant)
  if variant != "tiny":
    config.vaegan.latent = 4  # the paper's Wafer setting (6 on MITBIH)
  return config
