"""Remat (gradient checkpointing) of the image models' blocks (`jaxgen.nn.remat`).

With any policy the parameter tree and the initial values are those of remat="none" (a
checkpoint restores either way), the gradients are the same, and the program really
holds one `checkpoint` per block with the policy asked for.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.kernel.errors import UserError
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.dit import DiT
from jaxgen.nn.image2image import CycleGAN, Pix2Pix
from jaxgen.nn.unet import UNet
from jaxgen.nn.vae import VQVAE2Conv, VQVAEConv

POLICIES = remat_lib.POLICIES[1:]  # all but "none"
# Unoptimised XLA: the tiny programs compile in about half the time; both sides alike.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

_KEY = jax.random.key(0)
_X8 = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
_X4 = _X8[:, :4, :4]
_T = jnp.array([0.3, 0.8])
_LABEL = jnp.array([0, 2])

# name: (module with the given remat, its call's arguments, blocks in one forward pass)
CASES = {
    # one level (7 blocks: 4 ResBlocks, 3 attention blocks) with the class embedding
    "unet": (lambda r: UNet(channels=(8,), time_dim=8, groups=4, attention=True,
                            num_classes=3, remat=r), (_X4, _T, _LABEL), 7),
    "dit": (lambda r: DiT(patch=2, depth=2, hidden=16, num_heads=2, num_classes=3, remat=r),
            (_X8, _T, _LABEL), 2),
    "vqvae": (lambda r: VQVAEConv(event_shape=(8, 8, 1), embed_dim=4, channels=(4, 8),
                                  num_res=2, remat=r), (_X8,), 4),
    "vqvae2": (lambda r: VQVAE2Conv(event_shape=(8, 8, 1), embed_dim=4, channels=(4, 8),
                                    num_res=1, remat=r), (_X8,), 4),
    "pix2pix": (lambda r: Pix2Pix(event_shape=(8, 8, 1), g_channels=4, d_channels=4,
                                  remat=r), (_X8,), 4),
    "cyclegan": (lambda r: CycleGAN(event_shape=(8, 8, 1), g_channels=4, d_channels=4,
                                    remat=r), (_X8, _X8[::-1]), 8),
}


def _loss_fn(name, policy):
    make, args, _ = CASES[name]
    model = make(policy)

    def loss(params):
        out = model.apply(params, *args)
        return sum(jnp.mean(jnp.square(o - 0.5)) for o in jax.tree_util.tree_leaves(out))

    return loss


_CACHE = {}


def _init(name, policy):
    key = (name, policy, "init")
    if key not in _CACHE:
        make, args, _ = CASES[name]
        init = jax.jit(make(policy).init)
        _CACHE[key] = init.lower(_KEY, *args).compile(FAST_COMPILE)(_KEY, *args)
    return _CACHE[key]


def _params(name):
    """Initial params perturbed (the U-Net's last conv starts at zero), float32."""
    if name not in _CACHE:
        rng = np.random.default_rng(2)
        _CACHE[name] = jax.tree_util.tree_map(
            lambda p: np.asarray(p) + 0.1 * rng.standard_normal(p.shape, np.float32),
            _init(name, "none"))
    return _CACHE[name]


def _grads(name, policies):
    """{policy: loss gradient at `_params(name)`}, all in one program (one compilation)."""
    params = _params(name)
    grads = jax.jit(lambda p: {r: jax.grad(_loss_fn(name, r))(p) for r in policies})
    return grads.lower(params).compile(FAST_COMPILE)(params)


def _check_grads(name, policies):
    grads = _grads(name, ("none",) + tuple(policies))
    want = grads.pop("none")
    assert max(float(jnp.abs(w).max()) for w in jax.tree_util.tree_leaves(want)) > 1e-3
    for policy, got in grads.items():
        for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got),
                                jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{policy} {jax.tree_util.keystr(path)}")


def _shapes(tree):
    return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), tree)


@pytest.mark.parametrize("name", sorted(CASES))
def test_params_tree_identical(name):
    make, args, _ = CASES[name]
    plain = jax.eval_shape(make("none").init, _KEY, *args)
    for policy in POLICIES:
        other = jax.eval_shape(make(policy).init, _KEY, *args)
        assert jax.tree_util.tree_structure(other) == jax.tree_util.tree_structure(plain)
        assert _shapes(other) == _shapes(plain), policy


