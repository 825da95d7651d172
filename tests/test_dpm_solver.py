"""DPM-Solver++(2M) (`jaxgen.samplers.ddpm.dpm_solver_pp`) against exact values.

Data x_0 ~ N(μ, s² I) per dimension: x_t = α x_0 + σ ε (α = √ᾱ_t, σ = √(1 − ᾱ_t)) is
N(α μ, (α² s² + σ²) I), the optimal ε-predictor is E[ε | x_t] = σ (x_t − α μ)/(α² s² + σ²)
(`test_ddpm._gauss_eps`), and the probability-flow ODE, which carries each marginal to the
next by a monotone affine map, keeps z = (x_t − α_t μ)/√(α_t² s² + σ_t²) constant:

    x_t = α_t μ + √(α_t² s² + σ_t²) z,    so    x_0 = μ + s (x_T − α_T μ)/√(α_T² s² + σ_T²).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT
from test_ddpm import _gauss_eps

from jaxgen.kernel import registry
from jaxgen.kernel.errors import ConfigError
from jaxgen.processes import diffusion as dp
from jaxgen.samplers import ddpm as samplers
from jaxgen.samplers import ode

T = 1000
S = dp.linear_schedule(T)
MU, STD = jnp.asarray([0.7, -1.2]), jnp.asarray([0.5, 0.3])
EPS = _gauss_eps(S, MU, STD)
X_T = jax.random.normal(jax.random.key(0), (256, 2))


def exact_flow(x_T, ab):
    """The exact PF-ODE solution at ᾱ = ab, from x_T at ᾱ_T (module doc)."""
    ab_T = S.alpha_bars[T]
    z = (x_T - jnp.sqrt(ab_T) * MU) / jnp.sqrt(ab_T * STD**2 + 1.0 - ab_T)
    return jnp.sqrt(ab) * MU + jnp.sqrt(ab * STD**2 + 1.0 - ab) * z


def rms(a, b):
    return float(jnp.sqrt(jnp.mean(jnp.square(a - b))))


def dpm(timesteps, **kw):
    return jax.jit(lambda x: samplers.dpm_solver_pp(EPS, S, x, timesteps=timesteps, **kw))(X_T)


def ddim(timesteps, **kw):
    return jax.jit(lambda x: samplers.ddim(EPS, S, x, jax.random.key(1), timesteps=timesteps,
                                           **kw))(X_T)


def test_exact_flow_is_the_ode_solution_rk4_converges_to():
    """The closed form above (at t = 1, where the ODE stops) against RK4 x 200 of the same
    ODE with the same exact ε: the reference the other tests measure against is right."""
    v = samplers.probability_flow_velocity(lambda x, u: EPS(x, u, True), S, 1.0 / T)
    x1 = jax.jit(lambda x: ode.odeint(v, x, 0.0, 1.0, 200, "rk4"))(X_T)
    want = exact_flow(X_T, S.alpha_bars[1])
    assert rms(x1, want) < 3e-4
    assert rms(x1, exact_flow(X_T, S.alpha_bars[3])) > 10 * rms(x1, want)  # it can tell


def algorithm_2(x_T, timesteps):
    """Lu et al. (2022), Algorithm 2, as a plain float64 loop over t_0 = T > … > t_{M−1},
    t_M = 0, with the exact x̂_0 of the Gaussian; first order at i = 1 and at t_M = 0."""
    ab = np.asarray(S.alpha_bars, np.float64)
    mu, std = np.asarray(MU, np.float64), np.asarray(STD, np.float64)
    ts = [int(t) for t in timesteps] + [0]
    alpha, sigma = np.sqrt(ab), np.sqrt(1.0 - ab)
    lam = lambda t: np.log(alpha[t] / sigma[t])  # noqa: E731  (t ≥ 1 only)
    x, x0s = np.asarray(x_T, np.float64), []
    for i in range(1, len(ts)):
        s_, t = ts[i - 1], ts[i]
        eps = sigma[s_] * (x - alpha[s_] * mu) / (ab[s_] * std**2 + 1.0 - ab[s_])
        x0s.append((x - sigma[s_] * eps) / alpha[s_])
        if t == 0:
            x = x0s[-1]  # σ_{t_M} = 0, e^{−h} = 0, α = 1: x_0 = D = x̂_0
            break
        h = lam(t) - lam(s_)
        if i == 1:
            d = x0s[-1]
        else:
            r = (lam(s_) - lam(ts[i - 2])) / h
            d = (1.0 + 1.0 / (2.0 * r)) * x0s[-1] - 1.0 / (2.0 * r) * x0s[-2]
        x = sigma[t] / sigma[s_] * x - alpha[t] * (np.exp(-h) - 1.0) * d
    return x


@pytest.mark.parametrize("spacing,steps", [("quadratic", 10), ("logsnr", 7), ("time", 25)])
def test_scan_is_algorithm_2(spacing, steps):
    ts = samplers.dpm_solver_timesteps(steps, S, spacing)
    np.testing.assert_allclose(dpm(ts), algorithm_2(X_T, ts), atol=2e-4)


def test_second_order_convergence_and_far_more_accurate_than_ddim():
    """Error of the state x_{τ_1} at the last network call (against the exact flow there),
    as the steps double: falls ~4x (2nd order) for DPM-Solver++, ~2x for DDIM on the same
    steps; and the samples x_0 are far closer to the exact endpoint than DDIM's."""
    err, err_ddim, end, end_ddim = [], [], [], []
    x0_exact = exact_flow(X_T, 1.0)
    for m in (20, 40, 80):
        ts = samplers.dpm_solver_timesteps(m, S, "logsnr")
        want = exact_flow(X_T, S.alpha_bars[int(ts[-1])])
        x0, path = dpm(ts, return_path=True)
        x0_d, path_d = ddim(ts, return_path=True)
        assert path.shape == (m + 1, *X_T.shape)
        err.append(rms(path[-2], want))
        err_ddim.append(rms(path_d[-2], want))
        end.append(rms(x0, x0_exact))
        end_ddim.append(rms(ddim(samplers.ddim_timesteps(m, T)), x0_exact))  # its own steps
    ratios, ratios_ddim = np.divide(err[:-1], err[1:]), np.divide(err_ddim[:-1], err_ddim[1:])
    assert np.all(ratios > 3.5), (err, ratios)
    assert np.all((ratios_ddim > 1.7) & (ratios_ddim < 2.4)), (err_ddim, ratios_ddim)
    assert np.all(np.asarray(err) * 8 < err_ddim), (err, err_ddim)
    assert np.all(np.asarray(end) * 5 < end_ddim), (end, end_ddim)
    assert end[1] < 2.5e-3


