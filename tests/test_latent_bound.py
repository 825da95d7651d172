"""The composed model's bound: a VAE with a learned prior p_θ(z),
log p(x) ≥ E_q[log p(x|z) + log p_θ(z) − log q(z|x)] (`jaxgen.composed.bound`)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_latents import train_prior, vae_run  # noqa: F401  (the tiny VAE run fixture)

from jaxgen import cli
from jaxgen.composed import bound as latent_bound
from jaxgen.distributions import standard_normal_log_prob, sum_event
from jaxgen.runner import runs

# one worker trains the tiny VAE run once for test_latents and test_latent_bound
pytestmark = pytest.mark.xdist_group("latents")


@pytest.fixture(scope="module")
def vae(vae_run):  # noqa: F811
    """(Experiment, params, first 4 raw test images) of the tiny VAE run."""
    tmp, wd = vae_run
    return (*runs.restore(wd), np.load(tmp / "test.npz")["x"][:4])


def _draws(vae, keys):
    """One posterior draw of each of the VAE's 4 test images per key (`draw_terms`,
    vmapped over `keys`) and its encoder's (mean, log_var)."""
    exp, params, x_raw = vae
    ae = exp.objective.autoencoder
    draw = jax.jit(lambda k: latent_bound.draw_terms(ae, params, "images", (8, 8, 1), x_raw, k))
    t = jax.vmap(draw)(keys)
    stats = exp.held_out_stats_batch(params, x_raw, jax.random.key(1))  # logistic: bin centres
    return t, stats["mean"], stats["log_var"]


def test_with_a_standard_normal_prior_the_bound_is_the_vaes_elbo(vae):
    key = jax.random.key(3)
    t, mean, log_var = _draws(vae, key[None])
    z, log_q, log_px = t["z"][0], t["log_q"][0], t["log_px"][0]
    # the draw is from q(z|x) = N(mean, exp(log_var)) and log_q is its log-density
    want_q = sum_event(standard_normal_log_prob((z - mean) * jnp.exp(-0.5 * log_var))
                       - 0.5 * log_var)
    np.testing.assert_allclose(log_q, want_q, rtol=1e-5, atol=1e-4)
    log_normal = np.asarray(sum_event(standard_normal_log_prob(z)))
    rec = latent_bound.summarize(log_px, log_q, log_normal, z, 64)
    assert rec["composed/bits_per_dim"] == rec["vae/elbo_bits_per_dim"]  # same MC form
    assert rec["composed/kl_nats"] == rec["vae/kl_nats"]
    # the VAE's own ELBO estimator with the same key scores the same draw (recon), its
    # KL being the analytic one
    exp, params, x_raw = vae
    _, terms = exp.log_likelihood_terms(params, x_raw, key, name="elbo")
    np.testing.assert_allclose(terms["recon"], -np.asarray(log_px), rtol=1e-5)
    np.testing.assert_allclose(rec["composed/recon_nats"], np.mean(terms["recon"]), rtol=1e-5)


def test_a_gaussian_prior_gives_the_closed_form_kl(vae):
    """p_θ = N(m, s²) per dimension: E_q[log q − log p_θ] = KL(N(μ, σ²) ‖ N(m, s²))
    = Σ log(s/σ) + (σ² + (μ − m)²)/(2 s²) − ½, within 5 MC standard errors."""
    n = 1000
    t, mean, log_var = _draws(vae, jax.random.split(jax.random.key(0), n))
    m, s = jnp.array([0.5, -1.0, 0.2]), jnp.array([1.5, 0.7, 2.0])
    z = t["z"]  # (n, B, d)
    log_p = jnp.sum(standard_normal_log_prob((z - m) / s) - jnp.log(s), -1)
    kl_mc = np.asarray(t["log_q"] - log_p)  # (n, B)
    var = jnp.exp(log_var)
    kl = np.asarray(jnp.sum(jnp.log(s) - 0.5 * log_var + (var + (mean - m) ** 2) / (2 * s**2)
                            - 0.5, -1))
    err = kl_mc.std(0) / np.sqrt(n)
    assert np.all(np.abs(kl_mc.mean(0) - kl) < 5 * err + 1e-4), (kl_mc.mean(0), kl, err)
    # summarize reports exactly that KL and the bound recon − KL
    rec = latent_bound.summarize(t["log_px"].reshape(-1), t["log_q"].reshape(-1),
                                 np.asarray(log_p).reshape(-1), z.reshape(-1, 3), 64)
    np.testing.assert_allclose(rec["composed/kl_nats"], kl_mc.mean(), rtol=1e-6)
    np.testing.assert_allclose(rec["composed/nll_nats"],
                               rec["composed/recon_nats"] + rec["composed/kl_nats"], rtol=1e-6)


def test_eval_of_a_prior_on_latents_reports_the_composed_bound(vae_run, capsys):  # noqa: F811
    tmp, wd = vae_run
    prior = tmp / "fm_bound"
    train_prior(prior, wd, "train.pictures=false", "eval.num_examples=10",
                "eval.batch_size=8")
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(prior)]) == 0
    printed = capsys.readouterr().out
    assert "composed/bits_per_dim" in printed and "vae/elbo_bits_per_dim" in printed
    rec = json.loads(next((prior / "eval").glob("test_step*.json")).read_text())
    for k in ("composed/bits_per_dim", "vae/elbo_bits_per_dim", "composed/recon_nats",
              "composed/log_prior_nats", "composed/entropy_nats", "composed/kl_nats"):
        assert np.isfinite(rec[k]), k
    # both are bounds of the same images with the same draws: they share recon and entropy
    np.testing.assert_allclose(rec["composed/nll_nats"] - rec["vae/elbo_nll_nats"],
                               rec["vae/log_prior_nats"] - rec["composed/log_prior_nats"],
                               rtol=1e-4, atol=1e-3)
    assert rec["composed/prior"].endswith("(exact)")
