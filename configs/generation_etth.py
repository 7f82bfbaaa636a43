"""Generation benchmark 'etth' (length 24) with the diffusion model (mlts/studies/generation.py).

  python -m experiments.main --config=configs/generation_etth.py:quick --workdir=runs/gen_etth

'' = the standard budget (under 60 min on 2 CPU cores), 'quick' (under 15 min), 'paper'
(the published sizes, one GPU), 'tiny' = tests (configs/generation_base.py).
"""

from configs import generation_base


def get_config(variant: str = ""):
  return generation_base.get_config("etth", variant)
