"""What the paper configs added: the U-Net's published-network features (layout=ddpm,
attention resolutions and heads, dropout in training only, scale-shift norm, resampling
modes), train.augment=hflip, and flow matching's skewed training times. Small networks on
8x8 images: each test runs in about a second or two."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import fast_compile, fast_jit

from jaxgen.kernel.contract import Objective, Player
from jaxgen.kernel.errors import UserError
from jaxgen.nn import dropout
from jaxgen.nn.unet import UNet
from jaxgen.processes.paths import sample_times
from jaxgen.runner import augment
from jaxgen.runner import step as step_lib
from jaxgen.runner.state import param_count

X = jnp.zeros((2, 8, 8, 3))
T = jnp.zeros((2,))


def _params(model, x=X):
    return jax.eval_shape(model.init, jax.random.key(0), x, jnp.zeros((x.shape[0],)))["params"]


def _perturbed(model, seed=0):
    """Initial params plus noise (the zero-initialised output conv makes the initial
    network exactly 0, whatever dropout does); "rbg" keys, as jaxgen's init, compile fast;
    one jitted function (leaf by leaf, eager noise compiles a kernel per shape)."""
    @jax.jit
    def init(key):
        params = model.init(key, X, T)["params"]
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
        return jax.tree.unflatten(tree, [p + 0.1 * jax.random.normal(k, p.shape)
                                         for p, k in zip(leaves, keys)])
    return init(jax.random.key(seed, impl="rbg"))


def test_the_default_network_is_the_compact_one_it_was():
    assert param_count(_params(UNet(), jnp.zeros((1, 28, 28, 1)))) == 476_609
    names = set(_params(UNet(channels=(8, 16))))
    assert "up_1_res_1" not in names and "mid_attn" not in names


def test_ddpm_layout_has_an_extra_up_block_per_level_and_keeps_widths_on_upsampling():
    compact = _params(UNet(channels=(8, 16)))
    ddpm = _params(UNet(channels=(8, 16), layout="ddpm"))
    assert {"up_0_res_1", "up_1_res_1"} <= set(ddpm) - set(compact)
    assert compact["up_1_upsample"]["kernel"].shape[-1] == 8  # to the next level's width
    assert ddpm["up_1_upsample"]["kernel"].shape[-1] == 16  # its own level's width


def test_ddpmpp_stem_last_up_attention_and_projected_resampling():
    """DDPM++'s three differences from the DDPM layout, each seen in the params tree
    (test_paper_configs matches the whole network's count to the official code's)."""
    kw = dict(channels=(8, 16), layout="ddpm", resample="resblock", attention_resolutions=(8,))
    base = _params(UNet(**kw))
    pp = _params(UNet(**kw, stem_channels=4, up_attention="last", resample_proj=True))
    assert base["conv_in"]["kernel"].shape[-1] == 8 and pp["conv_in"]["kernel"].shape[-1] == 4
    assert {"up_0_attn_0", "up_0_attn_1"} <= set(base)
    assert {k for k in pp if k.startswith("up_0_attn")} == {"up_0_attn_1"}  # the last only
    assert {k for k in pp if k.startswith("down_0_attn")} == {"down_0_attn_0"}
    assert "skip" not in base["down_0_downsample"] and "skip" in pp["down_0_downsample"]
    assert pp["up_1_upsample"]["skip"]["kernel"].shape == (1, 1, 16, 16)
    with pytest.raises(UserError, match="model.up_attention='first'"):
        _params(UNet(**kw, up_attention="first"))


# the paper U-Nets' parameter counts and abstract train steps run by default
@pytest.mark.heavy
def test_attention_resolutions_heads_and_resample_modes():
    p = _params(UNet(channels=(8, 16), attention_resolutions=(8,), layout="ddpm"))
    assert {"down_0_attn_0", "up_0_attn_0", "up_0_attn_1", "mid_attn"} <= set(p)
    assert "down_1_attn_0" not in p  # 4x4 is not listed
    pool = _params(UNet(channels=(8, 16), resample="pool"))
    assert "down_0_downsample" not in pool and "up_1_upsample" not in pool
    res = _params(UNet(channels=(8, 16), resample="resblock", layout="ddpm"))
    assert {"norm_0", "conv_0", "conv_1"} <= set(res["down_0_downsample"])
    shift = _params(UNet(channels=(8, 16), scale_shift_norm=True))
    assert shift["down_0_res_0"]["time_proj"]["kernel"].shape[-1] == 16  # scale and shift
    adm = UNet(channels=(8, 16), resample="resblock", layout="ddpm", head_channels=4,
               attention_resolutions=(4,), scale_shift_norm=True, dropout=0.1)
    out = jax.jit(adm.apply)({"params": _perturbed(adm)}, X + 1.0, T)
    assert out.shape == X.shape and bool(jnp.all(jnp.isfinite(out)))
    with pytest.raises(UserError, match="does not divide the width 16"):
        _params(UNet(channels=(8, 16), attention_resolutions=(4,), head_channels=6))
    with pytest.raises(UserError, match="model.layout='unet'"):
        _params(UNet(layout="unet"))


def test_dropout_acts_only_inside_training_and_follows_its_key():
    model = UNet(channels=(8, 16), dropout=0.5)
    params = _perturbed(model)
    x = jax.random.normal(jax.random.key(3), X.shape)

    def plain(params):
        return model.apply({"params": params}, x, T)

    def training(params, key):
        with dropout.training(key):
            return model.apply({"params": params}, x, T), model.apply({"params": params}, x, T)

    training = fast_compile(training, params, jax.random.key(7))  # a U-Net compiles slowly
    first, second = training(params, jax.random.key(7))
    again, _ = training(params, jax.random.key(7))
    other, _ = training(params, jax.random.key(8))
    assert not np.allclose(first, fast_jit(plain, params)) and not np.allclose(first, second)
    np.testing.assert_array_equal(first, again)  # the same key, the same masks
    assert not np.allclose(first, other)
    assert dropout.call_key() is None


def test_the_train_step_traces_each_loss_inside_dropout_training():
    seen = []

    def loss(params, batch, rng):
        seen.append(dropout.call_key() is not None)
        return jnp.sum(params["m"]["w"] ** 2), {}

    obj = Objective("dropout_probe", (Player("m", loss),),
                    init=lambda rng, batch: {"m": {"w": jnp.ones((2,))}})
    txs = {"m": optax.sgd(0.1)}
    state = step_lib.init_state(obj, txs, 0, {"x": jnp.zeros((1, 2))})
    jax.jit(step_lib.make_train_step(obj, txs, "points", 0.0))(state, {"x": jnp.zeros((2, 2))})
    assert seen == [True] and dropout.call_key() is None


def test_hflip_flips_each_image_from_the_key_alone():
    x = jnp.arange(64 * 4 * 4 * 3, dtype=jnp.int32).reshape(64, 4, 4, 3).astype(jnp.uint8)
    key = jax.random.key(5)
    out = augment.augment("hflip", x, key)
    np.testing.assert_array_equal(out, augment.augment("hflip", x, key))
    flipped = np.array([np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)])
    kept = np.array([np.array_equal(o, xi) for o, xi in zip(out, x)])
    assert np.all(flipped ^ kept) and 16 < flipped.sum() < 48
    np.testing.assert_array_equal(augment.augment("none", x, key), x)
    with pytest.raises(UserError, match="flips images; the data are points"):
        augment.check("hflip", "points")
    augment.check("none", "points")


def test_skewed_times_lean_toward_the_data():
    key = jax.random.key(0)
    t = np.asarray(sample_times(key, 20_000, "skewed"))
    assert t.min() >= 1e-4 and t.max() <= 1.0
    # t = 1 / (1 + exp(-1.2 + 1.2 z)): the median is 1 / (1 + e^-1.2) = 0.7685
    assert abs(np.median(t) - 1 / (1 + np.exp(-1.2))) < 0.01
    u = np.asarray(sample_times(key, 20_000, "uniform"))
    assert abs(u.mean() - 0.5) < 0.01
