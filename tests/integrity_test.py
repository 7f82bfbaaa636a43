"""Training and checkpoint integrity (issue 13): nothing non-finite is saved or restored."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mlts import checkpointing, reconstruction, train, train_state, writers
from mlts.models import conv_ae


def _setup(num_steps, learning_rate=1e-2, grad_clip=1.0):
  data = np.random.default_rng(0).normal(size=(40, 16, 2)).astype(np.float32)
  model = conv_ae.ConvAutoencoder(num_features=2, hidden=(4,), latent=2, kernel_size=3,
                                  revin=False)
  opt = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=learning_rate, schedule="constant", warmup_steps=1,
      weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, grad_clip=grad_clip))
  tx = train_state.make_optimizer(opt, num_steps)
  state = train_state.create_train_state(model, data[:1], tx, jax.random.key(0), ema_decay=0.0)
  return model, state, data


def _fit(tmp, num_steps, checkpoint_every, **opt):
  model, state, data = _setup(num_steps, **opt)
  cfg = ml_collections.ConfigDict(dict(num_steps=num_steps, batch_size=8, log_every=100,
                                       checkpoint_every=checkpoint_every, max_checkpoints=5))
  writer = writers.MetricWriter(os.path.join(tmp, "logs"), tensorboard=False)
  try:
    return train.fit(state, reconstruction.make_mse_loss(model.apply), data, cfg,
                     key=jax.random.key(1), seed=3, checkpoint_dir=os.path.join(tmp, "ckpt"),
                     writer=writer)
  finally:
    writer.close()


def _steps(tmp):
  manager = checkpointing.make_manager(os.path.join(tmp, "ckpt"))
  try:
    return manager.all_steps()
  finally:
    manager.close()


def test_an_update_that_breaks_the_parameters_is_never_saved(tmp_path):
  """lr 1e41 without clipping: the step-1 update is non-finite; no checkpoint is kept."""
  with pytest.raises(train.NonFiniteLossError,
                     match=r"non-finite by step 1.*No checkpoint was saved yet"):
    _fit(str(tmp_path), 4, 1, learning_rate=1e41, grad_clip=0.0)
  assert _steps(str(tmp_path)) == []
  out = _fit(str(tmp_path), 4, 1)  # a sane rerun in the same directory trains normally
  assert int(out.step) == 4 and checkpointing.count_non_finite(out) == 0


def test_a_non_finite_checkpoint_is_refused_and_the_newest_finite_one_used(tmp_path, caplog):
  tmp = str(tmp_path)
  _fit(tmp, 4, 2)  # finite checkpoints at steps 2 and 4
  manager = checkpointing.make_manager(os.path.join(tmp, "ckpt"), max_to_keep=5)
  _, fresh, _ = _setup(6)
  restored, step = checkpointing.restore_or_keep(manager, jax.device_put(fresh))
  poisoned = restored.replace(step=jnp.asarray(6, restored.step.dtype),
                              params=jax.tree.map(lambda x: x * jnp.nan, restored.params))
  checkpointing.save(manager, 6, poisoned, force=True)
  manager.wait_until_finished()
  manager.close()
  assert _steps(tmp) == [2, 4, 6]
  manager = checkpointing.make_manager(os.path.join(tmp, "ckpt"), max_to_keep=5)
  with caplog.at_level("WARNING"):
    state, step = checkpointing.restore_or_keep(manager, jax.device_put(fresh))
  manager.close()
  assert step == 4 and checkpointing.count_non_finite(state) == 0
  assert "non-finite leaves" in caplog.text and "resuming from step 4" in caplog.text
  assert os.path.isdir(os.path.join(tmp, "ckpt_rejected", "6"))  # kept aside, not deleted
  out = _fit(tmp, 8, 2)  # resumes from 4 and saves step 6 again
  assert int(out.step) == 8 and _steps(tmp)[-1] == 8


def test_count_non_finite():
  tree = {"a": jnp.ones(3), "b": {"c": jnp.array([1.0, jnp.inf]), "d": jnp.arange(3)}}
  assert checkpointing.count_non_finite(tree) == 1
  assert checkpointing.count_non_finite({"x": jnp.zeros(2)}) == 0


def test_logs_are_flushed_as_written_and_trimmed_on_resume(tmp_path):
  import json
  logdir = str(tmp_path / "logs")
  killed = writers.MetricWriter(logdir)
  for step in range(1, 11):
    killed.write_scalars(step, {"loss": float(step)})
  # The process dies here (no close): every line is already on disk.
  lines = (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == list(range(1, 11))
  with open(tmp_path / "logs" / "metrics.jsonl", "a") as f:
    f.write('{"step": 11, "lo')  # a line cut by the kill
  resumed = writers.MetricWriter(logdir)
  resumed.restart_at(5)  # the checkpoint the run resumes from
  for step in range(6, 9):
    resumed.write_scalars(step, {"loss": float(step)})
  resumed.close()
  steps = [json.loads(line)["step"]
           for line in (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()]
  assert steps == list(range(1, 9))  # continuous and unique
  events = [f for f in os.listdir(tmp_path / "logs" / "tensorboard")]
  assert events and all(os.path.getsize(tmp_path / "logs" / "tensorboard" / f) > 0
                        for f in events)


def test_training_resumed_after_a_kill_has_one_log_line_per_step(tmp_path):
  import json
  tmp = str(tmp_path)
  _fit(tmp, 4, 2)
  with open(os.path.join(tmp, "logs", "metrics.jsonl"), "a") as f:  # logged past step 4, lost
    f.write(json.dumps({"step": 5, "train_loss": 1.0}) + "\n")
  _fit(tmp, 6, 2)
  rows = [json.loads(line) for line in open(os.path.join(tmp, "logs", "metrics.jsonl"))]
  pairs = [(r["step"], k) for r in rows for k in r if k != "step"]
  assert len(pairs) == len(set(pairs))  # every (step, metric) once
  assert 5 not in {r["step"] for r in rows}  # the lost segment is gone
  assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and rows[-1]["step"] == 6


# ---------------------------------------------------------------- data and workdir messages


def _tiny(**data):
  from configs import synthetic
  config = synthetic.get_config("tiny")
  for key, value in data.items():
    config.data[key] = value
  return config


def test_a_window_longer_than_every_training_series_is_refused(tmp_path):
  from mlts import studies
  config = _tiny(window=2048)
  config.model.name = "dlinear"  # takes any window length
  config.model.dlinear.moving_avg = 5
  with pytest.raises(ValueError, match=r"data.window=2048 is longer than every training series"
                                       r".*at most 320 steps.*data.window <= 320"):
    studies.run(config, str(tmp_path / "w"))


def test_extreme_values_are_named_at_the_boundary():
  from mlts.data import series as series_lib
  config = _tiny()
  huge = series_lib.Series("chan-7", np.full((50, 1), 1e200) * np.arange(50)[:, None],
                           np.zeros((20, 1)), np.zeros(20, np.int8))
  with pytest.raises(ValueError, match=r"chan-7 train: values up to .* too large"):
    series_lib.prepare([huge], config.data)
  past32 = series_lib.Series("chan-8", np.random.default_rng(0).normal(size=(50, 1)),
                             np.full((20, 1), 1e39), np.zeros(20, np.int8))
  with pytest.raises(ValueError, match=r"chan-8 test part after normalization.*float32"):
    series_lib.prepare([past32], config.data)
  short = series_lib.Series("chan-9", np.zeros((1, 1)), np.zeros((5, 1)), np.zeros(5, np.int8))
  with pytest.raises(ValueError, match=r"chan-9 train: a training series of 1 step"):
    series_lib.prepare([short], config.data)


def test_a_workdir_that_is_a_file_is_said_in_one_line(tmp_path):
  from mlts import results
  (tmp_path / "file").write_text("x")
  with pytest.raises(ValueError, match=r"workdir .*file is a file, not a directory"):
    results.start_run(_tiny(), str(tmp_path / "file"))
  with pytest.raises(ValueError, match=r"lies under the file"):
    results.start_run(_tiny(), str(tmp_path / "file" / "run"))


def test_a_text_file_named_npy_is_said_to_be_no_numpy_file(tmp_path):
  from mlts.data import files
  path = tmp_path / "x.npy"
  path.write_text("1,2,3\n")
  with pytest.raises(ValueError, match=r"x.npy: not a NumPy .npy file"):
    files.load(str(path), train_until=2)


# ---------------------------------------------------------------- checksums and failed saves


def test_a_damaged_checkpoint_is_detected_and_the_newest_intact_one_used(tmp_path, caplog):
  tmp = str(tmp_path)
  _fit(tmp, 4, 2)
  step_dir = os.path.join(tmp, "ckpt", "4")
  files = [os.path.join(r, n) for r, _, ns in os.walk(step_dir) for n in ns]
  data_file = max(files, key=os.path.getsize)
  size = os.path.getsize(data_file)
  with open(data_file, "r+b") as f:  # random bytes inside the data, the length unchanged
    f.seek(size // 2)
    f.write(np.random.default_rng(0).bytes(min(64, size - size // 2)))
  manager = checkpointing.make_manager(os.path.join(tmp, "ckpt"), max_to_keep=5)
  _, fresh, _ = _setup(4)
  with caplog.at_level("WARNING"):
    state, step = checkpointing.restore_or_keep(manager, jax.device_put(fresh))
  manager.close()
  assert step == 2 and checkpointing.count_non_finite(state) == 0
  assert "is corrupt" in caplog.text and "SHA-256" in caplog.text
  assert os.path.relpath(data_file, step_dir) in caplog.text  # the damaged file is named
  assert os.path.isdir(os.path.join(tmp, "ckpt_rejected", "4"))


def test_a_failed_save_ends_the_run_promptly_with_the_directory_named(tmp_path, monkeypatch):
  import time

  import orbax.checkpoint as ocp

  def refuse(self, step, *args, **kwargs):
    raise PermissionError(13, "Permission denied", os.path.join(self.directory, str(step)))

  monkeypatch.setattr(ocp.CheckpointManager, "save", refuse)
  start = time.perf_counter()
  with pytest.raises(checkpointing.CheckpointSaveError,
                     match=r"saving the checkpoint of step 2 to .*ckpt failed.*Permission denied"):
    _fit(str(tmp_path), 4, 2)
  assert time.perf_counter() - start < 60


def test_a_read_only_checkpoint_directory_ends_the_cli_run_promptly(tmp_path):
  """The real case (a read-only checkpoints/ hung the process before): a bind mount, read-only.

  Needs mount privileges (root, as CI runs); skipped where the mount is refused.
  """
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  ckpt = tmp_path / "w" / "checkpoints"
  ckpt.mkdir(parents=True)
  mounted = subprocess.run(["mount", "--bind", str(ckpt), str(ckpt)], capture_output=True)
  if mounted.returncode != 0:
    pytest.skip("no permission to bind-mount a read-only directory here")
  try:
    if subprocess.run(["mount", "-o", "remount,ro,bind", str(ckpt)],
                      capture_output=True).returncode != 0:
      pytest.skip("no permission to remount read-only here")
    cmd = [sys.executable, "-m", "experiments.main", "--config=configs/synthetic.py:tiny",
           "--config.training.checkpoint_every=5", "--config.training.num_steps=10",
           f"--workdir={tmp_path / 'w'}"]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
  finally:
    subprocess.run(["umount", str(ckpt)], capture_output=True)
  assert out.returncode == 1
  assert f"saving the checkpoint of step 5 to {ckpt} failed" in out.stderr
  assert "Read-only file system" in out.stderr
