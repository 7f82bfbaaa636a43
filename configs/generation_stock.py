"""Generation benchmark 'stock' (length 24) with the diffusion model (mlts/studies/generation.py).

  python -m experiments.main --config=configs/generation_stock.py:quick --workdir=runs/gen_stock

'' = the published protocol's sizes (one GPU), 'quick' = CPU minutes, 'tiny' = tests.
"""

from configs import generation_base


def get_config(variant: str = ""):
  return generation_base.get_config("stock", variant)
