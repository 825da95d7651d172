"""Flow models and the exact-likelihood objective, through the core trainer."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import NO_PICTURES, ROOT, fast_jit, flags, load_final_state, read_metrics, run_cli

from jaxgen.bijectors import standard_normal_log_prob
from jaxgen.eval.evaluate import read_eval
from jaxgen.families.flows.objective import nll_loss
from jaxgen.kernel import config as config_lib
from jaxgen.nn.flows import Glow, RealNVP
from jaxgen.runner.loop import train_and_evaluate

NVP_TOY = ROOT / "configs" / "flows" / "realnvp_toy2d.py"
TINY_NVP = [
    "train.steps=20", "train.batch_size=64", "train.log_every=5", "train.checkpoint_every=10",
    "train.progress=false", "train.sample_every=0", "model.num_layers=4", "model.hidden=(16, 16)",
    "data.num_train=2048", "data.num_eval=512", "sample.num=200", "eval.num_examples=256",
    "eval.batch_size=128", "eval.mmd_num=200", "optim.warmup_steps=5",
]




def _perturbed(model, x, key, scale=0.3):
    params = fast_jit(lambda k, x: model.init(k, x, method=model.forward_and_log_det), key, x)
    leaves, tree = jax.tree.flatten(params["params"])
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    leaves = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize("model", [RealNVP(num_layers=4, hidden=(16, 16)),
                                   Glow(steps=3, hidden=16)], ids=["realnvp", "glow"])
def test_2d_flow_density_integrates_to_one(model):
    x = jax.random.normal(jax.random.key(0), (256, 2)) * 2.0
    params = _perturbed(model, x, jax.random.key(1), scale=0.1)

    @jax.jit
    def log_prob(pts):
        z, ld = model.apply({"params": params}, pts, method=model.forward_and_log_det)
        return standard_normal_log_prob(z) + ld

    n, lim = 600, 12.0
    g = np.linspace(-lim, lim, n, endpoint=False) + lim / n
    pts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype(np.float32)
    logp = np.concatenate([np.asarray(log_prob(pts[i:i + 40000]))
                           for i in range(0, len(pts), 40000)])
    mass = float(np.sum(np.exp(logp)) * (2 * lim / n) ** 2)
    assert abs(mass - 1.0) < 0.02, mass


@pytest.mark.parametrize("model, jacobian", [
    (RealNVP(num_scales=1, hidden=8, num_blocks=1), False),  # its layers: test_bijectors.py
    (Glow(steps=2, num_scales=2, hidden=8), True)], ids=["realnvp", "glow"])
def test_image_flows_invert_and_log_det_matches_slogdet(model, jacobian):
    x = jax.random.uniform(jax.random.key(2), (2, 4, 4, 2), minval=-0.95, maxval=0.95)
    params = _perturbed(model, x, jax.random.key(3), scale=0.05)

    def check(x):
        fwd = lambda v: model.apply({"params": params}, v, method=model.forward_and_log_det)
        inv = lambda v: model.apply({"params": params}, v, method=model.inverse_and_log_det)
        z, ld = fwd(x)
        x2, ld_inv = inv(z)
        if not jacobian:
            return x2, ld, ld_inv, ld[0]
        flat = lambda v: fwd(v.reshape(1, 4, 4, 2))[0].reshape(-1)
        want = jnp.linalg.slogdet(jax.jacfwd(flat)(x[0].reshape(-1)))[1]
        return x2, ld, ld_inv, want

    x2, ld, ld_inv, want = fast_jit(check, x)
    np.testing.assert_allclose(x2, x, atol=1e-4)
    np.testing.assert_allclose(ld_inv, -ld, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ld[0], want, rtol=1e-4, atol=1e-2)
    assert abs(float(ld[0])) > 0.1  # not the identity


def test_nll_loss_is_minus_mean_log_prob_per_dim_and_bits_per_dim():
    model = RealNVP(num_layers=2, hidden=(8,))
    x = jax.random.normal(jax.random.key(4), (5, 4))
    params = {"model": _perturbed(model, x, jax.random.key(5), scale=0.1)}
    shift = 4 * math.log(2 / 256)  # as if the 4 dims were dequantised pixels
    loss, m, z, ld = jax.jit(lambda p, x: (
        *nll_loss(p, {"x": x}, None, model=model, dim=4, discrete_shift=shift),
        *model.apply({"params": p["model"]}, x, method=model.forward_and_log_det)))(params, x)
    nll = -np.mean(standard_normal_log_prob(z) + ld)
    np.testing.assert_allclose(loss, nll / 4, rtol=1e-5)
    np.testing.assert_allclose(m["bits_per_dim"], (nll - shift) / (4 * math.log(2)), rtol=1e-5)
    np.testing.assert_allclose(m["log_prior"] + m["log_det"], -nll, rtol=1e-5)


def test_actnorm_is_initialised_from_the_first_real_batch(tmp_path):
    cfg = config_lib.load_config(NVP_TOY, TINY_NVP + ["train.steps=1", "train.log_every=1",
                                                      "train.checkpoint_every=1"])
    train_and_evaluate(cfg, tmp_path / "a")
    from jaxgen.data import get_dataset
    from jaxgen.data.pipeline import BatchPipeline
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    ds = get_dataset(cfg.data, "train")
    first = BatchPipeline(ds.source, cfg.train.batch_size, cfg.seed).local_batch(0)["x"]
    exp = Experiment(cfg, DatasetInfo.of(ds))
    state = exp.init_state({"x": first})
    an = state.params["model"]["ActNorm_0"]  # the first layer
    np.testing.assert_allclose(an["log_scale"], -np.log(first.std(0)), rtol=1e-4)
    np.testing.assert_allclose(an["bias"], -first.mean(0) / first.std(0), rtol=1e-3, atol=1e-5)


def test_flow_resume_equals_uninterrupted(tmp_path):
    import shutil
    cfg = config_lib.load_config(NVP_TOY, TINY_NVP + NO_PICTURES)
    train_and_evaluate(cfg, tmp_path / "full")
    train_and_evaluate(cfg, tmp_path / "part")
    shutil.rmtree(tmp_path / "part" / "checkpoints" / "20")
    assert train_and_evaluate(cfg, tmp_path / "part")["steps"] == "10 -> 20 of 20"
    a, _ = load_final_state(tmp_path / "full")
    b, _ = load_final_state(tmp_path / "part")
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    assert read_metrics(tmp_path / "full") == read_metrics(tmp_path / "part")


# 1 = 4 devices is the toy run's test (test_train.py) and the sharded ones' (test_sharding.py);
# this one adds the flows' data-dependent ActNorm init, in the heavy run for the suite's time
@pytest.mark.heavy
def test_flow_same_metrics_on_1_and_4_devices(tmp_path):
    runs = {}
    for n in (1, 4):
        wd = tmp_path / f"dev{n}"
        run_cli(["train", "--config", NVP_TOY, "--workdir", wd, *flags(TINY_NVP + NO_PICTURES)],
                env_extra={"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"})
        runs[n] = read_metrics(wd)
    for a, b in zip(runs[1], runs[4]):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, err_msg=k)
    a, _ = load_final_state(tmp_path / "dev1")
    b, _ = load_final_state(tmp_path / "dev4")
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    ev = run_cli(["eval", "--workdir", tmp_path / "dev1"])
    result = read_eval(tmp_path / "dev1")
    assert result["likelihood"] == "exact" and np.isfinite(result["nll_nats"])
    assert "ode" not in result and "nll_nats" in ev.stdout


# minutes of CPU; Glow's exactness on images runs by default (invertibility, log-det, paper
# models)
@pytest.mark.heavy
def test_glow_on_images_trains_evaluates_and_draws_temperature_rows(tmp_path, capsys):
    from PIL import Image

    from jaxgen import cli
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8))
    np.save(tmp_path / "test.npy", rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8))
    wd = tmp_path / "glow"
    code = cli.main(["train", "--config", str(ROOT / "configs" / "flows" / "glow_fashion_mnist.py"),
                     "--workdir", str(wd), "--config.data.name=array",
                     f"--config.data.path={tmp_path / 'train.npy'}",
                     f"--config.data.eval_path={tmp_path / 'test.npy'}",
                     "--config.model.steps=1", "--config.model.hidden=8",
                     "--config.train.steps=2", "--config.train.batch_size=16",
                     "--config.train.log_every=1", "--config.train.checkpoint_every=2",
                     "--config.train.progress=false", "--config.eval.num_examples=16",
                     "--config.eval.batch_size=16"])
    assert code == 0, capsys.readouterr().err
    m = read_metrics(wd)
    assert [r["step"] for r in m] == [1, 2] and all(np.isfinite(r["bits_per_dim"]) for r in m)
    rows = Image.open(wd / "samples" / "temperatures.png")
    assert rows.size[0] > 8 * 10 and rows.size[1] > 8 * 4
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    result = read_eval(wd)
    # Uniform random pixels: no model beats 8 bits/dim on them (their entropy).
    assert result["bits_per_dim"] > 7.9
