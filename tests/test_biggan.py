"""BigGAN's pieces (jaxgen/nn/biggan.py) against exact references: spectral norm's power
iteration against the SVD, the orthogonal regulariser and its gradient against the formula,
its closed-form gradient and finite differences, conditional batch norm against its formula,
self-attention against a naive loop, the projection head against D = ψ(φ) + embed(y)ᵀφ;
and the GAN objective's use of them (the ortho term in G's loss, the spectral state kept
as non-gradient state and refreshed by update_state)."""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from jaxgen.families.gan import gan
from jaxgen.nn import biggan as bg

SHAPES = [(6, 4), (4, 9), (16, 16), (3, 3, 4, 8), (3, 3, 8, 2), (1, 1, 8, 16)]


@jax.jit
def _sigmas(m, u):
    """σ̂ after 0, 1, 5 and 500 power iterations from u (one compile per shape)."""
    out, v = [], u
    for a, b in ((0, 0), (0, 1), (1, 5), (5, 500)):
        v = jax.lax.fori_loop(a, b, lambda _, w: bg.power_iteration(m, w, 1), v)
        out.append(bg.sigma_estimate(m, v))
    return jnp.stack(out)


def _random_unit(key, n):
    u = jax.random.normal(key, (n,))
    return u / jnp.linalg.norm(u)


# ------------------------------------------------------------------ spectral norm
def test_power_iteration_estimate_converges_to_the_top_singular_value():
    for seed in range(3):
        for i, shape in enumerate(SHAPES):
            k1, k2 = jax.random.split(jax.random.key(100 * seed + i))
            kernel = jax.random.normal(k1, shape)
            m = bg.kernel_matrix(kernel)
            assert m.shape == (int(np.prod(shape[:-1])), shape[-1])
            top = float(np.linalg.svd(np.asarray(m, np.float64), compute_uv=False)[0])
            sig = np.asarray(_sigmas(m, _random_unit(k2, m.shape[1])))
            # ‖M u‖ of a unit u never exceeds σ_max; power iteration on MᵀM never lowers it
            assert np.all(sig <= top * (1 + 1e-5)), (shape, sig, top)
            assert np.all(np.diff(sig) >= -1e-5 * top), (shape, sig)
            assert sig[-1] == pytest.approx(top, rel=1e-3), (shape, sig, top)


def test_refreshes_accumulate_across_steps_and_the_normalised_weight_has_unit_norm():
    """power_iterate_tree, one iteration per call (one per training step), walks a params
    tree; after enough calls every layer's W / σ̂ has top singular value 1."""
    keys = jax.random.split(jax.random.key(7), 4)
    params = {"d": {"a": {"kernel": jax.random.normal(keys[0], (3, 3, 2, 5)),
                          "bias": jnp.zeros(5)},
                    "b": {"c": {"kernel": jax.random.normal(keys[1], (7, 3))}}}}
    state = {"d": {"a": {"u": _random_unit(keys[2], 5)},
                   "b": {"c": {"u": _random_unit(keys[3], 3)}}}}
    refresh = jax.jit(bg.power_iterate_tree)
    gaps = []
    for _ in range(60):
        state = refresh(params, state)
        gaps.append([float(jnp.linalg.svd(bg.kernel_matrix(w), compute_uv=False)[0]
                           - bg.sigma_estimate(bg.kernel_matrix(w), u))
                     for w, u in ((params["d"]["a"]["kernel"], state["d"]["a"]["u"]),
                                  (params["d"]["b"]["c"]["kernel"], state["d"]["b"]["c"]["u"]))])
    gaps = np.array(gaps)
    assert np.all(gaps >= -1e-4) and np.all(np.diff(gaps, axis=0) <= 1e-4)
    assert np.all(gaps[-1] < 1e-3 * gaps[0].clip(1e-3, None) + 1e-4), gaps[[0, -1]]
    for w, u in ((params["d"]["a"]["kernel"], state["d"]["a"]["u"]),
                 (params["d"]["b"]["c"]["kernel"], state["d"]["b"]["c"]["u"])):
        m = bg.kernel_matrix(w)
        normalised = m / bg.sigma_estimate(m, u)
        assert float(jnp.linalg.svd(normalised, compute_uv=False)[0]) == pytest.approx(1, abs=1e-3)


