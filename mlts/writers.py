"""Metric writer: absl logging + a JSONL file + TensorBoard event files.

Method names follow clu.metric_writers (`write_scalars`, `write_hparams`,
`flush`, `close`) so the writer can be swapped without touching the loop; clu is
not used because it pulls in TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging


class MetricWriter:
  """Writes scalars to the log, `<logdir>/metrics.jsonl` and TensorBoard.

  Only process 0 writes; other processes get a writer that does nothing, so
  multi-host runs do not write the same file twice.
  """

  def __init__(self, logdir: str, *, tensorboard: bool = True):
    self._active = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    self._logdir = logdir
    self._tensorboard = tensorboard
    if not self._active:
      return
    os.makedirs(logdir, exist_ok=True)
    self._jsonl = open(self._jsonl_path, "a")
    if tensorboard:
      self._tb = self._open_tensorboard(None)

  @property
  def _jsonl_path(self) -> str:
    return os.path.join(self._logdir, "metrics.jsonl")

  def _open_tensorboard(self, purge_step):
    from tensorboardX import SummaryWriter  # imported lazily: optional at run time
    return SummaryWriter(logdir=os.path.join(self._logdir, "tensorboard"),
                         purge_step=purge_step)

  def restart_at(self, step: int) -> None:
    """Forgets what was logged after `step` (a run resumed from the checkpoint at `step`).

    Lines of metrics.jsonl with a larger step are dropped, and TensorBoard is
    told to purge its events past `step`, so a curve across a kill is
    continuous and every step appears once.
    """
    if not self._active:
      return
    self._jsonl.close()
    kept = []
    with open(self._jsonl_path) as f:
      for line in f:
        try:
          if int(json.loads(line)["step"]) <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
        except (ValueError, KeyError, TypeError):
          continue  # a line cut by the kill
    tmp = self._jsonl_path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, self._jsonl_path)
    self._jsonl = open(self._jsonl_path, "a")
    if self._tb is not None:
      self._tb.close()
      self._tb = self._open_tensorboard(step + 1)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if not self._active:
      return
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    logging.info("[%d] %s", step, ", ".join(f"{k}={v:.6g}" for k, v in values.items()))
    self._jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
    self._jsonl.flush()  # written as it goes: a killed run keeps its log
    if self._tb is not None:
      for key, value in values.items():
        self._tb.add_scalar(key, value, int(step))
      self._tb.flush()

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    if not self._active:
      return
    logging.info("hparams: %s", json.dumps(hparams, default=str))
    if self._tb is not None:
      self._tb.add_text("hparams", json.dumps(hparams, indent=1, default=str), 0)

  def flush(self) -> None:
    if self._jsonl is not None:
      self._jsonl.flush()
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    self.flush()
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None
