"""Default configuration of the reconstruction-detector pipeline.

Every dataset config imports this and overrides only what differs. Run:
  python -m experiments.main --config=configs/default.py --workdir=runs/default
"""

import ml_collections
from ml_collections import config_dict

from mlts.cognos import gwnr, postprocess


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = "detector"  # the study (mlts.studies.available())
  config.seed = 0  # root seed: parameters, batch order and the random baseline derive from it
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow

  config.data = data = ml_collections.ConfigDict()
  data.dataset = "synthetic"  # smap | msl | synthetic | csv (own files: configs/csv.py)
  data.features = "telemetry"  # NASA columns: telemetry (column 0 only) | all (25 / 55 columns)
  data.include_p2 = False  # SMAP: include channel P-2 (left out of the usual benchmark)
  data.channels = ""  # comma-separated subset of channels; empty = all of the spacecraft
  data.root = config_dict.placeholder(str)  # own copy in telemanom layout; None = shipped data
  data.val_fraction = 0.2  # last fraction of each training series held out as validation
  data.normalization = "zscore"  # per-channel statistics of the fit part: zscore | minmax | none
  data.window = 128  # window length L (each backbone checks what it can take)
  data.stride = 8  # stride of training windows
  data.eval_stride = 16  # stride of windows when scoring (aggregated back per step)
  data.synthetic = syn = ml_collections.ConfigDict()
  syn.seed = 100  # seed of the first synthetic series (series k uses seed + k)
  syn.num_series = 4  # synthetic channels
  syn.num_channels = 1  # features per synthetic channel
  syn.train_length = 2000  # training steps per series
  syn.test_length = 2000  # test steps per series
  syn.num_anomalies = 8  # anomalies injected per test series

  config.model = model = ml_collections.ConfigDict()
  model.name = "conv_ae"  # backbone: conv_ae | lstm_ae | dlinear | modern_tcn | transformer
  model.revin = False  # per-window instance normalization (hides level shifts if on)
  # Each backbone reads its own sub-section (only the named one is used).
  model.conv_ae = ml_collections.ConfigDict(dict(
      hidden=(32, 64, 64),  # channels per strided level (each halves L)
      latent=4,  # bottleneck channels: L/8 x 4 = 64 numbers per 128-step window
      kernel_size=5))  # convolution width
  model.lstm_ae = ml_collections.ConfigDict(dict(
      hidden_size=32,  # LSTM width of encoder and decoder
      latent=16))  # code size (the encoder's final state projected)
  model.dlinear = ml_collections.ConfigDict(dict(
      latent=16,  # rank of the linear maps along time (L -> latent -> L)
      moving_avg=25))  # trend kernel of the series decomposition
  model.modern_tcn = ml_collections.ConfigDict(dict(
      d_model=32,  # features per token
      latent=2,  # code features per token: L/8 tokens x 2 = L/4 numbers per channel
      patch_size=8,  # steps per patch
      patch_stride=8,  # steps between patches
      large_kernel=51,  # depthwise kernel over tokens
      ffn_ratio=2,  # ConvFFN expansion
      num_blocks=1,  # blocks in the encoder and in the decoder
      channel_ffn=False))  # ConvFFN2 mixing channels (weights grow as C^2)
  model.transformer = ml_collections.ConfigDict(dict(
      d_model=32,  # token width
      latent=4,  # code features per token: L/16 tokens x 4 = L/4 numbers per channel
      patch_size=16,  # steps per patch
      patch_stride=16,  # steps between patches
      num_heads=4,  # attention heads
      mlp_ratio=2,  # MLP expansion
      num_layers=1))  # pre-LN blocks on each side of the bottleneck

  config.training = training = ml_collections.ConfigDict()
  training.loss = "mse"  # mse | gwnr (COGNOS: residuals shaped into Gaussian white noise)
  training.num_steps = 2000  # optimizer steps
  training.batch_size = 64  # global batch (split over devices; a multiple of the device count)
  training.ema_decay = 0.0  # EMA of parameters used for scoring when > 0
  training.log_every = 100  # steps between logged averages
  training.eval_every = 500  # steps between validation-loss evaluations; 0 = off
  training.checkpoint_every = 500  # steps between Orbax checkpoints
  training.max_checkpoints = 2  # checkpoints kept

  config.optimizer = opt = ml_collections.ConfigDict()
  opt.name = "adamw"  # adam | adamw | adabelief
  opt.learning_rate = 1e-3  # peak learning rate
  opt.schedule = "cosine"  # constant | cosine (after linear warm-up)
  opt.warmup_steps = 100  # linear warm-up steps
  opt.weight_decay = 1e-4  # adamw only
  opt.b1 = 0.9  # first-moment decay
  opt.b2 = 0.999  # second-moment decay
  opt.eps = 1e-8  # denominator epsilon
  opt.grad_clip = 1.0  # global-norm clipping; 0 = off

  # COGNOS sections: their defaults (one comment per field) live beside the code.
  config.gwnr = gwnr.default_config()  # used when training.loss == 'gwnr'
  config.postprocess = postprocess.default_config()  # residuals -> score: none/arks/ma/lp

  config.eval = ev = ml_collections.ConfigDict()
  ev.batch_size = 256  # windows per scoring batch (a multiple of the device count)
  ev.score_normalization = "none"  # pooled scores as they are | 'validation' mean/std per channel
  ev.threshold = "quantile"  # per channel on its validation scores: quantile | sigma (mean + k std)
  ev.threshold_quantile = 0.99  # quantile of validation scores (rule 'quantile')
  ev.threshold_sigma = 3.0  # threshold in validation std units (rule 'sigma')
  ev.min_score_scale = 1e-6  # floor of the validation score std
  ev.range_window = 100  # Range-AUC buffer window
  ev.vus_max_window = 100  # VUS: windows 0..max_window
  ev.per_channel = True  # also report every metric per channel
  ev.num_plot_series = 4  # series shown in scores.png
  return config


