"""VAE family: KL, ELBO and IWAE against exact values (probabilistic PCA), the VQ-VAE's
straight-through gradients, EMA codebook and metrics, and end-to-end CLI runs."""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, read_metrics
from PIL import Image

from jaxgen.eval.evaluate import read_eval
from jaxgen.families.vae import vae, vqvae
from jaxgen.families.vae.config import VAESample


def _info(kind="images", shape=(8, 8, 1)):
    from jaxgen.runner.experiment import DatasetInfo
    return DatasetInfo("tiny", kind, shape)


def _objective(config_name, overrides, info=None):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    info = info or _info()
    cfg = config_lib.load_config(ROOT / "configs" / "vae" / config_name, overrides)
    model = registry.build_model(cfg.model, info)
    return registry.build_objective(cfg, model, info)


def _init(obj, x):
    """Jitted init with the trainer's "rbg" key: much faster to compile for conv nets on CPU."""
    return jax.jit(obj.init)(jax.random.key(0, impl="rbg"), {"x": x})


@functools.lru_cache(maxsize=None)
def _built(config_name, overrides: tuple):
    """(objective, params, x) of a tiny model on 8x8 images, built once per module."""
    obj = _objective(config_name, list(overrides))
    x = _images(16 if config_name.startswith("vae") else 8)
    return obj, _init(obj, x), x


def _images(n, seed=0):
    """Model-space bin centres of uniform random 8-bit 8x8 images."""
    x = np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1))
    return jnp.asarray(2 * (x + 0.5) / 256 - 1, jnp.float32)


TINY_VAE = ["model.channels=(4, 8)", "model.hidden=16", "model.latent_dim=3",
            "eval.iwae_k=20", "eval.iwae_chunk=8"]
# The objective's logic on images, through a small MLP VAE (conv nets take seconds to compile
# on CPU; the conv VAE itself runs end to end in the CLI test).
MLP_ON_IMAGES = ["model.features=(16,)", "model.latent_dim=3", "objective.decoder=logistic",
                 "eval.iwae_k=20", "eval.iwae_chunk=8"]
TINY_VQ = ["model.channels=(4, 8)", "model.embed_dim=3", "model.num_res=0",
           "objective.num_codes=6"]


# ------------------------------------------------------------------ KL, ELBO
def test_analytic_kl_equals_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = jnp.asarray(rng.normal(size=5), jnp.float32)
    log_var = jnp.asarray(rng.normal(size=5), jnp.float32)
    exact = float(jnp.sum(vae.kl_standard_normal(mean, log_var)))
    eps = jax.random.normal(jax.random.key(0), (400_000, 5))
    z = mean + jnp.exp(0.5 * log_var) * eps
    log_q = jnp.sum(vae.gaussian_log_prob(z, mean, 0.5 * log_var), -1)
    log_p = jnp.sum(vae.standard_normal_log_prob(z), -1)
    mc = np.asarray(log_q - log_p, np.float64)
    assert exact > 0.5
    assert abs(mc.mean() - exact) < 5 * mc.std() / math.sqrt(len(mc)), (mc.mean(), exact)


