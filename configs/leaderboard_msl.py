"""NASA MSL leaderboard: every detector against the strong simple baselines, one protocol.

  python -m experiments.main --config=configs/leaderboard_msl.py:quick \
      --workdir=runs/leaderboard_msl
  python -m experiments.main --config=configs/leaderboard_msl.py \
      --workdir=runs/leaderboard_msl_full

Writes leaderboard.md and leaderboard.json (see mlts/studies/leaderboard.py). The variant
':quick_labelled' adds β-VAEGAN's SVM composition, fit on the labelled first 30 % of each
test series, and evaluates every method on the other 70 %.
"""

import ml_collections

from configs import leaderboard_base


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  return leaderboard_base.get_config("msl", variant)
