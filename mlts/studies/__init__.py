"""The studies: one module per study, each `run(config, workdir) -> results`, registered by name.

`config.experiment` names the study; `experiments/main.py` calls `run`.
Studies import the library (`mlts.*`); the library never imports a study.

  detector              one reconstruction detector (configs/smap.py, msl.py, synthetic.py, csv.py)
  cognos_ablation       the COGNOS grid: backbones x losses x post-processing (configs/cognos_*.py)
  vaegan                the β-VAEGAN benchmarks (configs/vaegan_*.py)
  diffusion             the malleable-latent diffusion detector and its ablation (diffusion_*.py)
  generation            Sines / Stocks / Energy generation benchmarks (configs/generation_*.py)
  telemetry_generation  generation quality on SMAP / MSL telemetry (telemetry_generation_*.py)
  ood                   telemetry OOD detection in latent spaces (configs/ood_*.py)
  vae_example           the worked β-VAE example (configs/vae_synthetic.py)
  leaderboard           every detector vs the simple baselines (configs/leaderboard_*.py)
"""

from __future__ import annotations

import importlib
from typing import Any

import jax
import ml_collections

# name -> module under mlts.studies; imported only when that study runs.
REGISTRY = {
    "detector": "detector",
    "cognos_ablation": "cognos_ablation",
    "vaegan": "vaegan",
    "diffusion": "diffusion",
    "generation": "generation",
    "telemetry_generation": "telemetry_generation",
    "ood": "ood",
    "vae_example": "vae_example",
    "leaderboard": "leaderboard",
}


# Studies that run as one job over several processes (jax.distributed): every file is
# written by process 0 only. The others refuse a multi-process run rather than have
# every process write the same files.
MULTI_PROCESS = frozenset({"detector", "generation"})


def available() -> list[str]:
  """The registered study names, sorted."""
  return sorted(REGISTRY)


def get(name: str):
  """The `run(config, workdir)` function of the study `name`.

  Raises:
    ValueError: an unknown name (the known ones are listed).
  """
  if name not in REGISTRY:
    raise ValueError(f"unknown experiment {name!r} (config.experiment); known studies: "
                     f"{', '.join(available())}")
  return importlib.import_module(f"{__name__}.{REGISTRY[name]}").run


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the study named by `config.experiment` (required) in `workdir`."""
  if "experiment" not in config:
    raise ValueError("the config has no 'experiment' field naming its study; known studies: "
                     f"{', '.join(available())}")
  study = get(config.experiment)
  if jax.process_count() > 1 and config.experiment not in MULTI_PROCESS:
    raise ValueError(
        f"the {config.experiment!r} study runs on one process only (this run has "
        f"{jax.process_count()}); multi-process runs support: {', '.join(sorted(MULTI_PROCESS))}. "
        "Within one process it uses every local device")
  return study(config, workdir)