def _ppca(seed=0, d=5, latent=3, sigma=0.5, orthogonal=False):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I): log p(x) = log N(x; b, WWᵀ + σ²I)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, latent))
    if orthogonal:  # WᵀW diagonal: the exact posterior is a diagonal Gaussian
        q, _ = np.linalg.qr(w)
        w = q * np.array([2.0, 1.0, 0.5])[:latent]
    b = rng.normal(size=d)
    cov = w @ w.T + sigma**2 * np.eye(d)

    def log_px(x):
        diff = x - b
        _, logdet = np.linalg.slogdet(cov)
        return -0.5 * (np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
                       + logdet + d * math.log(2 * math.pi))

    def posterior(x):
        m = w.T @ w + sigma**2 * np.eye(latent)
        minv = np.linalg.inv(m)
        return (x - b) @ w @ minv.T, sigma**2 * minv  # means (N, L), covariance (L, L)

    def log_lik_fn(x):
        """z (n, B, L) -> log p(x|z) (n, B), through the objective's Gaussian decoder."""
        dec = vae.Decoder("gaussian", std=sigma)
        wj, bj, xj = (jnp.asarray(a, jnp.float32) for a in (w, b, x))

        def log_lik(z):
            n, nb = z.shape[:2]
            loc = (z @ wj.T + bj).reshape(n * nb, -1)
            tgt = jnp.broadcast_to(xj, (n, *xj.shape)).reshape(n * nb, -1)
            return dec.log_prob(tgt, loc[..., None]).reshape(n, nb)
        return log_lik

    def exact_elbo(x, mean, var):
        """E_q log N(x; Wz + b, σ²I) − KL, q = N(mean, diag var), in closed form."""
        loc = mean @ w.T + b
        rec = (-0.5 * np.sum((x - loc) ** 2, -1) / sigma**2 - d * math.log(sigma)
               - 0.5 * d * math.log(2 * math.pi) - 0.5 * np.sum(w**2 * var[:, None, :], (1, 2))
               / sigma**2)
        kl = 0.5 * np.sum(var + mean**2 - 1 - np.log(var), -1)
        return rec - kl

    return rng, log_px, posterior, log_lik_fn, exact_elbo


def _gauss_kl(m0, s0, m1, s1):
    """KL(N(m0, S0) ‖ N(m1, S1)) per row, full covariances (L, L)."""
    latent = s0.shape[-1]
    inv1 = np.linalg.inv(s1)
    diff = m1 - m0
    return 0.5 * (np.trace(inv1 @ s0, axis1=-2, axis2=-1) - latent
                  + np.einsum("nd,de,ne->n", diff, inv1, diff)
                  + np.linalg.slogdet(s1)[1] - np.linalg.slogdet(s0)[1])


def test_elbo_is_below_log_px_on_ppca_and_equal_at_the_exact_posterior():
    """Probabilistic PCA: log p(x) − ELBO(q) = KL(q ‖ p(z|x)) ≥ 0 for an arbitrary diagonal q
    (MC ELBO within its error); q = the exact posterior (diagonal for orthogonal W) gives
    ELBO = log p(x), and then every importance weight equals p(x) (IWAE k = 1, exactly)."""
    rng, log_px, posterior, log_lik_fn, exact_elbo = _ppca()
    x = rng.normal(size=(4, 5))
    mean = 0.5 * rng.normal(size=(4, 3))
    var = np.exp(0.5 * rng.normal(size=(4, 3)))
    m, log_v = jnp.asarray(mean, jnp.float32), jnp.asarray(np.log(var), jnp.float32)
    S, key = 20_000, jax.random.key(0)

    @jax.jit
    def mc():
        recon, kl = vae.elbo_terms(log_lik_fn(x), m, log_v, key, num_samples=S)
        # the estimate's standard error, from the same draws elbo_terms used
        z = m + jnp.exp(0.5 * log_v) * vae._noise(key, jnp.arange(S), m.shape)
        return -(recon + kl), jnp.std(log_lik_fn(x)(z), 0) / math.sqrt(S)

    elbo_mc, se = (np.asarray(a, np.float64) for a in mc())
    truth = log_px(x)
    post_m, post_cov = posterior(x)
    gap = _gauss_kl(mean, np.stack([np.diag(v) for v in var]), post_m, post_cov)
    np.testing.assert_allclose(exact_elbo(x, mean, var), truth - gap, rtol=1e-8)
    assert np.all(np.abs(elbo_mc - (truth - gap)) < 5 * se + 1e-3), (elbo_mc, truth - gap, se)
    assert np.all(gap > 10 * se) and np.all(elbo_mc < truth)

    rng, log_px, posterior, log_lik_fn, exact_elbo = _ppca(seed=1, orthogonal=True)
    x = rng.normal(size=(6, 5)) * 2
    post_m, post_cov = posterior(x)
    assert np.allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-10)
    pv = np.broadcast_to(np.diag(post_cov), post_m.shape)
    np.testing.assert_allclose(exact_elbo(x, post_m, pv), log_px(x), rtol=1e-8)
    m, log_v = jnp.asarray(post_m, jnp.float32), jnp.asarray(np.log(pv), jnp.float32)
    elbo, k1 = jax.jit(lambda: (
        -sum(vae.elbo_terms(log_lik_fn(x), m, log_v, jax.random.key(1), num_samples=S)),
        vae.iwae_bound(log_lik_fn(x), m, log_v, jax.random.key(2), k=1)))()
    np.testing.assert_allclose(elbo, log_px(x), atol=0.03)
    np.testing.assert_allclose(k1, log_px(x), atol=2e-4)


