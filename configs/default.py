"""Default configuration of the reconstruction-detector pipeline.

Every dataset config imports this and overrides only what differs. Run:
  python -m experiments.main --config=configs/default.py --workdir=runs/default
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # root seed: parameters, batch order and the random baseline derive from it

  config.data = data = ml_collections.ConfigDict()
  data.dataset = "synthetic"  # smap | msl | synthetic
  data.features = "telemetry"  # NASA columns: telemetry (column 0 only) | all (25 / 55 columns)
  data.include_p2 = False  # SMAP: include channel P-2 (left out of the usual benchmark)
  data.channels = ""  # comma-separated subset of channels; empty = all of the spacecraft
  data.root = config_dict.placeholder(str)  # own copy in telemanom layout; None = shipped data
  data.val_fraction = 0.2  # last fraction of each training series held out as validation
  data.normalization = "zscore"  # per-channel statistics of the fit part: zscore | minmax | none
  data.window = 128  # window length L (a multiple of 2 ** len(model.hidden))
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
  model.name = "conv_ae"  # backbone: conv_ae
  model.hidden = (32, 64, 64)  # channels per downsampling level (each halves the length)
  model.latent = 4  # bottleneck channels: L/8 x 4 = 64 numbers per 128-step window
  model.kernel_size = 5  # convolution width
  model.revin = False  # per-window instance normalization (hides level shifts if on)

  config.training = training = ml_collections.ConfigDict()
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
