"""Shared configuration of the diffusion detector (`mlts/studies/diffusion.py`).

configs/diffusion_smap.py, diffusion_msl.py and diffusion_synthetic.py call
`get_config(dataset, variant)`:

  ''      sized for one GPU: U-Net 64 wide, 20k steps, all four ablation variants.
  quick   2 CPU cores, under 15 minutes: small U-Net, few steps, short ODEs.
  tiny    tests: a few steps of a very small network on synthetic data.
"""

import ml_collections

from configs import default
from mlts.diffusion import detector, process


def get_config(dataset: str = "smap", variant: str = "") -> ml_collections.ConfigDict:
  config = default.get_config()  # data, optimizer, postprocess, eval sections as every detector
  config.experiment = "diffusion"  # the study (mlts.studies)
  config.data.dataset = dataset
  config.data.window = 128
  config.data.stride = 8
  config.data.eval_stride = 32
  # Ablation variants trained and reported side by side (mlts.diffusion.trainer.VARIANTS).
  config.variants = ("full", "no_gamma", "no_reg", "time_basis")
  config.diffusion = process.default_config()
  config.network = net = ml_collections.ConfigDict()
  net.base_width = 64  # channels of the first level
  net.channel_mults = (1, 2, 2, 2)  # per level; each but the last halves the length
  net.num_res_blocks = 2  # residual blocks per level
  net.attention_levels = (2, 3)  # levels with self-attention (the low resolutions)
  net.num_heads = 4
  net.num_groups = 8  # GroupNorm groups
  net.dropout = 0.0
  config.detector = detector.default_config()
  config.postprocess.name = "arks"  # the reconstruction residual goes through ARKS
  config.training.num_steps = 20000
  config.training.batch_size = 128
  config.training.ema_decay = 0.999
  config.training.eval_every = 0
  config.training.checkpoint_every = 2000
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 2e-4
  config.optimizer.warmup_steps = 500
  config.optimizer.weight_decay = 0.0
  if variant == "quick":
    config.data.window = 64
    config.data.stride = 16
    config.data.eval_stride = 64  # non-overlapping windows: scoring dominates on a CPU
    config.diffusion.num_steps = 200
    net.base_width = 16
    net.channel_mults = (1, 2, 2)
    net.num_res_blocks = 1
    net.attention_levels = (2,)
    net.num_groups = 4
    config.training.num_steps = 600
    config.training.batch_size = 64
    config.training.ema_decay = 0.99
    config.training.checkpoint_every = 300
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 50
    config.detector.recon_steps = 8
    config.detector.encode_steps = 16
    config.detector.max_train_encoded = 512
  elif variant == "tiny":
    config.data.window = 32
    config.data.stride = 16
    config.data.eval_stride = 16
    config.data.synthetic.train_length = 400
    config.data.synthetic.test_length = 400
    config.data.synthetic.num_anomalies = 3
    config.data.synthetic.num_series = 2
    config.diffusion.num_steps = 50
    config.variants = ("full", "no_gamma")
    net.base_width = 8
    # One level, no attention: a third of the compile time. The U-Net's levels and
    # attention have their own tests (tests/diffusion_unet_test.py).
    net.channel_mults = (1,)
    net.num_res_blocks = 1
    net.attention_levels = ()
    net.num_heads = 2
    net.num_groups = 4
    config.training.num_steps = 6
    config.training.batch_size = 8
    config.training.log_every = 3
    config.training.checkpoint_every = 6  # one (final) save: Orbax saves cost seconds
    config.training.ema_decay = 0.0
    config.optimizer.warmup_steps = 2
    config.detector.recon_steps = 3
    config.detector.encode_steps = 4
    config.detector.batch_size = 32
    config.detector.max_train_encoded = 32
    config.eval.batch_size = 32
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; expected 'quick', 'tiny' or none")
  return config