def get_nasa_config(dataset: str, variant: str = "") -> ml_collections.ConfigDict:
  """The shared config of configs/smap.py and configs/msl.py.

  Args:
    dataset: 'smap' or 'msl'.
    variant: '' (the full run) or 'quick' (about a minute on 2 CPU cores).
  """
  config = get_config()
  config.data.dataset = dataset
  config.data.features = "telemetry"
  config.training.num_steps = 5000
  if variant == "quick":
    config.training.num_steps = 2000
    config.training.checkpoint_every = 500
    config.training.eval_every = 250
  elif variant:
    raise ValueError(
        f"unknown variant {variant!r} of configs/{dataset}.py; expected 'quick' or none")
  return config


def add_cognos_ablation(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the COGNOS ablation grid: every backbone x {MSE, GWNR} x {none, ARKS, MA, LP}."""
  config.experiment = "cognos_ablation"
  config.ablation = ml_collections.ConfigDict()
  config.ablation.backbones = ("lstm_ae", "dlinear", "modern_tcn", "transformer")  # trained
  config.ablation.losses = ("mse", "gwnr")  # training losses
  config.ablation.postprocess = ("none", "arks", "ma", "lp")  # residual post-processing
  return config


def get_cognos_config(dataset: str, variant: str = "") -> ml_collections.ConfigDict:
  """The shared config of configs/cognos_smap.py and configs/cognos_msl.py.

  As in the COGNOS paper, SMAP uses the telemetry column only and MSL all 55
  columns (telemetry plus command flags), each channel its own series.

  Args:
    dataset: 'smap' or 'msl'.
    variant: '' (the full grid) or 'quick' (fewer steps and smaller windows, for a CPU).
  """
  config = add_cognos_ablation(get_config())
  config.data.dataset = dataset
  config.data.features = "telemetry" if dataset == "smap" else "all"
  config.training.num_steps = 3000
  config.training.eval_every = 500
  if variant == "quick" and dataset == "smap":  # about 5 minutes on 2 CPU cores
    config.training.num_steps = 1500
    config.training.checkpoint_every = 500
  elif variant == "quick":  # MSL: 55 columns make each step ~50x dearer; about 10 minutes
    config.data.window = 64
    config.data.eval_stride = 16
    config.training.num_steps = 600
    config.training.checkpoint_every = 300
    config.training.eval_every = 300
  elif variant:
    raise ValueError(
        f"unknown variant {variant!r} of configs/cognos_{dataset}.py; expected 'quick' or none")
  return config
