"""Flow matching against the closed form for Gaussian data.

For data x1 ~ N(m, s² I) and noise x0 ~ N(0, I), x_t = t·x1 + (1 − t)·x0 is
Gaussian and the marginal velocity E[x1 − x0 | x_t = x] is linear:

    u*(x, t) = m + (t s² − (1 − t)) / (t² s² + (1 − t)²) · (x − t m)

It is the minimiser of the lecture's loss, its flow carries N(0, I) to
N(m, s² I), and the exact likelihood of that flow is log N(x; m, s² I).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.families.flow_matching.objective import cfm_loss
from jaxgen.samplers import ode

M, S = 1.5, 0.5


def u_star(x, t, m=M, s=S):
    t = jnp.reshape(t, (-1,) + (1,) * (x.ndim - 1)) if jnp.ndim(t) else t
    c = (t * s**2 - (1 - t)) / (t**2 * s**2 + (1 - t) ** 2)
    return m + c * (x - t * m)


def gauss_logpdf(x, m=M, s=S):
    d = x[0].size
    sq = jnp.sum(((x - m) / s) ** 2, axis=tuple(range(1, x.ndim)))
    return -0.5 * sq - d * jnp.log(s) - 0.5 * d * jnp.log(2 * jnp.pi)


def shifted_field(params, x, t):
    return u_star(x, t) + params["c"]


@pytest.mark.parametrize("shape", [(2,), (3, 4, 1)])
def test_true_field_minimises_the_loss(shape):
    """loss(u* + c) − loss(u*) = c² + O(1/√B): no cross term at the optimum."""
    key = jax.random.key(0)
    x1 = M + S * jax.random.normal(jax.random.key(1), (20000, *shape))
    loss = jax.jit(functools.partial(cfm_loss, apply_fn=shifted_field))
    l0, _ = loss({"model": {"c": 0.0}}, {"x": x1}, key)
    for c in (0.1, -0.3, 0.5):
        lc, _ = loss({"model": {"c": c}}, {"x": x1}, key)
        np.testing.assert_allclose(float(lc - l0), c**2, atol=0.02 * abs(c) + 1e-3)
    g = jax.grad(lambda c: loss({"model": {"c": c}}, {"x": x1}, key)[0])(0.0)
    assert abs(float(g)) < 0.05


def test_true_field_transports_noise_to_data():
    z = jax.random.normal(jax.random.key(2), (20000, 2))
    for method, steps in (("euler", 400), ("heun", 50), ("rk4", 20)):
        x = ode.odeint(u_star, z, 0.0, 1.0, steps, method)
        np.testing.assert_allclose(np.mean(x, 0), [M, M], atol=0.03)
        np.testing.assert_allclose(np.std(x, 0), [S, S], atol=0.03)


@pytest.mark.parametrize("shape, divergence", [((2,), "exact"), ((3, 4, 1), "exact"),
                                               ((3, 4, 1), "hutchinson")])
def test_exact_likelihood_of_the_true_field(shape, divergence):
    """The ODE likelihood of u*'s flow equals log N(x; m, s² I).

    u* has a diagonal Jacobian, so Rademacher Hutchinson is exact here too.
    """
    x = M + 1.3 * S * jax.random.normal(jax.random.key(3), (64, *shape))
    logp, _ = ode.log_likelihood(u_star, x, num_steps=200, method="rk4", divergence=divergence,
                                 rng=jax.random.key(4))
    np.testing.assert_allclose(logp, gauss_logpdf(x), rtol=1e-4, atol=2e-3)


def test_loss_reads_like_the_lecture():
    """With u ≡ 0 the loss is E‖x1 − x0‖²/D = (m² + s² + 1) per dimension."""
    x1 = M + S * jax.random.normal(jax.random.key(5), (50000, 2))
    l, m = cfm_loss({"model": {}}, {"x": x1}, jax.random.key(6),
                    apply_fn=lambda p, x, t: jnp.zeros_like(x))
    np.testing.assert_allclose(float(l), M**2 + S**2 + 1, rtol=0.02)
    assert set(m) == {"fm_mse", "velocity_norm"}


@pytest.mark.parametrize("seed", range(3))
def test_the_straight_path_is_the_lectures_with_noise_at_t_0(seed):
    """Deck 002 states noise at t = 0, data at t = 1 and the target x1 - x0, but writes
    x_t = t x0 + (1 - t) x1, whose time derivative is x0 - x1 (the target's negative) and
    which is data at t = 0. jaxgen's straight path is x_t = t x1 + (1 - t) x0: noise (x0)
    at t = 0, and its derivative is exactly the lecture's target x1 - x0."""
    from jaxgen.processes.paths import make_path
    k0, k1, kt = jax.random.split(jax.random.key(seed), 3)
    x0, x1 = jax.random.normal(k0, (64, 3)), 3.0 + jax.random.normal(k1, (64, 3))
    t = jax.random.uniform(kt, (64,))
    xt, dxt = make_path("straight").sample(x0, x1, t)
    np.testing.assert_allclose(xt, t[:, None] * x1 + (1 - t[:, None]) * x0, atol=1e-6)
    np.testing.assert_array_equal(dxt, x1 - x0)
    ends = make_path("straight").sample(x0, x1, jnp.zeros(64))[0], \
        make_path("straight").sample(x0, x1, jnp.ones(64))[0]
    np.testing.assert_array_equal(ends[0], x0)  # noise at t = 0
    np.testing.assert_array_equal(ends[1], x1)  # data at t = 1
    written = t[:, None] * x0 + (1 - t[:, None]) * x1  # the slide's formula, as written
    d_written = jax.vmap(jax.jacfwd(lambda tt, a, b: tt * a + (1 - tt) * b))(t, x0, x1)
    np.testing.assert_allclose(d_written, x0 - x1, atol=1e-6)
    assert not np.allclose(written, xt)


def _biased_x1_field():
    """The field an x1-predictor gives on the cosine path (the family's converter, its
    default floor): the posterior mean E[x1 | x_t] of x1 ~ N(m, s² I), off by 0.05, as a
    trained network is. Its error is multiplied by (π/2)/σ_t in the velocity."""
    from jaxgen.families.flow_matching.objective import velocity
    from jaxgen.processes.paths import CosinePath
    path = CosinePath()

    def x1_hat(params, x, t):
        a, s = path.alpha(t[:, None]), path.sigma(t[:, None])
        return M + a * S**2 / (a**2 * S**2 + s**2) * (x - a * M) + 0.05

    return velocity(x1_hat, {"model": None}, path=path, prediction="x1")


def test_x1_prediction_likelihood_converges_with_ode_steps():
    """The ODE likelihood of a fixed smooth x1-predictor's field: rk4 x 50 and x 200 agree
    to 1e-3 nats (with σ_t only clamped at t = 1 − 10⁻³ they differed by 0.17, and 1000
    steps moved it again)."""
    u = _biased_x1_field()
    x = M + S * jax.random.normal(jax.random.key(7), (256, 2))
    lp = {n: float(jnp.mean(ode.log_likelihood(u, x, num_steps=n, method="rk4")[0]))
          for n in (50, 200)}
    assert abs(lp[50] - lp[200]) < 1e-3, lp


def test_a_trained_x1_models_density_integrates_to_one(tmp_path):
    """A small x1-predicting model on the cosine path, trained 200 steps: exp(log p) over a
    121 x 121 grid covering the mass, with the RK4 x 32 of the density picture, sums to 1
    within 0.01 (with σ_t only clamped at t = 1 − 10⁻³ it was 1.87: the solver had not
    converged; 1.05 at RK4 x 100)."""
    from conftest import TINY_TOY

    import jaxgen
    cfg = jaxgen.load_config("flow_matching/toy2d", [
        *TINY_TOY, "train.steps=200", "train.log_every=100", "train.checkpoint_every=200",
        "train.pictures=false", "objective.path=cosine", "objective.prediction=x1"])
    run = jaxgen.train(cfg, tmp_path / "run")
    g = jnp.linspace(-6.0, 6.0, 121)
    grid = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
    lp, _ = ode.log_likelihood(run.objective.tools.velocity(run.params), grid, num_steps=32,
                               method="rk4")
    np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp)) * (g[1] - g[0]) ** 2), 1.0, atol=0.01)


