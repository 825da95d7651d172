"""DiT (jaxgen.nn.dit): the paper's sizes, adaLN-Zero's identity start, patches, positions."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_compile, fast_jit

from jaxgen.nn.dit import SIZES, DiT, DiTBlock, patchify, sincos_2d, unpatchify

# Peebles & Xie (2023): parameters of the class-conditional ImageNet 256 models (32 x 32 x 4
# latents, 1000 classes, learned Σ: 8 output channels), in millions
PAPER_PARAMS = {"S": 33, "B": 130, "L": 458, "XL": 675}
# Table 1: Gflops of one forward pass at I = 32, p = 4 (a multiply-add counted once)
PAPER_GFLOPS_P4 = {"S": 1.4, "B": 5.6, "L": 19.7, "XL": 29.1}
LATENT = (1, 32, 32, 4)


def _count(params) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def _abstract(model, shape=LATENT):
    label = () if model.num_classes is None else (jnp.zeros((shape[0],), jnp.int32),)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape),
                                             jnp.zeros((shape[0],)), *label))


@pytest.mark.parametrize("size", sorted(SIZES))
def test_parameter_counts_are_the_papers(size):
    depth, h, _ = SIZES[size]
    for p in (2, 4, 8):
        n = _count(_abstract(DiT(size=size, patch=p, out_channels=8, num_classes=1000)))
        # closed form: blocks (qkv, proj, fc1, fc2, adaLN: 18 h² + 15 h), patch embedding,
        # time MLP (256 -> h -> h), class table (1001 rows), final adaLN and linear
        closed = (depth * (18 * h * h + 15 * h) + (p * p * 4 * h + h) + (256 * h + h + h * h + h)
                  + 1001 * h + (2 * h * h + 2 * h) + (h * p * p * 8 + p * p * 8))
        assert n == closed, (size, p)
        if p == 2:
            assert abs(n / 1e6 - PAPER_PARAMS[size]) / PAPER_PARAMS[size] < 0.01, (size, n)


@pytest.mark.parametrize("size", ["S", "B"])
def test_forward_flops_match_the_papers_table(size):
    """XLA's count of DiT/4 on a 32 x 32 x 4 latent, halved (a multiply-add is 2 flops to
    XLA, 1 to the paper), against Table 1's Gflops, within 5 %."""
    model = DiT(size=size, patch=4, out_channels=8, num_classes=1000)
    params = _abstract(model)
    lowered = jax.jit(model.apply).lower(params, jnp.zeros(LATENT), jnp.zeros((1,)),
                                         jnp.zeros((1,), jnp.int32))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    gflops = cost["flops"] / 2e9
    assert abs(gflops - PAPER_GFLOPS_P4[size]) / PAPER_GFLOPS_P4[size] < 0.05, gflops


def test_adaln_zero_starts_as_the_identity_and_outputs_zero():
    model = DiT(size="S", patch=2, depth=2, hidden=32, num_heads=4, num_classes=3)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    t, y = jnp.array([0.2, 0.9]), jnp.array([0, 2])
    params = nn.meta.unbox(fast_jit(model.init, jax.random.key(0), x, t, y))
    apply = fast_compile(model.apply, params, x, t, y)
    out = apply(params, x, t, y)
    assert out.shape == x.shape and not np.any(np.asarray(out))
    block = DiTBlock(32, 4)
    h = jax.random.normal(jax.random.key(2), (2, 16, 32))
    c = jax.random.normal(jax.random.key(3), (2, 32))
    bp = fast_jit(block.init, jax.random.key(4), h, c)
    np.testing.assert_array_equal(fast_jit(block.apply, bp, h, c), h)
    # away from zero the block and the network do depend on t, the label and x
    rng = np.random.default_rng(5)
    bumped = jax.tree.map(lambda a: np.asarray(a) + rng.normal(0, 0.1, a.shape).astype(
        np.float32), params)
    outs = [np.asarray(apply(bumped, *args)) for args in
            ((x, t, y), (x, t[::-1], y), (x, t, y[::-1]), (x[::-1], t, y))]
    assert all(np.abs(outs[0] - o).max() > 1e-2 for o in outs[1:])


