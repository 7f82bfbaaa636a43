"""Shared configuration of the leaderboards (configs/leaderboard_{smap,msl}.py).

`get_config(spacecraft, variant)`:

  ''      every method at its standard budget (longer training of the learned ones).
  quick   2 CPU cores, under 15 minutes for the whole board.
  quick_labelled  the quick board on the last 70 % of each test series, plus β-VAEGAN with
          its SVM composition fit on the labelled first 30 % (the paper's protocol).
  tiny    tests: two channels, a few training steps.

One set of defaults serves both spacecraft. Each method is a detector of
`mlts.detectors` with its config overrides (`options`); the protocol fields
(validation split, per-channel calibration, thresholds, seed) are set by the
study for every method alike (mlts/studies/leaderboard.py).
"""

import ml_collections

from mlts import thresholds


def _method(name: str, kind: str, **options) -> ml_collections.ConfigDict:
  """A board row: detector `name` of `kind` with config overrides `options`."""
  return ml_collections.ConfigDict(dict(detector=name, kind=kind, options=options))


def baselines() -> dict[str, ml_collections.ConfigDict]:
  """The strong simple baselines, each a model per channel."""
  return {
      "abs_value": _method("abs_value", "baseline"),
      "range_deviation": _method("range_deviation", "baseline"),
      "knn_w64": _method("knn_window", "baseline", window=64, stride=1, eval_stride=1),
      "knn_w128": _method("knn_window", "baseline", window=128, stride=1, eval_stride=1),
      "pca_w64": _method("pca_window", "baseline", window=64),
      "kmeans_w64": _method("kmeans_window", "baseline", window=64, stride=4),
      "iforest_w64": _method("iforest_window", "baseline", window=64, stride=4, eval_stride=4),
  }