def test_sn_layers_divide_by_the_estimate_and_its_gradient_is_v_u_transpose():
    x = jax.random.normal(jax.random.key(0), (4, 6))
    layer = bg.SNDense(3)
    v = layer.init(jax.random.key(1), x)
    w, u = v["params"]["kernel"], v[bg.SPECTRAL]["u"]
    want = x @ (w / jnp.linalg.norm(w @ u)) + v["params"]["bias"]
    np.testing.assert_allclose(layer.apply(v, x), want, rtol=1e-5, atol=1e-6)
    # at init u has had INIT_ITERATIONS iterations: close to the top singular vector
    assert float(jnp.linalg.norm(w @ u)) == pytest.approx(
        float(jnp.linalg.svd(w, compute_uv=False)[0]), rel=2e-2)
    g = jax.grad(bg.sigma_estimate)(w, u)  # Miyato: ∂σ/∂W = v uᵀ, u held constant
    np.testing.assert_allclose(g, jnp.outer(w @ u / jnp.linalg.norm(w @ u), u), atol=1e-6)
    # the conv layer: a 'SAME' conv with kernel / σ̂ of its (fan_in, fan_out) matrix
    xc = jax.random.normal(jax.random.key(2), (2, 5, 5, 3))
    conv = bg.SNConv(4)
    vc = conv.init(jax.random.key(3), xc)
    k, uc = vc["params"]["kernel"], vc[bg.SPECTRAL]["u"]
    kn = k / jnp.linalg.norm(bg.kernel_matrix(k) @ uc)
    ref = jax.lax.conv_general_dilated(xc, kn, (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(conv.apply(vc, xc), ref, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------- orthogonal regularisation
def _ortho_numpy(w):
    w = np.asarray(w, np.float64)
    total = 0.0
    for i in range(w.shape[1]):
        for j in range(w.shape[1]):
            if i != j:
                total += float(w[:, i] @ w[:, j]) ** 2
    return total


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_orthogonal_term_value_and_gradient(shape):
    beta = 0.3
    w = jax.random.normal(jax.random.key(sum(shape)), shape)
    assert float(bg.orthogonal_term(w)) == pytest.approx(_ortho_numpy(w), rel=1e-5)
    grad = jax.grad(lambda a: beta * bg.orthogonal_term(a))(w)
    off = (w.T @ w) * (1.0 - jnp.eye(shape[1]))
    np.testing.assert_allclose(grad, 4 * beta * w @ off, rtol=1e-5, atol=1e-5)
    # central finite differences of the float64 formula, entry by entry
    wn, eps = np.asarray(w, np.float64), 1e-5
    fd = np.zeros_like(wn)
    for idx in np.ndindex(*shape):
        d = np.zeros_like(wn)
        d[idx] = eps
        fd[idx] = beta * (_ortho_numpy(wn + d) - _ortho_numpy(wn - d)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-3)


def test_orthogonal_term_is_zero_for_orthogonal_columns_and_penalty_counts_kernels_only():
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (6, 6)))
    assert float(bg.orthogonal_term(q)) == pytest.approx(0, abs=1e-9)
    assert float(bg.orthogonal_term(3.0 * q[:, :4])) == pytest.approx(0, abs=1e-8)  # (6, 4)
    assert float(bg.orthogonal_term(q + 0.1)) > 1e-3
    k1 = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
    k2 = jax.random.normal(jax.random.key(2), (5, 3))
    tree = {"conv": {"kernel": k1, "bias": jnp.ones(4)}, "dense": {"kernel": k2},
            "shared": {"embedding": jnp.ones((10, 5))},
            "bn": {"gain_map": jnp.ones((5, 4)), "bias_map": jnp.ones((5, 4)),
                   "scale": jnp.ones(4)}}
    want = _ortho_numpy(k1.reshape(18, 4)) + _ortho_numpy(k2)
    assert float(bg.orthogonal_penalty(tree)) == pytest.approx(want, rel=1e-5)


class _StubGAN:
    """A 'GAN' with one weight per player, to read G's loss exactly."""

    latent_dim = 2

    def draw_fakes(self, params, rng, n, label):
        return jnp.ones((n, 3)) @ params["generator"]["dense"]["kernel"]

    def discriminate(self, params, x, label=None):
        return jnp.sum(x, -1) * params["discriminator"]["w"], None


def test_ortho_weight_adds_beta_times_the_penalty_of_gs_kernels_to_gs_loss():
    params = {"generator": {"dense": {"kernel": jax.random.normal(jax.random.key(0), (3, 4)),
                                      "bias": jnp.ones(4)}},
              "discriminator": {"w": jnp.array(0.5)}}
    batch = {"x": jnp.zeros((8, 4))}
    kw = dict(gm=_StubGAN(), game=gan.LOSSES["hinge"], split=False, n_critic=1,
              class_head=False, style_weight=0.0)
    base, m0 = gan.generator_loss(params, batch, jax.random.key(1), **kw)
    reg, m1 = gan.generator_loss(params, batch, jax.random.key(1), ortho_weight=0.01, **kw)
    pen = _ortho_numpy(params["generator"]["dense"]["kernel"])
    assert float(base) == pytest.approx(-0.5 * float(jnp.sum(params["generator"]["dense"]
                                                             ["kernel"].sum(0))), rel=1e-5)
    assert float(reg - base) == pytest.approx(0.01 * pen, rel=1e-4)
    assert "ortho_penalty" not in m0 and float(m1["ortho_penalty"]) == pytest.approx(pen, 1e-4)


# -------------------------------------------------------------- conditional batch norm
def test_conditional_batch_norm_applies_each_examples_class_gain_and_bias():
    kx, kc, kg, kb = jax.random.split(jax.random.key(0), 4)
    x = 2.0 + 3.0 * jax.random.normal(kx, (6, 4, 4, 3))
    emb = jax.random.normal(kc, (5, 7))  # a class embedding table
    labels = jnp.array([0, 1, 2, 3, 4, 0])
    cbn = bg.ConditionalBatchNorm()
    v = cbn.init(jax.random.key(1), x, emb[labels])
    p = {"gain_map": jax.random.normal(kg, (7, 3)), "bias_map": jax.random.normal(kb, (7, 3))}
    gamma, beta = 1.0 + emb @ p["gain_map"], emb @ p["bias_map"]  # per class (5, 3)
    out = np.asarray(cbn.apply({"params": p}, x, emb[labels]))
    xn = np.asarray(x, np.float64)
    mu, var = xn.mean((0, 1, 2)), xn.var((0, 1, 2))
    want = ((xn - mu) / np.sqrt(var + cbn.epsilon) * np.asarray(gamma)[labels][:, None, None]
            + np.asarray(beta)[labels][:, None, None])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    assert set(v["params"]) == {"gain_map", "bias_map"}
    np.testing.assert_allclose(cbn.apply(v, x, emb[labels]),  # zero maps: plain BN
                               (xn - mu) / np.sqrt(var + cbn.epsilon), rtol=1e-4, atol=1e-4)
    # a single-class batch: per channel, mean β_y and std |γ_y| (· sqrt(var / (var + ε)))
    y = 3
    out = np.asarray(cbn.apply({"params": p}, x, jnp.broadcast_to(emb[y], (6, 7))),
                     np.float64)
    np.testing.assert_allclose(out.mean((0, 1, 2)), beta[y], atol=1e-4)
    np.testing.assert_allclose(out.std((0, 1, 2)),
                               np.abs(gamma[y]) * np.sqrt(var / (var + cbn.epsilon)), rtol=1e-4)


# ---------------------------------------------------------------------- self-attention
def _attention_loop(x, p, pool):
    """SAGAN's block, position by position, in float64 numpy."""
    x = np.asarray(x, np.float64)
    b, h, w, c = x.shape

    def conv1(name, a):
        return a @ np.asarray(p[name]["kernel"], np.float64)[0, 0] + np.asarray(p[name]["bias"])

    def pool2(a):
        return a.reshape(b, h // 2, 2, w // 2, 2, -1).max((2, 4)) if pool else a
    f, g, hv = conv1("f", x), pool2(conv1("g", x)), pool2(conv1("h", x))
    f, g, hv = f.reshape(b, h * w, -1), g.reshape(b, g.shape[1] * g.shape[2], -1), \
        hv.reshape(b, hv.shape[1] * hv.shape[2], -1)
    o = np.zeros((b, h * w, hv.shape[-1]))
    for n in range(b):
        for j in range(h * w):
            s = np.array([f[n, j] @ g[n, i] for i in range(g.shape[1])])
            a = np.exp(s - s.max())
            a /= a.sum()
            o[n, j] = sum(a[i] * hv[n, i] for i in range(g.shape[1]))
    o = conv1("v", o.reshape(b, h, w, -1))
    return x + float(p["gamma"]) * o


@pytest.mark.parametrize("pool", [False, True])
def test_self_attention_against_a_loop_and_identity_at_gamma_zero(pool):
    x = jax.random.normal(jax.random.key(0), (2, 4, 6, 16))
    sa = bg.SelfAttention(pool=pool)
    v = sa.init(jax.random.key(1), x)
    assert float(v["params"]["gamma"]) == 0.0
    np.testing.assert_array_equal(sa.apply(v, x), x)  # γ = 0: exactly the identity
    p = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(2), a.shape),
                     v["params"])
    p = {**p, "gamma": jnp.array(0.7)}
    np.testing.assert_allclose(sa.apply({"params": p}, x), _attention_loop(x, p, pool),
                               rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ projection head
def test_projection_head_is_psi_of_phi_plus_class_embedding_dot_phi():
    phi = jax.random.normal(jax.random.key(0), (5, 8))
    labels = jnp.array([0, 3, 1, 3, 2])
    head = bg.ProjectionHead(4)
    v = head.init(jax.random.key(1), phi, labels)
    p, s = v["params"], v[bg.SPECTRAL]

    def sn(name):
        w = p[name]["kernel"]
        return w / jnp.linalg.norm(w @ s[name]["u"])
    psi = phi @ sn("psi")[:, 0] + p["psi"]["bias"][0]
    embed = sn("embed")  # (classes, features): row y is embed(y)
    want = psi + jnp.sum(embed[labels] * phi, -1)
    np.testing.assert_allclose(head.apply(v, phi, labels), want, rtol=1e-5, atol=1e-5)
    d = head.apply(v, phi, jnp.full(5, 2)) - head.apply(v, phi, jnp.full(5, 0))
    np.testing.assert_allclose(d, phi @ (embed[2] - embed[0]), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------- the model in the objective
class _TinySNGAN(nn.Module):
    """A GAN model with one SN layer in D: the objective's handling of state collections."""

    latent_dim: int = 3
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10
    state_collections: ClassVar[tuple] = (bg.SPECTRAL,)
    refresh_state = staticmethod(bg.BigGAN.refresh_state)

    def setup(self):
        self.generator = nn.Dense(4)
        self.discriminator = bg.SNDense(1)

    def generate(self, z, label=None):
        return self.generator(z)

    def discriminate(self, x, label=None):
        return self.discriminator(x)[:, 0]

    def __call__(self, z, label=None):
        return self.discriminate(self.generate(z))


def test_spectral_vectors_are_non_gradient_state_refreshed_by_update_state():
    from jaxgen.families.gan.config import GANSettings
    from jaxgen.kernel.contract import BuildContext, DatasetInfo
    obj = gan.make(BuildContext(_TinySNGAN(), DatasetInfo("ring", "points", (4,)),
                                GANSettings(loss="hinge", ortho_weight=0.1), None, None))
    batch = {"x": jnp.ones((5, 4))}
    params = obj.init(jax.random.key(0), batch)
    assert set(params) == {"generator", "discriminator", "spectral"}
    assert set(params["spectral"]) == {"discriminator"}
    new = obj.update_state(params, batch, jax.random.key(1))
    for player in ("generator", "discriminator"):  # the players' entries are unchanged
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                         params[player], new[player]))
    w = params["discriminator"]["kernel"]
    u = params["spectral"]["discriminator"]["u"]
    want = bg.power_iteration(w, u, 1)
    np.testing.assert_allclose(new["spectral"]["discriminator"]["u"], want, atol=1e-6)
    # D's loss reads u from the state: D(x) = x·w / ‖w u‖ + b
    d_loss = obj.players[0].loss
    p2 = {**params, "spectral": {"discriminator": {"u": -u}}}  # same σ̂: same loss
    assert float(d_loss(params, batch, jax.random.key(2))[0]) == pytest.approx(
        float(d_loss(p2, batch, jax.random.key(2))[0]), rel=1e-6)
    g_loss, g_m = obj.players[1].loss(params, batch, jax.random.key(3))
    assert float(g_m["ortho_penalty"]) == pytest.approx(
        _ortho_numpy(params["generator"]["kernel"]), rel=1e-4)


