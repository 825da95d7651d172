"""Flow-matching paths (`jaxgen.processes.paths`): boundary values, derivatives against
autodiff, and the prediction converters against the exact velocity of the path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.processes.paths import CosinePath, OTPath, StraightPath, make_path

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
def test_converters_recover_the_velocity_from_an_exact_prediction(path, prediction):
    """For random (x0, x1, t), the exact prediction of each kind converts to d x_t / dt."""
    k = jax.random.split(jax.random.key(0), 3)
    x0 = jax.random.normal(k[0], (256, 3))
    x1 = 2.0 + jax.random.normal(k[1], (256, 3))
    t = jax.random.uniform(k[2], (256,), minval=0.02, maxval=0.98)
    xt, dxt = path.sample(x0, x1, t)
    out = path.target(prediction, x0, x1, dxt)
    np.testing.assert_allclose(path.velocity(prediction, xt, out, t), dxt, rtol=2e-4,
                               atol=2e-4)


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


def test_cosine_path_is_variance_preserving():
    t = jnp.linspace(0.0, 1.0, 11)
    p = CosinePath()
    np.testing.assert_allclose(p.alpha(t) ** 2 + p.sigma(t) ** 2, 1.0, atol=1e-6)
