"""Training options: gradient accumulation, bfloat16 compute with float32 params, XLA options."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, read_metrics

from jaxgen.data import get_dataset
from jaxgen.data.pipeline import BatchPipeline
from jaxgen.kernel import config as config_lib
from jaxgen.kernel.config import ConfigError
from jaxgen.nn.precision import MixedPrecisionModel, matmul_precision, with_compute_dtype
from jaxgen.runner import distributed
from jaxgen.runner.experiment import DatasetInfo, Experiment
from jaxgen.runner.loop import train_and_evaluate

REALNVP_TOY = ROOT / "configs" / "flows" / "realnvp_toy2d.py"
SMALL_FLOW = ["model.num_layers=2", "model.hidden=(16, 16)", "train.batch_size=64",
              "data.num_train=512", "data.num_eval=128", "optim.warmup_steps=1"]


def _steps(cfg, n):
    """n train steps of cfg from its initial state on the pipeline's first n batches."""
    dataset = get_dataset(cfg.data, "train")
    exp = Experiment(cfg, DatasetInfo.of(dataset))
    pipe = BatchPipeline(dataset.source, cfg.train.batch_size, cfg.seed)
    glob = [distributed.to_global(pipe.local_batch(i), exp.mesh, cfg.train.batch_size)
            for i in range(n)]
    state, step = exp.init_state(glob[0]), exp.train_step()
    losses = []
    for b in glob:
        state, m = step(state, b)
        losses.append(float(m["loss"]))
    return state, losses


@pytest.mark.parametrize("accum", [2, 8])
def test_grad_accumulation_gives_the_whole_batch_update(accum):
    """A flow's exact NLL draws no randomness, so a micro-batches' mean gradient is the
    whole batch's: the same params after 3 Adam steps, up to float rounding."""
    base = config_lib.load_config(REALNVP_TOY, SMALL_FLOW)
    acc = config_lib.load_config(REALNVP_TOY, SMALL_FLOW + [f"train.grad_accum={accum}"])
    a, la = _steps(base, 3)
    b, lb = _steps(acc, 3)
    np.testing.assert_allclose(la, lb, rtol=2e-5)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=2e-6)
    moved = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                zip(jax.tree.leaves(a.params), jax.tree.leaves(_steps(base, 1)[0].params)))
    assert moved > 1e-4  # the comparison is not of untrained params


def test_grad_accumulation_must_divide_the_batch():
    with pytest.raises(ConfigError, match="multiple of train.grad_accum=5"):
        config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.grad_accum=5"])
    with pytest.raises(ConfigError, match="grad_accum"):
        config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.grad_accum=0"])
    with pytest.raises(ConfigError, match="bfloat16"):
        config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.compute_dtype=fp8"])


def _tiny_unet():
    from jaxgen.nn import UNet
    return UNet(channels=(8,), num_res_blocks=1, time_dim=8, groups=4)


def test_bf16_model_computes_in_bf16_and_keeps_float32_params_and_grads():
    model = _tiny_unet()
    mixed = with_compute_dtype(model, "bfloat16")
    assert type(mixed) is MixedPrecisionModel and with_compute_dtype(model, "float32") is model
    assert isinstance(mixed, type(model))  # objectives that check the model's class accept it
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    t = jnp.linspace(0.1, 0.9, 4)
    params = jax.jit(mixed.init)(jax.random.key(1, impl="rbg"), x, t)  # rbg: fast to compile
    assert {v.dtype for v in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    rng = np.random.default_rng(2)  # the output conv starts at 0: perturb every param
    params = jax.tree.map(lambda v: v + 0.1 * rng.standard_normal(v.shape, np.float32), params)
    # the convolutions and matmuls run on bf16 operands
    jaxpr = str(jax.make_jaxpr(lambda p: mixed.apply(p, x, t))(params))
    assert "conv_general_dilated" in jaxpr
    for line in jaxpr.splitlines():
        if "conv_general_dilated[" in line or "dot_general[" in line:
            assert "bf16" in line, line
    out32, out16 = (jax.jit(m.apply)(params, x, t) for m in (model, mixed))
    assert out16.dtype == jnp.float32
    rel = float(jnp.linalg.norm(out16 - out32) / jnp.linalg.norm(out32))
    assert 1e-4 < rel < 3e-2  # bf16 rounding (8 bits of mantissa), not a different function

    def loss(p, m):
        return jnp.mean(m.apply(p, x, t) ** 2)
    g32, g16 = (jax.jit(jax.grad(loss), static_argnums=1)(params, m) for m in (model, mixed))
    assert {v.dtype for v in jax.tree.leaves(g16)} == {jnp.dtype(jnp.float32)}
    a = jnp.concatenate([v.ravel() for v in jax.tree.leaves(g32)])
    b = jnp.concatenate([v.ravel() for v in jax.tree.leaves(g16)])
    assert float(a @ b / jnp.linalg.norm(a) / jnp.linalg.norm(b)) > 0.99


def test_matmul_precision_reaches_the_lowered_float32_dots_and_convs():
    """train.matmul_precision / eval.matmul_precision: "default" leaves float32 dots and
    convolutions at XLA's DEFAULT (TF32 on an H100, one bf16 pass on a TPU), "highest"
    asks for full float32 in the program itself."""
    from jaxgen.kernel.errors import UserError

    def f(a, x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return a @ a.T, y
    args = (jnp.ones((4, 5)), jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 3)))
    for name, hlo in (("default", "DEFAULT"), ("high", "HIGH"), ("highest", "HIGHEST")):
        with matmul_precision(name):
            assert jax.config.jax_default_matmul_precision == (None if name == "default"
                                                                else name)
            text = jax.jit(f).lower(*args).as_text()
        dot = next(ln for ln in text.splitlines() if "stablehlo.dot_general" in ln)
        conv = next(ln for ln in text.splitlines() if "stablehlo.convolution" in ln)
        assert f"precision = [{hlo}, {hlo}]" in dot, (name, dot)
        assert f"#stablehlo<precision {hlo}>" in conv, (name, conv)
        if name != "default":  # the setting applied inside the block only
            assert jax.config.jax_default_matmul_precision is None
    # the declared settings' defaults and choices
    cfg = config_lib.load_config(REALNVP_TOY, SMALL_FLOW)
    assert (cfg.train.matmul_precision, cfg.eval.matmul_precision) == ("default", "highest")
    for name in ("default", "high", "highest"):
        config_lib.load_config(REALNVP_TOY, SMALL_FLOW + [f"train.matmul_precision={name}"])
    with pytest.raises(ConfigError, match="matmul_precision"):
        config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.matmul_precision=tf32"])
    with pytest.raises(UserError, match="default, high, highest"):
        matmul_precision("tf32")


