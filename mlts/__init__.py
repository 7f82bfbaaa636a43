"""mlts: reliable time-series generation and anomaly / OOD detection in JAX and Flax."""

__version__ = "0.1.0"
