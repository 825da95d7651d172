"""Progressive GAN (jaxgen/nn/progan.py): the schedule, the paper's layers against their
formulas, exact continuity of every fade-in, one compiled program through the whole growth,
and a resume that lands mid-fade exactly."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, fast_compile, fast_jit, load_final_state, read_metrics

from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import UserError
from jaxgen.nn.progan import (
    EqualizedConv,
    EqualizedDense,
    ProGAN,
    growth_schedule,
    level_weights,
    minibatch_stddev,
    pixel_norm,
)
from jaxgen.runner.experiment import Experiment
from jaxgen.runner.loop import train_and_evaluate

PROGAN = ROOT / "configs" / "gan" / "progan_fashion_mnist.py"


def test_growth_schedule_table():
    # P = 10, 3 stages: 7x7 for 10 steps, fade 14 over 10, stable 10, fade 28 over 10, stay
    table = {0: (0, 1.0), 9: (0, 1.0), 10: (1, 0.0), 15: (1, 0.5), 19: (1, 0.9), 20: (1, 1.0),
             29: (1, 1.0), 30: (2, 0.0), 35: (2, 0.5), 40: (2, 1.0), 10**6: (2, 1.0)}
    for step, (stage, alpha) in table.items():
        s, a = growth_schedule(step, 10, 3)
        assert int(s) == stage and float(a) == pytest.approx(alpha, abs=1e-6), step
    m = ProGAN(phase_steps=10)
    assert [m.resolution(s) for s in range(3)] == [7, 14, 28]
    out, deep, sharp = level_weights(jnp.int32(2), jnp.float32(0.25), 3)
    np.testing.assert_allclose(out, [0, 0.75, 0.25])
    np.testing.assert_allclose(deep, [1, 0.25, 0])
    np.testing.assert_allclose(sharp, [1, 1, 0.25])


def test_equalized_layers_scale_an_n01_kernel_by_he_constant():
    x = jax.random.normal(jax.random.key(0), (5, 7, 7, 6))
    dense = EqualizedDense(16)
    p = dense.init(jax.random.key(1), x[:, 0, 0])
    k = p["params"]["kernel"]
    assert abs(float(jnp.std(k)) - 1.0) < 0.15  # N(0, 1) weights (96 of them)
    p = jax.tree.map(lambda v: v + 0.1, p)  # a non-zero bias too
    want = x[:, 0, 0] @ (p["params"]["kernel"] * math.sqrt(2.0) / math.sqrt(6)) + 0.1
    np.testing.assert_allclose(dense.apply(p, x[:, 0, 0]), want, rtol=1e-5, atol=1e-6)

    conv = EqualizedConv(4, 3, gain=1.0)
    p = conv.init(jax.random.key(2), x)
    ref = jax.lax.conv_general_dilated(x, p["params"]["kernel"] / math.sqrt(9 * 6), (1, 1),
                                       "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(conv.apply(p, x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_norm_unit_mean_square_and_scale_invariance(seed):
    a = jax.random.normal(jax.random.key(seed), (3, 5, 5, 8)) * (seed + 0.5)
    b = pixel_norm(a)
    np.testing.assert_allclose(jnp.mean(b ** 2, -1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pixel_norm(7.0 * a), b, rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_against_a_loop():
    x = np.asarray(jax.random.normal(jax.random.key(3), (8, 3, 3, 5)))
    y = np.asarray(minibatch_stddev(jnp.asarray(x), 4))
    assert y.shape == (8, 3, 3, 6)
    np.testing.assert_array_equal(y[..., :5], x)
    for n in range(8):  # groups of 4 strided rows: {n mod 2, n mod 2 + 2, ...}
        members = x[n % 2::2]
        want = np.mean(np.sqrt(members.var(axis=0) + 1e-8))
        np.testing.assert_allclose(y[n, :, :, 5], want, rtol=1e-5)
    # a batch of 6 with groups of (at most) 4: groups of 3, rows {n mod 2, n mod 2 + 2, ...}
    y6 = np.asarray(minibatch_stddev(jnp.asarray(x[:6]), 4))
    for n in range(6):
        want = np.mean(np.sqrt(x[:6][n % 2::2].var(axis=0) + 1e-8))
        np.testing.assert_allclose(y6[n, :, :, 5], want, rtol=1e-5)


def _stagewise_fn(m):
    """(params, z, x, stage, alpha) -> (G's images, D's outputs) at that stage and alpha,
    compiled once (stage and alpha are traced)."""
    def f(params, z, x, s, a):
        g = m.apply(params, z, s, a, method=lambda mm, z, s, a: mm.generator(z, s, a))
        d = m.apply(params, x, s, a, method=lambda mm, x, s, a: mm.discriminator(x, s, a))
        return g, d
    compiled = {}

    def run(params, z, x, stage, alpha):
        args = (params, z, x, jnp.int32(stage), jnp.float32(alpha))
        if "f" not in compiled:
            compiled["f"] = fast_compile(f, *args)
        return compiled["f"](*args)
    return run


def test_every_fade_in_starts_where_the_previous_stage_ends():
    m = ProGAN(latent_dim=8, g_channels=(8, 8, 8), d_channels=(8, 8, 8), phase_steps=10)
    z = jax.random.normal(jax.random.key(0), (8, 8))
    x = jax.random.normal(jax.random.key(1), (8, 28, 28, 1))
    params = fast_jit(m.init, jax.random.key(2), z)
    leaves, tree = jax.tree.flatten(params)  # biases off zero: nothing cancels by accident
    keys = jax.random.split(jax.random.key(3), len(leaves))
    params = tree.unflatten([p + 0.1 * jax.random.normal(k, p.shape)
                             for p, k in zip(leaves, keys)])
    _stagewise = _stagewise_fn(m)
    for s in (1, 2):
        g_new, d_new = _stagewise(params, z, x, s, 0.0)
        g_old, d_old = _stagewise(params, z, x, s - 1, 1.0)
        np.testing.assert_allclose(g_new, g_old, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d_new, d_old, rtol=1e-5, atol=1e-5)
        g_mid, _ = _stagewise(params, z, x, s, 0.3)  # G is linear in alpha
        g_one, _ = _stagewise(params, z, x, s, 1.0)
        np.testing.assert_allclose(g_mid, 0.3 * g_one + 0.7 * g_old, rtol=1e-5, atol=1e-5)
    # a stage-0 image is constant on 4x4 blocks (a 7x7 image upsampled), a stage-1 one on 2x2
    g0, _ = _stagewise(params, z, x, 0, 1.0)
    np.testing.assert_array_equal(g0[:, ::4, ::4], g0[:, 3::4, 3::4])
    g1, _ = _stagewise(params, z, x, 1, 1.0)
    np.testing.assert_array_equal(g1[:, ::2, ::2], g1[:, 1::2, 1::2])
    assert not np.allclose(g1[:, ::4, ::4], g1[:, 2::4, 2::4])
    # levels not grown yet get zero gradients
    grads = fast_jit(jax.grad(lambda p: jnp.sum(m.apply(
        p, z, jnp.int32(0), jnp.float32(1.0), method=lambda mm, z, s, a: mm.generator(z, s, a)))),
        params)
    g = grads["params"]["generator"]
    assert float(jnp.abs(g["to_rgb_2"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(g["block_2"]["conv_1"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(g["block_0"]["conv_1"]["kernel"]).max()) > 0.0


def test_bad_settings_say_what_to_do():
    z = jnp.zeros((4, 8))
    with pytest.raises(UserError, match="divisible by 8"):
        ProGAN(event_shape=(28, 28, 1), latent_dim=8, g_channels=(8,) * 4,
               d_channels=(8,) * 4).init(jax.random.key(0), z)
    with pytest.raises(UserError, match="one width per resolution"):
        ProGAN(latent_dim=8, g_channels=(8, 8, 8), d_channels=(8, 8)).init(jax.random.key(0), z)


TINY = ["train.steps=16", "train.batch_size=8", "train.log_every=2", "train.checkpoint_every=6",
        "train.progress=false", "train.sample_every=0", "train.pictures=false",
        "model.phase_steps=4", "model.latent_dim=8", "model.g_channels=(8, 8, 4)",
        "model.d_channels=(8, 8, 4)", "eval.fd_num=0"]


# minutes of CPU; the fade-ins and the growth schedule are in
# test_every_fade_in_starts_where_the_previous_stage_ends
@pytest.mark.heavy
def test_growth_is_one_program_and_a_resume_lands_mid_fade_exactly(tmp_path, monkeypatch):
    jitted = []
    build = Experiment.train_step

    def spy(self):
        fn = build(self)
        jitted.append(fn)
        return fn
    monkeypatch.setattr(Experiment, "train_step", spy)
    cfg = config_lib.load_config(PROGAN, TINY)
    train_and_evaluate(cfg, tmp_path / "full")
    # steps 0..15 with P = 4: 7x7, the fade to 14, 14x14 stable, the fade to 28
    m = read_metrics(tmp_path / "full")
    assert [r["discriminator/resolution"] for r in m] == [7, 7, 14, 14, 14, 14, 28, 28]
    np.testing.assert_allclose([r["discriminator/alpha"] for r in m],
                               [1, 1, 0.25, 0.75, 1, 1, 0.25, 0.75])
    # the loop compiles its step once, ahead of time, and calls only that program: a
    # resolution change that needed another one would have failed the call
    assert len(jitted) == 1 and jitted[0]._cache_size() == 0

    # a resume from step 6, in the middle of the fade to 14x14 (alpha = 0.5)
    first_six = config_lib.load_config(PROGAN, [*TINY, "train.steps=6"])
    train_and_evaluate(first_six, tmp_path / "part")
    assert train_and_evaluate(cfg, tmp_path / "part")["steps"] == "6 -> 16 of 16"
    a, _ = load_final_state(tmp_path / "full")
    b, _ = load_final_state(tmp_path / "part")
    assert int(a.params["growth"]["step"]) == int(b.params["growth"]["step"]) == 16
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "part")
