"""A thin alias kept for notebooks and older scripts: the detector pipeline's library pieces.

The code lives in the modules it belongs to: `mlts.data.series` (load, split,
normalize, window), `mlts.reconstruction` (train a backbone, residuals,
post-processing), `mlts.evaluation` (baselines, thresholds, every metric) and
`mlts.results` (run set-up and result files). The studies themselves are in
`mlts.studies` (`studies.run(config, workdir)`); this alias does not import
them.
"""

from mlts.data.series import (  # noqa: F401
    PreparedSeries,
    Series,
    load_series,
    prepare,
    training_windows,
)
from mlts.evaluation import baseline_scores, evaluate_methods, protocol  # noqa: F401
from mlts.reconstruction import (  # noqa: F401
    TrainedBackbone,
    check_config,
    compute_residuals,
    make_loss,
    method_name,
    postprocess_scores,
    train_backbone,
)
from mlts.results import render_report, write_outputs  # noqa: F401
