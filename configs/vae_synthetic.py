"""Worked β-VAE example of paper 003 (`mlts/studies/vae_example.py`).

Paper sizes, 5 seeds: configs/vae_synthetic.py
CPU minutes:          configs/vae_synthetic.py:quick
  python -m experiments.main --config=configs/vae_synthetic.py:quick --workdir=runs/vae
Tests (seconds):      configs/vae_synthetic.py:tiny

  from configs import vae_synthetic
  from mlts import vae_example
  config = vae_synthetic.get_config('quick')
  result = vae_example.run_example(config)
"""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = "vae_example"  # the study (mlts.studies)
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seeds = (0, 1, 2, 3, 4)  # each seeds the generator and the model
  # Paper 003's generator: sin(t + i) on linspace(0, 50, 5000), 2 % point anomalies.
  config.n_samples = 5000
  config.n_features = 5
  config.generator = g = ml_collections.ConfigDict()
  g.anomaly_ratio = 0.02
  g.t_max = 50.0
  g.noise_std = 0.1
  g.anomaly_mean = 3.0
  g.anomaly_std = 0.5
  # Chronological split (the paper trains and scores on all points); train keeps its anomalies.
  config.train_fraction = 0.5
  config.val_fraction = 0.2  # grid selection only; test = the remaining 0.3
  config.normalize = True  # per-feature standardization with train statistics
  # Models and training (paper: latent 3, β 2, Adam 1e-3, batch 64, 50 epochs).
  config.latent = 3
  config.beta = 2.0
  config.vae_hidden = (64, 32)
  config.ae_hidden = 32
  config.learning_rate = 1e-3
  config.batch_size = 64
  config.epochs = 50
  config.grid = ml_collections.ConfigDict()
  config.grid.latents = (2, 3, 5)
  config.grid.betas = (0.5, 1.0, 2.0, 4.0)
  if variant == "quick":
    config.seeds = (0, 1, 2)
  elif variant == "tiny":
    config.seeds = (0, 1)
    config.n_samples = 1000
    config.vae_hidden = (16, 8)
    config.ae_hidden = 8
    config.epochs = 3
    config.grid.latents = (2, 3)
    config.grid.betas = (1.0, 2.0)
  elif variant:
    raise ValueError(
        f"unknown variant {variant!r} of configs/vae_synthetic.py; expected 'quick', 'tiny' "
        "or none")
  return config
