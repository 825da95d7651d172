"""Flow-matching paths (`jaxgen.processes.paths`): boundary values, derivatives against
autodiff, and the prediction converters against the exact velocity of the path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.kernel.errors import ConfigError
from jaxgen.processes.paths import DIVISOR_FLOOR, CosinePath, OTPath, StraightPath, make_path

PATHS = [StraightPath(), OTPath(0.05), CosinePath()]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: type(p).__name__)
def test_boundaries_and_derivatives(path):
    """α_0 = 0, σ_0 = 1, α_1 = 1 (σ_1 = σ_min), and α', σ' equal jax.grad of α, σ."""
    np.testing.assert_allclose([path.alpha(0.0), path.sigma(0.0), path.alpha(1.0)],
                               [0.0, 1.0, 1.0], atol=1e-7)
    want_end = 0.05 if isinstance(path, OTPath) else 0.0
    np.testing.assert_allclose(path.sigma(jnp.float32(1.0)), want_end, atol=1e-7)
    ts = jnp.linspace(0.0, 1.0, 17)
    for f, df in ((path.alpha, path.d_alpha), (path.sigma, path.d_sigma)):
        auto = jax.vmap(jax.grad(lambda t: jnp.asarray(f(t), jnp.float32)))(ts)
        np.testing.assert_allclose(df(ts), auto, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("prediction", ["velocity", "x1", "x0"])
@pytest.mark.parametrize("floor, t_max", [(DIVISOR_FLOOR, 0.94), (1e-3, 0.98)])
def test_converters_recover_the_velocity_from_an_exact_prediction(path, prediction, floor,
                                                                  t_max):
    """For random (x0, x1, t) with the divisor (σ_t for x1, α_t for x0) above the floor,
    the exact prediction of each kind converts to d x_t / dt."""
    k = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.normal(k[0], (256, 3))
    x1 = 2.0 + jax.random.normal(k[1], (256, 3))
    t = jax.random.uniform(k[2], (256,), minval=1 - t_max, maxval=t_max)
    xt, dxt = path.sample(x0, x1, t)
    divisor = {"x1": path.sigma(t), "x0": path.alpha(t)}.get(prediction, jnp.ones_like(t))
    assert float(jnp.min(divisor)) > floor
    out = path.target(prediction, x0, x1, dxt)
    np.testing.assert_allclose(path.velocity(prediction, xt, out, t, floor), dxt, rtol=2e-4,
                               atol=2e-4)


@pytest.mark.parametrize("path", [StraightPath(), CosinePath()], ids=lambda p: type(p).__name__)
def test_below_the_floor_the_divisor_is_the_floor(path):
    """x1: x0 = (x_t − α x1) / max(σ, floor); x0: x1 = (x_t − σ x0) / max(α, floor); then
    v = α' x1 + σ' x0, at t = 0, 0.99, 1 written out by hand."""
    xt = jnp.array([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]])
    out = jnp.array([[1.0, -1.0], [0.5, 2.0], [-0.2, 0.4]])
    t = jnp.array([0.0, 0.99, 1.0])
    a, s = path.alpha(t)[:, None], path.sigma(t)[:, None]
    da, ds = path.d_alpha(t)[:, None], path.d_sigma(t)[:, None]
    want_x1 = da * out + ds * (xt - a * out) / jnp.maximum(s, 0.05)
    want_x0 = da * (xt - s * out) / jnp.maximum(a, 0.05) + ds * out
    np.testing.assert_allclose(path.velocity("x1", xt, out, t), want_x1, rtol=1e-6)
    np.testing.assert_allclose(path.velocity("x0", xt, out, t), want_x0, rtol=1e-6)
    assert DIVISOR_FLOOR == 0.05  # Li & He (2025) clip 1 - t at 0.05
    with pytest.raises(ValueError, match="floor must be > 0"):
        path.velocity("x1", xt, out, t, 0.0)


def test_an_x1_predictor_gives_a_field_of_bounded_lipschitz_constant():
    """For the fixed smooth x̂1(x, t) = x / 2 on the cosine path, ∂v/∂x = σ'(1 − α/2)/σ + α'/2:
    unbounded as t -> 1 (about 500 at t = 1 − 10⁻³) if σ is not floored. Floored at 0.05,
    its largest value over t in [0, 1] is at most (π/2)/0.05 + π/4 (here: 15.7 at t = 1)."""
    from jaxgen.families.flow_matching.objective import velocity
    u = velocity(lambda p, x, t: 0.5 * x, {"model": None}, path=CosinePath(), prediction="x1")
    ts = jnp.concatenate([jnp.linspace(0.0, 1.0, 401), 1 - jnp.logspace(-6, -1, 50)])
    jac = jax.vmap(lambda t: jax.jacfwd(lambda y: u(y[None], t)[0])(jnp.array([0.7, -1.1])))(ts)
    lip = float(jnp.max(jnp.linalg.norm(jac, ord=2, axis=(1, 2))))
    assert lip <= 0.5 * jnp.pi / 0.05 + jnp.pi / 4, lip
    np.testing.assert_allclose(lip, 0.5 * (0.5 * jnp.pi) / 0.05, rtol=1e-4)  # at t = 1


def test_the_straight_path_is_the_lectures_and_ot_with_sigma_min_0():
    k = jax.random.split(jax.random.key(1), 3)
    x0, x1 = jax.random.normal(k[0], (8, 2)), jax.random.normal(k[1], (8, 2))
    t = jax.random.uniform(k[2], (8,))
    xt, dxt = make_path("straight").sample(x0, x1, t)
    np.testing.assert_array_equal(xt, t[:, None] * x1 + (1 - t[:, None]) * x0)
    np.testing.assert_array_equal(dxt, x1 - x0)
    xo, do = make_path("ot", 0.0).sample(x0, x1, t)
    np.testing.assert_allclose(xo, xt, atol=1e-6)
    np.testing.assert_allclose(do, dxt, atol=1e-6)
    with pytest.raises(ValueError, match="straight, ot, cosine"):
        make_path("linear")


def test_sigma_min_alone_selects_the_ot_path():
    """objective.sigma_min > 0 with the default path=straight is Lipman et al.'s OT path
    (its meaning before paths had names), x_t = t x1 + (1 − (1 − σ_min) t) x0, target
    x1 − (1 − σ_min) x0; the cosine path has no sigma_min: one ConfigError."""
    k = jax.random.split(jax.random.key(2), 3)
    x0, x1 = jax.random.normal(k[0], (8, 2)), jax.random.normal(k[1], (8, 2))
    t = jax.random.uniform(k[2], (8,))
    for name in ("straight", "ot"):
        xt, dxt = make_path(name, 0.01).sample(x0, x1, t)
        np.testing.assert_allclose(xt, t[:, None] * x1 + (1 - 0.99 * t[:, None]) * x0,
                                   rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(dxt, x1 - 0.99 * x0, rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="objective.sigma_min=0.01 .* path=cosine"):
        make_path("cosine", 0.01)


def test_cosine_path_is_variance_preserving():
    t = jnp.linspace(0.0, 1.0, 11)
    p = CosinePath()
    np.testing.assert_allclose(p.alpha(t) ** 2 + p.sigma(t) ** 2, 1.0, atol=1e-6)
