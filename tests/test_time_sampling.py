"""Flow matching's training-time samplers against their distributions, and the t-sampler
hook a plugin passes to the family's builder."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq

from jaxgen.processes.paths import sample_times
from jaxgen.processes.settings import MODE_SCALE_MAX

N = 40_000


@pytest.mark.parametrize("loc,scale", [(0.0, 1.0), (0.5, 0.6), (-1.0, 1.5)])
def test_logit_normal_times_follow_sd3s_density(loc, scale):
    """SD3's t' = 1 − t is sigmoid(u), u ~ N(m, s²): P(t' ≤ a) = Φ((logit a − m) / s)."""
    t = np.asarray(sample_times(jax.random.key(1), N, "logit_normal", loc=loc, scale=scale),
                   np.float64)
    noise = 1.0 - t

    def cdf(a):
        a = np.clip(a, 1e-12, 1 - 1e-12)
        return stats.norm.cdf((np.log(a / (1 - a)) - loc) / scale)

    assert stats.kstest(noise, cdf).pvalue > 1e-3


@pytest.mark.parametrize("s", [1.29, 0.0, -0.5, MODE_SCALE_MAX])
def test_mode_times_follow_sd3s_mode_sampling(s):
    """t' = f(u) = 1 − u − s (cos²(πu/2) − 1 + u) is decreasing in u for these s, so
    P(t' ≤ a) = 1 − f⁻¹(a)."""
    def f(u):
        return 1 - u - s * (math.cos(math.pi * u / 2) ** 2 - 1 + u)

    u = np.linspace(0, 1, 201)
    assert np.all(np.diff([f(v) for v in u]) <= 1e-12)  # monotone: the CDF below is exact
    t = np.asarray(sample_times(jax.random.key(2), N, "mode", mode_scale=s), np.float64)
    noise = 1.0 - t

    def cdf(a):
        return np.array([1.0 if x >= 1 else 0.0 if x <= 0 else
                         1.0 - brentq(lambda v: f(v) - x, 0.0, 1.0) for x in np.atleast_1d(a)])

    assert stats.kstest(noise, cdf).pvalue > 1e-3


def test_a_plugins_t_sampler_reaches_the_loss():
    """fm.make(ctx, t_sampler=...) trains at the times it draws: with t ≡ 0.25 the loss is
    the straight path's regression at t = 0.25, computed here by hand."""
    import jaxgen
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.runner.experiment import DatasetInfo
    cfg = config_lib.load_config("flow_matching/toy2d", ["model.features=(8,)",
                                                         "model.time_dim=4"])
    info = DatasetInfo("toy", "points", (2,))
    model = registry.build_model(cfg.model, info)
    assert jaxgen.family("flow_matching").make is registry.resolve(
        registry.objective_spec("flow_matching").build)
    obj = registry.build_objective(cfg, model, info,
                                   t_sampler=lambda k, n, d: jnp.full((n,), 0.25, d))
    x1 = jax.random.normal(jax.random.key(3), (16, 2))
    params = obj.init(jax.random.key(0), {"x": x1})
    loss, _ = obj.players[0].loss(params, {"x": x1}, jax.random.key(4))
    k0, _ = jax.random.split(jax.random.key(4))
    x0 = jax.random.normal(k0, x1.shape)
    xt = 0.25 * x1 + 0.75 * x0
    u = model.apply({"params": params["model"]}, xt, jnp.full((16,), 0.25))
    np.testing.assert_allclose(loss, jnp.mean(jnp.square(u - (x1 - x0))), rtol=1e-5)
