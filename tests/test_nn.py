"""Tests for jaxgen.nn: embeddings, TimeMLP and UNet (shapes, zero init,
conditioning, jit).

Parameter counts (checked below):
  * ``UNet(channels=(32, 64))`` on 28x28x1: 476,609 parameters.
  * ``TimeMLP()`` (256x3, time_dim 64) on 2-D: 157,570 parameters.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn import TimeEmbedding, TimeMLP, UNet, sinusoidal_embedding

UNET_28_PARAMS = 476_609
TIME_MLP_2D_PARAMS = 157_570


def _count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def _init(model, *args):
    """``model.init`` under jit, with an RBG key: on CPU most of a Linen init's
    compile time is one inlined threefry hash per parameter, which the
    RngBitGenerator-based key avoids (about 3x faster to compile)."""
    return jax.jit(model.init)(jax.random.key(0, impl="unsafe_rbg"), *args)["params"]


def _random_params(model, *args, seed=0, scale=0.1):
    """Random parameters with the model's structure, without compiling init."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), *args)["params"]
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), s.dtype),
                        shapes)


def _perturb(params, seed=0, scale=0.1):
    """Add Gaussian noise to every parameter (moves the zero-init layers off 0)."""
    rng = np.random.default_rng(seed)  # numpy: no per-shape compile of an add
    return jax.tree.map(
        lambda p: jnp.asarray(np.asarray(p) + scale * rng.standard_normal(p.shape), p.dtype),
        params)


def _inputs(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------
def test_sinusoidal_embedding_shapes_and_values():
    t = jnp.array([0.0, 0.25, 1.0])
    emb = sinusoidal_embedding(t, 16)
    chex.assert_shape(emb, (3, 16))
    # t = 0: sines 0, cosines 1.
    np.testing.assert_allclose(np.asarray(emb[0]), [0.0] * 8 + [1.0] * 8, atol=1e-7)
    # Times are scaled by 1000: the first (fastest) feature is sin(1000 t).
    np.testing.assert_allclose(float(emb[1, 0]), np.sin(250.0), atol=1e-4)
    assert float(jnp.max(jnp.abs(emb))) <= 1.0
    # Different times give different embeddings, even close ones.
    close = sinusoidal_embedding(jnp.array([0.5, 0.501]), 16)
    assert float(jnp.max(jnp.abs(close[0] - close[1]))) > 0.1
    # Odd dims are zero-padded; a scalar time gives one row.
    odd = sinusoidal_embedding(jnp.float32(0.3), 7)
    chex.assert_shape(odd, (1, 7))
    assert float(odd[0, -1]) == 0.0


def test_time_embedding_module():
    module = TimeEmbedding(32)
    params = module.init(jax.random.key(0), jnp.zeros((4,)))["params"]
    out = module.apply({"params": params}, jnp.linspace(0.0, 1.0, 4))
    chex.assert_shape(out, (4, 32))
    chex.assert_tree_all_finite(out)


# ---------------------------------------------------------------------------
# TimeMLP
# ---------------------------------------------------------------------------
def test_time_mlp_shapes_param_count_and_scalar_time():
    """TimeMLP() on 2-D data has 157,570 parameters."""
    model = TimeMLP()
    x = _inputs((5, 2))
    t = jnp.linspace(0.0, 1.0, 5)
    params = _init(model, x, t)
    assert _count(params) == TIME_MLP_2D_PARAMS
    apply = jax.jit(model.apply)
    out = apply({"params": params}, x, t)
    chex.assert_shape(out, (5, 2))
    chex.assert_tree_all_finite(out)
    # A scalar t (what an ODE solver passes) is broadcast over the batch.
    np.testing.assert_allclose(
        np.asarray(apply({"params": params}, x, jnp.float32(0.3))),
        np.asarray(apply({"params": params}, x, jnp.full((5,), 0.3))),
        rtol=1e-6,
    )
    # Eager and jit agree.
    np.testing.assert_allclose(np.asarray(model.apply({"params": params}, x, t)), np.asarray(out),
                               rtol=1e-5, atol=1e-6)
    # The output depends on time.
    assert float(jnp.max(jnp.abs(apply({"params": params}, x, t * 0.0) - out))) > 1e-4


def test_time_mlp_out_dim_and_labels():
    model = TimeMLP(features=(32, 32), out_dim=3, time_dim=16, num_classes=4)
    x = _inputs((6, 5))
    t = jnp.full((6,), 0.5)
    labels = jnp.array([0, 1, 2, 3, 0, 1])
    # Initialising without labels creates the same parameters as with them.
    shapes_none = jax.eval_shape(model.init, jax.random.key(0), x, t)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x, t, labels)
    assert jax.tree.structure(shapes_none) == jax.tree.structure(shapes)
    params = _random_params(model, x, t, labels)
    apply = jax.jit(model.apply)
    out = apply({"params": params}, x, t, labels)
    chex.assert_shape(out, (6, 3))
    other = apply({"params": params}, x, t, (labels + 1) % 4)
    uncond = apply({"params": params}, x, t)
    assert float(jnp.min(jnp.max(jnp.abs(out - other), axis=1))) > 1e-5
    assert float(jnp.min(jnp.max(jnp.abs(out - uncond), axis=1))) > 1e-5
    with pytest.raises(ValueError, match="num_classes"):
        jax.eval_shape(TimeMLP(features=(8,)).init, jax.random.key(0), x, t, labels)


