"""Your own data: the detector study on CSV / .npy / .npz files (`mlts.data.files`).

  python -m experiments.main --config=configs/csv.py \
      --config.data.path=mlts/data/examples/pump.csv --config.data.label_column=label \
      --config.data.timestamp_column=timestamp --config.data.train_until=2000 \
      --workdir=runs/pump

`data.path` is one file or a folder (one series per file); the split is
`data.train_until` (a row count, a fraction of the rows, or a timestamp) or a
separate `data.test_path`. Results are titled with the file names.
Variants: '' (the default detector), 'quick' (fewer steps), 'tiny' (tests).
"""

import ml_collections

from configs import default


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = default.get_config()
  data = config.data
  data.dataset = "csv"
  data.path = ""  # a .csv / .npy / .npz file, or a folder of them (one series per file)
  data.test_path = ""  # optional separate test file / folder (then train_until stays empty)
  data.columns = ""  # comma-separated value columns; empty = every numeric column
  data.label_column = ""  # optional 0/1 label column (test part; train rows must be 0)
  data.timestamp_column = ""  # optional time column (kept out of the values)
  data.train_until = ""  # train part: a row count ('2000'), a fraction ('0.5') or a time
  data.window = 64
  data.stride = 4
  data.eval_stride = 8
  config.training.num_steps = 1000
  config.training.eval_every = 250
  config.training.checkpoint_every = 250
  if variant == "quick":
    config.training.num_steps = 300
    config.training.log_every = 50
    config.training.checkpoint_every = 150
    config.training.eval_every = 150
  elif variant == "tiny":
    data.window = 32
    data.stride = 8
    data.eval_stride = 16
    config.model.conv_ae.hidden = (8,)
    config.training.num_steps = 10
    config.training.batch_size = 16
    config.training.log_every = 5
    config.training.eval_every = 0
    config.training.checkpoint_every = 10
    config.optimizer.warmup_steps = 2
    config.eval.batch_size = 32
    config.eval.range_window = 10
    config.eval.vus_max_window = 10
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of configs/csv.py; expected 'quick', "
                     "'tiny' or none")
  return config