def learned(variant: str) -> dict[str, ml_collections.ConfigDict]:
  """The learned detectors (pooled and per channel), sized for `variant`."""
  def training(steps, batch, **extra):
    return dict(num_steps=steps, batch_size=batch, checkpoint_every=steps,
                log_every=max(steps // 4, 1), **extra)

  steps = {"": 3000, "quick": 1000, "tiny": 6}[variant]
  pooled = dict(window=64, stride=4, eval_stride=8, training=training(steps, 64, eval_every=0),
                model=dict(hidden=(32, 64), latent=4))
  # One MLP autoencoder per channel, all channels trained by one vmapped step.
  per_channel = dict(window=64, stride=2, eval_stride=4, per_series=True,
                     model=dict(hidden=(64,), latent=16),
                     training=training(steps, 32, eval_every=0))
  vaegan_steps = {"": 2000, "quick": 400, "tiny": 4}[variant]
  diffusion_steps = {"": 3000, "quick": 500, "tiny": 4}[variant]
  # A vmapped U-Net per channel costs ~1 s per step for 53 channels on 2 CPU cores.
  diffusion_pc_steps = {"": 1500, "quick": 250, "tiny": 4}[variant]
  return {
      # Today's first detector and COGNOS (GWNR loss + ARKS), one network for all channels.
      "conv_ae": _method("conv_ae", "learned", **pooled),
      "conv_ae_gwnr_arks": _method("conv_ae", "learned", loss="gwnr", postprocess="arks",
                                   **pooled),
      # Per channel: one MLP autoencoder per channel. Scores: the residual of the averaged
      # reconstruction (MSE; GWNR + ARKS), each window's own error, bottleneck novelty, a sum.
      "mlp_ae_pc": _method("mlp_ae", "learned", **per_channel),
      "mlp_ae_pc_gwnr_arks": _method("mlp_ae", "learned", loss="gwnr", postprocess="arks",
                                     **per_channel),
      "mlp_ae_pc_window_error": _method("mlp_ae", "learned", score="window_error",
                                        **per_channel),
      "mlp_ae_pc_gwnr_window_error": _method("mlp_ae", "learned", loss="gwnr",
                                             score="window_error", **per_channel),
      "mlp_ae_pc_latent_knn": _method("mlp_ae", "learned", score="latent_knn", **per_channel),
      "mlp_ae_pc_window_error_latent": _method("mlp_ae", "learned",
                                               score="window_error+latent_knn", **per_channel),
      # Per channel, telemanom style: forecast the last 8 steps of each window from the rest.
      "mlp_ae_pc_forecast": _method("mlp_ae", "learned", objective="forecast", horizon=8,
                                    **per_channel),
      "mlp_ae_pc_forecast_window_error": _method("mlp_ae", "learned", objective="forecast",
                                                 horizon=8, score="window_error", **per_channel),
      # β-VAEGAN (label-free composition of its components) and the malleable-latent diffusion.
      "vaegan_sum": _method("vaegan", "learned", composition="sum",
                            training=dict(num_steps=vaegan_steps,
                                          checkpoint_every=max(vaegan_steps, 1))),
      # β-VAEGAN per channel: one small model per channel, all trained by one vmapped step.
      "vaegan_pc_sum": _method("vaegan", "learned", composition="sum", per_series=True,
                               window=64, stride=2, eval_stride=4,
                               vaegan=dict(gen_hidden=(16, 32, 64), disc_hidden=(16, 32, 64)),
                               training=dict(num_steps=vaegan_steps, batch_size=32,
                                             checkpoint_every=max(vaegan_steps, 1))),
      "diffusion_recon": _method("diffusion", "learned", score="recon",
                                 training=training(diffusion_steps, 64),
                                 detector=dict(batch_size=64)),  # a channel has few windows
      # Diffusion per channel: each channel its own process (I, t*, Δ) and small U-Net.
      "diffusion_pc_recon": _method(
          "diffusion", "learned", score="recon", per_series=True,
          network=dict(base_width=8, channel_mults=(1, 2), attention_levels=(), num_groups=4),
          training=training(diffusion_pc_steps, 16), detector=dict(batch_size=64)),
  }


def get_config(spacecraft: str, variant: str = "") -> ml_collections.ConfigDict:
  labelled = variant.endswith("_labelled")
  variant = variant.removesuffix("_labelled")
  if variant not in ("", "quick", "tiny"):
    raise ValueError(f"unknown variant {variant!r} of configs/leaderboard_{spacecraft}.py; "
                     "expected 'quick', 'tiny' or none")
  config = ml_collections.ConfigDict()
  config.experiment = "leaderboard"  # the study (mlts.studies)
  config.resume_mismatch = "error"  # rerun into a workdir made with another config: error | allow
  config.seed = 0
  config.data = data = ml_collections.ConfigDict()
  data.dataset = spacecraft
  data.features = "telemetry"  # telemetry (column 0) | all (25 / 55 columns)
  data.include_p2 = False  # SMAP: channel P-2 is left out of the usual benchmark
  data.channels = ""  # comma-separated subset; '' = all
  data.root = None  # own copy in telemanom layout; None = shipped data
  data.val_fraction = 0.2  # last fraction of each training series: validation
  config.eval = ev = ml_collections.ConfigDict()
  ev.score_normalization = "validation"  # every method: validation mean / std per channel
  ev.threshold = "quantile"
  ev.threshold_quantile = 0.99  # validation quantile of the 'val' threshold
  ev.threshold_sigma = 3.0
  ev.min_score_scale = 1e-6
  ev.range_window = 100  # Range-AUC buffer
  ev.vus_max_window = 100  # VUS windows 0..100
  config.dynamic = thresholds.default_config()  # the label-free dynamic threshold (telemanom)
  # Fraction of each test series given, labelled, to the methods marked `labelled`; every
  # method is then evaluated on the rest only. 0 = no labels anywhere.
  config.labelled_head = 0.0
  methods = {**baselines(), **learned(variant)}
  if labelled:
    config.labelled_head = 0.3
    methods["vaegan_svm"] = ml_collections.ConfigDict(dict(methods["vaegan_sum"].to_dict(),
                                                           labelled=True))
    methods["vaegan_svm"].options.composition = "svm"
  config.methods = ml_collections.ConfigDict(methods)
  if variant == "tiny":
    data.channels = "P-1,S-1" if spacecraft == "smap" else "M-1,M-2"
    for name in ("vaegan_sum", "vaegan_svm"):
      if name in methods:  # small networks: the tests compile them
        methods[name].options.vaegan = dict(gen_hidden=(8, 16), disc_hidden=(8, 16))
    config.methods = ml_collections.ConfigDict(methods)
    config.methods = ml_collections.ConfigDict(
        {k: v for k, v in config.methods.items()
         if k in ("abs_value", "knn_w64", "conv_ae_gwnr_arks", "mlp_ae_pc_window_error_latent",
                  "vaegan_svm")})
  return config
