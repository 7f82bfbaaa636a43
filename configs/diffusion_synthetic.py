"""Malleable-latent diffusion detector on synthetic (see configs/diffusion_base.py).

  python -m experiments.main --config=configs/diffusion_synthetic.py:quick \
      --workdir=runs/diffusion_synthetic
"""

from configs import diffusion_base


def get_config(variant: str = ""):
  return diffusion_base.get_config("synthetic", variant)
