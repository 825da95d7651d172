"""Autoregressive family: causality of every model, the exact NLL, the AR(2) toy, samplers, CLI."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, cli_in_one_process, fast_jit, read_metrics

from jaxgen.data import get_dataset
from jaxgen.data.toy_sequences import ar2_autocovariance, get_sequence_toy
from jaxgen.eval import likelihood
from jaxgen.eval.evaluate import read_eval
from jaxgen.kernel import config as config_lib
from jaxgen.kernel import transforms
from jaxgen.nn.autoregressive import (
    RNN,
    CausalTransformer,
    FiniteMemoryMLP,
    PixelCNN,
    WaveNet,
    raster_mask,
)
from jaxgen.runner.experiment import DatasetInfo, Experiment

CONFIGS = ROOT / "configs" / "autoregressive"


# ------------------------------------------------------------- causality
L = 10  # sequence length; images are 5x5
SEQUENCE_MODELS = {
    "mlp": FiniteMemoryMLP(context=3, features=(16, 16), num_outputs=3, max_len=L),
    "gru": RNN(hidden=8, num_layers=2, num_outputs=3),
    "lstm": RNN(hidden=8, cell="lstm", num_outputs=3),
    "wavenet": WaveNet(channels=8, skip_channels=8, dilations=(1, 2), num_outputs=3),
    "transformer": CausalTransformer(d_model=16, num_heads=2, num_layers=2, num_outputs=3,
                                     max_len=L, positions="sinusoidal"),
}
IMAGE_MODELS = {
    "pixelcnn": PixelCNN(channels=8, num_layers=2, hidden=8, num_outputs=3),
    "gated_pixelcnn": PixelCNN(channels=8, num_layers=2, hidden=8, num_outputs=3, gated=True),
}


def _expected_support(name, model, d):
    """Bool (d, d): where ∂ out_i / ∂ x_j must be non-zero (always a subset of j < i)."""
    i, j = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    if name == "mlp":  # exactly the window x_{i−k} … x_{i−1}
        return (j < i) & (j >= i - model.context)
    if name == "wavenet":  # exactly the receptive field x_{i−R−1} … x_{i−1}
        return (j < i) & (j >= i - model.receptive_field - 1)
    if name == "pixelcnn":  # at least the left and upper neighbours (it has a blind spot)
        w = 5
        return ((j == i - 1) & (i % w > 0)) | (j == i - w)
    return j < i  # RNN, transformer, gated PixelCNN (no blind spot): all of the past


@pytest.mark.parametrize("name", [*SEQUENCE_MODELS, *IMAGE_MODELS])
def test_every_model_is_causal_and_its_step_matches_the_full_pass(name):
    """∂ output_i / ∂ x_j = 0 exactly for all j ≥ i, ≠ 0 where the model must look.

    Random weights and inputs; the Jacobian by forward mode over all D inputs.
    Incremental models: D calls of `step` on the same sequence give the full
    pass's outputs (the MLP window, RNN carry, WaveNet queues, KV cache).
    """
    model = {**SEQUENCE_MODELS, **IMAGE_MODELS}[name]
    shape = (5, 5, 1) if name in IMAGE_MODELS else (L,)
    d = math.prod(shape)
    x = jax.random.normal(jax.random.key(0), (2, *shape))
    variables = fast_jit(lambda k, x: model.init(k, x), jax.random.key(1), x)

    def check(v, x):
        out = model.apply(v, x)
        jac = jax.jacfwd(lambda x0: model.apply(v, x0[None])[0])(x[0])  # (D, K, *shape)
        steps = None
        if model.incremental:
            def body(state, i):
                prev = x.reshape(2, -1)[:, jnp.maximum(i - 1, 0)]
                return model.apply(v, state, prev, i, method=model.step)
            _, steps = jax.lax.scan(body, model.initial_state(2, d), jnp.arange(d))
            steps = jnp.swapaxes(steps, 0, 1)
        return out, jac, steps

    out, jac, steps = fast_jit(check, variables, x)
    assert out.shape == (2, d, 3)
    dep = np.abs(np.asarray(jac)).sum(1).reshape(d, d)  # dep[i, j] = |∂ out_i / ∂ x_j|
    future = np.triu(np.ones((d, d), bool))  # j ≥ i
    assert np.all(dep[future] == 0.0), np.argwhere((dep != 0) & future)[:5]
    must = _expected_support(name, model, d)
    assert must.any() and np.all(dep[must] > 0), np.argwhere(must & (dep == 0))[:5]
    if name in ("mlp", "wavenet"):  # and nothing outside the window
        assert np.all(dep[~must] == 0)
    if name == "pixelcnn":  # the plain PixelCNN's blind spot, which the gated one removes
        assert np.any(dep[np.tril(np.ones((d, d), bool), -1)] == 0)
    if model.incremental:
        np.testing.assert_allclose(steps, out, atol=2e-5)


def test_raster_masks():
    np.testing.assert_array_equal(raster_mask(3, 3, "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(raster_mask(3, 3, "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


# ------------------------------------------------------------- objective
def _experiment(config: str, event_shape, *overrides):
    cfg = config_lib.load_config(CONFIGS / config, ["train.batch_size=4", *overrides])
    kind = "images" if len(event_shape) == 3 else "points"
    return Experiment(cfg, DatasetInfo("array", kind, tuple(event_shape)))


TINY_TRANSFORMER = ["model.d_model=16", "model.num_heads=2", "model.num_layers=2"]
TINY_RNN = ["model.hidden=16"]


@pytest.mark.parametrize("binarize", ["", "threshold"])
def test_nll_is_the_sum_of_log_softmax_at_the_pixels(binarize):
    """loss, nll_nats, bits/dim and the exact likelihood = −Σ_i log softmax(logits_i)[x_i]."""
    exp = _experiment("transformer_fashion_mnist.py", (3, 3, 1), *TINY_TRANSFORMER,
                      f"objective.binarize={binarize}")
    obj, d = exp.objective, 9
    raw = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 1), dtype=np.uint8)
    x = transforms.preprocess("images", raw, dequantize=False)  # bin centres
    assert not exp.dequantize and obj.likelihoods["exact"].discrete
    params = fast_jit(obj.init, jax.random.key(0), {"x": x})
    model = obj.tools.model

    def run(params, x):
        loss, metrics = obj.players[0].loss(params, {"x": x}, jax.random.key(1))
        lp = obj.likelihoods["exact"].fn(params, x, jax.random.key(2))
        model_in = 2.0 * (x > 0).astype(jnp.float32) - 1.0 if binarize else x
        return loss, metrics, lp, model.apply({"params": params["model"]}, model_in), \
            obj.tools.conditionals(params, x)

    loss, metrics, lp, logits, cond = fast_jit(run, params, x)
    logits = np.asarray(logits, np.float64)
    target = raw.reshape(4, d).astype(np.int64)
    if binarize:
        target = (target > 127).astype(np.int64)
        assert logits.shape == (4, d, 2)
        lp, terms = lp
        np.testing.assert_allclose(terms["binarized"], -lp)
    log_softmax = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    hand = -np.take_along_axis(log_softmax, target[..., None], -1)[..., 0].sum(-1)  # (4,)
    np.testing.assert_allclose(cond, logits, rtol=1e-6)
    np.testing.assert_allclose(-np.asarray(lp), hand, rtol=1e-5)
    np.testing.assert_allclose(metrics["nll_nats"], hand.mean(), rtol=1e-5)
    np.testing.assert_allclose(loss, hand.mean() / d, rtol=1e-5)
    key = "binarized_bits_per_dim" if binarize else "bits_per_dim"
    np.testing.assert_allclose(metrics[key], hand.mean() / (d * math.log(2)), rtol=1e-5)
    assert ("bits_per_dim" in metrics) == (not binarize)


def test_uniform_logits_give_exactly_8_bits_per_dim():
    """Zero weights -> zero logits -> P(x) = 256^−D: 8.0 bits/dim under eval's convention."""
    exp = _experiment("pixelcnn_fashion_mnist.py", (4, 4, 1), "model.channels=4",
                      "model.num_layers=1", "model.hidden=4")
    state = exp.init_state()
    params = jax.tree.map(jnp.zeros_like, state.params)
    raw = np.random.default_rng(1).integers(0, 256, (4, 4, 4, 1), dtype=np.uint8)
    logp = exp.log_likelihood(params, raw, jax.random.key(0))
    np.testing.assert_allclose(logp, -16 * math.log(256), rtol=1e-6)
    assert abs(likelihood.bits_per_dim(logp, (4, 4, 1)) - 8.0) < 1e-6
    # the models are unconditional (an error before tracing)
    with pytest.raises(ValueError, match="unconditional"):
        exp.objective.sample(params, jax.random.key(0), 2, exp.sample_settings,
                             labels=jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="pixelcnn models images"):
        Experiment(exp.config, DatasetInfo("gaussian_ar2", "points", (8,)))


