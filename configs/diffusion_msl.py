"""Malleable-latent diffusion detector on msl (see configs/diffusion_base.py).

  python -m experiments.main --config=configs/diffusion_msl.py:quick --workdir=runs/diffusion_msl
"""

from configs import diffusion_base


def get_config(variant: str = ""):
  return diffusion_base.get_config("msl", variant)
