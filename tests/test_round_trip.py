"""x -> z -> x round trips: DDIM inversion, the flow-matching ODE backwards, a flow's
bijection, an autoencoder's encoder; each against something exact."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.kernel import config as config_lib
from jaxgen.kernel.contract import round_trip_of
from jaxgen.processes import diffusion as dp
from jaxgen.runner.experiment import DatasetInfo, Experiment
from jaxgen.samplers import ddpm as samplers

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("seed", range(4))
def test_ddim_inversion_is_the_exact_inverse_when_eps_does_not_read_x(seed):
    """With ε(x, t) = g(t) the inversion's step and the sampler's step read the same ε, and
    the round trip x -> x_T -> x is the identity up to float rounding, for any schedule and
    any subset of timesteps."""
    rng = np.random.default_rng(seed)
    s = dp.make_schedule(("linear", "cosine")[seed % 2], 1000)
    steps = int(rng.integers(2, 60))
    taus = samplers.ddim_timesteps(steps, 1000)
    # float64: the steps divide by √ᾱ (down to 5e-5 for the cosine schedule), which would
    # magnify float32 rounding beyond what the identity is about
    with jax.enable_x64(True):
        g = jnp.asarray(rng.normal(size=(1001, 3)), jnp.float64)

        def eps(x, t):
            return jnp.broadcast_to(g[t], x.shape)

        x0 = jnp.asarray(rng.normal(size=(5, 3)), jnp.float64)
        x_T = samplers.ddim_invert(eps, s, x0, timesteps=taus[::-1])
        back = samplers.ddim(eps, s, x_T, jax.random.key(0), timesteps=taus)
        assert float(jnp.max(jnp.abs(back - x0))) < 1e-9
    assert float(jnp.max(jnp.abs(x_T - x0))) > 0.1  # it went somewhere


def test_ddim_inversion_with_the_exact_eps_of_gaussian_data_converges_with_the_steps():
    """Data N(0, c² I): ε*(x_t, t) = √(1 − ᾱ) x_t / (ᾱ c² + 1 − ᾱ) exactly. The inversion
    then maps x to x_T = x · √(ᾱ_T c² + 1 − ᾱ_T) / c along the probability-flow ODE, and
    the round trip error falls as the steps grow."""
    s = dp.make_schedule("linear", 1000)
    c = 0.5

    def eps(x, t):
        ab = s.alpha_bars[t]
        return jnp.sqrt(1 - ab) * x / (ab * c ** 2 + 1 - ab)

    x0 = jnp.asarray(np.random.default_rng(0).normal(size=(64, 2)) * c, jnp.float32)
    errs, ends = [], []
    for steps in (10, 50, 250):
        taus = samplers.ddim_timesteps(steps, 1000)
        x_T = samplers.ddim_invert(eps, s, x0, timesteps=taus[::-1])
        back = samplers.ddim(eps, s, x_T, jax.random.key(0), timesteps=taus)
        errs.append(float(jnp.sqrt(jnp.mean((back - x0) ** 2))))
        ab_T = float(s.alpha_bars[1000])
        ends.append(float(jnp.max(jnp.abs(x_T - x0 * np.sqrt(ab_T * c ** 2 + 1 - ab_T) / c))))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.02, errs
    assert ends[2] < 0.05, ends


def _experiment(config, event_shape, *overrides):
    cfg = config_lib.load_config(CONFIGS / config, ["train.batch_size=4", *overrides])
    kind = "images" if len(event_shape) == 3 else "points"
    return Experiment(cfg, DatasetInfo("array", kind, tuple(event_shape)))


def _round_trip_error(exp, x, seed=0):
    params = exp.init_state({"x": x}).params
    rt = round_trip_of(exp.objective)
    z = rt.encode(params, x, jax.random.key(seed))
    return rt, z, float(jnp.max(jnp.abs(rt.decode(params, z) - x)))


def test_a_flows_round_trip_is_its_bijection_exactly():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 2)), jnp.float32)
    rt, z, err = _round_trip_error(_experiment("flows/realnvp_toy2d.py", (2,)), x)
    assert rt.exact and err < 1e-5 and z.shape == x.shape


def test_flow_matchings_round_trip_integrates_the_ode_back_and_forth():
    """RK4 backwards then forwards on the same grid: the error is O(h⁴), far below the
    distance travelled, and shrinks with eval.inversion_steps."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(8, 2)), jnp.float32)
    errs = []
    for steps in (2, 16):
        exp = _experiment("flow_matching/toy2d.py", (2,), f"eval.inversion_steps={steps}")
        rt, z, err = _round_trip_error(exp, x)
        assert f"{steps} RK4 steps" in rt.how and not rt.exact
        errs.append(err)
    assert errs[1] < errs[0] and errs[1] < 1e-4, errs


def test_ddpms_round_trip_is_ddim_inversion_on_eval_inversion_steps():
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 2)), jnp.float32)
    exp = _experiment("diffusion/ddpm_toy2d.py", (2,), "eval.inversion_steps=20")
    rt, z, err = _round_trip_error(exp, x)
    assert "DDIM inversion" in rt.how and "20 steps" in rt.how
    assert z.shape == x.shape and np.isfinite(err)
    with pytest.raises(Exception, match="inversion_stepz"):
        _experiment("diffusion/ddpm_toy2d.py", (2,), "eval.inversion_stepz=20")


def test_an_autoencoders_round_trip_is_its_encoder_mean_and_decoder():
    exp = _experiment("vae/vae_toy2d.py", (2,))
    x = jnp.asarray(np.random.default_rng(4).normal(size=(6, 2)), jnp.float32)
    params = exp.init_state({"x": x}).params
    rt, ae = round_trip_of(exp.objective), exp.objective.autoencoder
    z = rt.encode(params, x, jax.random.key(0))
    np.testing.assert_array_equal(z, ae.encode(params, x))
    np.testing.assert_array_equal(rt.decode(params, z), ae.decode(params, z))
    assert not rt.exact


def test_a_model_without_a_latent_has_no_round_trip():
    exp = _experiment("autoregressive/ar_toy.py", (2,))
    assert round_trip_of(exp.objective) is None


def test_a_gans_round_trip_inverts_by_optimisation_and_recovers_its_own_samples():
    """x = G(z*) is in the range of G: Adam from random starts finds a z with G(z) ≈ x."""
    exp = _experiment("gan/ns_toy2d.py", (2,), "model.g_features=(16,)",
                      "model.d_features=(16,)")
    params = exp.init_state({"x": jnp.zeros((4, 2))}).params
    rt = round_trip_of(exp.objective)
    z_true = jax.random.normal(jax.random.key(5), (6, exp.objective.tools.latent_dim))
    x = rt.decode(params, z_true)
    back = rt.decode(params, rt.encode(params, x, jax.random.key(6)))
    assert "argmin" in rt.how and not rt.exact
    assert float(jnp.max(jnp.abs(back - x))) < 1e-2 * float(jnp.max(jnp.abs(x)))