def test_the_shipped_config_is_class_conditional_hinge_with_ortho_reg():
    from jaxgen.kernel import config as config_lib
    cfg = config_lib.load_config(ROOT / "configs" / "gan" / "biggan_fashion_mnist.py", [])
    assert cfg.model.name == "biggan" and cfg.model.num_classes == 10
    assert cfg.objective.loss == "hinge" and cfg.objective.ortho_weight == 1e-4
    assert (cfg.optim.b1, cfg.optim.b2) == (0.0, 0.999)
    assert cfg.optim.players.generator.learning_rate == 1e-4  # SAGAN TTUR
    assert cfg.optim.players.discriminator.learning_rate == 4e-4


@pytest.mark.heavy
def test_biggan_trains_through_the_cli_and_refreshes_u(tmp_path):
    from conftest import load_final_state, read_metrics

    from jaxgen import cli
    wd = tmp_path / "run"
    assert cli.main(["train", "--config", str(ROOT / "configs/gan/biggan_fashion_mnist.py"),
                     "--workdir", str(wd), "--config.train.steps=3",
                     "--config.train.batch_size=16", "--config.train.log_every=1",
                     "--config.train.checkpoint_every=3", "--config.train.progress=false",
                     "--config.train.sample_every=0", "--config.train.pictures=false",
                     "--config.model.g_channels=4", "--config.model.d_channels=4"]) == 0
    m = read_metrics(wd)
    assert len(m) == 3 and all(np.isfinite(r["loss"]) and r["generator/ortho_penalty"] > 0
                               for r in m)
    state, _ = load_final_state(wd)
    assert "spectral" in state.params and "spectral" in state.ema_params


@pytest.mark.heavy
def test_reproduce_truncation_fast_writes_its_table_and_plot(tmp_path):
    import json

    from jaxgen import reproduce
    from jaxgen.eval import classifier as clf
    from jaxgen.reproduce import truncation
    reproduce.run("truncation", tmp_path, budget=reproduce.Budget(fast=True))
    out = json.loads((tmp_path / "truncation" / "truncation.json").read_text())
    assert out["psis"] == list(truncation.PSIS) and set(out["models"]) == {"ortho", "no_ortho"}
    assert out["models"]["ortho"]["ortho_weight"] == 1e-4
    if clf.load_cached() is not None:
        for m in out["models"].values():
            assert [r["psi"] for r in m["per_psi"]] == list(truncation.PSIS)
            assert all(np.isfinite(r["fd"]) and 0 <= r["precision"] <= 1
                       and 0 <= r["class_entropy"] <= np.log(10) + 1e-6 for r in m["per_psi"])
        assert (tmp_path / "truncation" / "truncation.png").stat().st_size > 0
        assert "| ortho | 0.25 |" in (tmp_path / "truncation" / "report.md").read_text()