def test_iwae_bound_is_above_the_elbo_grows_with_k_and_does_not_depend_on_chunks():
    """L_1 = ELBO ≤ L_10 ≤ L_100 ≤ L_1000 ≤ log p(x), averaged over examples (PPCA, a poor q)."""
    rng, log_px, posterior, log_lik_fn, exact_elbo = _ppca(seed=2)
    x = rng.normal(size=(64, 5)) * 2
    post_m, post_cov = posterior(x)
    mean = post_m + 0.7  # a deliberately wrong q: shifted, too wide
    var = np.broadcast_to(3.0 * np.diag(post_cov), mean.shape)
    m, log_v = jnp.asarray(mean, jnp.float32), jnp.asarray(np.log(var), jnp.float32)
    def bound(k, chunk, seed):
        return vae.iwae_bound(log_lik_fn(x), m, log_v, jax.random.key(seed), k, chunk)

    ks = [1, 10, 100, 1000]
    # one compile: L_k with chunks of 100 for every k, then k = 1000 in chunks of 64 (the last
    # one partial, masked) and k = 100 in chunks of 7, with the same draws
    vals, c1000, c100 = jax.jit(lambda: ({k: bound(k, 100, k) for k in ks}, bound(1000, 64, 1000),
                                         bound(100, 7, 100)))()
    vals = {k: np.asarray(v, np.float64) for k, v in vals.items()}
    elbo = exact_elbo(x, mean, var)
    truth = log_px(x)
    d1 = vals[1] - elbo
    assert abs(d1.mean()) < 5 * d1.std() / math.sqrt(len(d1)), d1.mean()
    for a, b in zip(ks, ks[1:]):
        diff = vals[b] - vals[a]
        assert diff.mean() > 0, (a, b, diff.mean())
    assert vals[1000].mean() <= truth.mean() + 0.01
    assert truth.mean() - vals[1000].mean() < 0.3 * (truth.mean() - elbo.mean())
    np.testing.assert_allclose(c1000, vals[1000], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(c100, vals[100], rtol=1e-5, atol=1e-4)  # one chunk of 100
    assert "scan" in str(jax.make_jaxpr(lambda: vae.iwae_bound(
        log_lik_fn(x), m, log_v, jax.random.key(0), 5000, 100))())


# --------------------------------------------------------------- decoders, β
def test_discretized_logistic_sums_to_one_over_the_256_bins():
    bw = 2.0 / 256
    centres = jnp.asarray(2 * (np.arange(256) + 0.5) / 256 - 1, jnp.float32)
    for mean, log_s in [(0.0, -3.0), (0.93, -7.0), (-1.2, 0.0), (0.5, -7.0), (3.0, -5.0),
                        (-0.2, 2.0)]:
        logp = vae.discretized_logistic_log_prob(centres, mean, log_s, bw)
        assert np.all(np.isfinite(np.asarray(logp)))
        np.testing.assert_allclose(float(jnp.sum(jnp.exp(logp))), 1.0, atol=1e-4)
    # a wide logistic: bin probability ≈ density × width in the middle
    s = 0.3
    lp = vae.discretized_logistic_log_prob(centres[128], 0.0, math.log(s), bw)
    u = float(centres[128]) / s
    density = math.exp(-u) / (s * (1 + math.exp(-u)) ** 2)
    np.testing.assert_allclose(float(lp), math.log(density * bw), atol=1e-4)


def test_beta_scales_only_the_kl():
    """d loss / d β = KL / D (the loss is per dimension) and the recon term does not move."""
    obj, params, x = _built("vae_toy2d.py", tuple(MLP_ON_IMAGES))
    loss = obj.players[0].loss
    batch, rng = {"x": x}, jax.random.key(1)

    def f(b):
        return loss(params, batch, rng, beta=b)
    (l1, m1), (l4, m4), dldb = jax.jit(lambda: (f(1.0), f(4.0), jax.grad(lambda b: f(b)[0])(2.5)))()
    np.testing.assert_allclose(float(dldb), float(m1["kl"]) / 64, rtol=1e-4)
    np.testing.assert_allclose(float(m1["recon"]), float(m4["recon"]), rtol=1e-6)
    np.testing.assert_allclose(float(m1["kl"]), float(m4["kl"]), rtol=1e-6)
    np.testing.assert_allclose(float(l4 - l1), 3 * float(m1["kl"]) / 64, rtol=1e-3, atol=1e-6)


def test_kl_warmup_counts_steps_in_non_gradient_state():
    obj = _objective("vae_toy2d.py", ["model.features=(8,)", "objective.kl_warmup_steps=4",
                                      "objective.beta=2"], _info("points", (2,)))
    x = jax.random.normal(jax.random.key(0), (32, 2))
    params = _init(obj, x)
    loss, update = jax.jit(obj.players[0].loss), jax.jit(obj.update_state)
    weights = []
    for _ in range(6):
        weights.append(float(loss(params, {"x": x}, jax.random.key(1))[1]["kl_weight"]))
        new = update(params, {"x": x}, jax.random.key(2))
        assert jax.tree.all(jax.tree.map(jnp.array_equal, new["model"], params["model"]))
        params = new
    np.testing.assert_allclose(weights, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0])


