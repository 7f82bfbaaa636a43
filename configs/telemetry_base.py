"""Shared configuration of the telemetry generation and OOD studies.

configs/telemetry_generation_{smap,msl}.py (`mlts/studies/telemetry_generation.py`)
and configs/ood_{smap,msl}.py (`mlts/studies/ood.py`) call
`get_config(spacecraft, study, variant)`:

  ''      sized for one GPU: U-Net 64 wide, 20k diffusion steps, the paper-sized β-VAEGAN.
  quick   2 CPU cores, under 15 minutes.
  tiny    tests: a few steps of very small networks on two channels.
"""

import ml_collections

from configs import diffusion_base
from mlts.metrics import embedding, temporal
from mlts.vaegan import train as vaegan_train
from mlts.vaegan import tstr

STUDIES = {"generation": "telemetry_generation", "ood": "ood"}


def get_config(spacecraft: str = "smap", study: str = "generation",
               variant: str = "") -> ml_collections.ConfigDict:
  if study not in STUDIES:
    raise ValueError(f"unknown study {study!r}; expected one of {sorted(STUDIES)}")
  if variant not in ("", "quick", "tiny"):
    raise ValueError(f"unknown variant {variant!r}; expected 'quick', 'tiny' or none")
  base = diffusion_base.get_config(spacecraft, "quick" if variant == "tiny" else variant)
  config = ml_collections.ConfigDict()
  config.experiment = STUDIES[study]  # the study (mlts.studies)
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seed = 0
  config.data = data = ml_collections.ConfigDict()
  data.spacecraft = spacecraft
  data.window = 64  # telemetry column only; a multiple of 32 (β-VAEGAN's depth)
  data.stride = 16  # training windows
  data.holdout = 0.2  # tail of each training series held out (the real-data floor)
  data.val_fraction = 0.3  # leading part of each test series: validation (thresholds)
  data.channels = ""  # comma-separated subset; '' = all
  # Diffusion: the detector's sections; 'full' first (it also provides the latent embedding).
  config.variants = ("full", "no_reg", "no_gamma") if study == "generation" else ("full",)
  config.diffusion = base.diffusion
  config.network = base.network
  config.optimizer = base.optimizer
  config.training = base.training
  config.detector = base.detector  # partial-noise reconstruction (TSTR)
  # β-VAEGAN₂.
  config.vaegan = vaegan_train.variant_config("vaegan2")
  config.vaegan_training = vt = ml_collections.ConfigDict()
  vt.num_steps = 1500
  vt.batch_size = 256
  vt.log_every = 100
  vt.checkpoint_every = 500
  vt.max_checkpoints = 1
  config.sampling = ml_collections.ConfigDict(dict(
      steps=100,  # reverse-ODE steps
      solver="heun",
      batch=256,  # windows per jitted batch
      encode_steps=50))  # inversion steps of the latent embedding
  # Generation study.
  config.num_eval = 2000  # windows per compared set
  config.num_seeds = 3  # seeds of the discriminative / predictive scores
  config.embedding = embedding.default_config()
  config.metrics = temporal.default_config()
  config.tstr = tstr.default_config()
  config.tstr_max_windows = 4000  # labelled windows for TSTR (all anomalous ones kept)
  config.similarity = ml_collections.ConfigDict(dict(
      num_synthetic=500, num_reference=1000, band=8))  # DTW Sakoe–Chiba radius
  config.imputation = ml_collections.ConfigDict(dict(
      num_windows=512, fraction=0.25, members=10, vaegan_iterations=10,
      resample=5))  # RePaint repeats of the diffusion imputation (samplers.impute)
  # OOD study.
  config.max_windows = 2000  # per set (training fit, validation, test normal, OOD)
  config.scores = ml_collections.ConfigDict(dict(
      kde_bandwidth="cv", eigen_components=8, eigen_neighbors=10, threshold_quantile=0.95))
  if variant == "quick":
    config.diffusion.num_steps = 200
    config.training.num_steps = 1600
    config.training.checkpoint_every = 1000
    config.vaegan.gen_hidden = config.vaegan.disc_hidden = (16, 32, 64, 128, 256)
    vt.num_steps = 400
    vt.batch_size = 64
    vt.checkpoint_every = 200
    config.sampling.steps = 40
    config.sampling.encode_steps = 16
    config.num_eval = 1000
    config.num_seeds = 1
    config.metrics.discriminative_steps = 1000
    config.metrics.predictive_steps = 1000
    config.embedding.steps = 800
    config.tstr_max_windows = 1000
    config.tstr.epochs = 10
    config.similarity.num_synthetic = 200
    config.similarity.num_reference = 300
    config.imputation.num_windows = 128
    config.imputation.members = 4
    config.max_windows = 1000
    config.scores.kde_bandwidth = "scott"
  elif variant == "tiny":
    data.window = 32
    data.stride = 32
    data.channels = "P-1,S-1" if spacecraft == "smap" else "M-1,M-2"
    config.variants = ("full",)  # one variant: the loop over variants is the same code
    config.diffusion.num_steps = 20
    net = config.network
    net.base_width, net.channel_mults, net.num_res_blocks = 8, (1,), 1  # one level
    net.attention_levels, net.num_heads, net.num_groups = (), 2, 4  # no attention: compiles faster
    config.training.num_steps = 4
    config.training.batch_size = 8
    config.training.log_every = 2
    config.training.checkpoint_every = 4  # one (final) save: Orbax saves cost seconds
    config.training.ema_decay = 0.0
    config.optimizer.warmup_steps = 1
    config.detector.recon_steps = 2
    config.detector.batch_size = 32
    config.vaegan.gen_hidden = config.vaegan.disc_hidden = (4, 8, 16)
    config.vaegan.latent = 3
    config.vaegan.disc_steps = 1
    vt.num_steps = 4
    vt.batch_size = 8
    vt.log_every = 2
    vt.checkpoint_every = 4
    config.sampling = ml_collections.ConfigDict(dict(steps=3, solver="heun", batch=32,
                                                     encode_steps=3))
    config.num_eval = 48
    config.num_seeds = 1
    config.metrics.discriminative_steps = 10
    config.metrics.predictive_steps = 10
    config.metrics.batch_size = 16
    config.embedding.steps = 20
    config.embedding.hidden = (4, 8)
    config.embedding.features = 8
    config.tstr.epochs = 1
    config.tstr.min_steps = 10
    config.tstr.hidden = (4,)
    config.tstr.dense = 4
    config.tstr_max_windows = 120
    config.similarity.num_synthetic = 8
    config.similarity.num_reference = 16
    config.imputation.num_windows = 16
    config.imputation.members = 2
    config.imputation.resample = 2
    config.imputation.vaegan_iterations = 2
    config.max_windows = 64
    config.scores.kde_bandwidth = "scott"
    config.scores.eigen_components = 2
    config.scores.eigen_neighbors = 5
  return config
