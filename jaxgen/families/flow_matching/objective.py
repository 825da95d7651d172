"""Conditional flow matching (Lipman et al., 2023), as in the lecture.

The lecture's loss, with x0 ~ N(0, I) noise, x1 ~ data, t ~ U[0, 1]:

    L(θ) = E_{x0, x1, t} ‖u_θ(x_t, t) − (x1 − x0)‖²,   x_t = t·x1 + (1 − t)·x0

The straight path's velocity d x_t / dt = x1 − x0 is the regression target;
its conditional expectation given x_t is the marginal velocity field that
carries N(0, I) at t=0 to the data at t=1. With `sigma_min > 0` the path is
Lipman et al.'s OT path x_t = t·x1 + (1 − (1 − σ_min)·t)·x0 (target
x1 − (1 − σ_min)·x0); σ_min = 0 (the default) is exactly the lecture's.

We average the squared error over dimensions as well as examples (‖·‖²/D):
the same minimiser, and a learning rate that does not depend on resolution.

Sampling integrates dx/dt = u_θ(x, t) from t=0 to 1 (Euler as in the lecture,
Heun or RK4); the exact log-likelihood integrates the same ODE backwards with
the divergence term (`jaxgen.samplers.ode.log_likelihood`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxgen.core.contract import BuildContext, Likelihood, Objective, Player
from jaxgen.core.errors import UserError
from jaxgen.processes.paths import ot_path
from jaxgen.samplers import ode


def cfm_loss(params, batch, rng, *, apply_fn, sigma_min: float = 0.0):
    """The conditional flow matching loss. `apply_fn(params, x, t) -> u`."""
    x1 = batch["x"]
    k0, kt = jax.random.split(rng)
    x0 = jax.random.normal(k0, x1.shape, x1.dtype)
    t = jax.random.uniform(kt, (x1.shape[0],), x1.dtype)
    xt, target = ot_path(x0, x1, t, sigma_min)
    u = apply_fn(params["model"], xt, t)
    sq = jnp.square(u - target).reshape(x1.shape[0], -1)
    loss = jnp.mean(sq)
    return loss, {"fm_mse": loss, "velocity_norm": jnp.mean(jnp.sqrt(jnp.sum(sq, -1)))}


def apply_model(model, p, x, t):
    """The network u(x, t) with t (B,)."""
    return model.apply({"params": p}, x, t)


def velocity(apply_fn, params):
    """The learned field `u(x, t)` for the ODE solvers (a scalar t is broadcast)."""
    def u(x, t):
        tb = jnp.broadcast_to(jnp.asarray(t, x.dtype), (x.shape[0],))
        return apply_fn(params["model"], x, tb)
    return u


def sample(params, rng, num, settings, labels=None, *, apply_fn, event_shape):
    """x(1) of dx/dt = u(x, t) from x(0) = T·z, z ~ N(0, I)."""
    if labels is not None:
        raise UserError("flow_matching models are unconditional; drop the labels.")
    z = settings.temperature * jax.random.normal(rng, (num, *event_shape), jnp.float32)
    return ode.odeint(velocity(apply_fn, params), z, 0.0, 1.0, settings.steps, settings.method)


def log_likelihood(params, x, rng, *, apply_fn, steps=100, method="rk4", divergence="exact"):
    """log p_1(x) by the instantaneous change of variables (`ode.log_likelihood`)."""
    logp, _ = ode.log_likelihood(velocity(apply_fn, params), x, num_steps=steps,
                                 method=method, divergence=divergence, rng=rng)
    return logp


def make(ctx: BuildContext) -> Objective:
    """The flow-matching objective for a Flax `model(x, t)`."""
    model = ctx.model
    apply_fn = functools.partial(apply_model, model)

    def init(rng, batch):
        x = batch["x"]
        t = jnp.zeros((x.shape[0],), x.dtype)
        return {"model": model.init(rng, x, t)["params"]}

    loss = functools.partial(cfm_loss, apply_fn=apply_fn, sigma_min=ctx.settings.sigma_min)
    return Objective(
        name="flow_matching",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(sample, apply_fn=apply_fn,
                                 event_shape=tuple(ctx.data.event_shape)),
        likelihoods={"ode": Likelihood(functools.partial(log_likelihood, apply_fn=apply_fn),
                                       "exact", ode=True)},
        representation=ode.ODE_REPRESENTATION,
    )