# ------------------------------------------------------------------ order
@pytest.mark.parametrize("config,extra", [("mlp_fashion_mnist.py", ["model.context=2",
                                                                    "model.features=(8,)"]),
                                          ("transformer_fashion_mnist.py", TINY_TRANSFORMER)],
                         ids=["mlp_window", "transformer"])
def test_random_order_is_a_normalised_chain_rule_that_its_samplers_draw_from(config, extra):
    """objective.order=random over 2x2 binary images: Σ_x P(x) = 1 over all 16 images,
    the conditionals are the network's read through the permutation, and the samples'
    frequencies match P(x) (cached and recompute draw the same)."""
    exp = _experiment(config, (2, 2, 1), *extra, "objective.binarize=threshold",
                      "objective.order=random", "objective.order_seed=4")
    obj = exp.objective
    perm = np.random.default_rng(4).permutation(4)
    assert perm.tolist() != [0, 1, 2, 3]  # seed 4 does permute
    params = fast_jit(obj.init, jax.random.key(0), {"x": jnp.zeros((1, 2, 2, 1))})
    params = jax.tree.map(lambda p: p * 3.0, params)  # peaked, far from uniform
    bits = (np.arange(16)[:, None] >> np.arange(4)) & 1  # every binary image, raster order
    raw = (255 * bits).reshape(16, 2, 2, 1).astype(np.uint8)
    x = transforms.preprocess("images", raw, dequantize=False)

    def run(params, x):
        lp, _ = obj.likelihoods["exact"].fn(params, x, jax.random.key(1))
        model_in = (2.0 * bits - 1.0)[:, perm].reshape(16, 2, 2, 1)  # the permuted image
        logits = obj.tools.model.apply({"params": params["model"]}, jnp.asarray(model_in))
        return lp, logits, obj.tools.conditionals(params, x), obj.tools.log_probs(params, x)

    lp, logits, cond, log_probs = fast_jit(run, params, x)
    p = np.exp(np.asarray(lp, np.float64))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    logits = np.asarray(logits, np.float64)
    np.testing.assert_allclose(np.asarray(cond)[:, perm], logits, rtol=1e-5, atol=1e-6)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    hand = np.take_along_axis(log_softmax, bits[:, perm][..., None], -1)[..., 0]  # (16, 4)
    np.testing.assert_allclose(np.asarray(log_probs)[:, perm], hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lp, hand.sum(1), rtol=1e-5)

    def both(params):
        return [obj.sample(params, jax.random.key(7), 4000, exp.settings_with(sampler=s))
                for s in ("cached", "recompute")]

    cached, recompute = fast_jit(both, params)
    np.testing.assert_array_equal(cached, recompute)
    drawn = (transforms.postprocess("images", cached).reshape(4000, 4) > 127).astype(int)
    freq = np.bincount(drawn @ (1 << np.arange(4)), minlength=16) / 4000
    assert np.abs(freq - p).max() < 0.03, (freq.round(3), p.round(3))
    # a given prefix is kept in raster order, so it cannot be combined with a permutation
    with pytest.raises(ValueError, match="order=raster"):
        assert _experiment(config, (2, 2, 1), *extra, "objective.order=random",
                           "objective.condition_prefix=1").objective is None


