"""The mode-collapse remedies of the GAN family against exact references: the unrolled
discriminator (Metz et al., 2017) on a bilinear game with a closed-form gradient, PacGAN's
packing (Lin et al., 2018) against a numpy reference, and the Metz et al. model options
(D's input scale, orthogonal kernels)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from jaxgen.families.gan import gan
from jaxgen.kernel.errors import UserError


class _Bilinear:
    """G(z) = θ (one weight, whatever z), D(x) = w · Σ_j x_j (one weight): a game whose
    unrolled generator gradient has a closed form."""

    latent_dim = 2

    def draw_fakes(self, params, rng, n, label):
        return jnp.broadcast_to(params["generator"]["theta"], (n, 1))

    def discriminate(self, params, x, label=None):
        return jnp.sum(x, -1) * params["discriminator"]["w"], None


def _bilinear_g_grad(theta, w, real_mean, k, lr, pack_size=1):
    """d/dθ of G's WGAN loss −w_k·(m θ) against D unrolled k steps on the critic loss
    L_D = w (m θ) − w (m r̄):  ∂L_D/∂w = m (θ − r̄), so w_k = w − k lr m (θ − r̄) and
    G's loss −w_k m θ has gradient −m w + k lr m² (2θ − r̄)."""
    m = pack_size
    return -m * w + k * lr * m * m * (2 * theta - real_mean)


@pytest.mark.parametrize("k,pack_size", [(0, 1), (1, 1), (3, 1), (2, 2)])
def test_unrolled_generator_gradient_matches_the_bilinear_closed_form(k, pack_size):
    rng = np.random.default_rng(k)
    theta, w, lr = 0.7, -0.4, 0.3
    real = jnp.asarray(rng.normal(size=(8, 1)), jnp.float32)
    batch = {"x": real}
    kw = dict(gm=_Bilinear(), game=gan.LOSSES["wgan"], split=False, n_critic=1,
              class_head=False, style_weight=0.0, unroll_steps=k, unroll_lr=lr,
              pack_size=pack_size)

    def loss(t):
        params = {"generator": {"theta": t}, "discriminator": {"w": jnp.float32(w)}}
        return gan.generator_loss(params, batch, jax.random.key(0), **kw)[0]
    got = float(jax.grad(loss)(jnp.float32(theta)))
    want = _bilinear_g_grad(theta, w, float(real.mean()), k, lr, pack_size)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_unrolled_discriminator_takes_k_plain_gradient_steps_and_zero_is_the_identity():
    key = jax.random.key(0)
    params = {"generator": {"theta": jnp.float32(0.5)},
              "discriminator": {"w": jnp.float32(1.5), "b": jnp.float32(-0.2)}}
    real = jax.random.normal(key, (16, 2))
    fake = real + 1.0

    def d_scores(p, x):
        return jnp.sum(x, -1) * p["discriminator"]["w"] + p["discriminator"]["b"]
    game = gan.LOSSES["minimax"]
    same = gan.unrolled_discriminator(params, real, fake, d_scores=d_scores, game=game,
                                      steps=0, lr=0.1)
    assert same["discriminator"] is params["discriminator"]
    d = dict(params["discriminator"])  # the reference: explicit steps, one at a time
    for _ in range(3):
        g = jax.grad(lambda dd: game.d(d_scores({"discriminator": dd}, real),
                                       d_scores({"discriminator": dd}, fake)))(d)
        d = {n: d[n] - 0.1 * g[n] for n in d}
    got = gan.unrolled_discriminator(params, real, fake, d_scores=d_scores, game=game,
                                     steps=3, lr=0.1)["discriminator"]
    for n in d:
        assert float(got[n]) == pytest.approx(float(d[n]), rel=1e-6)
        assert float(got[n]) != pytest.approx(float(params["discriminator"][n]))


@pytest.mark.parametrize("shape,m", [((12, 2), 3), ((8, 2), 1), ((6, 4, 4, 3), 2)])
def test_pack_concatenates_m_consecutive_samples_along_the_last_axis(shape, m):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    want = np.stack([np.concatenate([x[j * m + i] for i in range(m)], -1)
                     for j in range(shape[0] // m)])
    np.testing.assert_array_equal(np.asarray(gan.pack(jnp.asarray(x), m)), want)
    with pytest.raises(UserError, match="multiple of"):
        gan.pack(jnp.zeros((shape[0] + 1, *shape[1:])), m + 1)


def _experiment(overrides):
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(ROOT / "configs" / "gan" / "metz_ring8.py", [
        "model.latent_dim=8", "model.g_features=(16,)", "model.d_features=(16,)",
        "train.batch_size=12", *overrides])
    return Experiment(cfg, DatasetInfo("ring8", "points", (2,)))


def test_a_packed_discriminator_scores_packs_and_trains_in_the_trainer():
    exp = _experiment(["objective.pack=3", "objective.unroll_steps=2"])
    state = exp.init_state({"x": np.zeros((12, 2), np.float32)})
    d = state.params["discriminator"]
    assert d["dense_0"]["kernel"].shape == (6, 16)  # 3 samples x 2 coordinates
    x = jax.random.normal(jax.random.key(1), (12, 2))
    net = exp.objective.tools
    # the tools score a point as the pack of 3 copies of it
    copies = jnp.concatenate([x, x, x], -1)
    want = exp.model.apply({"params": {"discriminator": d}}, copies, None,
                           method=exp.model.discriminate)
    np.testing.assert_allclose(net.discriminate(state.params, x)[0], want, rtol=1e-6)
    state, m = exp.train_step()(state, {"x": np.asarray(x)})
    assert np.isfinite(float(m["generator/d_fake"]))
    with pytest.raises(UserError, match="pack"):
        _experiment(["objective.pack=2", "model.class_head=true", "model.num_styles=2"])
    with pytest.raises(UserError, match="unroll"):
        _experiment(["objective.loss=wgan_gp", "objective.unroll_steps=1"])


def test_metz_model_options_scale_ds_input_and_make_kernels_orthogonal():
    exp = _experiment(["model.init_gain=0.8"])
    state = exp.init_state({"x": np.zeros((12, 2), np.float32)})
    k = np.asarray(state.params["generator"]["dense_0"]["kernel"])  # (8, 16): orthonormal rows
    np.testing.assert_allclose(k @ k.T, 0.64 * np.eye(8), atol=1e-5)
    d = state.params["discriminator"]
    x = jax.random.normal(jax.random.key(2), (5, 2))
    h = jax.nn.relu(0.25 * x @ d["dense_0"]["kernel"] + d["dense_0"]["bias"])
    want = h @ d["head"]["logit"]["kernel"][:, 0] + d["head"]["logit"]["bias"][0]
    got = exp.model.apply({"params": {"discriminator": d}}, x, None,
                          method=exp.model.discriminate)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