def test_first_step_is_ddim_then_it_is_not():
    """The first step is first order (DDIM, η = 0); with 1 or 2 steps all of it is (the last
    step, to t = 0, is first order too); with more, the second-order steps differ."""
    for ts in ([T], [T, 300]):
        np.testing.assert_allclose(dpm(ts), ddim(ts), rtol=1e-5, atol=1e-5)
    ts = samplers.dpm_solver_timesteps(6, S)
    _, path = dpm(ts, return_path=True)
    _, path_d = ddim(ts, return_path=True)
    np.testing.assert_allclose(path[1], path_d[1], rtol=1e-5, atol=1e-5)
    assert rms(path[2], path_d[2]) > 3e-4 and rms(path[-1], path_d[-1]) > 3e-2


def test_clip_bounds_the_predicted_x0():
    ts = samplers.dpm_solver_timesteps(8, S)
    x = dpm(ts, clip=0.5)
    assert float(jnp.max(jnp.abs(x))) <= 0.5 and float(jnp.max(jnp.abs(dpm(ts)))) > 1.0
    np.testing.assert_array_equal(dpm(ts, clip=100.0), dpm(ts))


def test_timesteps_are_distinct_decreasing_and_start_at_T():
    for spacing in samplers.DPM_SPACINGS:
        for m in (1, 2, 7, 50, 999, 1000):
            ts = samplers.dpm_solver_timesteps(m, S, spacing)
            assert len(ts) == m and ts[0] == T and ts[-1] >= 1 and np.all(np.diff(ts) < 0)
    assert list(samplers.dpm_solver_timesteps(4, S)) == [1000, 562, 250, 62]  # T (i/4)²
    assert samplers.dpm_solver_timesteps(20, S, "logsnr")[-1] == 1


