"""log p(x) by Monte Carlo with z from the prior (`vae.prior_mc_bound`) against IWAE with z
from the posterior, on linear-Gaussian VAEs whose log p(x) is closed-form (probabilistic
PCA), over random parameters."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from test_vae import MLP_ON_IMAGES, _built, _ppca

from jaxgen.families.vae import vae

KS = (1, 10, 100, 1000, 20000)


def _random_ppca(rng, d=5, latent=3):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) with orthogonal columns of W (random norms),
    so the exact posterior N(m(x), σ² M⁻¹), M = WᵀW + σ²I, is diagonal.
    Returns (w, b, σ, log p(x), posterior(x) -> (means, variances))."""
    q, _ = np.linalg.qr(rng.normal(size=(d, latent)))
    w, b, sigma = q * rng.uniform(0.5, 2.5, latent), rng.normal(size=d), rng.uniform(0.3, 0.8)
    cov = w @ w.T + sigma**2 * np.eye(d)

    def log_px(x):
        diff = x - b
        return -0.5 * (np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
                       + np.linalg.slogdet(cov)[1] + d * math.log(2 * math.pi))

    m = np.sum(w**2, 0) + sigma**2  # the diagonal of M

    def posterior(x):
        return (x - b) @ w / m, np.broadcast_to(sigma**2 / m, (len(x), latent))

    return w, b, sigma, log_px, posterior


@jax.jit
def _estimates(w, b, log_sigma, x, mean, log_v, post_m, post_lv, key):
    """IWAE at the exact posterior (k = 1), and {k: (IWAE with q = mean/log_v, prior MC)},
    through the family's Gaussian decoder with a learned (here: given) log-scale."""
    dec = vae.Decoder("gaussian_learned")

    def log_lik(z):
        n, nb = z.shape[:2]
        loc = (z @ w.T + b).reshape(n * nb, -1)
        out = jnp.stack([loc, jnp.broadcast_to(log_sigma, loc.shape)], -1)
        tgt = jnp.broadcast_to(x, (n, *x.shape)).reshape(n * nb, -1)
        return dec.log_prob(tgt, out).reshape(n, nb)

    out = {}
    for k in KS:
        kk = jax.random.fold_in(key, k)
        out[k] = (vae.iwae_bound(log_lik, mean, log_v, kk, k, min(k, 2000)),
                  vae.prior_mc_bound(log_lik, mean.shape[0], mean.shape[1], kk, k,
                                     min(k, 2000)))
    return vae.iwae_bound(log_lik, post_m, post_lv, key, 1), out


def test_prior_mc_is_logmeanexp_of_the_decoder_likelihood_at_prior_draws():
    rng, _, _, log_lik_fn, _ = _ppca(seed=3)
    x = rng.normal(size=(5, 5))
    key = jax.random.key(4)
    got = vae.prior_mc_bound(log_lik_fn(x), 5, 3, key, 37, chunk=8)  # 5 chunks, last masked
    z = vae._noise(key, jnp.arange(37), (5, 3))  # sample i's noise, as the estimator draws it
    ll = np.asarray(log_lik_fn(x)(z), np.float64)  # (37, 5)
    want = np.log(np.mean(np.exp(ll - ll.max(0)), 0)) + ll.max(0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)


def test_both_estimators_rise_with_k_towards_the_exact_log_px_over_random_ppcas():
    """For random PPCAs: IWAE at the exact posterior equals log p(x) at k = 1; IWAE with a
    poor q and the prior estimator stay below log p(x) on average, rise with k and reach it
    (within 0.15 nats) at k = 20 000 (a 3-d latent); at small k the prior estimator is the
    worse of the two."""
    rng = np.random.default_rng(0)
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    for seed in range(3):
        w, b, sigma, log_px, posterior = _random_ppca(rng)
        x = (b + rng.normal(size=(48, 3)) @ w.T + sigma * rng.normal(size=(48, 5)))
        truth = log_px(x)
        post_m, pv = posterior(x)
        poor_m, poor_lv = post_m + 0.5, np.log(2.0 * pv)  # shifted and too wide
        exact, est = _estimates(f32(w), f32(b), f32(math.log(sigma)), f32(x), f32(poor_m),
                                f32(poor_lv), f32(post_m), f32(np.log(pv)),
                                jax.random.key(seed))
        np.testing.assert_allclose(np.asarray(exact), truth, atol=3e-4)
        gaps = {k: [truth.mean() - np.mean(np.asarray(e, np.float64)) for e in est[k]]
                for k in KS}
        for which in (0, 1):  # IWAE, prior MC
            g = [gaps[k][which] for k in KS]
            # falls with k until it is within the estimate's noise of 0, never below it
            assert all(c < a or abs(c) < 0.01 for a, c in zip(g, g[1:])), (seed, which, g)
            assert min(g) > -0.01 and g[0] > 0.5 and abs(g[-1]) < min(0.15, g[0] / 100), (
                seed, which, g)
        assert gaps[1][1] > gaps[1][0] and gaps[10][1] > gaps[10][0], gaps


def test_latent_tools_log_px_runs_both_proposals_on_a_vae():
    """`LatentTools.log_px`: the posterior proposal is the objective's IWAE likelihood, the
    prior one `prior_mc_bound` with the decoder's likelihood (both with the same key)."""
    obj, params, x = _built("vae_toy2d.py", tuple(MLP_ON_IMAGES))
    key = jax.random.key(5)

    @jax.jit
    def run(params):
        return (obj.tools.log_px(params, x, key, 20, "posterior", 8),
                obj.likelihoods["iwae"].fn(params, x, key),
                obj.tools.log_px(params, x, key, 20, "prior"),
                obj.tools.log_px(params, x, key, 1, "prior"))

    iwae, lik, prior, prior1 = (np.asarray(a) for a in run(params))
    np.testing.assert_allclose(iwae, lik, rtol=1e-6)  # eval.iwae_k = 20 in MLP_ON_IMAGES
    assert prior.shape == (len(x),) and np.all(np.isfinite(prior))
    assert np.all(prior < 0) and math.isfinite(float(prior1.mean()))
