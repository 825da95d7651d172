"""The VAE family's deterministic autoencoder (objective.encoder=deterministic): its loss is
the decoder's NLL at z = μ(x), checked against a hand computation in float64; the
log-variance head gets no gradient; it offers no posterior bound."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_vae import MLP_ON_IMAGES, _built, _objective

from jaxgen.kernel.errors import UserError

AE = tuple(MLP_ON_IMAGES + ["objective.encoder=deterministic"])


def _mlp(params, h, name):
    """The MLP of `jaxgen.nn.vae._MLP` by hand, float64 (silu hidden layers, linear out)."""
    p = params["model"][name]
    layers = sorted((k for k in p if k.startswith("dense_")), key=lambda k: int(k[6:]))
    for k in layers:
        h = h @ np.asarray(p[k]["kernel"], np.float64) + np.asarray(p[k]["bias"], np.float64)
        h = h / (1.0 + np.exp(-h))
    return h @ np.asarray(p["out"]["kernel"], np.float64) + np.asarray(p["out"]["bias"],
                                                                        np.float64)


def _log_sigmoid(v):
    return -np.logaddexp(0.0, -v)


def _discretized_logistic_nll(x, mu, log_s, width=2.0 / 256):
    """−Σ log P(bin of x): P = σ(b) − σ(a), the edge bins taking the tails, float64."""
    log_s = np.maximum(log_s, -7.0)
    a, b = (x - width / 2 - mu) * np.exp(-log_s), (x + width / 2 - mu) * np.exp(-log_s)
    mid = np.log(np.exp(_log_sigmoid(b)) - np.exp(_log_sigmoid(a)))
    lp = np.where(x - width < -1, _log_sigmoid(b), np.where(x + width > 1, _log_sigmoid(-a),
                                                            mid))
    return -lp.reshape(len(x), -1).sum(-1)


def test_loss_is_the_reconstruction_nll_at_the_encoder_mean():
    obj, params, x = _built("vae_toy2d.py", AE)
    loss = jax.jit(obj.players[0].loss)
    value, metrics = loss(params, {"x": x}, jax.random.key(1))
    value2, _ = loss(params, {"x": x}, jax.random.key(7))
    assert float(value) == float(value2)  # no noise: the rng plays no part

    xn = np.asarray(x, np.float64)
    h = _mlp(params, xn.reshape(len(xn), -1), "encoder")
    latent = h.shape[1] // 2
    out = _mlp(params, h[:, :latent], "decoder").reshape(*xn.shape, 2)  # μ(z) and log s
    nll = _discretized_logistic_nll(xn, out[..., 0], out[..., 1])
    np.testing.assert_allclose(float(metrics["recon"]), nll.mean(), rtol=2e-5)
    np.testing.assert_allclose(float(value), nll.mean() / math.prod(xn.shape[1:]), rtol=2e-5)
    assert set(metrics) == {"recon"}  # no KL, no ELBO


def test_log_variance_head_gets_no_gradient_and_the_mean_head_does():
    obj, params, x = _built("vae_toy2d.py", AE)
    g = jax.jit(jax.grad(lambda p: obj.players[0].loss(p, {"x": x}, jax.random.key(1))[0]))(
        params)
    out = g["model"]["encoder"]["out"]
    latent = out["bias"].shape[0] // 2
    assert float(jnp.max(jnp.abs(out["kernel"][:, latent:]))) == 0.0
    assert float(jnp.max(jnp.abs(out["bias"][latent:]))) == 0.0
    assert float(jnp.min(jnp.max(jnp.abs(out["kernel"][:, :latent]), 0))) > 0.0
    # the same networks as a VAE: the log-variance head does move there
    vobj, vparams, _ = _built("vae_toy2d.py", tuple(MLP_ON_IMAGES))
    assert jax.tree.structure(vparams) == jax.tree.structure(params)
    vg = jax.jit(jax.grad(lambda p: vobj.players[0].loss(p, {"x": x}, jax.random.key(1))[0]))(
        params)
    assert float(jnp.max(jnp.abs(vg["model"]["encoder"]["out"]["bias"][latent:]))) > 0.0


def test_autoencoder_has_no_posterior_bound_and_refuses_a_kl_weight():
    obj, params, x = _built("vae_toy2d.py", AE)
    assert dict(obj.likelihoods) == {} and obj.autoencoder.posterior_draw is None
    assert obj.held_out_stats is not None
    stats = obj.held_out_stats.reduce(obj.held_out_stats.batch(params, x, None))
    assert stats["latent_dim"] == 3 and "kl_nats" not in stats
    with pytest.raises(UserError, match="proposal"):
        obj.tools.log_px(params, x, jax.random.key(0), 4)
    lp = jax.jit(lambda p: obj.tools.log_px(p, x, jax.random.key(0), 4, "prior"))(params)
    assert lp.shape == (len(x),) and bool(jnp.all(jnp.isfinite(lp)))
    for bad in ("objective.beta=4", "objective.kl_warmup_steps=10"):
        with pytest.raises(UserError, match="no KL term"):
            _objective("vae_toy2d.py", list(AE) + [bad])