def test_sigma_min_alone_trains_the_ot_path_and_cosine_refuses_it_in_one_line(tmp_path,
                                                                              capsys):
    """--config.objective.sigma_min=0.01 (configs/flow_matching/toy2d.py's comment) selects
    Lipman et al.'s OT path, as before paths had names; with path=cosine it is one
    `jaxgen: error` line (exit 2), in train and eval, not a traceback."""
    from conftest import TINY_TOY

    from jaxgen import cli
    from jaxgen.kernel import config as config_lib
    from jaxgen.processes.paths import OTPath
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config("flow_matching/toy2d", [*TINY_TOY, "objective.sigma_min=0.01"])
    exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
    assert exp.objective.tools.path == OTPath(0.01)
    flags = [f"--config.{o}" for o in TINY_TOY]
    train = ["train", "--config", "flow_matching/toy2d", "--workdir", str(tmp_path / "run"),
             *flags, "--config.train.pictures=false"]
    assert cli.main([*train, "--config.objective.path=cosine",
                     "--config.objective.sigma_min=0.01"]) == 2
    err = capsys.readouterr().err
    assert err == ("jaxgen: error: objective.sigma_min=0.01 is the width of the straight (ot) "
                   "path; path=cosine ends at sigma = 0 and has none: set "
                   "objective.sigma_min=0, or objective.path=ot for the sigma_min path.\n")
    assert cli.main([*train, "--config.objective.path=cosine"]) == 0
    assert cli.main(["eval", "--workdir", str(tmp_path / "run"),
                     "--config.objective.sigma_min=0.1"]) == 2
    assert capsys.readouterr().err.startswith("jaxgen: error: objective.sigma_min=0.1 is the")