def test_vae_objective_bounds_tools_and_sampling():
    """The latent tools and sampling (the iwae / elbo likelihoods run in the CLI test)."""
    obj, params, x = _built("vae_toy2d.py", tuple(MLP_ON_IMAGES))
    assert obj.likelihoods["iwae"].discrete and not obj.dequantize
    assert list(obj.likelihoods) == ["iwae", "elbo"]  # iwae is eval's default
    t = obj.tools

    @jax.jit
    def run(params):  # one compile for the lot
        z = t.encode(params, x)
        return (t.interpolate(params, x[:2], x[2:4], 5),
                t.decode(params, jnp.concatenate([z[:2], z[2:4]])),
                t.traversals(params, x[0], dims=(2, 0), n=4),
                obj.sample(params, jax.random.key(2), 3, VAESample(temperature=0.5, mode="draw")))

    strip, ends, trav, s = run(params)
    assert strip.shape == (2, 5, 8, 8, 1)
    np.testing.assert_allclose(strip[:, 0], ends[:2], atol=1e-5)
    np.testing.assert_allclose(strip[:, -1], ends[2:], atol=1e-5)
    assert trav.shape == (2, 4, 8, 8, 1)
    # a draw from the logistic decoder (sample.mode=mean, the default, is the CLI test's grid)
    assert s.shape == (3, 8, 8, 1) and float(jnp.max(jnp.abs(s))) <= 1.0
    with pytest.raises(ValueError, match="latent_dim=2"):
        t.manifold_grid(params, 3)
    grid = vae.manifold_latents(4)
    assert grid.shape == (4, 4, 2) and float(grid[0, 0, 0]) < 0 < float(grid[0, 0, 1])
    np.testing.assert_allclose(vae.interpolate_latents(jnp.zeros(2), jnp.ones(2), 3)[:, 0],
                               [0, 0.5, 1])
    with pytest.raises(ValueError, match="unconditional"):
        obj.sample(params, jax.random.key(2), 3, VAESample(), labels=jnp.zeros(3, jnp.int32))
    count, a = vae.active_units(jnp.stack([jnp.linspace(-1, 1, 50), jnp.full(50, 0.3),
                                           0.05 * jnp.linspace(-1, 1, 50)], -1))
    assert int(count) == 1 and a.shape == (3,)


