"""Diffusion-TS's two extra generation metrics: the correlational score and Context-FID (TS2Vec)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlts.metrics import temporal, ts2vec

# ---------------------------------------------------------------------- correlational


def test_correlational_score_on_a_hand_computed_case():
  # Two windows, two steps, two features. Real: feature 1 = feature 0; fake: = −feature 0.
  base = np.array([[[0.0], [1.0]], [[2.0], [3.0]]])  # [N=2, L=2, 1]: values 0, 1, 2, 3
  real = np.concatenate([base, base], axis=2)
  fake = np.concatenate([base, -base], axis=2)
  # Standardized values: mean 1.5, std (ddof 1) = sqrt(5/3): z = (v − 1.5) / sqrt(5/3).
  z2 = ((np.arange(4) - 1.5) ** 2) / (5.0 / 3.0)
  diag = z2.mean()  # the mean over windows of the mean over steps of z² = 3/4 · ... = 0.75
  assert diag == pytest.approx(0.75)
  np.testing.assert_allclose(temporal.lag0_correlations(real), [diag, diag, diag])
  np.testing.assert_allclose(temporal.lag0_correlations(fake), [diag, -diag, diag])
  # Pairs (0,0), (1,0), (1,1): only the cross pair differs, by 2 · 0.75.
  assert temporal.correlational_score(real, fake) == pytest.approx(2 * 0.75 / 10)
  assert temporal.correlational_score(real, real) == 0.0


def test_correlational_runs_and_errors():
  rng = np.random.default_rng(0)
  real = rng.normal(size=(100, 8, 3))
  runs = temporal.correlational_runs(real, real.copy(), runs=5, seed=1)
  assert len(runs) == 5 and all(r >= 0 for r in runs)
  assert runs == temporal.correlational_runs(real, real.copy(), runs=5, seed=1)
  with pytest.raises(ValueError, match="fake"):
    temporal.correlational_score(real, real[:, :, :2])
  with pytest.raises(ValueError, match="finite|NaN"):
    temporal.correlational_score(real, np.full_like(real, np.nan))


# ---------------------------------------------------------------------- TS2Vec loss


def _reference_contrast(rows: np.ndarray, positive_of) -> float:
  """Mean over anchors of −log softmax(similarities to all other rows)[positive]."""
  out = []
  for a in range(rows.shape[0]):
    others = [b for b in range(rows.shape[0]) if b != a]
    logits = np.array([rows[a] @ rows[b] for b in others])
    logp = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    out.append(-logp[others.index(positive_of(a))])
  return float(np.mean(out))


def _reference_hierarchical(z1: np.ndarray, z2: np.ndarray, alpha: float = 0.5) -> float:
  """TS2Vec's loss written with loops over levels, steps and windows."""
  total, levels = 0.0, 0
  batch = z1.shape[0]
  while True:
    steps = z1.shape[1]
    inst = (np.mean([_reference_contrast(np.concatenate([z1[:, t], z2[:, t]]),
                                         lambda a, n=batch: (a + n) % (2 * n))
                     for t in range(steps)]) if batch > 1 else 0.0)
    if steps == 1:
      total += alpha * inst
      levels += 1
      break
    temp = np.mean([_reference_contrast(np.concatenate([z1[b], z2[b]]),
                                        lambda a, n=steps: (a + n) % (2 * n))
                    for b in range(batch)])
    total += alpha * inst + (1 - alpha) * temp
    levels += 1
    half = steps // 2
    z1 = z1[:, :2 * half].reshape(batch, half, 2, -1).max(axis=2)
    z2 = z2[:, :2 * half].reshape(batch, half, 2, -1).max(axis=2)
  return total / levels


@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_hierarchical_loss_matches_the_loop_reference(steps):
  rng = np.random.default_rng(steps)
  z1, z2 = rng.normal(size=(2, 3, steps, 4)) * 0.7
  want = _reference_hierarchical(z1, z2)
  got = ts2vec.hierarchical_loss(jnp.asarray(z1), jnp.asarray(z2), steps)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_hierarchical_loss_on_a_hand_checked_tiny_case():
  # B = 2, T = 1, D = 1: one level, instance loss only (weight α = 0.5).
  z1 = np.array([[[1.0]], [[0.0]]])
  z2 = np.array([[[1.0]], [[2.0]]])
  # Rows z = [1, 0, 1, 2]. Anchor 0 (pos row 2): logits to rows 1, 2, 3 = 0, 1, 2.
  # Anchor 1 (pos 3): all 0 -> log 3. Anchor 2 (pos 0): logits to 0, 1, 3 = 1, 0, 2.
  # Anchor 3 (pos 1): logits to 0, 1, 2 = 2, 0, 2.
  lse = lambda *v: np.log(np.sum(np.exp(v)))  # noqa: E731
  nll = [lse(0, 1, 2) - 1, np.log(3), lse(1, 0, 2) - 1, lse(2, 0, 2) - 0]
  want = 0.5 * np.mean(nll)
  got = ts2vec.hierarchical_loss(jnp.asarray(z1), jnp.asarray(z2), 1)
  np.testing.assert_allclose(float(got), want, rtol=1e-6)


