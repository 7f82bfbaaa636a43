"""Generation benchmark 'sines' (length 24) with the diffusion model (mlts/generation.py).

  python -m experiments.main --config=configs/generation_sines.py:quick --workdir=runs/gen_sines

'' = the published protocol's sizes (one GPU), 'quick' = CPU minutes, 'tiny' = tests.
"""

from mlts import generation


def get_config(variant: str = ""):
  return generation.get_base_config("sines", variant)
