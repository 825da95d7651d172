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

from jaxgen.objectives.base import Likelihood, Objective, Player
from jaxgen.samplers import ode


def _expand(t, x):
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def cfm_loss(params, batch, rng, *, apply_fn, sigma_min: float = 0.0):
    """The conditional flow matching loss. `apply_fn(params, x, t) -> u`."""
    x1 = batch["x"]
    k0, kt = jax.random.split(rng)
    x0 = jax.random.normal(k0, x1.shape, x1.dtype)
    t = jax.random.uniform(kt, (x1.shape[0],), x1.dtype)
    xt = _expand(t, x1) * x1 + (1.0 - (1.0 - sigma_min) * _expand(t, x1)) * x0
    target = x1 - (1.0 - sigma_min) * x0
    u = apply_fn(params["model"], xt, t)
    sq = jnp.square(u - target).reshape(x1.shape[0], -1)
    loss = jnp.mean(sq)
    return loss, {"fm_mse": loss, "velocity_norm": jnp.mean(jnp.sqrt(jnp.sum(sq, -1)))}


def make(config, model, dataset) -> Objective:
    """Builds the flow-matching objective for a Flax `model(x, t)`."""
    ocfg = config.objective
    sigma_min = float(ocfg.get("sigma_min", 0.0))

    def apply_fn(p, x, t):
        return model.apply({"params": p}, x, t)

    def init(rng, batch):
        x = batch["x"]
        t = jnp.zeros((x.shape[0],), x.dtype)
        return {"model": model.init(rng, x, t)["params"]}

    def velocity(params):
        def u(x, t):
            tb = jnp.broadcast_to(jnp.asarray(t, x.dtype), (x.shape[0],))
            return apply_fn(params["model"], x, tb)
        return u

    def sample(params, rng, num, *, steps=100, method="heun", temperature=1.0, labels=None):
        if labels is not None:
            raise ValueError("flow_matching models are unconditional; drop the labels.")
        z = temperature * jax.random.normal(rng, (num, *dataset.event_shape), jnp.float32)
        return ode.odeint(velocity(params), z, 0.0, 1.0, steps, method)

    def log_likelihood(params, x, rng, *, steps=100, method="rk4", divergence="exact"):
        logp, _ = ode.log_likelihood(velocity(params), x, num_steps=steps, method=method,
                                     divergence=divergence, rng=rng)
        return logp

    loss = functools.partial(cfm_loss, apply_fn=apply_fn, sigma_min=sigma_min)
    return Objective(
        name="flow_matching",
        players=(Player("model", loss),),
        init=init,
        sample=sample,
        likelihoods={"ode": Likelihood(log_likelihood, "exact", ode=True)},
    )
