"""EDM (jaxgen.families.diffusion.edm) against float64 references of Karras et al.'s
formulas and against the closed forms of Gaussian data, whose ideal denoiser is linear."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.diffusion import edm


def _grid64(n, smin, smax, rho):
    """Karras et al. (2022), eq. 5, written out per index in float64, then σ_N = 0."""
    out = [(smax ** (1 / rho) + i / (n - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
           for i in range(n)]
    return np.array(out + [0.0])


@pytest.mark.parametrize("n,smin,smax,rho", [(18, 0.002, 80.0, 7.0), (5, 0.01, 10.0, 3.0),
                                             (40, 0.002, 80.0, 1.0)])
def test_sigma_grid_is_eq_5(n, smin, smax, rho):
    s = edm.sigma_grid(n, smin, smax, rho)
    np.testing.assert_allclose(s, _grid64(n, smin, smax, rho), rtol=1e-12)
    assert s[0] == pytest.approx(smax) and s[n - 1] == pytest.approx(smin) and s[n] == 0
    assert np.all(np.diff(s) < 0)


def test_preconditioning_is_table_1_and_its_identities_hold():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        _check_preconditioning(rng)


def _check_preconditioning(rng):
    for sd in (0.5, 1.0, 2.3):
        pc = edm.Precond(sd)
        sigma = np.exp(rng.normal(-1.2, 2.0, 200))  # float64 throughout
        c_skip, c_out, c_in = pc.c_skip(sigma), pc.c_out(sigma), pc.c_in(sigma)
        np.testing.assert_allclose(c_skip, sd ** 2 / (sigma ** 2 + sd ** 2), rtol=1e-12)
        np.testing.assert_allclose(c_out, sigma * sd / np.sqrt(sigma ** 2 + sd ** 2), rtol=1e-12)
        np.testing.assert_allclose(c_in, 1 / np.sqrt(sigma ** 2 + sd ** 2), rtol=1e-12)
        np.testing.assert_allclose(pc.c_noise(sigma), np.log(sigma) / 4, rtol=1e-12)
        # unit-variance network input and target, and a weight that makes every σ count alike
        np.testing.assert_allclose(c_in ** 2 * (sigma ** 2 + sd ** 2), 1.0, rtol=1e-12)
        np.testing.assert_allclose((1 - c_skip) ** 2 * sd ** 2 + c_skip ** 2 * sigma ** 2,
                                   c_out ** 2, rtol=1e-10)
        np.testing.assert_allclose(pc.weight(sigma) * c_out ** 2, 1.0, rtol=1e-12)


def _gaussian_denoiser(s):
    """E[y | y + n] for y ~ N(0, s² I), n ~ N(0, σ² I): s² / (s² + σ²) x."""
    return lambda x, sigma: s ** 2 / (s ** 2 + sigma ** 2) * x


def _heun_step64(x, s_cur, s_next, s, eps=None, gamma=0.0, s_noise=1.0):
    """Algorithm 2's step i in float64 (Algorithm 1 at gamma = 0) with D of N(0, s² I)."""
    d_fn = _gaussian_denoiser(s)
    s_hat = s_cur * (1 + gamma)
    if gamma:
        x = x + math.sqrt(s_hat ** 2 - s_cur ** 2) * s_noise * eps
    d = (x - d_fn(x, s_hat)) / s_hat
    x_next = x + (s_next - s_hat) * d
    if s_next > 0:
        x_next = x + (s_next - s_hat) * 0.5 * (d + (x_next - d_fn(x_next, s_next)) / s_next)
    return x_next


