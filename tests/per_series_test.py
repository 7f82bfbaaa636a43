"""Per-series models: one vmapped step of the stack equals S separate steps."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mlts import models, per_series, reconstruction, train, train_state

S, B, L, C = 3, 4, 16, 1


def _model(name="mlp_ae"):
  cfg = models.default_config()
  cfg.name = name
  cfg.conv_ae.hidden, cfg.conv_ae.latent = (8, 8), 2
  cfg.mlp_ae.hidden, cfg.mlp_ae.latent = (16,), 4
  return models.get_model(cfg, C)


def _tx():
  opt = train_state.default_optimizer_config()
  opt.warmup_steps = 1
  opt.grad_clip = 0.05  # small, so clipping is active and must be per series
  return train_state.make_optimizer(opt, 10)


def _states(model, params_stacked):
  stacked = train_state.TrainState.create(
      apply_fn=model.apply, params=params_stacked, tx=per_series.vmapped_optimizer(_tx()),
      ema_params=jax.tree.map(jnp.copy, params_stacked), ema_decay=0.5)
  singles = [train_state.TrainState.create(
      apply_fn=model.apply, params=per_series.take(params_stacked, k), tx=_tx(),
      ema_params=jax.tree.map(jnp.copy, per_series.take(params_stacked, k)), ema_decay=0.5)
             for k in range(S)]
  return stacked, singles


def test_a_stacked_step_equals_separate_steps():
  model = _model("mlp_ae")
  sample = jnp.zeros((1, L, C))
  params = per_series.init_stacked(lambda k: model.init(k, sample)["params"],
                                   jax.random.key(0), S)
  stacked, singles = _states(model, params)
  loss_fn = reconstruction.make_mse_loss(model.apply)
  step = jax.jit(train.make_train_step(per_series.stacked_loss(loss_fn)))
  single_step = jax.jit(train.make_train_step(loss_fn))
  rng = np.random.default_rng(0)
  key = jax.random.key(1)
  for _ in range(3):
    batch = rng.normal(size=(B, S, L, C)).astype(np.float32) * np.array([1, 5, 20])[:, None, None]
    stacked, metrics = step(stacked, jnp.asarray(batch), key)
    for k in range(S):
      singles[k], _ = single_step(singles[k], jnp.asarray(batch[:, k]), key)
  for k in range(S):
    for got, want in zip(jax.tree.leaves(per_series.take(stacked.params, k)),
                         jax.tree.leaves(singles[k].params)):
      np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(per_series.take(stacked.ema_params, k)),
                         jax.tree.leaves(singles[k].ema_params)):
      np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
  assert float(metrics["loss_max"]) >= float(metrics["loss_mean"])


def test_initializations_differ_between_series():
  model = _model("mlp_ae")
  params = per_series.init_stacked(lambda k: model.init(k, jnp.zeros((1, L, C)))["params"],
                                   jax.random.key(0), S)
  assert all(leaf.shape[0] == S for leaf in jax.tree.leaves(params))
  leaf = params["enc_0"]["kernel"]
  assert not np.allclose(leaf[0], leaf[1])


def test_stacked_windows_cycle_through_each_series_own_windows():
  a = np.arange(5)[:, None, None] * np.ones((1, L, C))
  b = 100 + np.arange(2)[:, None, None] * np.ones((1, L, C))
  out = per_series.stacked_windows([a, b], seed=0)
  assert out.shape == (5, 2, L, C)
  assert sorted(out[:, 0, 0, 0]) == [0, 1, 2, 3, 4]  # every window of a, once
  assert set(out[:, 1, 0, 0]) == {100, 101}  # only b's windows, repeated
  # Series 1's column depends only on its own windows.
  other = per_series.stacked_windows([a[:3] * 7, b], seed=0)
  np.testing.assert_array_equal(other[:3, 1], out[:3, 1])
  with pytest.raises(ValueError, match="series 1 has no windows"):
    per_series.stacked_windows([a, b[:0]], seed=0)


def _train(series, steps=30):
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.data = ml_collections.ConfigDict(dict(window=L, stride=2, eval_stride=4))
  cfg.model = models.default_config()
  cfg.model.name = "mlp_ae"
  cfg.model.mlp_ae.hidden, cfg.model.mlp_ae.latent = (16,), 4
  cfg.training = train.default_config()
  cfg.training.update(num_steps=steps, batch_size=8, checkpoint_every=steps, log_every=steps,
                      eval_every=0)
  cfg.optimizer = train_state.default_optimizer_config()
  cfg.eval = ml_collections.ConfigDict(dict(batch_size=16))
  import tempfile

  from mlts.data import series as series_lib
  prepared = [series_lib.PreparedSeries(f"s{k}", x, x[:L], x[:0], np.zeros(0, np.int8))
              for k, x in enumerate(series)]
  with tempfile.TemporaryDirectory() as tmp:
    return reconstruction.train_backbone_per_series(cfg, prepared, tmp)


def test_a_series_parameters_do_not_depend_on_another_series_data():
  rng = np.random.default_rng(0)
  t = np.arange(200)
  x0 = np.sin(t / 5.0)[:, None].astype(np.float32)
  x1 = rng.normal(size=(200, 1)).astype(np.float32)
  x1_other = (rng.normal(size=(150, 1)) * 3).astype(np.float32)  # shorter, other values
  one = _train([x0, x1])
  two = _train([x0, x1_other])
  for got, want in zip(jax.tree.leaves(per_series.take(one.params, 0)),
                       jax.tree.leaves(per_series.take(two.params, 0))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert not np.allclose(jax.tree.leaves(per_series.take(one.params, 1))[0],
                         jax.tree.leaves(per_series.take(two.params, 1))[0])


def test_a_stacked_vaegan_step_equals_separate_steps():
  """β-VAEGAN per series: BatchNorm, spectral norm and both AdaBelief states per model."""
  from mlts.vaegan import train as vaegan_train
  cfg = vaegan_train.variant_config("vaegan1", vaegan_train.default_config())
  cfg.gen_hidden = cfg.disc_hidden = (4, 8)
  cfg.latent = 3
  sample = jnp.zeros((1, L, C))
  keys = jax.random.split(jax.random.key(0), S)
  create = jax.jit(lambda k: vaegan_train.create_state(cfg, sample, k))
  singles = [create(k) for k in keys]
  stacked = vaegan_train.StackedState(
      step=jnp.zeros((), jnp.int32),
      models=jax.tree.map(lambda *leaves: jnp.stack(leaves), *singles))
  step = jax.jit(vaegan_train.make_stacked_train_step(cfg))
  single_step = jax.jit(vaegan_train.make_train_step(cfg, jit=False))
  rng = np.random.default_rng(0)
  key = jax.random.key(1)
  scales = np.array([0.2, 0.5, 1.0])[:, None, None]
  for _ in range(3):
    batch = (rng.uniform(size=(B, S, L, C)) * scales).astype(np.float32)
    stacked, metrics = step(stacked, jnp.asarray(batch), key)
    for k in range(S):
      singles[k], _ = single_step(singles[k], jnp.asarray(batch[:, k]),
                                  jax.random.fold_in(key, k))
  assert int(stacked.step) == 3
  for k in range(S):
    got = jax.tree.leaves(per_series.take(stacked.models, k))
    want = jax.tree.leaves(singles[k])
    assert len(got) == len(want)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
  assert float(metrics["loss_g_max"]) >= float(metrics["loss_g"])


def test_a_stacked_diffusion_loss_uses_each_series_own_process():
  """Per-series processes as `constants`: loss and gradients of series k are its own."""
  from mlts.diffusion import detector as diffusion_detector
  from mlts.diffusion import losses as diffusion_losses
  from mlts.diffusion import process as diffusion_process
  dcfg = diffusion_process.default_config()
  dcfg.num_steps = 50
  dcfg.threshold, dcfg.t_star = "fixed", 0.3
  rng = np.random.default_rng(0)
  t = np.arange(L)[None, :, None]
  kinds = [np.sin(2 * np.pi * t / 8 + rng.uniform(0, 6, size=(32, 1, C))),  # one frequency
           rng.normal(size=(32, L, C)),  # white: energy everywhere
           np.cumsum(rng.normal(size=(32, L, C)), axis=1)]  # random walk: low frequencies
  procs = [diffusion_process.make_process(dcfg, w.astype(np.float32), key=jax.random.key(k))
           for k, w in enumerate(kinds)]
  assert len({int(np.asarray(p.mask).sum()) for p in procs}) > 1  # different processes
  model = _model("mlp_ae")
  params = per_series.init_stacked(lambda k: model.init(k, jnp.zeros((1, L, C)))["params"],
                                   jax.random.key(0), S)

  def apply(variables, x, t):  # the noise network: an autoencoder that ignores t
    del t
    return model.apply(variables, x)

  arrays = jax.tree.map(lambda *a: jnp.stack(a),
                        *[diffusion_detector.process_arrays(p) for p in procs])

  def loss_k(p, batch, key, arrays_k):
    return diffusion_losses.make_loss_fn(procs[0].replace(**arrays_k), apply, 0.1)(
        p, batch, key)

  batch = jnp.asarray(rng.normal(size=(B, S, L, C)).astype(np.float32))
  key = jax.random.key(3)
  stacked = per_series.stacked_loss(loss_k, arrays)
  (total, _), grads = jax.jit(jax.value_and_grad(stacked, has_aux=True))(params, batch, key)
  want_total = 0.0
  for k in range(S):
    single = diffusion_losses.make_loss_fn(procs[k], apply, 0.1)
    (loss, _), grad = jax.jit(jax.value_and_grad(single, has_aux=True))(
        per_series.take(params, k), batch[:, k], jax.random.fold_in(key, k))
    want_total += float(loss)
    for got, want in zip(jax.tree.leaves(per_series.take(grads, k)), jax.tree.leaves(grad)):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(float(total), want_total, rtol=1e-5)
