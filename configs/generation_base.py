"""Shared configuration of the generation benchmarks (`mlts/studies/generation.py`).

configs/generation_{sines,stock,etth,energy}.py call `get_config(dataset, variant)`:

  ''      the standard budget: under 60 minutes on 2 CPU cores for the three
          variants and all metrics (5 runs each).
  quick   under 15 minutes on 2 CPU cores (fewer training steps and samples, 3 runs).
  paper   the published protocol's sizes (20k steps of a wide U-Net: one GPU).
  tiny    tests.
"""

import ml_collections

from configs import diffusion_base  # the diffusion defaults (network, optimizer, process)
from mlts.metrics import temporal, ts2vec


def get_config(dataset: str, variant: str = "") -> ml_collections.ConfigDict:
  """Shared config of configs/generation_*.py (see there)."""
  base = diffusion_base.get_config("synthetic", "" if variant == "paper" else "quick")
  config = ml_collections.ConfigDict()
  config.experiment = "generation"
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seed = 0
  config.data = ml_collections.ConfigDict(dict(dataset=dataset, seq_len=24, dim=5,
                                                num_sines=10000))
  # The method under study and its two ablations (mlts.diffusion.trainer.VARIANTS).
  config.variants = ("full", "no_reg", "no_gamma")
  config.diffusion = base.diffusion
  config.diffusion.num_steps = 500
  config.diffusion.energy_keep = 0.95
  # The U-Net learns the correction to the training windows' Gaussian noise predictor: the
  # plain network diverged on Energy (mlts/diffusion/losses.py).
  config.diffusion.gaussian_residual = True
  # The Karhunen-Loeve basis of whole windows (mlts/diffusion/basis.py): the Gaussian the
  # U-Net corrects is then the windows' full-covariance Gaussian. In the per-channel DCT it
  # was diagonal: Energy's 28 correlated columns came out independent (Context-FID 4.0).
  config.diffusion.representation = "klt"
  config.network = base.network
  config.network.channel_mults = (1, 2)  # length 24: one halving
  config.network.attention_levels = (1,)
  config.optimizer = base.optimizer
  config.training = base.training
  config.training.num_steps = 20000
  config.training.batch_size = 128
  config.training.checkpoint_every = 2000
  config.metrics = temporal.default_config()
  config.context_fid = ts2vec.default_config()  # TS2Vec, as Diffusion-TS's Context-FID
  config.num_samples = 0  # 0 = as many as real windows (the published protocol)
  config.sample_batch = 512
  config.sample_steps = 100  # ODE steps
  config.solver = "heun"
  config.num_seeds = 5  # evaluation runs of every metric (Diffusion-TS averages 5)
  if variant in ("", "quick"):  # 2 CPU cores: the small U-Net of diffusion_base 'quick'
    config.diffusion.num_steps = 200
    config.training.num_steps = 8000
    config.training.batch_size = 64
    config.training.checkpoint_every = 2000
    config.num_samples = 3000
    config.sample_steps = 40
  if variant == "quick":
    config.training.num_steps = 2500
    config.training.checkpoint_every = 2500
    config.num_samples = 1000
    config.num_seeds = 3
  elif variant == "tiny":
    config.data.num_sines = 256
    config.diffusion.num_steps = 50
    config.network.base_width = 8
    config.network.num_groups = 4
    config.network.num_heads = 2
    config.network.channel_mults = (1,)  # one level, no attention: compiles faster
    config.network.attention_levels = ()
    config.training.num_steps = 4
    config.training.batch_size = 16
    config.training.log_every = 2
    config.training.checkpoint_every = 4  # one (final) save: Orbax saves cost seconds
    config.training.ema_decay = 0.0
    config.optimizer.warmup_steps = 1
    config.num_samples = 128
    config.sample_batch = 64
    config.sample_steps = 4
    config.num_seeds = 1
    config.metrics.discriminative_steps = 20
    config.metrics.predictive_steps = 20
    config.metrics.batch_size = 32
    config.context_fid.hidden, config.context_fid.output = 8, 16
    config.context_fid.depth, config.context_fid.steps = 2, 5
  elif variant not in ("", "quick", "paper"):
    raise ValueError(f"unknown variant {variant!r}; expected 'quick', 'paper', 'tiny' or none")
  return config
