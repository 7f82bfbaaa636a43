"""Shared configuration of the β-VAEGAN experiments (`mlts/studies/vaegan.py`).

The dataset configs (vaegan_wafer.py, vaegan_ecg.py, vaegan_smap.py,
vaegan_msl.py) call `get_config(dataset, variant)` and override what differs:

  ''      the paper's sizes: conv widths 32..512, batch 256, 5 folds, 1500 steps
          (about 500 epochs of Wafer); sized for one GPU.
  quick   CPU minutes: widths 16..256, batch 64, 2 folds, a few hundred steps.
  tiny    tests: widths 4..16, depth 3 (L = 64), a few steps.
"""

import ml_collections

from mlts.vaegan import train as vaegan_train
from mlts.vaegan import tstr


def get_config(dataset: str = "wafer", variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = "vaegan"  # the study (mlts.studies)
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seed = 0  # fold k trains with seed + 1000 k; fold splits use (seed, k)
  config.num_folds = 5  # independent stratified splits (telemetry: training seeds)
  # Model variants of mlts.vaegan.train.VARIANTS, in table order.
  config.models = ("ae", "vae", "beatgan", "beatgan_plus", "vaegan1", "vaegan2")
  config.model_overrides = ml_collections.ConfigDict()  # {variant: {field: value}}
  config.vaegan = vaegan_train.default_config()  # shared by every variant

  config.data = data = ml_collections.ConfigDict()
  data.dataset = dataset  # wafer | ecg200 | smap | msl
  data.length = 160  # window length (the paper's; a multiple of 2 ** depth)
  data.train_fraction = 0.85  # UCR: fraction of the normal series used for training
  data.train_stride = 16  # telemetry: stride of the training windows
  data.val_fraction = 0.3  # telemetry: leading fraction of each test series = validation
  data.channels = ""  # telemetry: comma-separated subset; '' = all channels

  config.training = training = ml_collections.ConfigDict()
  training.num_steps = 1500  # generator updates
  training.batch_size = 256  # the paper's batch (BeatGAN's own was 64)
  training.log_every = 100
  training.checkpoint_every = 500
  training.max_checkpoints = 1

  config.composition = comp = ml_collections.ConfigDict()
  comp.num_lambda = 50  # λ grid (the 50 x 100; the paper's appendix says 100 x 50)
  comp.num_tau = 100  # thresholds per weight vector
  comp.num_gamma = 50  # values per axis of the triangular (λ, γ) grid
  comp.svm_C = 1.0  # RBF SVC regularization (gamma='scale', balanced classes)

  config.tstr = tstr.default_config()
  config.tstr.enabled = True  # TSTR / TSTR_N on the validation split per model and fold

  config.chi = ml_collections.ConfigDict()
  config.chi.betas = (0.0, 1e-4, 1e-2)  # β-VAEGAN trained on fold 0 per β for the χ figure

  config.eval = ev = ml_collections.ConfigDict()  # point-wise metrics (telemetry only)
  ev.range_window = 100
  ev.vus_max_window = 100
  config.eval_batch_size = 256  # windows per scoring batch
  config.max_train_scored = 4096  # training windows scored for the latent-norm statistics

  if variant == "quick":
    config.num_folds = 2
    config.vaegan.gen_hidden = config.vaegan.disc_hidden = (16, 32, 64, 128, 256)
    training.num_steps = 400
    training.batch_size = 64
    training.checkpoint_every = 200
  elif variant == "tiny":
    config.num_folds = 2
    config.models = ("ae", "beatgan", "vaegan2")
    config.vaegan.gen_hidden = config.vaegan.disc_hidden = (4, 8, 16)
    config.vaegan.latent = 3
    config.vaegan.disc_steps = 1
    data.length = 64
    training.num_steps = 6
    training.batch_size = 16
    training.log_every = 3
    training.checkpoint_every = 6  # one (final) save: Orbax saves cost seconds
    comp.num_lambda = comp.num_gamma = 6
    comp.num_tau = 10
    config.tstr.epochs = 2
    config.tstr.min_steps = 20
    config.tstr.hidden = (4,)
    config.tstr.dense = 4
    config.chi.betas = (0.0, 1e-2)
    config.max_train_scored = 256
    config.eval_batch_size = 64
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; expected 'quick', 'tiny' or none")
  return config
