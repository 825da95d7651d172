"""Exactness of the pieces the CIFAR-10 paper configs added (Glow, RealNVP, PixelCNN, SNGAN).

* the new flow layers (`HalfCoupling` in its three forms, `GlowConditioner` / `ZeroConv`,
  `DinhResNet`, `LearnedPrior`, `Split` with Glow's free log-sigma), inside small flows with
  every parameter perturbed away from its init: inverse(forward(x)) = x, and the log-det
  equals log|det| of the Jacobian computed by autodiff, per example;
* the parameter counts of Glow's and SNGAN's official architectures, by the formulas the
  configs cite, at small sizes;
* the colour PixelCNN's likelihood is autoregressive in the raster-and-colour order:
  d output_i / d x_j is exactly 0 for every j >= i, and the sub-pixel just before i does
  reach it; its cached step gives the full pass's outputs; one colour group gives the
  raster masks;
* SNGAN's discriminator: every layer spectral-normalised, its kernels / sigma-hat with top
  singular value 1 (numpy's SVD) after the power iterations;
* the linear learning-rate schedule.

Each case is one jitted program compiled once (init, noise, Jacobian, both directions),
with tests/test_bijectors.py's fast compile options and parameter noise.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_bijectors import _jit
from test_bijectors import _perturb as perturb

from jaxgen.bijectors import (
    ActNorm,
    Chain,
    Conv1x1,
    HalfCoupling,
    LearnedPrior,
    Squeeze,
    multi_scale,
)
from jaxgen.bijectors.conditioners import ConvConditioner, DinhResNet, GlowConditioner, ZeroConv
from jaxgen.bijectors.coupling import AffineCoupling
from jaxgen.kernel.errors import UserError
from jaxgen.nn.autoregressive import PixelCNN, colour_mask, raster_mask
from jaxgen.nn.flows import Glow
from jaxgen.nn.sngan import SNGAN
from jaxgen.runner.optim import learning_rate_schedule
from jaxgen.runner.state import param_count

NOISE = 0.05  # Glow initialises its convolutions at std 0.05: larger noise saturates its scales


def _key(seed=0):
    return jax.random.key(seed)


def _perturb(variables, key):
    """Gaussian noise on every parameter, so zero-initialised layers are not zero."""
    return perturb(variables, key, NOISE)


FLOWS = {
    # Glow's step with its own coupling network and dense 1x1 convolution
    "glow_step_affine": lambda: Chain([ActNorm(), Conv1x1(),
                                       HalfCoupling(GlowConditioner(4, hidden=6), "sigmoid")]),
    "glow_step_additive": lambda: Chain([ActNorm(), Conv1x1(),
                                         HalfCoupling(GlowConditioner(2, hidden=6), "additive",
                                                      parity=1)]),
    # RealNVP's code: channel-halves coupling with the tanh-bounded scale, and a
    # checkerboard coupling whose ResNet reads the mask
    "realnvp_halves_tanh": lambda: Chain([
        HalfCoupling(DinhResNet(4, hidden=6, num_blocks=1), "tanh", parity=1), ActNorm()]),
    "realnvp_checkerboard_dinh": lambda: Chain([
        AffineCoupling(DinhResNet(8, hidden=6, num_blocks=1, mask="checkerboard", parity=1),
                       "checkerboard", 1), ActNorm()]),
    # two scales with Glow's split prior (free log-sigma) and learned top prior
    "glow_multiscale_priors": lambda: multi_scale(
        [[Squeeze(), ActNorm(), HalfCoupling(ConvConditioner(8, hidden=4), "sigmoid")],
         [Squeeze(), Conv1x1(), HalfCoupling(GlowConditioner(16, hidden=4), "sigmoid"),
          LearnedPrior(ZeroConv(32))]],
        priors=[ZeroConv(8)], bounded=False),
}
SHAPES = {"glow_multiscale_priors": (4, 4, 4, 2)}


@functools.lru_cache(maxsize=None)
def _flow_results(name):
    model = FLOWS[name]()
    shape = SHAPES.get(name, (2, 2, 2, 4))
    x = jax.random.normal(_key(1), shape)

    def run(x):
        v = _perturb(model.init(_key(0), x, method=model.forward_and_log_det), _key(2))
        fwd = functools.partial(model.apply, v, method=model.forward_and_log_det)
        inv = functools.partial(model.apply, v, method=model.inverse_and_log_det)
        y, ld = fwd(x)
        x_back, ld_inv = inv(y)

        def one(xi):
            return fwd(xi.reshape((1, *shape[1:])))[0].reshape(-1)

        jac = jax.vmap(jax.jacfwd(one))(x.reshape(shape[0], -1))
        return y, ld, x_back, ld_inv, jnp.linalg.slogdet(jac)[1]

    return jax.tree.map(np.asarray, _jit(run, x)), np.asarray(x)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_new_flow_layers_invert_and_their_log_det_is_the_jacobians(name):
    (y, ld, x_back, ld_inv, slogdet), x = _flow_results(name)
    assert np.abs(y - x).max() > 1e-2  # perturbed: not the identity
    np.testing.assert_allclose(x_back, x, atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(ld, slogdet, atol=2e-3, rtol=1e-4)
    np.testing.assert_allclose(ld_inv, -ld, atol=1e-4, rtol=1e-5)
    assert np.abs(ld).max() > 1e-3 or "additive" in name


def test_half_couplings_are_the_identity_at_init_up_to_glows_constant_scale():
    x = jax.random.normal(_key(3), (2, 2, 2, 4))
    for kind, scale in (("additive", 1.0), ("tanh", 1.0),
                        ("sigmoid", 1.0 / (1.0 + math.exp(-2.0)))):
        net = GlowConditioner(2 if kind == "additive" else 4, hidden=4)
        layer = HalfCoupling(net, kind)

        def run(x, layer=layer):
            v = layer.init(_key(0), x, method=layer.forward_and_log_det)
            return layer.apply(v, x, method=layer.forward_and_log_det)

        y, ld = _jit(run, x)
        np.testing.assert_allclose(y[..., :2], x[..., :2])
        np.testing.assert_allclose(y[..., 2:], scale * x[..., 2:], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ld, 2 * 2 * 2 * math.log(scale) * np.ones(2), atol=1e-5)


def _count(module, *args, method=None):
    v = jax.eval_shape(lambda: module.init(_key(0), *args, **({"method": method} if method
                                                             else {})))
    return v["params"]


def _glow_official(levels, depth, width, channels=3):
    """openai/glow's trainable parameters (model.py, tfops.py): affine coupling, invconv,
    learntop; 3x3 convolutions read one more (edge) channel."""
    c, total = 4 * channels, 0
    for level in range(levels):
        half = c // 2
        total += depth * (2 * c + c * c + 9 * (half + 1) * width + 2 * width
                          + width * width + 2 * width + 9 * (width + 1) * c + 2 * c)
        if level < levels - 1:
            total += 9 * (half + 1) * c + 2 * c
            c = 4 * half
    return total + 9 * (2 * c + 1) * 2 * c + 2 * (2 * c)


@pytest.mark.parametrize("levels,depth,width", [(2, 2, 8), (3, 1, 6)])
def test_glow_with_the_official_layers_has_the_official_count(levels, depth, width):
    model = Glow(steps=depth, num_scales=levels, hidden=width, coupling="affine",
                 conditioner="glow", lu=False, learned_top=True)
    x = jnp.zeros((2, 16, 16, 3))
    got = param_count(_count(model, x, method=model.forward_and_log_det))
    assert got == _glow_official(levels, depth, width)


def test_sngan_counts_are_the_authors_resnets():
    g, d, z = 16, 12, 8
    params = _count(SNGAN(event_shape=(32, 32, 3), latent_dim=z, g_channels=g, d_channels=d),
                    jnp.zeros((2, z)))

    def conv(k, i, o, bias=True):
        return k * k * i * o + (o if bias else 0)

    # resnet_32.py: l1, 3 up-blocks (c1, c2, c_sc, b1, b2), b5, c5
    want_g = (z * 16 * g + 16 * g + 3 * (2 * conv(3, g, g) + conv(1, g, g) + 4 * g)
              + 2 * g + conv(3, g, 3))
    # snresnet_32.py: OptimizedBlock(3, ch), Block(down), 2 Blocks, l5 (no bias)
    want_d = (conv(3, 3, d) + conv(3, d, d) + conv(1, 3, d)
              + 2 * conv(3, d, d) + conv(1, d, d) + 2 * 2 * conv(3, d, d) + d)
    assert param_count(params["generator"]) == want_g
    assert param_count(params["discriminator"]) == want_d


def test_sngan_discriminator_layers_are_all_spectral_normalised_to_unit_top_singular_value():
    model = SNGAN(event_shape=(8, 8, 3), latent_dim=8, g_channels=8, d_channels=6)

    def iterate(key):
        variables = model.init(key, jnp.zeros((2, 8)))
        params = {"discriminator": variables["params"]["discriminator"],
                  "spectral": variables["spectral"]}
        return jax.lax.fori_loop(0, 100, lambda _, p: {**p, **SNGAN.refresh_state(p)}, params)

    params = _jit(iterate, _key(0))
    kernels = jax.tree_util.tree_leaves_with_path(params["discriminator"])
    us = dict(jax.tree_util.tree_leaves_with_path(params["spectral"]["discriminator"]))
    normalised = 0
    for path, kernel in kernels:
        if path[-1].key != "kernel":
            continue
        u = us[path[:-1] + (jax.tree_util.DictKey("u"),)]
        m = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
        sigma_hat = np.linalg.norm(m @ np.asarray(u, np.float64))
        top = np.linalg.svd(m / sigma_hat, compute_uv=False)[0]
        assert top == pytest.approx(1.0, abs=2e-3), path
        normalised += 1
    assert normalised == 3 + 3 + 2 + 2 + 1  # block_0..3 convs (+ two shortcuts) and the head


# ------------------------------------------------------------------------ PixelCNN
H, W, C = 3, 3, 3
D = H * W * C


@functools.lru_cache(maxsize=None)
def _pixelcnn(block):
    model = PixelCNN(channels=12, num_layers=2, hidden=6, block=block, num_outputs=4)
    # a ReLU dead at one input is alive at another: the reach is taken over 8 inputs
    xs = 3.0 * jax.random.normal(_key(5), (8, H, W, C))
    x = xs[:1]

    def run(x):
        v = _perturb(model.init(_key(0), x), _key(6))
        full = model.apply(v, x)[0]  # (D, 4)
        jac = jax.vmap(jax.jacrev(lambda xf: model.apply(v, xf.reshape(1, H, W, C))[0]))(
            xs.reshape(len(xs), -1))

        def body(state, i):
            prev = x.reshape(-1)[jnp.maximum(i - 1, 0)][None]
            state, out = model.apply(v, state, prev, i, method=model.step)
            return state, out[0]

        _, steps = jax.lax.scan(body, model.initial_state(1, D, (H, W, C)), jnp.arange(D))
        return full, jac, steps

    return jax.tree.map(np.asarray, _jit(run, x))


@pytest.mark.parametrize("block", ["plain", "bottleneck"])
def test_colour_pixelcnn_is_autoregressive_over_sub_pixels_and_its_step_is_exact(block):
    full, jac, steps = _pixelcnn(block)
    reach = np.abs(jac).sum(axis=(0, 2))  # (D outputs, D inputs), over the 8 inputs
    i, j = np.indices((D, D))
    assert np.all(reach[j >= i] == 0.0)  # exactly: no output reads its own or a later one
    assert np.all(reach[np.arange(1, D), np.arange(D - 1)] > 0)  # the sub-pixel just before
    np.testing.assert_allclose(steps, full, atol=1e-5, rtol=1e-5)


def test_one_colour_group_gives_the_raster_masks_and_the_centre_rule():
    for t in ("A", "B"):
        m = colour_mask(5, 5, [0, 0], [0, 0, 0], t)
        np.testing.assert_array_equal(m, np.broadcast_to(raster_mask(5, 5, t)[:, :, None, None],
                                                         (5, 5, 2, 3)))
    centre = colour_mask(3, 3, [0, 1, 2], [0, 1, 2], "A")[1, 1]
    np.testing.assert_array_equal(centre, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    centre = colour_mask(3, 3, [0, 1, 2], [0, 1, 2], "B")[1, 1]
    np.testing.assert_array_equal(centre, [[1, 1, 1], [0, 1, 1], [0, 0, 1]])


def test_linear_schedule_decays_from_the_peak_to_the_end_factor_after_warmup():
    cfg = {"learning_rate": 2e-4, "warmup_steps": 10, "schedule": "linear",
           "end_lr_factor": 0.0, "decay_steps": 0}
    lr = learning_rate_schedule(cfg, 110)
    assert float(lr(5)) == pytest.approx(1e-4)
    assert float(lr(10)) == pytest.approx(2e-4)
    assert float(lr(60)) == pytest.approx(1e-4)
    assert float(lr(110)) == pytest.approx(0.0, abs=1e-12)
    lr = learning_rate_schedule({**cfg, "warmup_steps": 0, "decay_steps": 400,
                                 "end_lr_factor": 0.5}, 100)
    assert float(lr(200)) == pytest.approx(1.5e-4)


def test_the_gated_pixelcnn_and_unknown_blocks_are_refused_for_what_they_cannot_model():
    x = jnp.zeros((1, 4, 4, 3))
    with pytest.raises(UserError, match="model.gated=False"):
        PixelCNN(channels=6, num_layers=1, hidden=6, gated=True).init(_key(0), x)
    with pytest.raises(UserError, match="model.block"):
        PixelCNN(channels=6, num_layers=1, hidden=6, block="wide").init(_key(0), x[..., :1])
