"""Re-renders a run's report (metrics.md, scores.png) from its saved results.

  python -m experiments.figures --workdir=runs/smap

Reads `metrics.json` and `scores.npz` written by `experiments.main`; trains and
scores nothing.
"""

import json
import os

import numpy as np
from absl import app, flags

from mlts import results as results_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A run directory written by experiments.main.")
flags.DEFINE_integer("num_series", 4, "Series shown in scores.png.")
flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  paths = [os.path.join(FLAGS.workdir, n) for n in ("metrics.json", "scores.npz")]
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path} not found: is {FLAGS.workdir} a finished run?")
  with open(paths[0]) as f:
    results = json.load(f)
  with np.load(paths[1]) as arrays:
    results_lib.render_report(FLAGS.workdir, results, dict(arrays), num_series=FLAGS.num_series)
  print(os.path.join(FLAGS.workdir, "metrics.md"))


if __name__ == "__main__":
  app.run(main)
