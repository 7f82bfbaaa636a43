"""Generation benchmark 'sines' (length 24) with the diffusion model (mlts/studies/generation.py).

  python -m experiments.main --config=configs/generation_sines.py:quick --workdir=runs/gen_sines

'' = the published protocol's sizes (one GPU), 'quick' = CPU minutes, 'tiny' = tests.
"""

from configs import generation_base


def get_config(variant: str = ""):
  return generation_base.get_config("sines", variant)
