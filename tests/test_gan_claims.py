"""The gan-claims helpers (jaxgen.families.gan.tools) against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.gan import gan, tools


def _mlp_discriminator(key, dim, width=16):
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"discriminator": {"w1": jax.random.normal(k1, (dim, width)) / np.sqrt(dim),
                                "b1": jax.random.normal(k2, (width,)),
                                "w2": jax.random.normal(k3, (width,)) * 3.0}}

    def discriminate(p, x):
        d = p["discriminator"]
        return jnp.tanh(x @ d["w1"] + d["b1"]) @ d["w2"], None
    return params, discriminate


@pytest.mark.parametrize("seed", range(4))
def test_loss_gradient_ratio_is_d_over_one_minus_d(seed):
    """Property over random MLP discriminators and inputs: ‖∇ sat‖ / ‖∇ NS‖ = exp(l) and
    each norm is σ(±l) ‖∇ l‖ (the chain rule through D = σ(l))."""
    key = jax.random.key(seed)
    params, disc = _mlp_discriminator(key, 3)
    x = 2.0 * jax.random.normal(jax.random.fold_in(key, 1), (64, 3))
    g = gan.generator_loss_gradients(disc, params, x)
    l = np.asarray(g.logit, np.float64)
    assert np.ptp(l) > 5  # the inputs span confident and unsure D
    np.testing.assert_allclose(np.asarray(g.logit), np.asarray(disc(params, x)[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g.d), 1 / (1 + np.exp(-l)), rtol=1e-5)
    ok = np.abs(l) < 15
    np.testing.assert_allclose(np.asarray(g.saturating, np.float64)[ok]
                               / np.asarray(g.nonsaturating, np.float64)[ok],
                               np.exp(l[ok]), rtol=1e-4)
    lg = np.asarray(g.logit_grad, np.float64)
    np.testing.assert_allclose(g.saturating, lg / (1 + np.exp(-l)), rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(g.nonsaturating, lg / (1 + np.exp(l)), rtol=1e-4, atol=1e-30)


def test_loss_gradients_of_a_linear_discriminator_are_sigma_times_w():
    """l = w·x + b: ∇_x l = w, so ‖∇ log(1 − D)‖ = σ(l) ‖w‖ and ‖∇ −log D‖ = σ(−l) ‖w‖."""
    w, b = np.array([3.0, -4.0], np.float32), np.float32(0.5)
    params = {"discriminator": {"w": jnp.asarray(w), "b": jnp.asarray(b)}}

    def disc(p, x):
        return x @ p["discriminator"]["w"] + p["discriminator"]["b"], None
    x = np.array([[0.0, 0.0], [1.0, 1.0], [-2.0, 1.0], [0.3, -0.1]], np.float32)
    g = gan.generator_loss_gradients(disc, params, x)
    l = x.astype(np.float64) @ w + b
    np.testing.assert_allclose(g.logit_grad, 5.0, rtol=1e-6)
    np.testing.assert_allclose(g.saturating, 5.0 / (1 + np.exp(-l)), rtol=1e-5)
    np.testing.assert_allclose(g.nonsaturating, 5.0 / (1 + np.exp(l)), rtol=1e-5)


def test_generator_param_gradients_of_a_linear_game():
    """G(z) = A z, l = w·x + b: ∇_A E f(l) = E f'(l) w zᵀ with f' = −σ(l) (saturating)
    and −σ(−l) (non-saturating)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    w = rng.standard_normal(2).astype(np.float32)
    z = rng.standard_normal((16, 3)).astype(np.float32)
    params = {"generator": {"a": jnp.asarray(a)},
              "discriminator": {"w": jnp.asarray(w), "b": jnp.float32(-1.0)}}

    def gen(p, zz):
        return zz @ p["generator"]["a"].T

    def disc(p, x):
        return x @ p["discriminator"]["w"] + p["discriminator"]["b"], None
    sat, ns = gan.generator_param_gradients(gen, disc, params, jnp.asarray(z))
    l = z.astype(np.float64) @ a.T.astype(np.float64) @ w - 1.0
    sig = 1 / (1 + np.exp(-l))

    def frob(fp):
        return np.linalg.norm(np.mean(fp[:, None, None] * w[None, :, None] * z[:, None, :], 0))
    np.testing.assert_allclose(float(sat), frob(-sig), rtol=1e-5)
    np.testing.assert_allclose(float(ns), frob(-(1 - sig)), rtol=1e-5)


def test_nearest_neighbours_matches_brute_force():
    rng = np.random.default_rng(1)
    ref = rng.random((300, 4, 5))
    q = np.concatenate([rng.random((37, 4, 5)), ref[[3, 250]]])  # two exact copies
    idx, dist = tools.nearest_neighbours(q, ref, chunk=16)
    d = np.linalg.norm(q.reshape(len(q), 1, -1) - ref.reshape(1, len(ref), -1), axis=-1)
    np.testing.assert_array_equal(idx, d.argmin(1))
    np.testing.assert_allclose(dist, d.min(1), rtol=1e-5, atol=1e-3)
    assert list(idx[-2:]) == [3, 250]


def test_class_mean_latents_average_the_most_typical():
    z = np.arange(12, dtype=np.float64).reshape(6, 2)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.95, 0.05],
                      [0.5, 0.5]])
    out = tools.class_mean_latents(z, probs, (0, 1), top=2)
    np.testing.assert_allclose(out[0], z[[4, 0]].mean(0))
    np.testing.assert_allclose(out[1], z[[3, 1]].mean(0))
