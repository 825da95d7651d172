"""Fixed-step ODE solvers and exact log-likelihood of continuous flows.

Convention (Lipman et al., 2023, "Flow Matching for Generative Modeling", as in
the lecture): ``t = 0`` is noise, with prior ``p0 = N(0, I)``, and ``t = 1`` is
data. A velocity field ``u(x, t)`` transports noise to data by

    dx/dt = u(x, t),        x(0) ~ p0,        x(1) ~ p1 (the model).

Sampling is the lecture's Euler scheme ``x_{t+eps} = x_t + eps * u(x_t, t)``
(or a higher-order fixed-step scheme). The same solvers serve diffusion's
probability-flow ODE.

Exact likelihood (Chen et al., 2018, "Neural ODEs"; Grathwohl et al., 2019,
"FFJORD"). Along a trajectory the density obeys the instantaneous change of
variables (continuity equation ``dp/dt + div(p u) = 0`` written along
``x_t``)::

    d/dt log p_t(x_t) = -div u(x_t, t).

Integrating from 0 to 1::

    log p1(x1) = log p0(x0) - int_0^1 div u(x_t, t) dt.

:func:`log_likelihood` solves the augmented ODE ``d(x, delta)/dt = (u, div u)``
*backwards* from ``(x1, 0)`` at ``t = 1`` to ``t = 0``. The state it ends in is
``(x0, delta0)`` with ``delta0 = int_1^0 div u dt = -int_0^1 div u dt``, hence
``log p1(x1) = log N(x0; 0, I) + delta0``.

Every function here is pure and traceable: jit a caller with ``num_steps`` and
``method`` static. The time loop is a single :func:`jax.lax.scan`, so the
velocity field is traced and compiled once whatever the number of steps.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxgen.distributions import standard_normal_log_prob, sum_event
from jaxgen.kernel.errors import UserError

__all__ = [
    "METHODS",
    "odeint",
    "sample",
    "divergence_exact",
    "divergence_hutchinson",
    "log_likelihood",
    "standard_normal_logpdf",
]

PyTree = Any
VectorField = Callable[[PyTree, jax.Array], PyTree]

#: What a model sampled by integrating an ODE offers as a representation (reports quote it).
ODE_REPRESENTATION = ("yes, deterministic: x <-> z by the probability-flow ODE (DDIM "
                      "inversion); no amortised encoder")

#: Fixed-step schemes known to :func:`odeint`, with their global order.
METHODS = {"euler": 1, "heun": 2, "rk4": 4}
_DIVERGENCES = ("exact", "hutchinson")
_PROBES = ("rademacher", "gaussian")


# --------------------------------------------------------------------------
# Pytree arithmetic (the state may be an array or e.g. an (x, logp) tuple).
# --------------------------------------------------------------------------
def _axpy(a: jax.Array, y: PyTree, x: PyTree) -> PyTree:
    """``x + a * y`` leaf-wise; the scalar ``a`` is cast to each leaf's dtype."""
    return jax.tree.map(lambda xl, yl: xl + a.astype(xl.dtype) * yl, x, y)


def _lincomb(x: PyTree, a: jax.Array, coeffs: tuple[float, ...], ks: tuple[PyTree, ...]) -> PyTree:
    """``x + a * sum_i coeffs[i] * ks[i]`` leaf-wise."""

    def leaf(xl, *kls):
        acc = sum(c * kl for c, kl in zip(coeffs, kls))
        return xl + a.astype(xl.dtype) * acc

    return jax.tree.map(leaf, x, *ks)


# --------------------------------------------------------------------------
# One step of each scheme: (f, x, t, dt) -> x(t + dt).
# --------------------------------------------------------------------------
def _euler_step(f: VectorField, x: PyTree, t: jax.Array, dt: jax.Array) -> PyTree:
    """Forward Euler, order 1: ``x + dt f(x, t)`` (the lecture's scheme)."""
    return _axpy(dt, f(x, t), x)


