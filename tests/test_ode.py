"""Tests for jaxgen.samplers.ode: solvers against exact solutions and orders,
and the flow log-likelihood against closed forms and an independent
change-of-variables computation."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.samplers import ode
from jaxgen.samplers.ode import (
    divergence_exact,
    divergence_hutchinson,
    log_likelihood,
    odeint,
    sample,
    standard_normal_logpdf,
)

METHODS = ("euler", "heun", "rk4")


def _normal(seed, shape, scale=1.0):
    """Random float32 test inputs from numpy (no per-shape compile of jax.random)."""
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


# ---------------------------------------------------------------------------
# Solvers
# ---------------------------------------------------------------------------
def _three_t_squared(x, t):
    """f = (3 t^2, 0): exact flow x(1) = x(0) + (1, 0)."""
    return jnp.stack([jnp.broadcast_to(3.0 * t**2, x.shape[:-1]), jnp.zeros(x.shape[:-1])], axis=-1)


@pytest.mark.parametrize("num_steps", [4, 10])
def test_time_dependent_field_matches_quadrature_error(num_steps):
    """dx/dt = (3t^2, 0) carries (1, 0) to (2, 0); each scheme's error is known.

    For a field that depends on t only, the schemes reduce to quadratures of
    int_0^1 3t^2 dt = 1: Euler is the left Riemann sum 1 - 3/(2N) + 1/(2N^2),
    Heun the trapezoid rule 1 + 1/(2N^2), RK4 Simpson's rule (exact here).
    """
    n = num_steps
    x0 = jnp.array([[1.0, 0.0]])
    expected_first = {
        "euler": 2.0 - 3 / (2 * n) + 1 / (2 * n**2),
        "heun": 2.0 + 1 / (2 * n**2),
        "rk4": 2.0,
    }
    for method in METHODS:
        x1 = odeint(_three_t_squared, x0, 0.0, 1.0, n, method)
        np.testing.assert_allclose(np.asarray(x1), [[expected_first[method], 0.0]], atol=2e-6,
                                   err_msg=method)


def test_design_example_both_coordinates():
    """Velocity 3t^2 on both coordinates carries (1, 0) to (2, 1) (RK4 exact)."""
    f = lambda x, t: jnp.full_like(x, 3.0 * t**2)  # noqa: E731
    x1 = odeint(f, jnp.array([[1.0, 0.0]]), 0.0, 1.0, 3, "rk4")
    np.testing.assert_allclose(np.asarray(x1), [[2.0, 1.0]], atol=1e-6)


@pytest.mark.parametrize("a", [-1.5, 0.8, 1.5])
@pytest.mark.parametrize("method,order,n", [("euler", 1, 32), ("heun", 2, 16), ("rk4", 4, 8)])
def test_convergence_order_on_exponential(a, method, order, n):
    """dx/dt = a x: halving the step divides the error by ~2 / 4 / 16.

    Run in float64 so that RK4's small errors (1e-7 at 16 steps) are not
    swamped by float32 round-off; the time grid (float32) is exact for these
    power-of-two step counts.
    """
    with jax.enable_x64(True):
        x0 = jnp.array([[1.0, -0.5, 2.0]], dtype=jnp.float64)
        exact = np.asarray(x0) * math.exp(a)
        f = lambda x, t: a * x  # noqa: E731
        err = [float(np.max(np.abs(np.asarray(odeint(f, x0, 0.0, 1.0, k, method)) - exact)))
               for k in (n, 2 * n)]
    observed_order = math.log2(err[0] / err[1])
    assert abs(observed_order - order) < 0.15, (method, a, err, observed_order)


@pytest.mark.parametrize("method", METHODS)
def test_backward_integration_solves_backwards_and_inverts_forward(method):
    """t1 < t0 integrates backwards: exact on a linear field up to the scheme's
    error, and backward(forward(x)) = x for a nonlinear field."""
    a = 0.7
    x1 = _normal(0, (5, 3))
    back = odeint(lambda x, t: a * x, x1, 1.0, 0.0, 200, method)
    tol = {"euler": 5e-3, "heun": 5e-5, "rk4": 1e-5}[method]
    np.testing.assert_allclose(np.asarray(back), np.asarray(x1) * math.exp(-a), atol=tol)

    def f(x, t):
        return jnp.sin(2.0 * x[:, ::-1]) * jnp.cos(3.0 * t) + 0.3 * x

    fwd = odeint(f, x1, 0.0, 1.0, 200, method)
    rt = odeint(f, fwd, 1.0, 0.0, 200, method)
    tol = {"euler": 2e-2, "heun": 2e-4, "rk4": 2e-5}[method]
    np.testing.assert_allclose(np.asarray(rt), np.asarray(x1), atol=tol)


def test_return_path_shape_and_time_grid():
    """The path stacks num_steps + 1 states, x0 first; dx/dt = 1 gives x0 + k dt."""
    x0 = {"a": jnp.zeros((2, 3)), "b": jnp.ones((2,))}
    f = lambda x, t: jax.tree.map(jnp.ones_like, x)  # noqa: E731
    x_end, path = odeint(f, x0, 0.5, -0.5, 8, "heun", return_path=True)
    assert path["a"].shape == (9, 2, 3) and path["b"].shape == (9, 2)
    np.testing.assert_allclose(np.asarray(path["a"][:, 0, 0]), -np.arange(9) / 8, atol=1e-6)
    np.testing.assert_allclose(np.asarray(path["b"][0]), 1.0)
    np.testing.assert_allclose(np.asarray(path["a"][-1]), np.asarray(x_end["a"]))


def test_time_is_scalar_float32_and_loop_is_traced_once():
    """f gets a float32 scalar t and is traced once per stage, whatever num_steps
    (one compiled scan, not a Python loop over steps)."""
    calls = []

    def f(x, t):
        calls.append(t)
        assert t.shape == () and t.dtype == jnp.float32
        return -x

    x0 = jnp.ones((4, 2))
    for method, stages in (("euler", 1), ("heun", 2), ("rk4", 4)):
        calls.clear()
        out = jax.jit(odeint, static_argnums=(0, 4, 5))(f, x0, 0.0, 1.0, 50, method)
        assert len(calls) == stages, (method, len(calls))
        assert out.shape == x0.shape
    jaxpr = jax.make_jaxpr(lambda x: odeint(f, x, 0.0, 1.0, 50, "rk4"))(x0)
    assert "scan" in str(jaxpr)


def test_pytree_state_and_jit_with_traced_times():
    """A tuple state works, and t0/t1 may be traced under jit."""
    f = lambda s, t: (s[1], -s[0])  # noqa: E731  harmonic oscillator
    s0 = (jnp.ones((3,)), jnp.zeros((3,)))
    run = jax.jit(functools.partial(odeint, f, num_steps=100, method="rk4"))
    q, p = run(s0, jnp.float32(0.0), jnp.float32(1.0))
    np.testing.assert_allclose(np.asarray(q), math.cos(1.0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(p), -math.sin(1.0), atol=1e-6)


def test_unknown_method_raises_listing_valid_ones():
    with pytest.raises(ValueError, match="euler.*heun.*rk4"):
        odeint(lambda x, t: x, jnp.ones((1, 2)), 0.0, 1.0, 10, "midpoint")
    with pytest.raises(ValueError, match="num_steps"):
        odeint(lambda x, t: x, jnp.ones((1, 2)), 0.0, 1.0, 0, "euler")
    with pytest.raises(ValueError, match="rk4"):
        log_likelihood(lambda x, t: x, jnp.ones((1, 2)), method="bogus")


def test_sample_is_forward_flow():
    z = _normal(1, (4, 2))
    x = sample(lambda x, t: 0.5 * x, z, num_steps=50, method="rk4")
    np.testing.assert_allclose(np.asarray(x), np.asarray(z) * math.exp(0.5), rtol=1e-5)


# ---------------------------------------------------------------------------
# Divergence and likelihood
# ---------------------------------------------------------------------------
def _mlp_params(seed, dim, hidden=16):
    """Parameters of a small random tanh MLP velocity (see :func:`_mlp_velocity`)."""
    return {
        "w1": _normal(seed, (dim + 1, hidden), 1 / math.sqrt(dim + 1)),
        "b1": _normal(seed + 1000, (hidden,), 0.3),
        "w2": _normal(seed + 2000, (hidden, dim), 1 / math.sqrt(hidden)),
    }


def _mlp_velocity(params, x, t):
    """Batched, time-dependent, nonlinear u(x, t) = tanh([x, t] W1 + b1) W2."""
    tt = jnp.broadcast_to(jnp.asarray(t, x.dtype).reshape(-1, 1), (x.shape[0], 1))
    h = jnp.tanh(jnp.concatenate([x, tt], axis=-1) @ params["w1"] + params["b1"])
    return h @ params["w2"]


def _random_mlp_field(seed, dim, hidden=16):
    """A small random tanh MLP velocity u(x, t), batched, time-dependent."""
    return functools.partial(_mlp_velocity, _mlp_params(seed, dim, hidden))


def test_standard_normal_logpdf_matches_closed_form():
    x = _normal(2, (3, 2, 2, 1))
    flat = np.asarray(x).reshape(3, -1)
    expected = -0.5 * np.sum(flat**2, axis=1) - 2.0 * math.log(2 * math.pi)
    np.testing.assert_allclose(np.asarray(standard_normal_logpdf(x)), expected, rtol=1e-6)


def test_divergence_exact_matches_jacobian_trace_and_accepts_per_example_t():
    u = _random_mlp_field(3, 3)
    x = _normal(4, (5, 3))
    t = jnp.float32(0.3)

    @jax.jit
    def compute(x):
        jac = jax.vmap(jax.jacfwd(lambda y: u(y[None], t)[0]))(x)  # (5, 3, 3), independently
        return jac, divergence_exact(u, x, t), divergence_exact(u, x, jnp.full((5,), 0.3))

    jac, div_scalar_t, div_vector_t = compute(x)
    expected = np.trace(np.asarray(jac), axis1=1, axis2=2)
    np.testing.assert_allclose(np.asarray(div_scalar_t), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(div_vector_t), expected, rtol=1e-5, atol=1e-6)
    # Image-shaped events: div of a*x is a*D.
    img = jnp.ones((2, 2, 2, 3))
    np.testing.assert_allclose(np.asarray(divergence_exact(lambda y, t: 0.5 * y, img, t)), 0.5 * 12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_constant_velocity_likelihood_is_shifted_prior(method, divergence):
    """u = c moves N(0, I) to N(c, I) exactly, for every scheme."""
    c = jnp.array([1.5, -0.5, 2.0])
    x1 = _normal(5, (6, 3), 2.0)
    logp, z0 = log_likelihood(
        lambda x, t: jnp.broadcast_to(c, x.shape),
        x1,
        num_steps=7,
        method=method,
        divergence=divergence,
        rng=jax.random.key(0),
    )
    np.testing.assert_allclose(np.asarray(z0), np.asarray(x1 - c), atol=1e-5)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(standard_normal_logpdf(x1 - c)),
                               rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("a", [-0.8, 0.5, 1.2])
def test_linear_velocity_likelihood_matches_closed_form(a):
    """u = a x maps N(0, I) to N(0, e^{2a} I); div u = a D.

    This pins the sign: log p1(x) = log N(x e^{-a}; 0, I) - a D. With the
    divergence added instead of subtracted the error would be 2 a D.
    """
    d = 3
    x1 = _normal(6, (8, d), 1.5)
    logp, z0 = log_likelihood(lambda x, t: a * x, x1, num_steps=20, method="rk4")
    xn = np.asarray(x1)
    expected = (-0.5 * np.sum(xn**2, axis=1) * math.exp(-2 * a) - d * a
                - 0.5 * d * math.log(2 * math.pi))
    np.testing.assert_allclose(np.asarray(logp), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(z0), xn * math.exp(-a), rtol=1e-5)


@functools.partial(jax.jit, static_argnames="num_steps")
def _likelihood_two_ways(params, x1, num_steps):
    """(logp and z0 from the divergence integral, the same from the solver map)."""
    u = functools.partial(_mlp_velocity, params)
    logp, z0 = log_likelihood(u, x1, num_steps=num_steps, method="rk4", divergence="exact")

    def phi(x):  # one example (D,) -> (D,): the RK4 backward map itself
        return odeint(u, x[None], 1.0, 0.0, num_steps, "rk4")[0]

    _, logdet = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(phi))(x1))
    z0_map = jax.vmap(phi)(x1)
    return logp, z0, standard_normal_logpdf(z0_map) + logdet, z0_map, logdet


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_likelihood_matches_change_of_variables_of_solver_map(seed):
    """Random MLP field on 2-D: integrating the divergence agrees with
    log N(Phi(x1)) + log|det dPhi/dx1| where Phi is the backward solver map
    itself, differentiated with jacfwd (both are O(h^4) close to the truth)."""
    params = _mlp_params(10 + seed, 2, hidden=32)
    x1 = _normal(20 + seed, (6, 2), 1.5)
    logp, z0, expected, z0_map, logdet = _likelihood_two_ways(params, x1, num_steps=20)
    np.testing.assert_allclose(np.asarray(z0), np.asarray(z0_map), atol=1e-5)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(expected), atol=1e-4)
    # The field is non-trivial: the log-det term is far from zero.
    assert float(jnp.max(jnp.abs(logdet))) > 0.05


def test_hutchinson_divergence_is_unbiased():
    """For Rademacher and Gaussian probes, the mean of eps^T J eps over many
    probes is within a few standard errors of tr J (random nonlinear field)."""
    dim, batch, num_probes = 4, 3, 20_000
    u = _random_mlp_field(7, dim)
    x = _normal(8, (batch, dim))
    t = jnp.float32(0.6)

    @jax.jit
    def estimates(key):
        def one(k):
            k_rad, k_gauss = jax.random.split(k)
            eps_r = jax.random.rademacher(k_rad, x.shape, dtype=x.dtype)
            eps_g = jax.random.normal(k_gauss, x.shape, dtype=x.dtype)
            return divergence_hutchinson(u, x, t, eps_r), divergence_hutchinson(u, x, t, eps_g)

        est_r, est_g = jax.vmap(one)(jax.random.split(key, num_probes))  # (K, B) each
        return divergence_exact(u, x, t), est_r, est_g

    exact, *ests = estimates(jax.random.key(9))
    exact = np.asarray(exact)
    for name, est in zip(("rademacher", "gaussian"), ests):
        est = np.asarray(est, np.float64)
        se = est.std(axis=0) / math.sqrt(num_probes)
        assert np.all(se > 0), name
        z = np.abs(est.mean(axis=0) - exact) / se
        assert np.all(z < 4.5), (name, z, est.mean(axis=0), exact)


def test_hutchinson_likelihood_is_unbiased():
    """One probe per example, fixed along the trajectory: averaging the
    log-likelihood over many copies of one point recovers the exact one, for
    both probe kinds."""
    u = _random_mlp_field(11, 2, hidden=32)
    x = jnp.tile(jnp.array([[0.4, -1.1]]), (4000, 1))

    @jax.jit
    def run(key):
        k_r, k_g = jax.random.split(key)
        kw = dict(num_steps=8, method="rk4")
        exact = log_likelihood(u, x[:1], **kw)
        rad = log_likelihood(u, x, divergence="hutchinson", rng=k_r, probe="rademacher", **kw)
        gauss = log_likelihood(u, x, divergence="hutchinson", rng=k_g, probe="gaussian", **kw)
        return exact, rad, gauss

    (logp_e, z0_e), *hutch = run(jax.random.key(12))
    for name, (logp_h, z0_h) in zip(("rademacher", "gaussian"), hutch):
        np.testing.assert_allclose(np.asarray(z0_h[:1]), np.asarray(z0_e), atol=1e-5)
        logp_h = np.asarray(logp_h, np.float64)
        assert logp_h.std() > 0, name  # the probes differ per example
        se = logp_h.std() / math.sqrt(x.shape[0])
        assert abs(logp_h.mean() - float(logp_e[0])) < 4.5 * se, (
            name, logp_h.mean(), float(logp_e[0]), se)


def test_likelihood_argument_errors():
    x = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="rng"):
        log_likelihood(lambda y, t: y, x, divergence="hutchinson")
    with pytest.raises(ValueError, match="exact"):
        log_likelihood(lambda y, t: y, x, divergence="skilling")
    with pytest.raises(ValueError, match="rademacher"):
        log_likelihood(lambda y, t: y, x, divergence="hutchinson", rng=jax.random.key(0),
                       probe="uniform")
    assert set(ode.METHODS) == set(METHODS)
