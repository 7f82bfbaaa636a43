"""Evaluation metrics for time-series anomaly detection.

All functions take 1-D NumPy-compatible inputs: labels and predictions in
{0,1} (any integer, bool or float dtype), scores finite, higher = more
anomalous. Inputs are never modified; bad input raises ValueError naming the
argument.

* point-wise and event-level on binary predictions: `pointwise`,
  `point_adjust`, `event_pr`, `segments`;
* ranking on scores: `auroc`, `auprc`, `best_f1`, `fpr_at_tpr`;
* affiliation (Huet et al., KDD 2022): `affiliation`;
* range-based (Paparrizos et al., VLDB 2022): `range_auc`, `vus`.
"""

from mlts.metrics.affiliation import affiliation
from mlts.metrics.pointwise import event_pr, point_adjust, pointwise, segments
from mlts.metrics.range_based import range_auc, vus
from mlts.metrics.ranking import auprc, auroc, best_f1, fpr_at_tpr

__all__ = [
    "affiliation",
    "auprc",
    "auroc",
    "best_f1",
    "event_pr",
    "fpr_at_tpr",
    "point_adjust",
    "pointwise",
    "range_auc",
    "segments",
    "vus",
]
