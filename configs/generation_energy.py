"""Generation benchmark 'energy' (length 24) with the diffusion model (mlts/studies/generation.py).

  python -m experiments.main --config=configs/generation_energy.py:quick --workdir=runs/gen_energy

'' = the standard budget (under 60 min on 2 CPU cores), 'quick' (under 15 min), 'paper'
(the published sizes, one GPU), 'tiny' = tests (configs/generation_base.py).
"""

from configs import generation_base


def get_config(variant: str = ""):
  return generation_base.get_config("energy", variant)