def _heun_step(f: VectorField, x: PyTree, t: jax.Array, dt: jax.Array) -> PyTree:
    """Heun / explicit trapezoid / improved Euler, order 2.

    Predict with Euler, then average the slopes at both ends of the step.
    """
    k1 = f(x, t)
    k2 = f(_axpy(dt, k1, x), t + dt)
    return _lincomb(x, dt, (0.5, 0.5), (k1, k2))


def _rk4_step(f: VectorField, x: PyTree, t: jax.Array, dt: jax.Array) -> PyTree:
    """Classical fourth-order Runge-Kutta, order 4."""
    half = 0.5 * dt
    k1 = f(x, t)
    k2 = f(_axpy(half, k1, x), t + half)
    k3 = f(_axpy(half, k2, x), t + half)
    k4 = f(_axpy(dt, k3, x), t + dt)
    return _lincomb(x, dt, (1 / 6, 1 / 3, 1 / 3, 1 / 6), (k1, k2, k3, k4))


_STEPS = {"euler": _euler_step, "heun": _heun_step, "rk4": _rk4_step}


def _check_method(method: str) -> None:
    if method not in _STEPS:
        raise UserError(f"Unknown ODE method {method!r}; valid methods are {sorted(_STEPS)}.")


def odeint(
    f: VectorField,
    x0: PyTree,
    t0: float | jax.Array,
    t1: float | jax.Array,
    num_steps: int,
    method: str = "euler",
    return_path: bool = False,
) -> PyTree | tuple[PyTree, PyTree]:
    """Integrate ``dx/dt = f(x, t)`` from ``t0`` to ``t1`` with fixed steps.

    Args:
      f: vector field ``f(x, t)``; ``x`` has the structure of ``x0`` and ``t``
        is a scalar float32 array. Returns a pytree shaped like ``x``.
      x0: initial state at ``t0``, any pytree of floating arrays.
      t0, t1: start and end times (Python floats or scalar arrays, may be
        traced). ``t1 < t0`` integrates backwards in time.
      num_steps: number of equal steps, a positive Python int (static).
      method: ``"euler"`` (order 1), ``"heun"`` (order 2) or ``"rk4"``
        (order 4); static.
      return_path: also return the states at every step.

    Returns:
      The state at ``t1``; with ``return_path=True`` the pair
      ``(x_t1, path)`` where each leaf of ``path`` stacks the ``num_steps + 1``
      states ``x(t0), x(t0 + dt), ..., x(t1)`` along a new leading axis.

    Raises:
      ValueError: unknown ``method`` or non-positive ``num_steps``.
    """
    _check_method(method)
    try:
        num_steps = operator.index(num_steps)  # a Python/numpy int, not a tracer
    except TypeError:
        raise UserError(f"num_steps must be a static positive int, got {num_steps!r}.") from None
    if num_steps < 1:
        raise UserError(f"num_steps must be a positive int, got {num_steps!r}.")
    step = _STEPS[method]
    t0 = jnp.asarray(t0, jnp.float32)
    t1 = jnp.asarray(t1, jnp.float32)
    dt = (t1 - t0) / num_steps

    def body(x, i):
        # t_i = t0 + i dt (no accumulated round-off in t).
        t = t0 + i.astype(jnp.float32) * dt
        x_next = step(f, x, t, dt)
        return x_next, (x_next if return_path else None)

    x_end, ys = jax.lax.scan(body, x0, jnp.arange(num_steps))
    if not return_path:
        return x_end
    path = jax.tree.map(lambda a, b: jnp.concatenate([jnp.asarray(a)[None], b], axis=0), x0, ys)
    return x_end, path


def sample(
    velocity: VectorField,
    z: PyTree,
    *,
    num_steps: int = 100,
    method: str = "euler",
) -> PyTree:
    """Push prior samples ``z`` (at t=0) through the flow to data space (t=1)."""
    return odeint(velocity, z, 0.0, 1.0, num_steps, method)