# ------------------------------------------------------------------- VQ-VAE
def _vq(extra=()):
    return _built("vqvae_fashion_mnist.py", tuple(TINY_VQ + list(extra)))


def _is_zero(tree):
    return all(float(jnp.max(jnp.abs(v))) == 0.0 for v in jax.tree.leaves(tree))


def test_straight_through_gradients_and_what_each_term_moves():
    """recon: encoder (straight through) and decoder, not the codebook; codebook term: the
    codebook only; commitment: the encoder only — as sg[·] says."""
    obj, params, x = _vq(["objective.ema=false", "objective.restart_after=2"])
    model = obj.players[0].loss.keywords["model"]
    enc_keys, dec_keys = {"down", "enc_out"}, {"dec_in", "up"}
    assert set(params["model"]["net"]) == enc_keys | dec_keys

    names = ("recon", "codebook", "commitment")

    @jax.jit
    def grads(p):
        """Each term's gradient (a leading axis of 3, by jacrev) and the objective loss's."""
        def f(net, codebook):
            z_e = model.apply({"params": net}, x, method=model.encode)
            terms, _ = vqvae.vq_terms(z_e, codebook,
                                      lambda z: model.apply({"params": net}, z,
                                                            method=model.decode), x)
            return jnp.stack([terms[n] for n in names])
        per_term = jax.jacrev(f, argnums=(0, 1))(p["net"], p["codebook"])
        loss = jax.grad(lambda q: obj.players[0].loss({**params, "model": q}, {"x": x},
                                                      jax.random.key(0))[0])(p)
        return per_term, loss

    (g_all_net, g_all_cb), g = grads(params["model"])
    expect = {"recon": (True, True, False), "codebook": (False, False, True),
              "commitment": (True, False, False)}
    for i, name in enumerate(names):
        moves_enc, moves_dec, moves_cb = expect[name]
        g_net = jax.tree.map(lambda g: g[i], g_all_net)
        g_cb = g_all_cb[i]
        assert _is_zero({k: g_net[k] for k in enc_keys}) != moves_enc, name
        assert _is_zero({k: g_net[k] for k in dec_keys}) != moves_dec, name
        assert _is_zero(g_cb) != moves_cb, name
    # the objective's loss: the encoder gets gradient, the codebook only the codebook term's
    assert not _is_zero(g["net"]["down"])
    np.testing.assert_allclose(g["codebook"], g_all_cb[1], rtol=1e-5, atol=1e-8)


def test_ema_codebook_update_matches_a_hand_computation():
    vq = {"codebook": jnp.asarray([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]),
          "cluster_size": jnp.asarray([1.0, 2.0, 1.0]),
          "embed_sum": jnp.asarray([[0.0, 0.0], [2.0, 2.0], [5.0, 5.0]])}
    flat = jnp.asarray([[0.2, 0.0], [1.0, 2.0], [1.2, 0.8], [-0.2, 0.2]])
    codes = vqvae.nearest_codes(flat, vq["codebook"])
    np.testing.assert_array_equal(codes, [0, 1, 1, 0])
    out = vqvae.ema_update(vq, flat, codes, 3, decay=0.5, epsilon=0.1)
    # N = 0.5·[1, 2, 1] + 0.5·[2, 2, 0] = [1.5, 2, 0.5]; total 4
    np.testing.assert_allclose(out["cluster_size"], [1.5, 2.0, 0.5])
    # m = 0.5·m + 0.5·Σ: code 0 sums (0, 0.2), code 1 sums (2.2, 2.8)
    np.testing.assert_allclose(out["embed_sum"], [[0.0, 0.1], [2.1, 2.4], [2.5, 2.5]])
    smoothed = (np.array([1.5, 2.0, 0.5]) + 0.1) / (4 + 0.3) * 4
    np.testing.assert_allclose(out["codebook"],
                               np.array([[0.0, 0.1], [2.1, 2.4], [2.5, 2.5]]) / smoothed[:, None],
                               rtol=1e-6)


