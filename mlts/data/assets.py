"""Checksum-verified access to the data files shipped in `mlts/data/assets/`.

This module owns the location of the shipped files and their integrity check.
Files are found through `importlib.resources`, so an installed mlts (wheel,
sdist or editable) carries and finds its data. Every file is checked against
`MANIFEST.sha256` (written by `experiments/vendor_data.py`, `sha256sum` format)
the first time it is read in a process; the verified bytes are then cached, so
later reads cost nothing and can never see a file that changed after the check.

Loaders (`mlts.data.nasa`, `mlts.data.ucr`) go through `read_bytes` and
`load_npz` and never open asset paths themselves.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import os
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # importlib.abc.Traversable is deprecated from Python 3.12.
  from importlib.resources.abc import Traversable

MANIFEST_NAME = "MANIFEST.sha256"

# Verified contents, keyed by (asset directory, file name). Keying on the
# directory lets tests point the module at a modified copy without seeing the
# cached bytes of the real assets.
_lock = threading.Lock()
_bytes_cache: dict[tuple[str, str], bytes] = {}
_manifest_cache: dict[str, dict[str, str]] = {}
_npz_cache: dict[tuple[str, str], np.lib.npyio.NpzFile] = {}


def asset_dir() -> Traversable:
  """Returns the directory holding the shipped data files."""
  return importlib.resources.files("mlts.data") / "assets"


def sha256_hex(data: bytes) -> str:
  """Returns the hex SHA-256 of `data`."""
  return hashlib.sha256(data).hexdigest()


def parse_manifest(text: str, *, source: str) -> dict[str, str]:
  """Parses `sha256sum` output into {file name: lower-case hex digest}.

  Args:
    text: lines of the form `<64 hex digits>  <name>` (or `<hex> *<name>`).
    source: where the text came from, for error messages.

  Returns:
    A dict from file name to digest, in file order.

  Raises:
    ValueError: a malformed line or a name listed twice.
  """
  out: dict[str, str] = {}
  for lineno, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    digest, sep, name = line.partition(" ")
    name = name[1:] if name[:1] in (" ", "*") else name
    if (not sep or len(digest) != 64 or not name
        or any(c not in "0123456789abcdefABCDEF" for c in digest)):
      raise ValueError(f"{source}: line {lineno} is not '<sha256>  <name>': {line!r}")
    if name in out:
      raise ValueError(f"{source}: line {lineno} lists {name!r} a second time")
    out[name] = digest.lower()
  return out


def _manifest(directory: Traversable) -> dict[str, str]:
  key = str(directory)
  with _lock:
    if key in _manifest_cache:
      return _manifest_cache[key]
  path = directory / MANIFEST_NAME
  if not path.is_file():
    raise FileNotFoundError(
        f"data manifest not found: {path} (rebuild the assets with "
        "`python experiments/vendor_data.py` or reinstall mlts)")
  manifest = parse_manifest(path.read_bytes().decode("utf-8"), source=str(path))
  with _lock:
    _manifest_cache[key] = manifest
  return manifest


def _read_verified(directory: Traversable, name: str) -> bytes:
  """Reads `directory/name` and checks it against `directory/MANIFEST.sha256`.

  This is the implementation behind `read_bytes`; it takes the directory so
  that tests can run it on a modified copy of the assets.

  Raises:
    FileNotFoundError: the file or the manifest is missing (names the path).
    ValueError: the file is not listed in the manifest, or its hash differs.
  """
  key = (str(directory), name)
  with _lock:
    if key in _bytes_cache:
      return _bytes_cache[key]
  if not name or name == MANIFEST_NAME or "/" in name or os.sep in name or name.startswith("."):
    raise ValueError(f"invalid data file name {name!r}")
  path = directory / name
  if not path.is_file():
    raise FileNotFoundError(
        f"data file not found: {path} (rebuild the assets with "
        "`python experiments/vendor_data.py` or reinstall mlts)")
  manifest = _manifest(directory)
  if name not in manifest:
    raise ValueError(f"data file {path} is not listed in {directory / MANIFEST_NAME}")
  data = path.read_bytes()
  actual = sha256_hex(data)
  if actual != manifest[name]:
    raise ValueError(
        f"corrupt or modified data file {path}: expected sha256 {manifest[name]}, "
        f"got {actual} (from {directory / MANIFEST_NAME}); rebuild the assets with "
        "`python experiments/vendor_data.py` or reinstall mlts")
  with _lock:
    _bytes_cache[key] = data
  return data


def read_bytes(name: str) -> bytes:
  """Returns the verified contents of the shipped file `name`.

  Args:
    name: a file name in `mlts/data/assets/`, e.g. 'labeled_anomalies.csv'.

  Returns:
    The file's bytes, checked against `MANIFEST.sha256` (once per process).

  Raises:
    FileNotFoundError: the file or the manifest is missing.
    ValueError: corrupt or modified file (hash mismatch), or not in the manifest.
  """
  return _read_verified(asset_dir(), name)


def load_npz(name: str) -> np.lib.npyio.NpzFile:
  """Returns the verified shipped `.npz` archive `name`, opened in memory.

  The archive is cached per process; each `archive[key]` access decompresses a
  fresh array, so callers may modify what they get.

  Raises:
    FileNotFoundError, ValueError: as for `read_bytes`; ValueError also if the
      file is not a readable npz archive.
  """
  directory = asset_dir()
  key = (str(directory), name)
  with _lock:
    if key in _npz_cache:
      return _npz_cache[key]
  data = _read_verified(directory, name)
  try:
    archive = np.load(io.BytesIO(data), allow_pickle=False)
  except Exception as e:  # zipfile.BadZipFile, OSError, ... all mean the same here.
    raise ValueError(f"data file {directory / name} is not a readable npz archive: {e}") from e
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise ValueError(f"data file {directory / name} is not an npz archive")
  with _lock:
    _npz_cache[key] = archive
  return archive


def verify_all() -> dict[str, str]:
  """Checks every file listed in the manifest; returns {name: sha256}.

  Raises:
    FileNotFoundError, ValueError: as for `read_bytes`, for the first bad file.
  """
  directory = asset_dir()
  manifest = _manifest(directory)
  for name in manifest:
    _read_verified(directory, name)
  return dict(manifest)