class _GaussNet(nn.Module):
    """The exact ε of the Gaussian data as a "network" of (x, u = t/T)."""

    @nn.compact
    def __call__(self, x, u):
        w = self.param("w", nn.initializers.zeros_init(), ())
        return EPS(x, jnp.rint(u * T).astype(jnp.int32)[:, None]) + w


def test_sample_sampler_dpm_solver_through_the_config():
    """sample.sampler=dpm_solver through the family's `sample` (settings from the real toy
    config): with the exact ε at sample.steps = 10 it lands on the exact PF-ODE endpoint
    3x closer than sample.sampler=ddim at 10 steps, and closer than DDIM at 50."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo
    path = ROOT / "configs" / "diffusion" / "ddpm_toy2d.py"
    cfg = config_lib.load_config(path, ["sample.sampler=dpm_solver", "sample.steps=10"])
    with pytest.raises(ConfigError, match="sample.spacing must be one of quadratic, logsnr"):
        config_lib.load_config(path, ["sample.spacing=karras"])
    obj = registry.build_objective(cfg, _GaussNet(), DatasetInfo("toy", "points", (2,)))
    params = obj.init(jax.random.key(0), {"x": jnp.zeros((2, 2))})
    settings = registry.sample_settings(cfg)
    assert settings.sampler == "dpm_solver" and settings.spacing == "quadratic"
    rng, n = jax.random.key(3), 512
    x_T = jax.random.normal(jax.random.split(rng)[0], (n, 2))
    draw = lambda **kw: jax.jit(lambda r: obj.sample(  # noqa: E731
        params, r, n, dataclasses.replace(settings, **kw)))(rng)
    x = draw()
    assert x.shape == (n, 2) and np.all(np.isfinite(x))
    x0_exact = exact_flow(x_T, 1.0)
    assert rms(x, x0_exact) < 0.3 * rms(draw(sampler="ddim"), x0_exact)
    assert rms(x, x0_exact) < rms(draw(sampler="ddim", steps=50), x0_exact)
    _, path = obj.tools.draw(params, rng, 8, settings, return_path=True)
    assert path.shape == (11, 8, 2)


def test_a_tiny_toy_run_samples_with_dpm_solver():
    """The Experiment of a (tiny, untrained) ddpm_toy2d run draws with sampler=dpm_solver:
    finite points of the right shape, not DDIM's at the same steps; with sample.spacing=time
    and 2 steps (both first order, on DDIM's steps) exactly DDIM's."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(ROOT / "configs" / "diffusion" / "ddpm_toy2d.py",
                                 ["model.features=(16, 16)", "model.time_dim=8",
                                  "objective.num_steps=100", "sample.sampler=dpm_solver"])
    exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
    params = exp.init_state().ema_params
    x = exp.sample(params, jax.random.key(0), 300, steps=12)
    assert x.shape == (300, 2) and x.dtype == np.float32 and np.all(np.isfinite(x))
    assert not np.allclose(x, exp.sample(params, jax.random.key(0), 300, sampler="ddim",
                                         steps=12), atol=1e-3)
    np.testing.assert_allclose(exp.sample(params, jax.random.key(0), 300, steps=2,
                                          spacing="time"),
                               exp.sample(params, jax.random.key(0), 300, sampler="ddim",
                                          steps=2), rtol=1e-5, atol=1e-5)