def test_perplexity_of_a_uniform_assignment_is_k_and_of_one_code_is_one():
    ppl, usage = vqvae.perplexity(jnp.tile(jnp.arange(7), 5), 7)
    np.testing.assert_allclose(float(ppl), 7.0, rtol=1e-5)
    assert float(usage) == 1.0
    ppl, usage = vqvae.perplexity(jnp.zeros(20, jnp.int32), 7)
    np.testing.assert_allclose(float(ppl), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float(usage), 1 / 7, rtol=1e-6)


@pytest.mark.parametrize("ema", [True, False])
def test_dead_codes_restart_at_encoder_outputs_and_codes_export(ema):
    obj, params, x = _vq(["objective.ema=false", "objective.restart_after=2"])
    if ema:  # the same network with an EMA codebook (its state built by hand: no new init)
        obj = _objective("vqvae_fashion_mnist.py",
                         TINY_VQ + ["objective.ema=true", "objective.restart_after=2"])
        cb = params["model"]["codebook"]
        params = {"model": {"net": params["model"]["net"]},
                  "vq": {"codebook": cb, "embed_sum": cb, "cluster_size": jnp.ones(6),
                         "idle": jnp.zeros(6)}}
    cb_of = obj.tools.codebook
    far = cb_of(params).at[0].set(100.0)  # code 0 is never the nearest
    if ema:
        params = {**params, "vq": {**params["vq"], "codebook": far, "embed_sum": far}}
    else:
        params = {**params, "model": {**params["model"], "codebook": far}}
    enc = obj.players[0].loss.keywords["model"]

    @jax.jit
    def run(params):  # one compile for the lot
        flat = enc.apply({"params": params["model"]["net"]}, x, method=enc.encode)
        p1 = obj.update_state(params, {"x": x}, jax.random.key(1))
        p2 = obj.update_state(p1, {"x": x}, jax.random.key(2))
        codes = obj.tools.encode_codes(p2, x)
        return (flat.reshape(-1, 3), p1, p2, codes, obj.tools.reconstruct(p2, x),
                obj.tools.decode_codes(p2, codes))

    flat, p1, p2, codes, recon, decoded = run(params)
    assert float(p1["vq"]["idle"][0]) == 1.0 and float(cb_of(p1)[0, 0]) > 50
    row = np.asarray(cb_of(p2)[0])
    assert float(p2["vq"]["idle"][0]) == 0.0
    assert np.min(np.abs(np.asarray(flat) - row).max(-1)) < 1e-4  # a batch encoder output
    if not ema:  # the player's parameters are left alone; the offset moved the code
        assert jax.tree.all(jax.tree.map(jnp.array_equal, p2["model"], params["model"]))
    assert codes.shape == (8, 2, 2) and codes.dtype == jnp.int32
    np.testing.assert_allclose(recon, decoded, atol=1e-6)


