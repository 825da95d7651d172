"""Exact maximum likelihood for normalizing flows (the lecture's change of variables).

For a flow f mapping data to latent, z = f(x), with prior p0 = N(0, I):

    log p(x) = log p0(f(x)) + log|det ∂f/∂x|
             = log p0(z0) − Σ_j log|det ∂f_j/∂z_{j−1}|   (the lecture's form, with
                                                          f_j the latent → data layers)

    L(θ) = −E_x[log p(x)] / D

(per dimension, so the learning rate does not depend on resolution). The
metrics carry the two terms of the bound: the prior term and the log-det.
For images, `bits_per_dim` follows `jaxgen.eval.likelihood` (model space is
the dequantised z = 2(x+u)/256 − 1, whose Jacobian is added once there; any
logit pre-processing is a layer of the flow and its Jacobian is in log_det).

Sampling: x = f⁻¹(T·ε), ε ~ N(0, I), with temperature T (T < 1 trades
diversity for quality, as in Glow).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.bijectors import standard_normal_log_prob
from jaxgen.data import transforms
from jaxgen.objectives.base import Likelihood, Objective, Player


def flow_log_prob(params, x, *, model):
    """(log p(x), log p0(z), log_det) per example, exact."""
    z, log_det = model.apply({"params": params}, x, method=model.forward_and_log_det)
    prior = standard_normal_log_prob(z)
    return prior + log_det, prior, log_det


def nll_loss(params, batch, rng, *, model, dim: int, discrete_shift: float | None):
    """−mean log p(x) / D, the exact negative log-likelihood per dimension (nats)."""
    del rng  # the flow is deterministic; dequantisation noise was drawn by the trainer
    logp, prior, log_det = flow_log_prob(params["model"], batch["x"], model=model)
    nll = -jnp.mean(logp)
    metrics = {"nll_nats": nll, "log_prior": jnp.mean(prior), "log_det": jnp.mean(log_det)}
    if discrete_shift is not None:
        metrics["bits_per_dim"] = (nll - discrete_shift) / (dim * math.log(2.0))
    return nll / dim, metrics


def make(config, model, dataset) -> Objective:
    dim = math.prod(dataset.event_shape)
    shift = (transforms.log_det_to_discrete(dataset.kind, dataset.event_shape)
             if dataset.kind == "images" else None)

    def init(rng, batch):
        return {"model": model.init(rng, batch["x"], method=model.forward_and_log_det)["params"]}

    def loss(params, batch, rng):
        return nll_loss(params, batch, rng, model=model, dim=dim, discrete_shift=shift)

    def sample(params, rng, num, *, temperature=1.0, labels=None, **_):
        if labels is not None:
            raise ValueError("flow models are unconditional; drop the labels.")
        z = temperature * jax.random.normal(rng, (num, *dataset.event_shape), jnp.float32)
        x, _ = model.apply({"params": params["model"]}, z, method=model.inverse_and_log_det)
        return x

    def log_likelihood(params, x, rng, **_):
        return flow_log_prob(params["model"], x, model=model)[0]

    return Objective(name="flow_nll", players=(Player("model", loss),), init=init, sample=sample,
                     likelihoods={"exact": Likelihood(log_likelihood, "exact")},
                     info={"temperature": True})