# --------------------------------------------------------------------------
# Divergences.
# --------------------------------------------------------------------------
def _event_size(x: jax.Array) -> int:
    return math.prod(x.shape[1:])


def _value_and_divergence_exact(
    f: VectorField, x: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(f(x, t), exact divergence)``, sharing the forward pass (see below)."""
    event_shape = x.shape[1:]
    d = _event_size(x)
    t = jnp.asarray(t)
    per_example_t = t.ndim == 1

    def one(xi, ti):
        def g(flat):
            out = f(flat.reshape((1, *event_shape)), ti[None] if per_example_t else ti)
            out = out.reshape(d)
            return out, out

        jac, value = jax.jacfwd(g, has_aux=True)(xi.reshape(d))
        return value.reshape(event_shape), jnp.trace(jac)

    return jax.vmap(one, in_axes=(0, 0 if per_example_t else None))(x, t)


def divergence_exact(f: VectorField, x: jax.Array, t: jax.Array) -> jax.Array:
    """Exact per-example divergence ``tr(d f_i / d x_i)`` of a batched field.

    ``f(x, t)`` maps ``x`` of shape ``(B, ...)`` to the same shape, examples
    independent of each other. Each example is flattened to ``D`` numbers and
    its ``D x D`` Jacobian is built with :func:`jax.jacfwd` (``D`` JVPs) under
    :func:`jax.vmap`; inside, ``f`` sees a batch of one, so it never mixes
    examples. Cost: ``D`` evaluations of ``f`` per example; fine for 2-D toy
    data, use :func:`divergence_hutchinson` for images.

    Args:
      f: batched vector field.
      x: ``(B, ...)`` points.
      t: scalar time (passed to ``f`` unchanged) or per-example times ``(B,)``
        (example ``i`` sees ``t[i:i+1]``).

    Returns:
      ``(B,)`` divergences, in ``x``'s dtype.
    """
    return _value_and_divergence_exact(f, x, t)[1]


def _value_and_divergence_hutchinson(
    f: VectorField, x: jax.Array, t: jax.Array, eps: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(f(x, t), eps^T (df/dx) eps)`` from a single JVP."""
    if eps.shape != x.shape:
        raise UserError(f"eps must have the shape of x {x.shape}, got {eps.shape}.")
    value, jvp = jax.jvp(lambda y: f(y, t), (x,), (eps.astype(x.dtype),))
    return value, jnp.sum((eps * jvp).reshape(x.shape[0], -1), axis=1)


def divergence_hutchinson(f: VectorField, x: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """Hutchinson's unbiased estimate ``eps^T (df/dx) eps`` of the divergence.

    One forward-mode :func:`jax.jvp` of the batched field gives ``(df/dx) eps``
    for every example at once (examples must be independent). With
    ``E[eps eps^T] = I`` (Rademacher or standard Gaussian probes, drawn by the
    caller) the estimate is unbiased: ``E[eps^T J eps] = tr J``.

    Args:
      f: batched vector field ``f(x, t)``.
      x: ``(B, ...)`` points.
      t: time, passed to ``f`` unchanged.
      eps: probes, same shape as ``x``.

    Returns:
      ``(B,)`` estimates.
    """
    return _value_and_divergence_hutchinson(f, x, t, eps)[1]


def straightness(velocity: VectorField, z: jax.Array, *, num_steps: int = 100,
                 method: str = "rk4") -> jax.Array:
    """Liu et al. (2022)'s straightness of the flow from ``z`` (t = 0) to ``x1`` (t = 1),

        S = ∫_0^1 ‖(x1 − x0) − v(x_t, t)‖² dt / D,

    per example (``(B,)``, averaged over the ``D`` dimensions): 0 exactly when every path
    is a straight line travelled at constant speed. ``x_t`` is the solver's path and the
    integral the mean over its grid ``t_i = i / num_steps``, ``i < num_steps``."""
    x1, path = odeint(velocity, z, 0.0, 1.0, num_steps, method, return_path=True)
    chord = (x1 - z).reshape(z.shape[0], -1)

    def at(i):
        t = i.astype(jnp.float32) / num_steps
        v = velocity(path[i], t).reshape(z.shape[0], -1)
        return jnp.mean(jnp.square(chord - v), axis=-1)

    return jnp.mean(jax.lax.map(at, jnp.arange(num_steps)), axis=0)


# --------------------------------------------------------------------------
# Likelihood.
# --------------------------------------------------------------------------
def standard_normal_logpdf(x: jax.Array) -> jax.Array:
    """``log N(x; 0, I)`` per example, summed over all but the leading axis."""
    return sum_event(standard_normal_log_prob(x))


def log_likelihood(
    velocity: VectorField,
    x1: jax.Array,
    *,
    num_steps: int = 100,
    method: str = "rk4",
    divergence: str = "exact",
    rng: jax.Array | None = None,
    probe: str = "rademacher",
) -> tuple[jax.Array, jax.Array]:
    """Log-density of data ``x1`` under the flow ``dx/dt = velocity(x, t)``.

    Solves the augmented ODE backwards from ``t = 1`` to ``t = 0``::

        dx/dt = u(x, t),   d(delta)/dt = div u(x, t),   (x, delta)(1) = (x1, 0)

    and returns ``log p1(x1) = log N(x0; 0, I) + delta(0)``
    ``= log N(x0; 0, I) - int_0^1 div u(x_t, t) dt`` (see the module
    docstring for the derivation).

    Args:
      velocity: batched field ``velocity(x, t)``, ``x`` of shape ``(B, ...)``
        and ``t`` a scalar float32 array; returns ``(B, ...)``.
      x1: ``(B, ...)`` data points.
      num_steps: fixed solver steps (static).
      method: ``"euler"``, ``"heun"`` or ``"rk4"`` (static).
      divergence: ``"exact"`` (:func:`divergence_exact`, costs ``D`` JVPs) or
        ``"hutchinson"`` (:func:`divergence_hutchinson`, one JVP, unbiased).
      rng: PRNG key, required for ``"hutchinson"``: one probe per example is
        drawn from it and kept fixed along the whole trajectory, as in FFJORD
        (Grathwohl et al., 2019). Since the ``x`` trajectory does not depend on
        the probe, the estimate is unbiased for the discretised integral too.
      probe: ``"rademacher"`` (lower variance) or ``"gaussian"``.

    Returns:
      ``(logp, z0)``: ``(B,)`` log-densities in nats and the ``(B, ...)``
      latents ``x(0)``.
    """
    _check_method(method)
    if divergence not in _DIVERGENCES:
        raise UserError(f"Unknown divergence {divergence!r}; valid ones are {list(_DIVERGENCES)}.")

    # Each returns (u, div u) from one pass over the field.
    if divergence == "exact":
        value_and_div = lambda x, t: _value_and_divergence_exact(velocity, x, t)  # noqa: E731
    else:
        if rng is None:
            raise UserError("divergence='hutchinson' needs a PRNG key `rng`.")
        if probe == "rademacher":
            eps = jax.random.rademacher(rng, x1.shape, dtype=x1.dtype)
        elif probe == "gaussian":
            eps = jax.random.normal(rng, x1.shape, dtype=x1.dtype)
        else:
            raise UserError(f"Unknown probe {probe!r}; valid ones are {list(_PROBES)}.")
        value_and_div = lambda x, t: _value_and_divergence_hutchinson(velocity, x, t, eps)  # noqa: E731

    def augmented(state, t):
        x, _ = state
        return value_and_div(x, t)

    delta1 = jnp.zeros((x1.shape[0],), x1.dtype)
    z0, delta0 = odeint(augmented, (x1, delta1), 1.0, 0.0, num_steps, method)
    return standard_normal_logpdf(z0) + delta0, z0
