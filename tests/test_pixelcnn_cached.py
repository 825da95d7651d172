"""PixelCNN's incremental step ("fast PixelCNN"): per-layer caches give the full pass's
outputs, the cached sampler draws what the recompute sampler draws, the coder round-trips."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_jit
from test_coding import _exp, _params, _sharp_images

from jaxgen.coding import codec
from jaxgen.kernel import transforms
from jaxgen.kernel.errors import UserError
from jaxgen.nn.autoregressive import PixelCNN

VARIANTS = {"plain": False, "gated": True}
TINY = ["model.channels=8", "model.num_layers=2", "model.hidden=8"]


def _jitter(variables, key, scale=0.3):
    """Random params: init plus noise on every leaf (biases too, which init sets to 0)."""
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [p + scale * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys)])


@pytest.mark.parametrize("shape", [(8, 8, 1), (10, 7)], ids=["square", "non_square_code_map"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_step_over_every_pixel_gives_the_full_pass(variant, shape):
    """Random params and inputs; `step` at i = 0 … D−1 fed the true x_{i−1}: out_i of the
    full pass to 1e-5 at every pixel (a wrong mask, patch or position breaks it). Also a
    non-square (B, H, W) map, as a VQ-VAE prior reads."""
    model = PixelCNN(channels=8, num_layers=3, hidden=8, num_outputs=5,
                     gated=VARIANTS[variant])
    d = math.prod(shape[:2])
    x = jax.random.normal(jax.random.key(0), (3, *shape))

    def run(x):
        v = _jitter(model.init(jax.random.key(1), x), jax.random.key(2))

        def body(state, i):
            prev = x.reshape(3, -1)[:, jnp.maximum(i - 1, 0)]
            return model.apply(v, state, prev, i, method=model.step)

        _, steps = jax.lax.scan(body, model.initial_state(3, d, shape), jnp.arange(d))
        return model.apply(v, x), jnp.swapaxes(steps, 0, 1)

    full, steps = fast_jit(run, x)
    assert full.shape == steps.shape == (3, d, 5)
    assert float(jnp.std(full)) > 0.3  # outputs that vary, so agreement says something
    np.testing.assert_allclose(steps, full, atol=1e-5, rtol=1e-5)


def test_initial_state_needs_the_width_of_a_non_square_image():
    model = PixelCNN(channels=4, num_layers=1, hidden=4, num_outputs=3)
    assert model.initial_state(2, 49)["x"].shape == model.initial_state(2, 49, (7, 7))["x"].shape
    with pytest.raises(UserError, match="not a square"):
        model.initial_state(2, 70)


@pytest.mark.parametrize("variant", VARIANTS)
def test_cached_sampler_draws_what_the_recompute_sampler_draws(variant):
    """The same key, temperature 1: the same integers from both samplers; "auto" is the
    cached one."""
    exp = _exp("pixelcnn_fashion_mnist.py", (6, 5, 1), "images", *TINY,
               f"model.gated={VARIANTS[variant]}")
    obj = exp.objective
    assert obj.tools.model.incremental and exp.sample_settings.sampler == "auto"
    params = jax.tree.map(lambda p: 3.0 * p, _params(exp))  # more peaked conditionals
    key = jax.random.key(7)

    def both(params):
        return [obj.sample(params, key, 5, exp.settings_with(sampler=s))
                for s in ("auto", "cached", "recompute")]

    auto, cached, recompute = fast_jit(both, params)
    a, b, c = (transforms.postprocess("images", s) for s in (auto, cached, recompute))
    assert a.shape == (5, 6, 5, 1) and len(np.unique(b)) > 20  # real draws, not one value
    np.testing.assert_array_equal(b, c)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant", VARIANTS)
def test_coder_round_trip_with_the_step(variant):
    """compress/decompress through the coder, which now runs `step` (its state is the
    caches, not the prefix): exact; the code length is the full pass's NLL, and the coder's
    conditionals at every position are the full pass's logits."""
    exp = _exp("pixelcnn_fashion_mnist.py", (6, 5, 1), "images", *TINY,
               f"model.gated={VARIANTS[variant]}")
    obj, coder = exp.objective, exp.objective.coder
    assert isinstance(coder.init(2), dict)  # the step's caches
    params = _params(exp, 3)
    raw = _sharp_images(7, np.random.default_rng(1))
    data, stats = codec.compress(obj, params, raw, batch_size=4)
    back, _ = codec.decompress(obj, params, data)
    np.testing.assert_array_equal(back, raw)
    x = transforms.preprocess("images", raw, None, dequantize=False)
    nll_bits = -np.asarray(fast_jit(obj.tools.log_probs, params, x), np.float64).sum(1)
    np.testing.assert_allclose(stats["ideal_bits_per_example"], nll_bits.mean() / np.log(2),
                               rtol=1e-4)

    symbols = jnp.asarray(coder.to_symbols(raw), jnp.int32)
    params = jax.tree.map(lambda p: 3.0 * p, params)  # conditionals far from uniform

    def coded_and_full(params):
        def body(state, i):
            return coder.step(params, state, symbols[:, jnp.maximum(i - 1, 0)], i)
        _, logits = jax.lax.scan(body, coder.init(len(raw)), jnp.arange(coder.dim))
        return jnp.swapaxes(logits, 0, 1), obj.tools.conditionals(params, x)

    coded, full = fast_jit(coded_and_full, params)
    assert float(jnp.std(full)) > 1.0
    np.testing.assert_allclose(coded, full, atol=1e-4, rtol=1e-5)


class _NoStep(PixelCNN):
    """PixelCNN as it was: no incremental step (the path a model without one takes)."""

    incremental = False


def test_a_model_without_a_step_is_coded_by_full_passes_and_not_sampled_cached():
    """The fallbacks no shipped model takes any more: the "cached" sampler is refused, the
    coder reruns the full pass over the prefix it keeps."""
    from jaxgen.families.autoregressive import objective as ar
    exp = _exp("pixelcnn_fashion_mnist.py", (4, 3, 1), "images")
    shape, key = (4, 3, 1), jax.random.key(4)
    slow = ar.ARModel(_NoStep(channels=4, num_layers=1, hidden=4, num_outputs=256), shape,
                      "images", 256)
    symbols = jnp.arange(0, 240, 10).reshape(2, 12)
    x = ar.bin_centre(symbols).reshape(2, *shape)
    params = {"model": slow.net.init(jax.random.key(0), x)["params"]}
    coder = ar.Coder(num_bins=256, event_shape=shape, binarized=False, tokens=False,
                     model=slow.net, to_input=slow.to_input)
    with pytest.raises(UserError, match="no incremental step"):
        ar.sample(params, key, 2, exp.settings_with(sampler="cached"), am=slow)

    def run(params):
        def body(state, i):
            return coder.step(params, state, symbols[:, jnp.maximum(i - 1, 0)], i)
        _, logits = jax.lax.scan(body, coder.init(2), jnp.arange(12))
        return jnp.swapaxes(logits, 0, 1), slow.conditionals(params, x)

    coded, full = fast_jit(run, params)
    assert coder.init(2).shape == (2, 12)  # the prefix, not caches
    np.testing.assert_allclose(coded, full, atol=1e-5)
