"""Consistency training (jaxgen.families.diffusion.consistency): the boundary condition for
any parameters, a target that gets no gradient, the schedules against their formulas in
float64, and the one- and two-step samplers against closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.diffusion import consistency as cm
from jaxgen.kernel import config as config_lib
from jaxgen.kernel import registry
from jaxgen.runner.experiment import DatasetInfo

TINY = ["model.features=(16, 16)", "model.time_dim=8"]


def _objective(*overrides):
    cfg = config_lib.load_config("diffusion/consistency_toy2d", [*TINY, *overrides])
    info = DatasetInfo("toy", "points", (2,))
    model = registry.build_model(cfg.model, info)
    obj = registry.build_objective(cfg, model, info)
    x = jax.random.normal(jax.random.key(1), (32, 2)) * 2.0
    params = obj.init(jax.random.key(0), {"x": x})
    rng = np.random.default_rng(3)
    params = jax.tree.map(lambda a: a + rng.normal(0, 0.3, np.shape(a)).astype(np.float32),
                          params)  # away from init: the boundary must not rely on it
    return cfg, obj, params, x


def test_the_boundary_condition_holds_exactly_for_any_parameters():
    cfg, obj, params, x = _objective()
    f = obj.players[0].loss.keywords["f"]
    np.testing.assert_array_equal(f(params["model"], x, cfg.objective.sigma_min), x)
    assert not np.allclose(f(params["model"], x, 1.0), x)


@pytest.mark.parametrize("improved", [False, True])
def test_the_target_and_the_step_get_no_gradient(improved):
    extra = ["objective.improved=true", "objective.s0=10", "objective.s1=1280"] if improved \
        else []
    _, obj, params, x = _objective(*extra)
    params = {**params, "step": jnp.asarray(500.0)}
    grads = jax.grad(lambda p: obj.players[0].loss(p, {"x": x}, jax.random.key(2))[0])(params)
    assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads["target"]))
    assert float(grads["step"]) == 0.0
    assert any(np.any(np.asarray(g)) for g in jax.tree.leaves(grads["model"]))


def test_schedules_are_the_papers_formulas_and_ignore_train_steps():
    K, s0, s1 = 1000, 2, 150
    for k in (0, 1, 250, 999, 1000, 5000):
        frac = min(k / K, 1.0)
        want = math.ceil(math.sqrt(frac * ((s1 + 1) ** 2 - s0 ** 2) + s0 ** 2) - 1) + 1
        assert float(cm.n_levels(k, K, s0, s1, False)) == want, k
        np.testing.assert_allclose(float(cm.ema_rate(want, s0, 0.9)),
                                   math.exp(s0 * math.log(0.9) / want), rtol=1e-6)
    kp = math.floor(K / (math.floor(math.log2(1280 / 10)) + 1))  # iCT's doubling
    for k in (0, kp - 1, kp, 3 * kp + 5, 100 * kp):
        want = min(10 * 2 ** math.floor(k / kp), 1280) + 1
        assert float(cm.n_levels(k, K, 10, 1280, True)) == want, k
    a = _objective("train.steps=10")
    b = _objective("train.steps=100000")
    params = {**a[2], "step": jnp.asarray(7.0)}
    la = a[1].players[0].loss(params, {"x": a[3]}, jax.random.key(5))
    lb = b[1].players[0].loss(params, {"x": a[3]}, jax.random.key(5))
    np.testing.assert_array_equal(la[0], lb[0])


def test_the_update_is_the_ema_at_mu_of_k_and_counts_the_step():
    cfg, obj, params, x = _objective()
    params = {**params, "step": jnp.asarray(3000.0)}
    out = obj.update_state(params, {"x": x}, jax.random.key(0))
    o = cfg.objective
    n = float(cm.n_levels(3000.0, o.schedule_steps, o.s0, o.s1, False))
    mu = math.exp(o.s0 * math.log(o.mu0) / n)
    for t, p, new in zip(jax.tree.leaves(params["target"]), jax.tree.leaves(params["model"]),
                         jax.tree.leaves(out["target"])):
        np.testing.assert_allclose(new, mu * np.asarray(t) + (1 - mu) * np.asarray(p),
                                   rtol=1e-5, atol=1e-7)
    assert float(out["step"]) == 3001.0
    jax.tree.map(np.testing.assert_array_equal, out["model"], params["model"])


def test_one_and_two_step_samples_of_the_skip_only_function_are_their_closed_forms():
    """With F ≡ 0, f(x, σ) = c_skip(σ) x: one step gives c_skip(σ_max) σ_max z; two steps
    re-noise that to σ_1 and scale by c_skip(σ_1)."""
    cfg, obj, params, _ = _objective("sample.steps=2", "sample.sigmas=(0.821,)")
    o = cfg.objective
    zero = jax.tree.map(jnp.zeros_like, params)
    settings = registry.family_settings(obj_spec_sample(), cfg.sample, "sample")
    x2 = obj.sample(zero, jax.random.key(9), 5, settings)
    k0, k1 = jax.random.split(jax.random.key(9), 2)
    z0 = np.asarray(jax.random.normal(k0, (5, 2)), np.float64)
    z1 = np.asarray(jax.random.normal(k1, (5, 2)), np.float64)

    def c_skip(s):
        return o.sigma_data ** 2 / ((s - o.sigma_min) ** 2 + o.sigma_data ** 2)

    one = c_skip(o.sigma_max) * o.sigma_max * z0
    two = c_skip(0.821) * (one + math.sqrt(0.821 ** 2 - o.sigma_min ** 2) * z1)
    np.testing.assert_allclose(x2, two, rtol=1e-5, atol=1e-6)


def obj_spec_sample():
    return registry.objective_spec("consistency").sample


def test_the_distillation_step_is_heuns_with_per_example_levels():
    """CD's target input: one Heun step of the teacher's ODE from σ_{n+1} to σ_n, each row
    at its own levels; against float64 with the ideal denoiser of N(0, s² I)."""
    from jaxgen.families.diffusion.edm import heun_step
    s = 0.7
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 3)) * 5
    s_from = rng.uniform(0.5, 20, 6)
    s_to = s_from * rng.uniform(0.3, 0.9, 6)

    def denoise(x, sigma):
        sigma = jnp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1))
        return s ** 2 / (s ** 2 + sigma ** 2) * x

    with jax.enable_x64(True):
        got = np.asarray(heun_step(denoise, jnp.asarray(x), jnp.asarray(s_from),
                                   jnp.asarray(s_to)))
    a, b = s_from[:, None], s_to[:, None]
    d = (x - s ** 2 / (s ** 2 + a ** 2) * x) / a
    xe = x + (b - a) * d
    d2 = (xe - s ** 2 / (s ** 2 + b ** 2) * xe) / b
    np.testing.assert_allclose(got, x + (b - a) * 0.5 * (d + d2), rtol=1e-12)


def test_distillation_from_an_edm_run_passes_the_contract_and_refuses_other_runs(tmp_path,
                                                                                capsys):
    from jaxgen import cli
    small = ["--config.model.features=(16, 16)", "--config.model.time_dim=8",
             "--config.train.pictures=false", "--config.train.progress=false"]
    teacher = tmp_path / "edm"
    assert cli.main(["train", "--config", "diffusion/edm_toy2d", "--workdir", str(teacher),
                     "--config.train.steps=3", *small]) == 0
    capsys.readouterr()
    assert cli.main(["check", "configs/diffusion/consistency_toy2d.py", *small,
                     f"--config.objective.teacher_workdir={teacher}"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("6 of 6 checks passed")
    fm = tmp_path / "fm"
    assert cli.main(["train", "--config", "flow_matching/toy2d", "--workdir", str(fm),
                     "--config.train.steps=2", *small]) == 0
    capsys.readouterr()
    assert cli.main(["check", "configs/diffusion/consistency_toy2d.py", *small,
                     f"--config.objective.teacher_workdir={fm}"]) == 1
    assert "takes an EDM run's denoiser" in capsys.readouterr().out