# ---------------------------------------------------------------------------
# UNet
# ---------------------------------------------------------------------------
def test_unet_28x28_zero_at_init_param_count_and_jit():
    """UNet(channels=(32, 64)) on 28x28x1: 476,609 parameters; output
    exactly 0 at init (zero-initialised last conv); nonzero once perturbed."""
    model = UNet(channels=(32, 64))
    x = _inputs((2, 28, 28, 1))
    t = jnp.array([0.1, 0.9])
    params = _init(model, x, t)
    n = _count(params)
    print(f"UNet(channels=(32, 64)) 28x28x1 params: {n:,}")
    assert n == UNET_28_PARAMS
    assert 300_000 <= n <= 1_000_000
    apply = jax.jit(model.apply)
    out = apply({"params": params}, x, t)
    chex.assert_shape(out, x.shape)
    assert float(jnp.max(jnp.abs(out))) == 0.0
    perturbed = _perturb(params)
    out = apply({"params": perturbed}, x, t)
    chex.assert_tree_all_finite(out)
    assert float(jnp.min(jnp.std(out, axis=(1, 2, 3)))) > 1e-3
    # The time input matters.
    assert float(jnp.max(jnp.abs(apply({"params": perturbed}, x, t[::-1]) - out))) > 1e-4


def test_unet_other_sizes_out_channels_and_attention():
    """32x32x3 -> 6 channels with attention; 8x8x1 with three levels and two
    ResBlocks per level (shapes traced with eval_shape, no compile)."""
    model = UNet(channels=(8, 16), time_dim=16, groups=4, out_channels=6, attention=True)
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x, jnp.zeros((2,)))
    assert "mid_attn" in variables["params"]
    chex.assert_shape(jax.eval_shape(model.apply, variables, x, jnp.float32(0.5)), (2, 32, 32, 6))

    model = UNet(channels=(8, 16, 16), time_dim=16, groups=4, num_res_blocks=2)
    x = jax.ShapeDtypeStruct((3, 8, 8, 1), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x, jnp.zeros((3,)))
    chex.assert_shape(jax.eval_shape(model.apply, variables, x, jnp.zeros((3,))), (3, 8, 8, 1))

    with pytest.raises(ValueError, match="divisible"):
        jax.eval_shape(UNet(channels=(8, 16, 16)).init, jax.random.key(0),
                       jnp.zeros((1, 10, 10, 1)), jnp.zeros((1,)))


