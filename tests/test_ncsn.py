"""NCSN: score-matching losses and annealed Langevin against Gaussian closed forms.

For data x ~ N(μ, s² I) the perturbed density p_σ = N(μ, V I), V = s² + σ², has
score s*(x̃) = −(x̃ − μ)/V. With x̃ = x + σ z, ε = x − μ:

    σ s*(x̃) + z = (s² z − σ ε) / V,   E‖σ s* + z‖² = D (s⁴ + σ² s²) / V² = D s² / V,

so the DSM loss (λ = σ², per-dim average) at the true score is ½ s² / (s² + σ²):
0 for point-mass data, ½ when the data is much wider than the noise.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, TINY_TOY, flags

from jaxgen.eval.evaluate import read_eval
from jaxgen.families.diffusion.ncsn import dsm_loss, ssm_loss
from jaxgen.samplers.langevin import annealed_langevin, geometric_sigmas, langevin

# the toy overrides without the flow-matching ODE's sample.steps (NCSN samples by Langevin)
TINY = [o for o in TINY_TOY if not o.startswith("sample.steps=")]

NCSN_TOY = ROOT / "configs" / "diffusion" / "ncsn_toy2d.py"
MU, S = 1.5, 0.5


def gauss_data(key, n, shape):
    return MU + S * jax.random.normal(key, (n, *shape))


def true_net(sigmas):
    """σ · ∇ log p_σ for the Gaussian data, plus a shift params["c"]."""
    sigmas = jnp.asarray(sigmas)

    def net(p, x, idx):
        sig = sigmas[idx].reshape((-1,) + (1,) * (x.ndim - 1))
        return p["scale"] * sig * (-(x - MU) / (S**2 + sig**2)) + p["c"]
    return net


def test_geometric_ladder():
    s = np.asarray(geometric_sigmas(10.0, 0.01, 7))
    assert s.shape == (7,) and s.dtype == np.float32
    np.testing.assert_allclose([s[0], s[-1]], [10.0, 0.01], rtol=1e-5)
    ratios = s[:-1] / s[1:]
    np.testing.assert_allclose(ratios, 1000 ** (1 / 6), rtol=1e-4)
    np.testing.assert_allclose(geometric_sigmas(3.0, 1.0, 1), [3.0])
    with pytest.raises(ValueError):
        geometric_sigmas(0.1, 1.0, 5)


@pytest.mark.parametrize("sigma, shape", [(0.1, (2,)), (0.5, (2, 3, 1)), (2.0, (2,))])
def test_dsm_at_the_true_score_is_its_analytic_minimum(sigma, shape):
    x = gauss_data(jax.random.key(0), 40000, shape)
    loss = jax.jit(functools.partial(dsm_loss, net_fn=true_net([sigma]), sigmas=[sigma]))
    p0 = {"model": {"scale": 1.0, "c": 0.0}}
    l0, m = loss(p0, {"x": x}, jax.random.key(1))
    expected = 0.5 * S**2 / (S**2 + sigma**2)
    np.testing.assert_allclose(float(l0), expected, rtol=0.02)
    assert set(m) == {"dsm", "dsm_large_sigma", "dsm_small_sigma"}
    # A shifted network costs ½c² more (no cross term at the optimum); a
    # rescaled one costs more too.
    for c in (0.2, -0.4):
        lc, _ = loss({"model": {"scale": 1.0, "c": c}}, {"x": x}, jax.random.key(1))
        np.testing.assert_allclose(float(lc - l0), 0.5 * c**2, atol=0.1 * c**2)
    for scale in (0.7, 1.3):
        ls, _ = loss({"model": {"scale": scale, "c": 0.0}}, {"x": x}, jax.random.key(1))
        assert float(ls) > float(l0) + 1e-3


def test_dsm_over_a_ladder_averages_the_levels():
    sigmas = geometric_sigmas(4.0, 0.05, 6)
    x = gauss_data(jax.random.key(2), 100000, (2,))
    l0, m = dsm_loss({"model": {"scale": 1.0, "c": 0.0}}, {"x": x}, jax.random.key(3),
                     net_fn=true_net(sigmas), sigmas=sigmas)
    per_level = 0.5 * S**2 / (S**2 + np.asarray(sigmas, np.float64) ** 2)
    np.testing.assert_allclose(float(l0), per_level.mean(), rtol=0.03)
    # The large-σ half is nearly 0 (noise ≫ data), the small-σ half nearly ½.
    np.testing.assert_allclose(float(m["dsm_large_sigma"]), per_level[:3].mean(), rtol=0.05)
    np.testing.assert_allclose(float(m["dsm_small_sigma"]), per_level[3:].mean(), rtol=0.03)


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_ssm_mean_is_explicit_score_matching_minus_a_constant(probe):
    """Linear score s(x̃) = A x̃ + b, net = σ s. Per example, over D:

    SSM  = σ² (tr A + ½ E‖A x̃ + b‖²)
    ESM  = ½ σ² E‖s − s*‖² = ½ σ² (V ‖A + I/V‖_F² + ‖A μ + b‖²)
    ESM − SSM = ½ σ² E‖s*‖² = ½ σ² D / V        (independent of A, b)
    """
    d, sigma = 3, 0.8
    v_ = S**2 + sigma**2
    x = gauss_data(jax.random.key(4), 200000, (d,))
    mu = np.full(d, MU)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(d, d)) * 0.7
        b = rng.normal(size=d)

        def net(p, y, idx):
            return sigma * (y @ jnp.asarray(a, jnp.float32).T + jnp.asarray(b, jnp.float32))

        l, m = ssm_loss({"model": {}}, {"x": x}, jax.random.key(5 + seed), net_fn=net,
                        sigmas=[sigma], probe=probe)
        esm = 0.5 * sigma**2 * (v_ * np.sum((a + np.eye(d) / v_) ** 2)
                                + np.sum((a @ mu + b) ** 2)) / d
        const = 0.5 * sigma**2 / v_
        ssm = sigma**2 * (np.trace(a) + 0.5 * (np.sum((a @ mu + b) ** 2)
                                               + v_ * np.sum(a**2))) / d
        np.testing.assert_allclose(ssm, esm - const, rtol=1e-10)  # the algebra
        np.testing.assert_allclose(float(l), esm - const, atol=0.01 * (1 + abs(esm)))
        assert "ssm" in m


def gaussian_chain(sigmas, steps, lr, denoise, x0_var):
    """Exact per-dim mean/variance of annealed Langevin on N(μ, (s²+σ_i²) I) scores."""
    sigmas = np.asarray(sigmas, np.float64)
    m, v = 0.0, x0_var
    for sig in sigmas:
        a, var = lr * sig**2 / sigmas[-1] ** 2, S**2 + sig**2
        c = 1 - a / (2 * var)
        for _ in range(steps):
            m, v = c * m + (1 - c) * MU, c**2 * v + a
    if denoise:
        c = 1 - sigmas[-1] ** 2 / (S**2 + sigmas[-1] ** 2)
        m, v = c * m + (1 - c) * MU, c**2 * v
    return m, v


def gauss_score(sigmas):
    sigmas = jnp.asarray(sigmas)
    return lambda x, i: -(x - MU) / (S**2 + sigmas[i] ** 2)


@pytest.mark.parametrize("ladder, lr_factor, steps, denoise", [
    ((5.0, 0.05, 8), 0.2, 30, False),   # too few steps: the exact chain, not yet the data
    ((5.0, 0.05, 8), 1.0, 100, True),   # enough: N(μ, s²) up to Tweedie's small shrinkage
    ((2.0, 1.0, 2), 0.2, 100, True),    # σ_L = 1: the Tweedie step divides the variance by 25
])
def test_annealed_langevin_on_gaussian_scores(ladder, lr_factor, steps, denoise):
    sigmas = geometric_sigmas(*ladder)
    lr = lr_factor * ladder[1] ** 2
    n = 20000
    x0 = ladder[0] * jax.random.normal(jax.random.key(6), (n, 2))
    run = jax.jit(lambda x, k: annealed_langevin(gauss_score(sigmas), x, k, sigmas, steps, lr,
                                                 denoise=denoise))
    x = np.asarray(run(x0, jax.random.key(7)), np.float64)
    m, v = gaussian_chain(sigmas, steps, lr, denoise, ladder[0] ** 2)
    np.testing.assert_allclose(x.mean(0), [m, m], atol=5 * np.sqrt(v / n))
    np.testing.assert_allclose(x.var(0), [v, v], rtol=5 * np.sqrt(2 / n))
    if ladder[1] == 0.05 and lr_factor == 1.0:
        np.testing.assert_allclose(x.mean(0), MU, atol=0.02)
        np.testing.assert_allclose(x.std(0), S, rtol=0.03)


def test_annealed_langevin_is_one_compiled_loop():
    calls = []

    def score(x, i):
        calls.append(1)
        return -x

    sigmas = geometric_sigmas(2.0, 0.1, 6)
    f = lambda x, k: annealed_langevin(score, x, k, sigmas, 50, 1e-3, denoise=True)
    jaxpr = str(jax.make_jaxpr(f)(jnp.zeros((4, 2)), jax.random.key(0)))
    assert "scan" in jaxpr or "while" in jaxpr
    assert len(calls) == 2  # traced once in the loop body, once for the Tweedie step
    assert jax.jit(f)(jnp.zeros((4, 2)), jax.random.key(0)).shape == (4, 2)


def test_fixed_level_langevin_stationary_variance():
    """ULA on N(μ, V): x' = (1 − a/2V)(x − μ) + μ + √a z has variance V / (1 − a/4V)."""
    var, a, n = 0.5, 0.1, 20000
    x = langevin(lambda y: -(y - MU) / var, jnp.zeros((n, 1)), jax.random.key(8), a, 400)
    np.testing.assert_allclose(float(jnp.mean(x)), MU, atol=0.03)
    np.testing.assert_allclose(float(jnp.var(x)), var / (1 - a / (4 * var)), rtol=0.04)