# ------------------------------------------------------------------- toy
def test_ar2_log_prob_is_the_multivariate_gaussian_density():
    from scipy.stats import multivariate_normal
    toy = get_sequence_toy("gaussian_ar2", length=7, coeffs=(0.6, 0.3), std=0.8)
    gamma = ar2_autocovariance(0.6, 0.3, 0.8, 7)
    cov = gamma[np.abs(np.subtract.outer(np.arange(7), np.arange(7)))]  # Toeplitz
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(20, 7)) * 2, toy.sample(rng, 20)])
    np.testing.assert_allclose(toy.log_prob(x), multivariate_normal(np.zeros(7), cov).logpdf(x),
                               rtol=1e-10)
    # the sampler is the stationary process: its covariance is the Toeplitz one
    s = toy.sample(np.random.default_rng(1), 40_000).astype(np.float64)
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.06)
    assert toy.conditional_entropy == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.64))
    with pytest.raises(ValueError, match="not stationary"):
        get_sequence_toy("gaussian_ar2", coeffs=(0.7, 0.5))
    d = get_dataset({"name": "gaussian_ar2", "num_train": 5, "num_eval": 3, "length": 6,
                     "seed": 0}, "test")
    assert d.kind == "points" and d.event_shape == (6,) and len(d.source) == 3
    assert d.toy.log_prob is not None and d.toy.modes is None