def test_unet_label_conditioning_changes_output():
    """With num_classes set, labels (and the null label None) change the output
    of a network whose parameters are random (off the zero-output init).
    Attention is switched on here so that it also runs under jit once."""
    model = UNet(channels=(8, 16), time_dim=16, groups=4, num_classes=10, attention=True)
    x = _inputs((4, 8, 8, 1))
    t = jnp.full((4,), 0.3)
    labels = jnp.array([0, 3, 7, 9])
    params = _random_params(model, x, t, seed=1)
    assert "class_embedding" in params
    apply = jax.jit(model.apply)
    out = apply({"params": params}, x, t, labels)
    chex.assert_shape(out, x.shape)
    chex.assert_tree_all_finite(out)
    other = apply({"params": params}, x, t, (labels + 1) % 10)
    uncond = apply({"params": params}, x, t, None)
    assert float(jnp.min(jnp.max(jnp.abs(out - other), axis=(1, 2, 3)))) > 1e-4
    assert float(jnp.min(jnp.max(jnp.abs(out - uncond), axis=(1, 2, 3)))) > 1e-4
    with pytest.raises(ValueError, match="num_classes"):
        jax.eval_shape(UNet(channels=(8, 16)).init, jax.random.key(0), x, t, labels)


@pytest.mark.parametrize("stride, kernel, padding", [
    (2, (4, 4), "SAME"),  # DCGAN, pix2pix
    (2, (3, 3), "SAME"),  # the VAE decoder: phases with 2 and 1 taps
    (3, (5, 2), "VALID"),
    (3, (2, 2), "SAME"),  # a kernel smaller than the stride: a phase no tap reaches
    (3, (3, 3), ((1, 2), (0, 3))),  # explicit padding: negative phase offsets
    (2, (2, 2), ((2, 0), (1, 1))),
])
def test_subpixel_conv_transpose_equals_flax_and_its_gradients(stride, kernel, padding):
    """The sub-pixel ConvTranspose is Flax's layer: same params, outputs and gradients
    (odd sizes, kernels smaller or larger than the stride, explicit padding).

    The reference is Flax's layer in float64: in float32 on XLA:CPU its input gradient
    is wrong for the last case (1.49 where float64 and finite differences give -1.21)."""
    import flax.linen as nn

    from jaxgen.nn.conv import ConvTranspose
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 3))
    ref = nn.ConvTranspose(8, kernel, strides=(stride, stride), padding=padding)
    mine = ConvTranspose(8, kernel, strides=(stride, stride), padding=padding)
    params = ref.init(jax.random.key(1), x)
    chex.assert_trees_all_equal_shapes(params, mine.init(jax.random.key(1), x))
    params = jax.tree.map(lambda v: v + 0.1, params)  # a non-zero bias too
    probe = jax.random.normal(jax.random.key(2), ref.apply(params, x).shape)

    def loss(m, params, x, probe):
        return jnp.sum(m.apply(params, x) * probe)
    got = mine.apply(params, x), jax.grad(loss, argnums=(1, 2))(mine, params, x, probe)
    with jax.enable_x64(True):
        ref64 = nn.ConvTranspose(8, kernel, strides=(stride, stride), padding=padding,
                                 param_dtype=jnp.float64)
        p64, x64, probe64 = jax.tree.map(lambda v: jnp.asarray(np.asarray(v), jnp.float64),
                                         (params, x, probe))
        want = ref64.apply(p64, x64), jax.grad(loss, argnums=(1, 2))(ref64, p64, x64, probe64)
        want = jax.tree.map(np.asarray, want)
    chex.assert_trees_all_close(jax.tree.map(np.asarray, got), want, rtol=1e-4, atol=1e-4)
    # the fast path computes no dilated convolution, forward or backward
    jaxprs = str(jax.make_jaxpr(jax.grad(loss, argnums=(1, 2)), static_argnums=0)(
        mine, params, x, probe))
    assert "conv_general_dilated" in jaxprs and f"lhs_dilation=({stride}, {stride})" not in jaxprs

