"""Conditional flow matching (Lipman et al., 2023), as in the lecture.

The lecture's loss, with x0 ~ N(0, I) noise, x1 ~ data, t ~ U[0, 1]:

    L(θ) = E_{x0, x1, t} ‖u_θ(x_t, t) − (x1 − x0)‖²,   x_t = t·x1 + (1 − t)·x0

The straight path's velocity d x_t / dt = x1 − x0 is the regression target;
its conditional expectation given x_t is the marginal velocity field that
carries N(0, I) at t=0 to the data at t=1. The path is a hook
(`objective.path`, `jaxgen.processes.paths`): x_t = α_t x1 + σ_t x0 with the target
α'_t x1 + σ'_t x0 ("ot": Lipman et al.'s σ_min path; "cosine": the VP path). The network
may instead predict x1 or x0 (`objective.prediction`): the loss then regresses that, and
sampling and the likelihood use the velocity the path converts it to (its divisor σ_t or
α_t floored at `objective.divisor_floor`, so the field stays smooth near t = 1 or 0).

We average the squared error over dimensions as well as examples (‖·‖²/D):
the same minimiser, and a learning rate that does not depend on resolution.

Sampling integrates dx/dt = u_θ(x, t) from t=0 to 1 (Euler as in the lecture,
Heun or RK4); the exact log-likelihood integrates the same ODE backwards with
the divergence term (`jaxgen.samplers.ode.log_likelihood`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.contract import (
    BuildContext,
    FamilyTools,
    Likelihood,
    Objective,
    Player,
    RoundTrip,
)
from jaxgen.processes.paths import DIVISOR_FLOOR, AffinePath, StraightPath, make_path, sample_times
from jaxgen.samplers import ode
from jaxgen.samplers.settings import inversion_steps


@dataclasses.dataclass(frozen=True)
class FlowMatchingTools(FamilyTools):
    """A flow-matching run's path, prediction type and network: apply_fn(params_model, x, t)
    -> the raw output; velocity(params) -> the field u(x, t) the ODE integrates."""

    path: AffinePath
    prediction: str
    apply_fn: Callable
    velocity: Callable
    provides: ClassVar[str] = "velocity field"
    needed_for: ClassVar[str] = "flow-matching runs (objective.name=flow_matching)"


STRAIGHT = StraightPath()  # the lecture's path, the default


def cfm_loss(params, batch, rng, *, apply_fn, path: AffinePath = STRAIGHT,
             prediction: str = "velocity", time_sampling: str = "uniform", coupling=None):
    """The conditional flow matching loss. `apply_fn(params, x, t) -> the prediction`;
    `time_sampling`: how t is drawn, a name of `paths.sample_times` or a t-sampler
    `(key, n, dtype) -> (n,) times in [0, 1]`; `coupling(key, x1) -> (x0, x1)`: the pairs
    regressed on (reflow: a trained flow's (z, its sample)), else x0 ~ N(0, I) and the
    data."""
    x1 = batch["x"]
    k0, kt = jax.random.split(rng)
    if coupling is not None:
        x0, x1 = coupling(k0, x1)
    else:
        x0 = jax.random.normal(k0, x1.shape, x1.dtype)
    t = (time_sampling(kt, x1.shape[0], x1.dtype) if callable(time_sampling)
         else sample_times(kt, x1.shape[0], time_sampling, x1.dtype))
    xt, dxt = path.sample(x0, x1, t)
    u = apply_fn(params["model"], xt, t)
    sq = jnp.square(u - path.target(prediction, x0, x1, dxt)).reshape(x1.shape[0], -1)
    loss = jnp.mean(sq)
    name = "fm_mse" if prediction == "velocity" else f"{prediction}_mse"
    return loss, {name: loss, "velocity_norm" if prediction == "velocity"
                  else f"{prediction}_error_norm": jnp.mean(jnp.sqrt(jnp.sum(sq, -1)))}


def reflow_coupling(workdir: str, steps: int):
    """(key, x1) -> (z, x̂1): z ~ N(0, I) shaped like x1 and the sample the flow-matching
    run in `workdir` draws from it (RK4, `steps`), restored now, before any tracing; its
    params enter the train step as constants."""
    from jaxgen.composed import references
    exp, params = references.restore_with_tools(
        workdir, "objective.reflow_workdir", FlowMatchingTools,
        "a flow-matching run (reflow draws its couplings from a flow-matching run)")
    field = exp.objective.tools.velocity(params)

    def coupling(key, x1):
        z = jax.random.normal(key, x1.shape, x1.dtype)
        return z, jax.lax.stop_gradient(ode.odeint(field, z, 0.0, 1.0, steps, "rk4"))
    return coupling


def straightness_metric(ctx) -> dict:
    """`jaxgen eval`'s straightness of the learned flow (`ode.straightness`) from
    min(eval.num_examples, 1000) draws of z, with eval.ode_steps / eval.ode_method."""
    n = min(int(ctx.n), 1000)
    e = ctx.settings
    z = jax.random.normal(jax.random.fold_in(ctx.rng, 17), (n, *ctx.info.event_shape))
    field = ctx.exp.objective.tools.velocity(ctx.params)
    s = np.asarray(jax.jit(lambda z: ode.straightness(
        field, z, num_steps=int(e.ode_steps), method=e.ode_method))(z), np.float64)
    return {"straightness": float(s.mean()),
            "straightness_stderr": float(s.std() / np.sqrt(len(s))),
            "straightness_steps": f"{e.ode_method} x {int(e.ode_steps)}, {n} draws"}


def _times(key, n, dtype, *, how, **options):
    return sample_times(key, n, how, dtype, **options)


def apply_model(model, p, x, t):
    """The network u(x, t) with t (B,)."""
    return model.apply({"params": p}, x, t)


def velocity(apply_fn, params, *, path: AffinePath = STRAIGHT,
             prediction: str = "velocity", floor: float = DIVISOR_FLOOR):
    """The learned field `u(x, t)` for the ODE solvers (a scalar t is broadcast). An x1 / x0
    prediction is converted with its divisor floored at `floor` (`AffinePath.velocity`):
    sampling and the exact likelihood integrate this field, whatever function it is."""
    def u(x, t):
        tb = jnp.broadcast_to(jnp.asarray(t, x.dtype), (x.shape[0],))
        return path.velocity(prediction, x, apply_fn(params["model"], x, tb), tb, floor)
    return u


def sample(params, rng, num, settings, labels=None, *, field, event_shape):
    """x(1) of dx/dt = u(x, t) from x(0) = T·z, z ~ N(0, I); `field(params)` is u."""
    if labels is not None:
        raise ValueError("flow_matching models are unconditional; drop the labels.")
    z = settings.temperature * jax.random.normal(rng, (num, *event_shape), jnp.float32)
    return ode.odeint(field(params), z, 0.0, 1.0, settings.steps, settings.method)


def log_likelihood(params, x, rng, *, field, steps=100, method="rk4", divergence="exact"):
    """log p_1(x) by the instantaneous change of variables (`ode.log_likelihood`)."""
    logp, _ = ode.log_likelihood(field(params), x, num_steps=steps, method=method,
                                 divergence=divergence, rng=rng)
    return logp


def round_trip(field, steps: int) -> RoundTrip:
    """x -> z: the ODE from t = 1 back to t = 0; z -> x: forward again (RK4, `steps` each)."""
    return RoundTrip(
        lambda params, x, rng: ode.odeint(field(params), x, 1.0, 0.0, steps, "rk4"),
        lambda params, z: ode.odeint(field(params), z, 0.0, 1.0, steps, "rk4"),
        f"the ODE's noise z = x(0), {steps} RK4 steps each way")


def make(ctx: BuildContext, loss=None, t_sampler=None) -> Objective:
    """The flow-matching objective for a Flax `model(x, t)`. `loss`: a replacement
    `(params, batch, rng, *, apply_fn, path, prediction) -> (scalar, metrics)` (default
    `cfm_loss`), also given `time_sampling` (a t-sampler `(key, n, dtype) -> (n,) times`)
    when objective.time_sampling is not uniform or `t_sampler` is given, and `coupling`
    with objective.reflow_workdir; `t_sampler` replaces objective.time_sampling's.
    Sampling, the likelihood and the pictures stay the family's."""
    o, model = ctx.settings, ctx.model
    path = make_path(o.path, o.sigma_min)
    apply_fn = functools.partial(apply_model, model)
    field = functools.partial(velocity, apply_fn, path=path, prediction=o.prediction,
                              floor=o.divisor_floor)

    def init(rng, batch):
        x = batch["x"]
        t = jnp.zeros((x.shape[0],), x.dtype)
        return {"model": model.init(rng, x, t)["params"]}

    # uniform times are the loss's default: a loss of one's own without the keyword works
    if t_sampler is None and o.time_sampling != "uniform":
        t_sampler = functools.partial(_times, how=o.time_sampling, loc=o.time_loc,
                                      scale=o.time_scale, mode_scale=o.time_mode_scale)
    times = {} if t_sampler is None else {"time_sampling": t_sampler}
    if o.reflow_workdir:
        times["coupling"] = reflow_coupling(o.reflow_workdir, int(o.reflow_steps))
    loss = functools.partial(loss or cfm_loss, apply_fn=apply_fn, path=path,
                             prediction=o.prediction, **times)
    return Objective(
        name="flow_matching",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(sample, field=field, event_shape=tuple(ctx.data.event_shape)),
        likelihoods={"ode": Likelihood(functools.partial(log_likelihood, field=field),
                                       "exact", ode=True)},
        representation=ode.ODE_REPRESENTATION,
        round_trip=round_trip(field, inversion_steps(ctx.eval)),
        tools=FlowMatchingTools(path, o.prediction, apply_fn, field),
    )
