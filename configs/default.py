"""Default configuration of the reconstruction-detector pipeline.

Every dataset config imports this and overrides only what differs. Run:
  python -m experiments.main --config=configs/default.py --workdir=runs/default
"""

import ml_collections
from ml_collections import config_dict

from mlts import models, train, train_state
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

  config.model = models.default_config()  # backbone name + each backbone's sub-section
  config.training = train.default_config()
  config.optimizer = train_state.default_optimizer_config()

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
  # COGNOS Fig. 4: the full method (first backbone, last loss, ARKS) at each breaker
  # confidence; () skips the sweep.
  config.ablation.confidences = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
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
