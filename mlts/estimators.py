"""What detectors and generators share: config overrides and the saved-directory format.

A saved estimator is a directory holding a JSON file (format name and
version, the estimator's registry name, its config, calibration and shapes)
and an Orbax directory `arrays/` of NumPy arrays. Loading reads JSON and
Orbax only: nothing is unpickled, so opening a directory someone sent you runs
no code from it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import jax
import ml_collections

from mlts import results

ARRAYS_DIR = "arrays"


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any], *,
                    where: str) -> ml_collections.ConfigDict:
  """Sets fields of `config` from keyword overrides, refusing unknown ones.

  A field holding a section takes a dict (`training={'num_steps': 100}`),
  checked the same way one level down.

  Raises:
    ValueError: an unknown field (the valid ones are listed).
  """
  for key, value in overrides.items():
    if key not in config:
      raise ValueError(f"{where} has no field {key!r}; valid fields: {', '.join(sorted(config))}")
    if isinstance(config[key], ml_collections.ConfigDict):
      if not isinstance(value, (dict, ml_collections.ConfigDict)):
        raise ValueError(f"{where}.{key} is a section; give a dict of its fields, got {value!r}")
      apply_overrides(config[key], dict(value), where=f"{where}.{key}")
    else:
      try:
        config[key] = value
      except TypeError as err:  # ml_collections refuses a change of type
        raise ValueError(f"{where}.{key}: {err}") from err
  return config


def save(directory: str, file_name: str, meta: dict[str, Any], arrays) -> str:
  """Writes a saved estimator: `arrays` (non-empty NumPy arrays) with Orbax, then the JSON.

  An existing JSON file is removed first and the new one written last, so an
  interrupted save never looks complete.

  Returns:
    The directory (absolute).
  """
  import orbax.checkpoint as ocp
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  meta_path = os.path.join(directory, file_name)
  if os.path.exists(meta_path):
    os.remove(meta_path)
  checkpointer = ocp.StandardCheckpointer()
  try:
    checkpointer.save(os.path.join(directory, ARRAYS_DIR), jax.device_get(arrays), force=True)
    checkpointer.wait_until_finished()
  finally:
    checkpointer.close()
  with open(meta_path, "w") as f:
    json.dump(meta, f, indent=1)
  return directory


def read_meta(directory: str, file_name: str, *, fmt: str, version: int, what: str
              ) -> tuple[str, dict[str, Any]]:
  """Reads and checks a saved estimator's JSON file.

  Returns:
    (its path, the parsed dict).

  Raises:
    FileNotFoundError: no such file in `directory`.
    ValueError: invalid JSON, another format, or another format version.
  """
  path = os.path.join(directory, file_name)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {directory} is not a saved {what} "
                            f"(save writes {file_name} and {ARRAYS_DIR}/)")
  try:
    with open(path) as f:
      meta = json.load(f)
  except json.JSONDecodeError as err:
    raise ValueError(f"{path} is not valid JSON ({err})") from err
  if not isinstance(meta, dict) or meta.get("format") != fmt:
    found = meta.get("format") if isinstance(meta, dict) else None
    raise ValueError(f"{path} is not an mlts {what} (format {found!r})")
  if meta.get("format_version") != version:
    raise ValueError(f"{path}: format version {meta.get('format_version')!r} is not "
                     f"{version}, the one this mlts reads")
  return path, meta


def saved_config(default: ml_collections.ConfigDict, saved: dict[str, Any], *, path: str,
                 name: str, what: str, allow_mismatch: bool) -> ml_collections.ConfigDict:
  """`default` with the saved values set, after checking both have the same fields.

  Raises:
    ValueError: the saved config's fields differ from this version's (both
      directions listed) and `allow_mismatch` is False. With it, missing
      fields keep this version's defaults and unknown ones are dropped.
  """
  flat_saved = results.flatten(saved)
  known = set(results.flatten(json.loads(default.to_json_best_effort())))
  added, removed = sorted(known - set(flat_saved)), sorted(set(flat_saved) - known)
  if (added or removed) and not allow_mismatch:
    raise ValueError(
        f"{path} was written with another version of the {name!r} config: fields "
        f"missing from it {added or 'none'}, fields this version does not have "
        f"{removed or 'none'}. Pass allow_config_mismatch=True to load it with this "
        f"version's defaults for the missing fields, or refit the {what}")
  for key, value in flat_saved.items():
    if key not in known:
      continue
    node = default
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    current = node[leaf]
    if hasattr(current, "keys"):
      continue  # an empty section
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(value)
    node[leaf] = value
  return default


def restore_into(directory: str, meta_path: str, restore: Callable[[Any], None]) -> None:
  """Reads `directory/arrays` with Orbax and hands the arrays to `restore`.

  Raises:
    ValueError: the arrays directory is missing, corrupt, or does not match
      the JSON file (`restore` raised); the path is named.
  """
  arrays_path = os.path.abspath(os.path.join(directory, ARRAYS_DIR))
  if not os.path.isdir(arrays_path):
    raise ValueError(f"{arrays_path} is missing: the arrays were not saved with {meta_path}")
  try:
    import orbax.checkpoint as ocp
    checkpointer = ocp.StandardCheckpointer()
    try:
      arrays = checkpointer.restore(arrays_path)
    finally:
      checkpointer.close()
  except Exception as err:  # orbax raises many types; all mean "cannot read these arrays"
    raise ValueError(f"{arrays_path} cannot be read ({type(err).__name__}: {err})") from err
  try:
    restore(arrays)
  except (KeyError, ValueError, TypeError, AttributeError) as err:
    raise ValueError(f"{arrays_path} does not match {meta_path} ({type(err).__name__}: {err})"
                     ) from err