def test_one_heun_step_and_one_stochastic_step_match_float64_references():
    s, grid = 0.7, edm.sigma_grid(6, 0.002, 80.0, 7.0)
    x = np.random.default_rng(1).normal(size=(4, 3)) * grid[0]
    got = edm.heun_sampler(_gaussian_denoiser(s), jnp.asarray(x, jnp.float32), grid[:2])
    np.testing.assert_allclose(got, _heun_step64(x, grid[0], grid[1], s), rtol=1e-5)
    # Algorithm 2 at a level inside [S_tmin, S_tmax]: γ = min(S_churn / N, √2 − 1)
    rng = jax.random.key(3)
    got = edm.heun_sampler(_gaussian_denoiser(s), jnp.asarray(x, jnp.float32), grid[:2], rng,
                           s_churn=0.3, s_tmin=0.05, s_tmax=100.0, s_noise=1.007)
    eps = np.asarray(jax.random.normal(jax.random.fold_in(rng, 0), x.shape, jnp.float32),
                     np.float64)
    want = _heun_step64(x, grid[0], grid[1], s, eps, gamma=min(0.3 / 1, math.sqrt(2) - 1),
                        s_noise=1.007)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_heun_converges_at_second_order_and_euler_at_first_to_the_exact_ode_solution():
    """For N(0, s² I) the probability-flow ODE is linear: x(σ) = x(σ_0) √((s² + σ²) /
    (s² + σ_0²)); Algorithm 1 ends at σ = 0 with error O(N⁻²), Euler with O(N⁻¹)."""
    s = 0.5
    x0 = np.random.default_rng(2).normal(size=(8, 2)) * 80.0
    exact = x0 * s / math.sqrt(s ** 2 + 80.0 ** 2)
    errs = {}
    with jax.enable_x64(True):
        _converge(errs, s, x0, exact)
    for n in (16, 32):
        assert 3.0 < errs[(True, n)] / errs[(True, 2 * n)] < 5.0, errs
        assert 1.6 < errs[(False, n)] / errs[(False, 2 * n)] < 2.5, errs
    assert errs[(True, 64)] < errs[(False, 64)] / 10


def _converge(errs, s, x0, exact):
    for heun in (True, False):
        for n in (16, 32, 64):
            x = edm.heun_sampler(_gaussian_denoiser(s), jnp.asarray(x0, jnp.float64),
                                 edm.sigma_grid(n, 0.002, 80.0, 7.0), heun=heun)
            # the grid stops at σ_min, then one Euler step to 0: its error is O(σ_min²)
            errs[(heun, n)] = float(np.abs(np.asarray(x) - exact).max())


def test_ode_likelihood_of_gaussian_data_is_the_closed_form():
    """With the ideal denoiser of N(0, s² I), the ODE from σ_max (prior N(0, σ_max² I)) to
    σ_min scales x by √((s² + σ_min²) / (s² + σ_max²)), so the model is exactly
    N(0, σ_max² (s² + σ_min²) / (s² + σ_max²) I)."""
    s, smin, smax = 0.8, 0.002, 80.0
    x = jnp.asarray(np.random.default_rng(4).normal(size=(16, 2)) * s, jnp.float32)

    def denoise(params, x, sigma):
        return _gaussian_denoiser(s)(x, sigma)

    logp = edm.log_likelihood(None, x, None, denoise=denoise, sigma_min=smin, sigma_max=smax,
                              steps=200, method="rk4", divergence="exact")
    var = smax ** 2 * (s ** 2 + smin ** 2) / (s ** 2 + smax ** 2)
    want = (-0.5 * np.sum(np.asarray(x, np.float64) ** 2, 1) / var
            - math.log(2 * math.pi * var))  # D = 2
    np.testing.assert_allclose(logp, want, rtol=2e-4, atol=2e-3)


@pytest.mark.parametrize("s_ratio", [1.0, 2.0])
def test_the_loss_of_the_skip_only_denoiser_is_its_closed_form(s_ratio):
    """F ≡ 0 leaves D = c_skip x. For y ~ N(0, s² I) the weighted loss at σ is
    λ (σ⁴ s² + σ_d⁴ σ²) / (σ² + σ_d²)²: exactly 1 at every σ when s = σ_d; its expectation
    over ln σ ~ N(P_mean, P_std²) by Gauss-Hermite quadrature otherwise."""
    sd, p_mean, p_std = 0.5, -1.2, 1.2
    s = s_ratio * sd
    pc = edm.Precond(sd)
    denoise = functools.partial(edm.denoiser, lambda p, x, c: jnp.zeros_like(x), pc)
    y = jnp.asarray(np.random.default_rng(5).normal(size=(200_000, 2)) * s, jnp.float32)
    loss, metrics = edm.edm_loss({"model": None}, {"x": y}, jax.random.key(6), denoise=denoise,
                                 precond=pc, p_mean=p_mean, p_std=p_std)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    sigma = np.exp(p_mean + p_std * nodes)
    per = pc.weight(sigma) * (sigma ** 4 * s ** 2 + sd ** 4 * sigma ** 2) / (sigma ** 2
                                                                               + sd ** 2) ** 2
    want = float(np.sum(weights * per) / np.sqrt(2 * np.pi))
    if s_ratio == 1.0:
        np.testing.assert_allclose(per, 1.0, rtol=1e-10)
    assert float(loss) == pytest.approx(want, rel=0.02)
    assert float(metrics["edm_loss"]) == float(loss)
