"""Generators with one interface: `create(name).fit(windows).sample(num, seed=s)`.

  from mlts import generators
  generators.available()                      # ['diffusion', 'vaegan']
  gen = generators.create("diffusion", variant="no_gamma", sample_steps=20)
  gen.fit(windows)                            # [N, L, C] float, any units (workdir=... optional)
  gen.sample(100, seed=0)                     # [100, L, C] in the units of the fit data
  gen.impute(windows, mask, seed=0, members=5)  # [5, N, L, C]; mask 1 = observed (kept exactly)
  gen.save("my_generator"); generators.load("my_generator")

See `mlts.generators.base` for the common protocol (input checks, the min–max
scaling learned by fit, save / load) and `mlts.generators.diffusion` /
`mlts.generators.vaegan` for the models.
"""

from __future__ import annotations

import importlib

from mlts import estimators
from mlts.generators.base import Generator, NotFittedError  # noqa: F401

# name -> (module under mlts.generators, class name); imported when first used.
REGISTRY = {
    "diffusion": ("diffusion", "DiffusionGenerator"),
    "vaegan": ("vaegan", "VaeganGenerator"),
}


def available() -> list[str]:
  """The generator names, sorted."""
  return sorted(REGISTRY)


def generator_class(name: str) -> type[Generator]:
  """The class implementing `name`.

  Raises:
    ValueError: an unknown name (the known ones are listed).
  """
  if name not in REGISTRY:
    raise ValueError(f"unknown generator {name!r}; available: {', '.join(available())}")
  module, cls = REGISTRY[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def default_config(name: str):
  """The config of generator `name` with its defaults (a ConfigDict)."""
  return generator_class(name).default_config()


def create(name: str, **overrides) -> Generator:
  """A new, unfitted generator `name` with config fields overridden.

  Args:
    name: one of `available()`.
    **overrides: fields of that generator's config (`default_config(name)`); a
      section takes a dict, e.g. `training={'num_steps': 500}`.

  Raises:
    ValueError: an unknown name or field (the valid ones are listed), or a
      value the generator refuses (named).
  """
  cls = generator_class(name)
  return cls(estimators.apply_overrides(cls.default_config(), overrides, where=name))


def load(directory: str, *, allow_config_mismatch: bool = False) -> Generator:
  """Loads a generator written by `Generator.save` (JSON + Orbax arrays; nothing is unpickled).

  Args:
    directory: the saved generator.
    allow_config_mismatch: load even when the saved config's fields differ
      from this version's `default_config(name)` (fields added or removed):
      missing fields keep this version's defaults, unknown ones are dropped.

  Raises:
    FileNotFoundError: no generator.json in `directory`.
    ValueError: not a generator directory, another format version, an unknown
      generator, a config whose fields differ from this version's (listed), or
      arrays that are missing, corrupt or do not match (the path is named).
  """
  from mlts.generators import base
  path, meta = estimators.read_meta(directory, base.CONFIG_FILE, fmt=base.FORMAT,
                                    version=base.FORMAT_VERSION, what="generator")
  for key in ("name", "config", "length", "num_features", "num_train", "dtype", "scaling"):
    if key not in meta:
      raise ValueError(f"{path} lacks the field {key!r}; it is not a complete generator save")
  cls = generator_class(meta["name"])
  try:
    config = estimators.saved_config(cls.default_config(), meta["config"], path=path,
                                     name=meta["name"], what="generator",
                                     allow_mismatch=allow_config_mismatch)
    generator = cls(config)
  except (TypeError, ValueError) as err:
    if "another version" in str(err):
      raise
    raise ValueError(f"{path}: the saved config is not valid ({err})") from err
  estimators.restore_into(directory, path, lambda arrays: generator._restore(meta, arrays))
  return generator
