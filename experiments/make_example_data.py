"""Writes `mlts/data/examples/pump.csv`, the example file for `mlts.data.files`.

A synthetic industrial pump sensor log: 4000 rows at 1-minute spacing from
2024-01-01 00:00, columns `timestamp`, `pressure` (bar), `flow` (m3/h),
`temperature` (deg C) and `label` (0/1). The first 2000 rows are normal; the
rest hold five injected anomalies of different kinds (see `ANOMALIES`). The
output is deterministic: a fixed seed and values rounded to 4 decimals, so a
rerun writes the same bytes (`tests/data_files_test.py` checks this).

Usage (from the repository root):

  python -m experiments.make_example_data [--out=mlts/data/examples/pump.csv]
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "mlts" / "data" / "examples" / "pump.csv"

ROWS = 4000
TRAIN_ROWS = 2000
START = np.datetime64("2024-01-01T00:00", "m")
SEED = 20240101
COLUMNS = ("timestamp", "pressure", "flow", "temperature", "label")
MINUTES_PER_DAY = 1440
# (kind, first row, number of rows), all after TRAIN_ROWS; rows are 0-based data rows.
ANOMALIES = (
    ("pressure level shift", 2250, 60),
    ("pressure spike", 2600, 20),
    ("frozen flow sensor", 2950, 80),
    ("increased noise", 3300, 50),
    ("temperature drift", 3600, 90),
)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
  """[n] stationary AR(1) noise with marginal standard deviation `sigma`."""
  out = np.empty(n)
  shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
  out[0] = rng.normal(0.0, sigma)
  for i in range(1, n):
    out[i] = phi * out[i - 1] + shocks[i]
  return out


def make_pump(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Simulates the pump log.

  Returns:
    (timestamps [ROWS] datetime64[m], values [ROWS, 3] float64 with columns
    pressure, flow, temperature, labels [ROWS] int8).
  """
  rng = np.random.default_rng(seed)
  t = np.arange(ROWS)
  phase = 2.0 * np.pi * t / MINUTES_PER_DAY
  # Demand peaks in the early afternoon, with slow load changes on top.
  demand = -np.cos(phase - 0.6) + 0.25 * np.cos(2.0 * phase + 0.4)
  load = _ar1(rng, ROWS, phi=0.995, sigma=2.5)
  flow = 118.0 + 14.0 * demand + load + rng.normal(0.0, 0.8, ROWS)
  # Discharge pressure falls along the pump curve as the flow rises.
  pressure = (6.2 - 0.012 * (flow - 118.0) + _ar1(rng, ROWS, phi=0.98, sigma=0.03)
              + rng.normal(0.0, 0.02, ROWS))
  # Fluid temperature follows the (lagged) ambient day cycle and the load.
  ambient = -np.cos(phase - 1.2)
  temperature = (47.0 + 2.5 * ambient + 0.05 * (flow - 118.0)
                 + _ar1(rng, ROWS, phi=0.99, sigma=0.3) + rng.normal(0.0, 0.08, ROWS))
  labels = np.zeros(ROWS, dtype=np.int8)
  for kind, first, length in ANOMALIES:
    rows = slice(first, first + length)
    k = np.arange(length)
    if kind == "pressure level shift":  # A partly closed valve downstream.
      pressure[rows] += 0.45
    elif kind == "pressure spike":  # Water hammer: a damped pressure oscillation.
      pressure[rows] += 1.6 * np.exp(-k / 5.0) * np.cos(0.9 * k)
      flow[rows] -= 9.0 * np.exp(-k / 4.0)
    elif kind == "frozen flow sensor":  # The flow reading sticks at its last value.
      flow[rows] = flow[first - 1]
    elif kind == "increased noise":  # Cavitation: pressure and flow get noisy.
      pressure[rows] += rng.normal(0.0, 0.18, length)
      flow[rows] += rng.normal(0.0, 4.0, length)
    elif kind == "temperature drift":  # A bearing heats up until maintenance.
      temperature[rows] += 5.0 * (k + 1) / length
    else:
      raise ValueError(f"unknown anomaly kind {kind!r}")
    labels[rows] = 1
  timestamps = START + t.astype("timedelta64[m]")
  return timestamps, np.stack([pressure, flow, temperature], axis=1), labels


def pump_csv(seed: int = SEED) -> str:
  """The pump log as csv text (header row, values rounded to 4 decimals)."""
  timestamps, values, labels = make_pump(seed)
  lines = [",".join(COLUMNS)]
  for stamp, (p, f, temp), label in zip(timestamps, values, labels):
    lines.append(f"{str(stamp).replace('T', ' ')},{p:.4f},{f:.4f},{temp:.4f},{label}")
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(DEFAULT_OUT), help="where to write the csv file")
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(pump_csv(), encoding="utf-8", newline="\n")
  print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
  main()
