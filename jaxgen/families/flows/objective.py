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

import functools
import math

import jax
import jax.numpy as jnp

from jaxgen.bijectors import standard_normal_log_prob  # summed over the event
from jaxgen.kernel import transforms
from jaxgen.kernel.contract import BuildContext, Likelihood, Objective, Player, RoundTrip
from jaxgen.kernel.errors import UserError


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


def sample(params, rng, num, settings, labels=None, *, model, event_shape):
    """x = f⁻¹(T·ε), ε ~ N(0, I)."""
    if labels is not None:
        raise UserError("flow models are unconditional; drop the labels.")
    z = settings.temperature * jax.random.normal(rng, (num, *event_shape), jnp.float32)
    x, _ = model.apply({"params": params["model"]}, z, method=model.inverse_and_log_det)
    return x


def log_likelihood(params, x, rng, *, model):
    del rng
    return flow_log_prob(params["model"], x, model=model)[0]


def pictures(exp, params, rng, dataset, folder, main=True):
    """Images: one row of samples per prior temperature (as in Glow)."""
    from jaxgen.runner.pictures import stage, write_temperature_rows
    if exp.info.kind != "images":
        return []
    stage("samples at several prior temperatures")
    return [write_temperature_rows(exp, params, rng, folder / "temperatures.png", main)]


def make(ctx: BuildContext, loss=None) -> Objective:
    """The exact-likelihood flow objective. `loss`: a replacement for `nll_loss`, called with the
    same keyword arguments; the sampler, likelihoods and pictures stay the family's."""
    model, data = ctx.model, ctx.data
    dim = math.prod(data.event_shape)
    shift = (transforms.log_det_to_discrete(data.kind, data.event_shape)
             if data.kind == "images" else None)

    def init(rng, batch):
        return {"model": model.init(rng, batch["x"], method=model.forward_and_log_det)["params"]}

    return Objective(
        name="flow_nll",
        players=(Player("model", functools.partial(loss or nll_loss, model=model, dim=dim,
                                                   discrete_shift=shift)),),
        init=init,
        sample=functools.partial(sample, model=model, event_shape=tuple(data.event_shape)),
        likelihoods={"exact": Likelihood(functools.partial(log_likelihood, model=model),
                                         "exact")},
        pictures=pictures,
        representation="yes: the flow is an exact bijection x <-> z (same dimension as x)",
        round_trip=RoundTrip(
            lambda params, x, rng: model.apply({"params": params["model"]}, x,
                                               method=model.forward_and_log_det)[0],
            lambda params, z: model.apply({"params": params["model"]}, z,
                                          method=model.inverse_and_log_det)[0],
            "the bijection's z = f(x), the same dimension as x", exact=True),
    )