# -------------------------------------------------------------- sampling
@pytest.mark.parametrize("config,extra", [("transformer_fashion_mnist.py", TINY_TRANSFORMER),
                                          ("rnn_fashion_mnist.py", TINY_RNN)],
                         ids=["kv_cache", "rnn_carry"])
def test_cached_sampler_draws_what_the_prefix_recompute_sampler_draws(config, extra):
    exp = _experiment(config, (4, 4, 1), *extra)
    obj = exp.objective
    params = fast_jit(obj.init, jax.random.key(0), {"x": jnp.zeros((1, 4, 4, 1))})
    params = jax.tree.map(lambda p: p * 3.0, params)  # more peaked conditionals
    key = jax.random.key(5)

    def both(params):  # the same key: the same noise at every position
        return [obj.sample(params, key, 6, exp.settings_with(sampler=s))
                for s in ("cached", "recompute")]

    cached, recompute = fast_jit(both, params)
    assert cached.shape == (6, 4, 4, 1) and cached.dtype == jnp.float32
    np.testing.assert_array_equal(cached, recompute)
    img = transforms.postprocess("images", cached)
    assert img.dtype == np.uint8 and len(np.unique(img)) > 4  # real draws, not one value
    # the values are bin centres: back to pixels and forward again is the identity
    np.testing.assert_allclose(transforms.preprocess("images", img, dequantize=False), cached,
                               atol=1e-6)


# ------------------------------------------------------------------- CLI
_COMMON = ["--config.train.steps=3", "--config.train.log_every=1",
           "--config.train.checkpoint_every=3", "--config.train.progress=false"]