def test_masked_steps_are_ignored_by_the_loss():
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(2, 3, 5, 4))
  want = ts2vec.hierarchical_loss(jnp.asarray(z1), jnp.asarray(z2), 5)
  pad = rng.normal(size=(2, 3, 3, 4)) * 10  # junk beyond the overlap
  got = ts2vec.hierarchical_loss(jnp.asarray(np.concatenate([z1, pad[0]], axis=1)),
                                 jnp.asarray(np.concatenate([z2, pad[1]], axis=1)), 5)
  np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


# ---------------------------------------------------------------------- encoder and crops


def test_a_crop_in_a_buffer_encodes_as_the_crop_alone():
  model = ts2vec.TSEncoder(hidden=8, output=6, depth=4)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 12, 3)), jnp.float32)
  params = model.init(jax.random.key(0), x)["params"]
  for n in (3, 7):  # dilations 1, 2, 4, 8, 16: some below n, some above
    alone = model.apply({"params": params}, x[:, :n])
    crops, valid = ts2vec.take_crops(x, jnp.zeros(2, jnp.int32), jnp.full((2,), n))
    buffered = model.apply({"params": params}, crops, valid)
    np.testing.assert_allclose(buffered[:, :n], alone, rtol=1e-5, atol=1e-5)


def test_draw_crops_overlap_as_ts2vec():
  length = 10
  crops = ts2vec.draw_crops(np.random.default_rng(0), length, 4, 300)
  start1, len1, start2, len2, overlap = np.moveaxis(crops, -1, 0)
  assert (start1 >= 0).all() and (start1 + len1 <= length).all()
  assert (start2 >= 0).all() and (start2 + len2 <= length).all()
  assert (overlap >= 2).all() and (overlap <= np.minimum(len1, len2)).all()
  np.testing.assert_array_equal(start1 + len1 - overlap, start2)  # the shared steps
  assert (overlap == overlap[:, :1]).all()  # one overlap length per step
  assert set(np.unique(overlap[:, 0])) == set(range(2, length + 1))


def test_context_fid_separates_real_from_shuffled_and_noise():
  cfg = ts2vec.default_config()  # smaller than TS2Vec's, for CI
  cfg.hidden, cfg.output, cfg.depth, cfg.steps = 16, 32, 4, 150
  real = temporal.sines(400, 24, 3, seed=0)
  held = temporal.sines(400, 24, 3, seed=1)
  params = ts2vec.train_encoder(real, seed=0, config=cfg)
  enc = {name: ts2vec.encode(params, x, cfg) for name, x in {
      "real": real, "held": held, "shuffled": real[:, np.random.default_rng(0).permutation(24)],
      "noise": np.random.default_rng(1).uniform(size=real.shape)}.items()}
  assert enc["real"].shape == (400, 32)
  from mlts.metrics import generative
  fid = {k: generative.frechet_distance(enc["real"], v) for k, v in enc.items() if k != "real"}
  assert fid["held"] < 0.1 * fid["shuffled"] and fid["shuffled"] < fid["noise"]
  # context_fid = the same pieces; a fixed seed reproduces itself.
  one = ts2vec.context_fid(real, held, seed=0, config=cfg)
  np.testing.assert_allclose(one, fid["held"], rtol=1e-6)
  with pytest.raises(ValueError, match="must match"):
    ts2vec.context_fid(real, held[:, :12], config=cfg)


def test_the_averaged_parameters_are_the_mean_of_the_iterates():
  import optax

  from mlts import scan_fit
  params = {"w": jnp.array(1.0)}
  batches = jnp.array([1.0, 2.0, 3.0])
  tx = optax.sgd(0.1)

  def loss(p, b):
    return 0.5 * (p["w"] - b) ** 2

  iterates, w = [], 1.0
  for b in (1.0, 2.0, 3.0):
    w = w - 0.1 * (w - b)
    iterates.append(w)
  got = scan_fit.fit(loss, params, tx, batches, average=True)
  np.testing.assert_allclose(float(got["w"]), np.mean(iterates), rtol=1e-6)
  last = scan_fit.fit(loss, params, tx, batches)
  np.testing.assert_allclose(float(last["w"]), iterates[-1], rtol=1e-6)
