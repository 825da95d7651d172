"""cfm-euler: the exact CFM field of Gaussian-mixture data against closed forms, the
solvers' orders on it (extending tests/test_ode.py's order test on dx/dt = a x to a
time-dependent field, the lecture's own), the NFE bookkeeping, and the --fast report."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.reproduce import cfm_euler
from jaxgen.samplers.ode import odeint


def _spd(rng, d, lo=0.3, hi=3.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, d)) @ q.T


def _sqrtm(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(w)) @ v.T


@pytest.mark.parametrize("seed", range(3))
def test_solvers_reach_their_orders_on_the_exact_cfm_flow_of_a_gaussian(seed):
    """Data N(m, S), noise N(0, I): the straight path's marginal field carries x(0) to
    x(1) = m + S^{1/2} x(0) exactly; halving the step divides Euler's / Heun's / RK4's
    global error by 2 / 4 / 16 (random m, S, x(0); float64)."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 4))
    m, s = rng.standard_normal(d), _spd(rng, d)
    x0 = rng.standard_normal((5, d))
    with jax.enable_x64(True):
        u = cfm_euler.mixture_velocity([1.0], m[None], s[None])
        exact = m + x0 @ _sqrtm(s)
        for method, order, n in (("euler", 1, 64), ("heun", 2, 32), ("rk4", 4, 32)):
            err = [float(np.max(np.abs(np.asarray(odeint(u, jnp.asarray(x0), 0.0, 1.0, k,
                                                          method)) - exact)))
                   for k in (n, 2 * n)]
            assert err[1] < err[0] < 0.1, (method, err)
            assert abs(math.log2(err[0] / err[1]) - order) < 0.2, (method, err)


@pytest.mark.parametrize("seed", range(3))
def test_one_euler_step_sends_every_noise_to_the_data_mean(seed):
    """At t = 0, u(x, 0) = E[x1] − x for any mixture, so Euler at NFE 1 collapses every
    sample onto the data mean Σ w_k m_k (random anisotropic mixtures)."""
    rng = np.random.default_rng(10 + seed)
    k = int(rng.integers(2, 6))
    w = rng.dirichlet(np.ones(k))
    means = 3 * rng.standard_normal((k, 2))
    covs = np.stack([_spd(rng, 2, 0.01, 1.0) for _ in range(k)])
    with jax.enable_x64(True):
        u = cfm_euler.mixture_velocity(w, means, covs)
        x1 = np.asarray(odeint(u, jnp.asarray(rng.standard_normal((7, 2))), 0.0, 1.0, 1))
    np.testing.assert_allclose(x1, np.broadcast_to(w @ means, x1.shape), atol=1e-12)


def test_mixture_field_at_t1_is_the_identity_map_of_x1_minus_x0():
    """At t = 1, x_t = x1, so E[x1 − x0 | x1 = x] = x (x0 is independent, mean 0)."""
    rng = np.random.default_rng(3)
    covs = np.stack([_spd(rng, 2, 0.1, 1.0) for _ in range(3)])
    with jax.enable_x64(True):
        u = cfm_euler.mixture_velocity([0.2, 0.3, 0.5], rng.standard_normal((3, 2)), covs)
        x = rng.standard_normal((6, 2))
        np.testing.assert_allclose(np.asarray(u(jnp.asarray(x), 1.0)), x, atol=1e-12)


def test_steps_for_nfe_never_exceeds_the_target_unless_one_step_does():
    assert [cfm_euler.steps_for_nfe("euler", n) for n in cfm_euler.NFES] == [
        (n, n) for n in cfm_euler.NFES]
    assert [cfm_euler.steps_for_nfe("heun", n) for n in cfm_euler.NFES] == [
        (1, 2), (1, 2), (2, 4), (5, 10), (10, 20), (50, 100)]
    assert [cfm_euler.steps_for_nfe("rk4", n) for n in cfm_euler.NFES] == [
        (1, 4), (1, 4), (1, 4), (2, 8), (5, 20), (25, 100)]
    assert cfm_euler.steps_for_nfe(*cfm_euler.REFERENCE[:1], 100) == (25, 100)
    assert len(cfm_euler.schedule()) == 18


def test_rms_gap_and_observed_order():
    x = np.zeros((4, 3))
    assert cfm_euler.rms_gap(x + 2.0, x) == pytest.approx(2.0)
    assert cfm_euler.observed_order(10, 1e-2, 100, 1e-3) == pytest.approx(1.0)
    assert cfm_euler.observed_order(20, 1e-2, 40, 6.25e-4) == pytest.approx(4.0)


@pytest.mark.heavy  # two trainings and ~10 compilations: ~35 s of CPU, over the default run's share
def test_fast_run_writes_the_report_with_its_figures(tmp_path):
    from jaxgen import reproduce
    from jaxgen.reproduce.report import Budget
    rep = reproduce.run("cfm-euler", tmp_path, budget=Budget(fast=True))
    md = rep.md.read_text()
    assert "**Verdict: cannot tell at this budget.** fast run" in md
    assert "x_t = t·x1 + (1 − t)·x0" in md  # the convention note
    meta = json.loads((tmp_path / "cfm-euler" / "report.json").read_text())
    assert meta["fast"] and len(meta["figures"]) >= 4
    for fig in meta["figures"]:
        assert (tmp_path / "cfm-euler" / fig).stat().st_size > 0, fig
    data = json.loads((tmp_path / "cfm-euler" / "cfm_euler.json").read_text())
    toy = data["toys"][0]
    # the exact field at NFE 1: Euler collapses every sample onto the mean, RK4 does not
    assert toy["results"]["exact"]["euler x1"]["sw1"] > toy["results"]["exact"]["rk4 x1"]["sw1"]


@pytest.mark.parametrize("method,steps", [("euler", 3), ("rk4", 2)])
def test_cells_are_the_runs_own_sampler(tiny_toy_config, method, steps):
    """`solve_cells` from the noise the objective draws gives exactly what `Experiment.sample`
    gives with sample.method / sample.steps set: the reproduction measures the config's
    sampler, not a copy of it."""
    from jaxgen.data import get_dataset
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = tiny_toy_config()
    exp = Experiment(cfg, DatasetInfo.of(get_dataset(cfg.data, "train")))
    params = exp.init_state().params
    key = jax.random.key(4)
    want = exp.sample(params, key, 16, chunk=16, method=method, steps=steps)
    z = jax.random.normal(jax.random.fold_in(key, 0), (16, 2), jnp.float32)
    cells = [(method, steps * cfm_euler.ODE_EVALS_PER_STEP[method], steps, 0)]
    got, _ = cfm_euler.solve_cells(exp.objective.tools.velocity, params, z, cells, 16,
                                   ref=(method, steps))
    np.testing.assert_allclose(got[(method, steps)], want, rtol=1e-6, atol=1e-6)