# 2 x 200 training steps; by default test_bf16_model_computes_in_bf16_and_keeps_float32_params_
# and_grads and test_bf16_share hold what bf16 computes in and keeps
@pytest.mark.heavy
def test_bf16_loss_curve_tracks_float32(tmp_path):
    """The toy RealNVP run (exact NLL), 200 steps in float32 and in bfloat16 compute from
    the same init and batches: the loss logged every 20 steps agrees within 2 % (measured:
    0.9 % at most, 0.015 nats, against 0.33 nats of progress)."""
    common = ["train.steps=200", "train.batch_size=128", "train.log_every=20",
              "train.checkpoint_every=200", "train.sample_every=0", "train.progress=false",
              "model.num_layers=4", "model.hidden=(32, 32)", "data.num_train=4096",
              "data.num_eval=256", "sample.num=100", "optim.warmup_steps=10",
              "optim.learning_rate=0.005"]
    runs = {}
    for dtype in ("float32", "bfloat16"):
        cfg = config_lib.load_config(REALNVP_TOY, common + [f"train.compute_dtype={dtype}"])
        train_and_evaluate(cfg, tmp_path / dtype)
        runs[dtype] = np.array([m["loss"] for m in read_metrics(tmp_path / dtype)])
    a, b = runs["float32"], runs["bfloat16"]
    assert len(a) == len(b) == 10 and a[0] - a[-1] > 0.2  # it trained
    rel = np.abs(b - a) / np.abs(a)
    print("float32", a, "\nbfloat16", b, "\nrelative difference", rel)
    assert rel.max() < 0.02, rel
    assert np.abs(b - a).max() < 0.1 * (a[0] - a[-1])
    assert rel.max() > 0  # bf16 did change the arithmetic


def test_xla_options_reach_the_compiler_and_keep_the_numbers():
    """train.xla_options: XLA's own defaults ("none") and jaxgen's (on CPU: YNNPACK for
    reductions and dots only) compute the same step."""
    from jaxgen.runner.experiment import CPU_IMAGE_TRAIN_XLA_OPTIONS as CPU_IMAGES
    from jaxgen.runner.experiment import xla_options
    assert xla_options("", "cpu", "images") == CPU_IMAGES
    assert xla_options("", "cpu", "points") == xla_options("", "gpu", "images") == {}
    assert xla_options("none", "cpu", "images") == xla_options(None, "cpu", "images") == {}
    assert xla_options("a=1, b=", "cpu") == {"a": "1", "b": ""}
    assert xla_options("a=X,Y, b=2,c=", "cpu") == {"a": "X,Y", "b": "2", "c": ""}
    opts = "train.xla_options=xla_cpu_experimental_ynn_fusion_type="
    _, la = _steps(config_lib.load_config(REALNVP_TOY, SMALL_FLOW), 2)
    _, lb = _steps(config_lib.load_config(REALNVP_TOY, SMALL_FLOW + [opts]), 2)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    bad = config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.xla_options=no_such_flag=1"])
    with pytest.raises(Exception, match="no_such_flag"):
        _steps(bad, 1)
    with pytest.raises(ValueError, match="not key=value"):
        _steps(config_lib.load_config(REALNVP_TOY, SMALL_FLOW + ["train.xla_options=oops"]), 1)


def test_the_trainer_and_the_likelihoods_trace_under_their_matmul_precision(tiny_toy_config):
    """train.matmul_precision reaches the train step; eval.matmul_precision (default: full
    float32) the likelihoods."""
    from conftest import TOY_CONFIG  # noqa: F401 - tiny_toy_config builds on it

    def step_text(cfg):
        exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
        return exp, exp.train_step().lower(exp.abstract_state(), exp.abstract_batch()).as_text()

    _, default = step_text(tiny_toy_config())
    _, highest = step_text(tiny_toy_config("train.matmul_precision=highest"))
    assert "HIGHEST" not in default and "precision = [HIGHEST, HIGHEST]" in highest
    exp, _ = step_text(tiny_toy_config())
    state = exp.abstract_state()
    x = jax.ShapeDtypeStruct((8, 2), jnp.float32)
    for eval_p, want in (("highest", True), ("default", False)):
        e = Experiment(tiny_toy_config(f"eval.matmul_precision={eval_p}"), exp.info)
        fn = e._loglik_jit(e.objective.default_likelihood, 2, "euler", "exact")
        text = fn.lower(state.ema_params, x, jax.random.key(0)).as_text()
        assert ("HIGHEST" in text) == want, eval_p