@pytest.mark.xdist_group("remat-unet")  # shares the compiled init with the gradient test
def test_init_values_identical():
    """Same seed, same initial params: remat does not move the init RNG streams."""
    jax.tree_util.tree_map(np.testing.assert_array_equal, _init("unet", "nothing_saveable"),
                           _init("unet", "none"))


@pytest.mark.parametrize("name", [pytest.param("unet", marks=pytest.mark.xdist_group("remat-unet")),
                                  "vqvae"])
def test_grads_equal(name):
    """Every policy's gradients are remat="none"'s."""
    _check_grads(name, POLICIES)


def test_grads_equal_image2image():
    """The generator's blocks are functions of the module (a different lift): one policy."""
    _check_grads("pix2pix", ["nothing_saveable"])


def _remat_eqns(jaxpr):
    return [e for e in jaxpr.eqns if "remat" in e.primitive.name
            or "checkpoint" in e.primitive.name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_remat_in_program(name):
    _, args, blocks = CASES[name]
    params = jax.eval_shape(CASES[name][0]("none").init, _KEY, *args)
    plain = str(jax.make_jaxpr(jax.grad(_loss_fn(name, "none")))(params))
    assert "remat" not in plain and "checkpoint" not in plain
    grad = str(jax.make_jaxpr(jax.grad(_loss_fn(name, "nothing_saveable")))(params))
    assert "remat" in grad or "checkpoint" in grad  # the recomputation in the backward pass
    for policy in POLICIES:  # one checkpoint per block, with the policy asked for
        forward = jax.make_jaxpr(_loss_fn(name, policy))(params)
        eqns = _remat_eqns(forward.jaxpr)
        assert len(eqns) == blocks
        want = getattr(jax.checkpoint_policies, policy)
        assert all(e.params["policy"] == want for e in eqns), policy


def test_static_argnums_count_self():
    """`block`'s static_argnums count `self` as 0, as flax.linen.remat does."""

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            h = nn.Dense(3, name="dense")(x)
            return h * 2 if train else h  # a Python bool: must be static

    x = jnp.ones((2, 3))
    wrapped = remat_lib.block(Block, "nothing_saveable", (2,))
    params = Block().init(_KEY, x, True)
    for train in (True, False):
        got = jax.grad(lambda p: jnp.sum(wrapped().apply(p, x, train)))(params)
        want = jax.grad(lambda p: jnp.sum(Block().apply(p, x, train)))(params)
        jax.tree_util.tree_map(np.testing.assert_allclose, got, want)


def test_block_and_clone():
    assert remat_lib.block(UNet, "none") is UNet
    assert remat_lib.block(UNet, "dots_saveable") is remat_lib.block(UNet, "dots_saveable")
    assert set(remat_lib.POLICIES) >= {"none", "nothing_saveable", "everything_saveable"}
    assert UNet().clone(remat="dots_saveable").remat == "dots_saveable"
    with pytest.raises(UserError, match="nothing_saveable"):
        remat_lib.block(UNet, "nothing")
    with pytest.raises(UserError, match="not a remat policy"):
        UNet(channels=(8,), remat="everything").init(_KEY, _X4, _T)


def test_train_remat_reaches_the_model_and_is_refused_where_there_are_no_blocks():
    """train.remat clones the model with its policy; model.remat is not a second key for
    it; a model without blocks to remat is one error naming those that have them."""
    from conftest import TINY_TOY, TOY_CONFIG

    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.contract import DatasetInfo
    from jaxgen.runner.experiment import Experiment

    ddpm = config_lib.load_config("diffusion/ddpm_fashion_mnist", [
        "train.remat=dots_saveable", "train.compute_dtype=bfloat16"])
    exp = Experiment(ddpm, DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10))
    assert exp.model.remat == "dots_saveable"
    assert exp.model.compute_dtype == jnp.bfloat16  # the precision wrapper kept around it
    with pytest.raises(config_lib.ConfigError, match="model.remat"):
        config_lib.load_config("diffusion/ddpm_fashion_mnist", ["model.remat=dots_saveable"])
    toy = config_lib.load_config(TOY_CONFIG, TINY_TOY + ["train.remat=nothing_saveable"])
    with pytest.raises(UserError, match="model mlp has no blocks to rematerialise; the "
                                        "models that do: .*unet"):
        Experiment(toy, DatasetInfo("8gaussians", "points", (2,)))
