"""Straightness (Liu et al., 2022) against a closed form, and reflow end to end: a student
trained on a flow-matching run's couplings, through the CLI."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_TOY, flags

from jaxgen import cli
from jaxgen.eval.evaluate import read_eval
from jaxgen.samplers import ode


@pytest.mark.parametrize("s", [1.0, 0.3, 2.5])
def test_straightness_of_gaussian_data_is_its_closed_form(s):
    """Data N(0, s² I) on the straight path: the exact field moves x0 to x_t = σ(t) x0,
    σ(t) = √(t² s² + (1 − t)²), so S = E x0² ∫ (σ'(t) − (s − 1))² dt per dimension; 0 for
    s = 1 (x_t = x0: a point at rest)."""
    def sigma(t):
        return jnp.sqrt(t ** 2 * s ** 2 + (1 - t) ** 2)

    def field(x, t):
        ds = (t * s ** 2 - (1 - t)) / sigma(t)
        return ds / sigma(t) * x

    z = jax.random.normal(jax.random.key(0), (64, 3))
    n = 400
    with jax.enable_x64(True):
        got = np.asarray(ode.straightness(field, jnp.asarray(z, jnp.float64), num_steps=n,
                                          method="rk4"))
    t = np.arange(n) / n  # the metric's own grid
    ds = (t * s ** 2 - (1 - t)) / np.sqrt(t ** 2 * s ** 2 + (1 - t) ** 2)
    want = np.mean((ds - (s - 1)) ** 2) * np.mean(np.asarray(z, np.float64) ** 2, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    if s != 1.0:  # and the grid's mean is the integral, to O(1/n)
        exact = _integral(s)
        assert abs(np.mean((ds - (s - 1)) ** 2) - exact) < 5.0 / n * max(exact, 1e-3)


def _integral(s, m=200_000):
    t = (np.arange(m) + 0.5) / m
    ds = (t * s ** 2 - (1 - t)) / np.sqrt(t ** 2 * s ** 2 + (1 - t) ** 2)
    return float(np.mean((ds - (s - 1)) ** 2))


def test_reflow_trains_on_a_runs_couplings_and_eval_reports_straightness(tmp_path, capsys):
    base = ["--config", "flow_matching/toy2d", "--config.train.pictures=false",
            *flags([f for f in TINY_TOY if not f.startswith("train.steps")])]
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    assert cli.main(["train", "--workdir", str(teacher), *base,
                     "--config.train.steps=20"]) == 0
    assert cli.main(["train", "--workdir", str(student), *base, "--config.train.steps=6",
                     f"--config.objective.reflow_workdir={teacher}",
                     "--config.objective.reflow_steps=4"]) == 0
    assert cli.main(["eval", "--workdir", str(student), "--config.eval.num_examples=64"]) == 0
    res = read_eval(student)
    assert math.isfinite(res["straightness"]) and res["straightness"] >= 0
    assert res["straightness_steps"].startswith("rk4 x 8")
    capsys.readouterr()
    # a teacher that is not a flow-matching run is one clear error
    ddpm = tmp_path / "ddpm"
    assert cli.main(["train", "--config", "diffusion/ddpm_toy2d", "--workdir", str(ddpm),
                     "--config.train.steps=2", "--config.train.pictures=false",
                     "--config.train.progress=false", "--config.objective.num_steps=10",
                     "--config.model.features=(8,)"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--workdir", str(tmp_path / "bad"), *base,
                     "--config.train.steps=2", f"--config.objective.reflow_workdir={ddpm}"]) == 2
    assert "reflow draws its couplings from a flow-matching run" in capsys.readouterr().err
