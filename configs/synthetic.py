"""Synthetic seasonal series with injected anomalies (no data files needed).

Full run:   python -m experiments.main --config=configs/synthetic.py --workdir=runs/syn
CPU minutes: python -m experiments.main --config=configs/synthetic.py:quick --workdir=runs/syn
Tests:      configs/synthetic.py:tiny (a few steps, tiny network)
"""

from configs import default


def get_config(variant: str = "") -> "ml_collections.ConfigDict":  # noqa: F821
  config = default.get_config()
  config.data.dataset = "synthetic"
  if variant == "quick":
    config.training.num_steps = 500
    config.training.log_every = 50
    config.training.checkpoint_every = 250
  elif variant == "tiny":
    config.data.window = 32
    config.data.stride = 4
    config.data.eval_stride = 8
    config.data.synthetic.num_series = 2
    config.data.synthetic.train_length = 400
    config.data.synthetic.test_length = 600
    config.data.synthetic.num_anomalies = 4
    config.model.conv_ae.hidden = (8,)
    config.model.conv_ae.latent = 4
    config.training.num_steps = 20
    config.training.batch_size = 16
    config.training.log_every = 5
    config.training.eval_every = 10
    config.training.checkpoint_every = 10
    config.optimizer.warmup_steps = 2
    config.eval.batch_size = 32
    config.eval.range_window = 10
    config.eval.vus_max_window = 10
  elif variant:
    raise ValueError(
        f"unknown variant {variant!r} of configs/synthetic.py; expected 'quick', 'tiny' or none")
  return config
