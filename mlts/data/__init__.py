"""Datasets for mlts: the shipped benchmark files and their loaders.

Submodules (import the one you need; this package imports nothing heavy):
  assets: checksum-verified access to the files in `mlts/data/assets/`.
  nasa:   NASA SMAP/MSL telemetry anomaly benchmark (Hundman et al., KDD 2018).
  ucr:    UCR-format classification sets (Wafer, ECG200, TwoLeadECG) and the
          TimeGAN generation benchmarks (stock, energy).
  files:  a user's own CSV / .npy / .npz files, split into train and test.
  series: Series / PreparedSeries, `load_series` by dataset name, `prepare`
          (split, per-series normalization), `training_windows`.
  telemetry: SMAP / MSL windows with window labels (the window-level studies).
  windows, transforms, synthetic: windows and the aggregator, normalization,
          synthetic series with injected anomalies.

`experiments/vendor_data.py` rebuilds the shipped files from the source copies;
`mlts/data/assets/README.md` records where every file came from.
"""
