"""mlts: reliable time-series generation and anomaly / OOD detection in JAX and Flax.

Entry points: `mlts.detectors` (fit / score / predict / save / load for every
detector), `mlts.generators` (fit / sample / impute / save / load),
`mlts.data.files` (your own CSV / .npy / .npz files), `mlts.metrics`, and
`mlts.studies` (the benchmark studies behind `python -m experiments.main`).
"""

__version__ = "0.1.0"