def test_objective_from_the_config():
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(NCSN_TOY, TINY + ["objective.loss=ssm",
                                                       "sample.langevin_steps=3"])
    exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
    obj = exp.objective
    assert obj.name == "ncsn" and dict(obj.likelihoods) == {} and obj.likelihood_kind == "none"
    batch = {"x": jax.random.normal(jax.random.key(0), (16, 2))}
    params = jax.jit(obj.init)(jax.random.key(1), batch)
    grad_fn = jax.jit(jax.value_and_grad(obj.players[0].loss, has_aux=True))
    (l, m), g = grad_fn(params, batch, jax.random.key(2))
    assert np.isfinite(float(l)) and set(m) == {"ssm", "ssm_large_sigma", "ssm_small_sigma"}
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
    x = exp.sample(params, jax.random.key(3), 10)
    assert x.shape == (10, 2) and np.all(np.isfinite(x))
    with pytest.raises(ValueError, match="unconditional"):
        obj.sample(params, jax.random.key(3), 4, exp.sample_settings,
                   labels=jnp.zeros(4, jnp.int32))
    with pytest.raises(ValueError, match="dsm, ssm"):  # a declared setting: checked on load
        bad = config_lib.load_config(NCSN_TOY, ["objective.loss=esm"])
        Experiment(bad, DatasetInfo("8gaussians", "points", (2,)))


def test_cli_train_and_eval(tmp_path, capsys):
    from jaxgen import cli
    wd = tmp_path / "ncsn"
    # the commands in this process (fresh `python -m jaxgen` processes run in test_train)
    assert cli.main(["train", "--config", str(NCSN_TOY), "--workdir", str(wd),
                     *flags(TINY + ["sample.langevin_steps=4"])]) == 0, capsys.readouterr().err
    assert sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit()) \
        == [10, 20, 30]
    assert (wd / "samples" / "step_0000030.png").is_file()
    assert cli.main(["eval", "--workdir", str(wd)]) == 0, capsys.readouterr().err
    result = read_eval(wd)
    assert np.isfinite(result["mmd2"]) and result["mmd_num"] == 200
    assert result["likelihood"] == "none" and "nll_nats" not in result