@pytest.mark.parametrize("seed", range(4))
def test_unpatchify_inverts_patchify_and_patches_are_raster_blocks(seed):
    rng = np.random.default_rng(seed)
    p = int(rng.choice([1, 2, 4]))
    h, w, c = p * int(rng.integers(1, 5)), p * int(rng.integers(1, 5)), int(rng.integers(1, 4))
    x = jnp.asarray(rng.normal(size=(2, h, w, c)), jnp.float32)
    tokens = patchify(x, p)
    assert tokens.shape == (2, (h // p) * (w // p), p * p * c)
    np.testing.assert_array_equal(unpatchify(tokens, p, h, w), x)
    i, j = int(rng.integers(0, h // p)), int(rng.integers(0, w // p))
    np.testing.assert_array_equal(tokens[:, i * (w // p) + j],
                                  x[:, i * p:(i + 1) * p, j * p:(j + 1) * p].reshape(2, -1))


def test_sincos_positions_are_the_2d_formula():
    dim, gh, gw = 16, 3, 5
    pos = sincos_2d(dim, gh, gw)
    q = dim // 4
    omega = 1.0 / 10000 ** (np.arange(q) / q)
    for r in range(gh):
        for col in range(gw):
            want = np.concatenate([np.sin(col * omega), np.cos(col * omega),
                                   np.sin(r * omega), np.cos(r * omega)])
            np.testing.assert_allclose(pos[r * gw + col], want, rtol=1e-6, atol=1e-7)


def test_dit_kernels_carry_logical_axes_and_bad_settings_say_what_to_set():
    params = _abstract(DiT(size="S", patch=4, depth=1, hidden=32, num_heads=2), (1, 8, 8, 1))
    names = {jax.tree_util.keystr(k): v.names for k, v in jax.tree_util.tree_leaves_with_path(
        params, is_leaf=lambda v: isinstance(v, nn.LogicallyPartitioned))
        if isinstance(v, nn.LogicallyPartitioned)}
    assert names["['params']['block_0']['attn']['qkv']['kernel']"] == ("embed", "heads")
    assert names["['params']['block_0']['fc1']['kernel']"] == ("embed", "mlp")
    with pytest.raises(ValueError, match="model.patch=3"):
        _abstract(DiT(patch=3), (1, 8, 8, 1))
    with pytest.raises(ValueError, match="model.size='M'"):
        _abstract(DiT(size="M"), (1, 8, 8, 1))
    with pytest.raises(ValueError, match="not divisible"):
        _abstract(DiT(hidden=30, num_heads=4), (1, 8, 8, 1))


# the image objectives with the U-Net in their shipped configs, each with a tiny DiT instead
DIT_OBJECTIVES = ("diffusion/ddpm_fashion_mnist.py", "diffusion/edm_fashion_mnist.py",
                  "diffusion/consistency_fashion_mnist.py", "flow_matching/fashion_mnist.py")
TINY_DIT = ["model.name=dit", "model.patch=7", "model.depth=1", "model.hidden=24",
            "model.num_heads=2", "train.batch_size=4"]


@pytest.mark.parametrize("config", DIT_OBJECTIVES)
def test_every_image_objective_trains_and_samples_with_the_dit(config):
    """DDPM, EDM, consistency training and flow matching take the DiT for their U-Net
    (--config.model.name=dit): one real train step changes the DiT's params with a finite
    loss, and two sampling steps give finite samples of the data's shape."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.contract import DatasetInfo
    from jaxgen.runner.experiment import Experiment
    cfg = config_lib.load_config(config, TINY_DIT)
    exp = Experiment(cfg, DatasetInfo("fashion_mnist", "images", (28, 28, 1), num_classes=10))
    state = exp.init_state()
    rng = np.random.default_rng(0)
    batch = {"x": rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, 4).astype(np.int32)}
    new, metrics = exp.train_step()(state, batch)
    assert np.isfinite(float(metrics["loss"]))
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params["model"]),
                                                      jax.tree.leaves(new.params["model"]))]
    assert any(moved), "the step left every DiT parameter where it was"
    x = exp.sample(new.ema_params, jax.random.key(1), 2, steps=2)
    assert x.shape == (2, 28, 28, 1)