def test_cli_trains_and_evaluates_gated_pixelcnn_and_the_ar2_toy(tmp_path):
    """One fresh process (fast XLA compiles): train 3 steps + eval, an image model on uniform
    random pixels (≥ 8 bits/dim of entropy: a smaller number would be a bug) and the toy."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (64, 6, 6, 1), dtype=np.uint8))
    np.save(tmp_path / "test.npy", rng.integers(0, 256, (16, 6, 6, 1), dtype=np.uint8))
    img, toy = tmp_path / "img", tmp_path / "toy"
    commands = [
        ["train", "--config", CONFIGS / "gated_pixelcnn_fashion_mnist.py", "--workdir", img,
         "--config.data.name=array", f"--config.data.path={tmp_path / 'train.npy'}",
         f"--config.data.eval_path={tmp_path / 'test.npy'}", "--config.train.batch_size=16",
         "--config.model.channels=8", "--config.model.num_layers=2", "--config.model.hidden=8",
         "--config.eval.num_examples=16", "--config.eval.batch_size=16", *_COMMON],
        ["eval", "--workdir", img],
        ["train", "--config", CONFIGS / "ar_toy.py", "--workdir", toy,
         "--config.data.length=8", "--config.data.num_train=256", "--config.data.num_eval=64",
         "--config.train.batch_size=32", "--config.sample.num=16",
         "--config.eval.num_examples=64", "--config.eval.batch_size=32",
         "--config.eval.mmd_num=16", *_COMMON],
        ["eval", "--workdir", toy],
    ]
    codes, proc = cli_in_one_process(commands)
    assert codes == [0, 0, 0, 0], proc.stderr[-3000:]

    m = read_metrics(img)
    assert [r["step"] for r in m] == [1, 2, 3]
    for r in m:
        assert np.isfinite(r["loss"]) and r["bits_per_dim"] > 7.5
        np.testing.assert_allclose(r["bits_per_dim"], r["nll_nats"] / (36 * math.log(2)),
                                   rtol=1e-4)
    assert (img / "samples" / "step_0000003.png").stat().st_size > 0
    ev = read_eval(img)
    assert ev["likelihood"] == "exact" and np.isfinite(ev["bits_per_dim"])
    assert ev["bits_per_dim"] > 7.5, ev
    np.testing.assert_allclose(ev["bits_per_dim"], ev["nll_nats"] / (36 * math.log(2)),
                               rtol=1e-6)

    m = read_metrics(toy)
    assert [r["step"] for r in m] == [1, 2, 3] and all(np.isfinite(r["nll_nats"]) for r in m)
    ev = read_eval(toy)
    assert ev["likelihood"] == "exact" and np.isfinite(ev["nll_gap_nats"])
    np.testing.assert_allclose(ev["nll_gap_nats"], ev["nll_nats"] - ev["true_nll_nats"])
    # 64 held-out sequences of length 8: −log p_true ≈ H = 2 + 6 × 0.7258 nats
    assert 0 < ev["true_nll_nats"] < 15 and ev["nll_gap_nats"] > -1.0
    assert np.load(toy / "samples" / "step_0000003.npy").shape == (16, 8)


def test_toy_nll_comes_within_002_nats_per_step_of_the_true_conditional_entropy(tmp_path):
    """The must-show of the toy task: on Gaussian AR(2) sequences, whose exact log p the
    data module knows, a trained finite-memory model (k = 2: the true conditional's
    inputs) reaches the true NLL of the held-out sequences to < 0.02 nats per step."""
    from jaxgen import cli
    wd = tmp_path / "ar2"
    t = 8
    assert cli.main([
        "train", "--config", str(CONFIGS / "ar_toy.py"), "--workdir", str(wd),
        f"--config.data.length={t}", "--config.data.num_train=20000",
        "--config.data.num_eval=4000", "--config.model.features=(32,32)",
        "--config.train.steps=600", "--config.train.batch_size=256",
        "--config.train.ema_decay=0.99", "--config.train.checkpoint_every=600",
        "--config.train.progress=false", "--config.sample.num=16",
        "--config.eval.num_examples=4000", "--config.eval.mmd_num=0"]) == 0
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    ev = read_eval(wd)
    gap_per_step = ev["nll_gap_nats"] / t
    assert abs(gap_per_step) < 0.02, ev