# ------------------------------------------------------------------ the CLI
@pytest.mark.parametrize("config,extra", [
    ("vae_fashion_mnist.py", TINY_VAE),
    # the VQ-VAE's CLI path also runs in the latent tests (its code maps) and the contract;
    # this one, in the heavy run for the suite's time
    pytest.param("vqvae_fashion_mnist.py", TINY_VQ + ["objective.restart_after=1"],
                 marks=pytest.mark.heavy),
])
def test_cli_trains_and_bounds_uniform_noise_above_8_bits(tmp_path, capsys, config, extra):
    """Uniform random pixels have 8 bits/dim of entropy: a bound under 8 would be a bug."""
    from jaxgen import cli
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8))
    np.save(tmp_path / "test.npy", rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8))
    wd = tmp_path / "run"
    args = ["train", "--config", str(ROOT / "configs" / "vae" / config), "--workdir", str(wd),
            "--config.data.name=array", f"--config.data.path={tmp_path / 'train.npy'}",
            f"--config.data.eval_path={tmp_path / 'test.npy'}", "--config.train.steps=3",
            "--config.train.batch_size=16", "--config.train.log_every=1",
            "--config.train.checkpoint_every=3", "--config.train.progress=false",
            "--config.eval.num_examples=16", "--config.eval.batch_size=16",
            *[f"--config.{o}" for o in extra]]
    assert cli.main(args) == 0, capsys.readouterr().err
    m = read_metrics(wd)
    assert [r["step"] for r in m] == [1, 2, 3]
    if config.startswith("vae"):
        assert all(r["bits_per_dim"] > 7.9 and r["kl"] >= 0 for r in m)
    else:
        assert all(r["mse"] > 0 and 1 <= r["perplexity"] <= 6 for r in m)
    assert (wd / "samples" / "step_0000003.png").exists()
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    ev = read_eval(wd)
    assert ev["likelihood"] == "bound" and ev["bits_per_dim"] > 7.9, ev
    if config.startswith("vae"):
        assert ev["iwae/bits_per_dim"] == ev["bits_per_dim"] and ev["elbo/bits_per_dim"] > 7.9
        np.testing.assert_allclose(ev["elbo/recon_bpd"] + ev["elbo/kl_bpd"],
                                   ev["elbo/bits_per_dim"], rtol=1e-4)
    else:
        assert ev["prior_bpd"] > 0
    # held-out diagnostics, over the whole eval set
    if config.startswith("vae"):
        assert ev["latent_dim"] == 3 and 0 <= ev["active_units"] <= 3
        assert len(ev["kl_per_dim_nats"]) == 3 and min(ev["kl_per_dim_nats"]) >= 0
        np.testing.assert_allclose(sum(ev["kl_per_dim_nats"]), ev["kl_nats"], rtol=1e-3,
                                   atol=1e-3)
        pics = ["reconstructions", "interpolation", "kl_per_dim", "traversals"]
    else:
        assert ev["mse"] > 0 and 1 <= ev["perplexity"] <= 6 and 1 <= ev["codes_used"] <= 6
        pics = ["reconstructions", "code_usage"]
        out = tmp_path / "codes.npz"
        assert cli.main(["codes", "--workdir", str(wd), "--out", str(out), "--split",
                         "test"]) == 0
        codes = np.load(out)
        assert codes["codes"].shape == (16, 2, 2) and codes["num_codes"] == 6
        assert codes["codes"].min() >= 0 and codes["codes"].max() < 6
        assert cli.main(["codes", "--workdir", str(wd), "--out", str(out)]) == 2  # no overwrite
        assert "exists" in capsys.readouterr().err
        _prior_on_the_codes(tmp_path, wd, out, capsys)
    for p in pics:  # written at the end of the run ...
        assert (wd / "samples" / f"{p}.png").stat().st_size > 0, p
    if config.startswith("vae"):  # ... and again from the checkpoint into a new folder
        assert cli.main(["pictures", "--workdir", str(wd), "--out", str(tmp_path / "pics")]) == 0
        assert sorted(p.stem for p in (tmp_path / "pics").iterdir()) == sorted(pics)
        assert cli.main(["pictures", "--workdir", str(wd), "--out",
                         str(tmp_path / "pics")]) == 2


