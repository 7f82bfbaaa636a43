"""Malleable-latent diffusion detector on smap (see configs/diffusion_base.py).

  python -m experiments.main --config=configs/diffusion_smap.py:quick --workdir=runs/diffusion_smap
"""

from configs import diffusion_base


def get_config(variant: str = ""):
  return diffusion_base.get_config("smap", variant)
