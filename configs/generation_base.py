"""Shared configuration of the generation benchmarks (`mlts/studies/generation.py`).

configs/generation_sines.py, generation_stock.py and generation_energy.py call
`get_config(dataset, variant)`: '' = the published protocol's sizes (one GPU),
'quick' = CPU minutes, 'tiny' = tests.
"""

import ml_collections

from configs import diffusion_base  # the diffusion defaults (network, optimizer, process)
from mlts.metrics import temporal


def get_config(dataset: str, variant: str = "") -> ml_collections.ConfigDict:
  """Shared config of configs/generation_*.py (see there)."""
  base = diffusion_base.get_config("synthetic", "quick" if variant in ("quick", "tiny") else "")
  config = ml_collections.ConfigDict()
  config.experiment = "generation"
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seed = 0
  config.data = ml_collections.ConfigDict(dict(dataset=dataset, seq_len=24, dim=5,
                                                num_sines=10000))
  config.diffusion = base.diffusion
  config.diffusion.num_steps = 500
  config.diffusion.energy_keep = 0.95
  config.network = base.network
  config.network.channel_mults = (1, 2)  # length 24: one halving
  config.network.attention_levels = (1,)
  config.optimizer = base.optimizer
  config.training = base.training
  config.training.num_steps = 20000
  config.training.batch_size = 128
  config.training.checkpoint_every = 2000
  config.metrics = temporal.default_config()
  config.num_samples = 0  # 0 = as many as real windows (the published protocol)
  config.sample_batch = 512
  config.sample_steps = 100  # ODE steps
  config.solver = "heun"
  config.num_seeds = 5  # evaluation seeds (Diffusion-TS averages 5)
  if variant == "quick":
    config.diffusion.num_steps = 200
    config.training.num_steps = 10000
    config.training.batch_size = 64
    config.training.checkpoint_every = 2000
    config.num_samples = 2000
    config.sample_steps = 40
    config.num_seeds = 2
  elif variant == "tiny":
    config.data.num_sines = 256
    config.diffusion.num_steps = 50
    config.network.base_width = 8
    config.network.num_groups = 4
    config.network.num_heads = 2
    config.training.num_steps = 4
    config.training.batch_size = 16
    config.training.log_every = 2
    config.training.checkpoint_every = 2
    config.training.ema_decay = 0.0
    config.optimizer.warmup_steps = 1
    config.num_samples = 128
    config.sample_batch = 64
    config.sample_steps = 4
    config.num_seeds = 1
    config.metrics.discriminative_steps = 20
    config.metrics.predictive_steps = 20
    config.metrics.batch_size = 32
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; expected 'quick', 'tiny' or none")
  return config