def _prior_on_the_codes(tmp_path, vq_wd, test_codes, capsys):
    """An autoregressive prior on the exported code maps: trains, scores, samples decoded
    images through the VQ-VAE, and codes the test maps losslessly."""
    from jaxgen import cli
    train_codes = tmp_path / "codes_train.npz"
    assert cli.main(["codes", "--workdir", str(vq_wd), "--out", str(train_codes)]) == 0
    wd = tmp_path / "prior"
    assert cli.main([
        "train", "--config", str(ROOT / "configs" / "autoregressive" / "vqvae_prior.py"),
        "--workdir", str(wd), f"--config.data.path={train_codes}",
        f"--config.data.eval_path={test_codes}", "--config.train.steps=2",
        "--config.train.batch_size=8", "--config.train.progress=false",
        "--config.model.d_model=8", "--config.model.num_heads=2", "--config.model.num_layers=1",
        "--config.eval.batch_size=16"]) == 0, capsys.readouterr().err
    assert json.loads((wd / "run.json").read_text())["data"]["num_tokens"] == 6
    grid = Image.open(wd / "samples" / "step_0000002.png")  # 64 decoded 8x8 images
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    ev = read_eval(wd)
    assert ev["likelihood"] == "exact" and 0 < ev["bits_per_dim"] < 8  # bits per code, K = 6
    assert cli.main(["sample", "--workdir", str(wd), "--num", "5", "--out",
                     str(tmp_path / "prior.npz")]) == 0
    s = np.load(tmp_path / "prior.npz")
    assert s["x"].shape == (5, 2, 2) and s["x"].dtype == np.int32 and s["x"].max() < 6
    assert s["images"].shape == (5, 8, 8, 1) and s["images"].dtype == np.uint8
    assert grid.size[0] > 8 * 8  # a grid of the decoded images, not of 2x2 maps
    packed = tmp_path / "codes.jgac"
    assert cli.main(["compress", "--workdir", str(wd), "--out", str(packed),
                     "--batch-size", "16"]) == 0
    assert cli.main(["decompress", "--workdir", str(wd), "--in", str(packed), "--out",
                     str(tmp_path / "back.npz"), "--verify"]) == 0
    assert "Byte-for-byte equal to the source" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "back.npz")["x"],
                                  np.load(test_codes)["codes"])
    # a VQ-VAE cannot model code maps itself: one clear error
    assert cli.main(["train", "--config", str(ROOT / "configs" / "vae" / "vqvae_fashion_mnist.py"),
                     "--workdir", str(tmp_path / "bad"), "--config.data.name=codes",
                     f"--config.data.path={train_codes}"]) == 2
    assert "only an autoregressive prior" in capsys.readouterr().err


def test_posterior_collapse_stats_count_active_and_collapsed_dimensions():
    """A dimension whose posterior is the prior for every x has A_u = 0 and KL = 0."""
    rng = np.random.default_rng(0)
    n = 500
    mean = np.stack([rng.normal(0, 1.0, n), rng.normal(0, 0.05, n), np.zeros(n)], -1)
    log_var = np.stack([np.full(n, -2.0), np.full(n, -1.0), np.zeros(n)], -1)
    s = vae.posterior_collapse_stats({"mean": mean, "log_var": log_var})
    assert s["active_units"] == 1 and s["latent_dim"] == 3  # Var(0.05 N) = 0.0025 < 0.01
    kl = s["kl_per_dim_nats"]
    want = np.mean(0.5 * (np.exp(log_var) + mean ** 2 - 1 - log_var), 0)
    np.testing.assert_allclose(kl, want, atol=1e-4)
    assert kl[2] == 0.0 and s["kl_active_dims"] == 2


def test_held_out_code_stats_perplexity_is_k_for_uniform_use_and_one_for_one_code():
    codes = np.arange(6 * 4).reshape(6, 2, 2) % 4
    s = vqvae.held_out_code_stats({"codes": codes, "sq_err": np.full(6, 0.5)}, 8)
    np.testing.assert_allclose(s["perplexity"], 4.0, rtol=1e-6)
    assert s["codes_used"] == 4 and s["usage"] == 0.5 and s["mse"] == 0.5
    s = vqvae.held_out_code_stats({"codes": np.zeros((3, 2, 2), int), "sq_err": np.ones(3)}, 8)
    assert s["perplexity"] == 1.0 and s["codes_used"] == 1
