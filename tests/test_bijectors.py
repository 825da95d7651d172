"""Tests for jaxgen.bijectors: every layer, with non-identity random parameters.

For each case in ``CASES`` the parameters are initialised in the forward
direction (data-dependent ActNorm init included) and then *every* parameter
gets Gaussian noise, so the zero-initialised conditioner outputs are non-zero
and couplings are not the identity (``test_case_is_not_the_identity`` guards
that). On random inputs ``x`` and random latents ``z``:

* ``inverse(forward(x)) ≈ x`` and ``forward(inverse(z)) ≈ z``;
* the forward log-det equals ``slogdet(jacfwd(flattened forward))[1]`` per
  example (D ≤ 64);
* forward log-det at x = −inverse log-det at f(x), and likewise at z;
* jit and eager agree.

Then the lecture's table row by row (ActNorm H·W·Σ log|s|, 1×1 conv
H·W·log|det W|, LU H·W·Σ log|s|, coupling Σ s read back through ``sow``),
ActNorm's data-dependent init, couplings exactly the identity at init, Chain
= composition of its parts, Inverse swaps, and a 2-D flow's density
integrating to 1.

Speed (the file runs in ~40 s on 2 busy cores, almost all of it XLA
compiles): each case is one jitted program (init, noise, both directions and
the Jacobian), compiled once with ``FAST_COMPILE`` and shared by all the
tests through the ``_results`` cache; the eager runs are limited to one case
per class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.bijectors import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    Conv1x1,
    Conv1x1LU,
    Inverse,
    LogitTransform,
    Permute,
    ScaleShift,
    Split,
    Squeeze,
    Unsqueeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    make_mask,
    multi_scale,
    permutation_matrix,
    squeeze2d,
    standard_normal_log_prob,
)
from jaxgen.bijectors.conditioners import ConvConditioner, MLPConditioner

BATCH = 3
NOISE = 0.2  # std of the noise added to every parameter after init

# These tests are dominated by XLA compiles of tiny programs. Without XLA's
# CPU optimisation passes and fusion emitters they compile 2-3x faster; the
# computation is the same (same ops, float32). Falls back to the default
# options if this jaxlib does not know one of them.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                "xla_cpu_use_fusion_emitters": False}


def _jit(fn, *args):
    """``jax.jit(fn)(*args)``, compiled with ``FAST_COMPILE``."""
    lowered = jax.jit(fn).lower(*args)
    try:
        compiled = lowered.compile(FAST_COMPILE)
    except Exception as err:  # an unknown option: compile as usual
        if "compile option" not in str(err):
            raise
        compiled = lowered.compile()
    return compiled(*args)


def _key(seed: int = 0) -> jax.Array:
    """An RBG key, as tests/test_nn.py uses for Linen inits on CPU."""
    return jax.random.key(seed, impl="unsafe_rbg")


def _conv(out: int, hidden: int = 8, num_blocks: int = 0) -> ConvConditioner:
    return ConvConditioner(out, hidden=hidden, num_blocks=num_blocks)


def _mlp(out: int) -> MLPConditioner:
    return MLPConditioner(out, hidden=(16, 16))


@dataclasses.dataclass(frozen=True)
class Case:
    make: Callable[[], object]
    shape: tuple[int, ...]        # (B, ...) input shape
    inputs: str = "normal"        # "normal", or "unit": uniform in [-1, 1)


CASES = {
    # Vectors (B, D).
    "actnorm_vec": Case(ActNorm, (BATCH, 5)),
    "conv1x1_vec": Case(Conv1x1, (BATCH, 4)),
    "conv1x1lu_vec": Case(lambda: Conv1x1LU(perm_seed=2), (BATCH, 5)),
    "affine_half_vec": Case(lambda: AffineCoupling(_mlp(8), mask_type="half", parity=1),
                            (BATCH, 4)),
    "affine_alternating_vec": Case(lambda: AffineCoupling(_mlp(10), mask_type="alternating"),
                                   (BATCH, 5)),
    "additive_half_vec": Case(lambda: AdditiveCoupling(_mlp(6), mask_type="half"), (BATCH, 6)),
    "permute_vec": Case(lambda: Permute(seed=3), (BATCH, 6)),
    "scale_shift_vec": Case(lambda: ScaleShift(2.5, -1.0), (BATCH, 3)),
    "realnvp_2d_chain": Case(lambda: Chain([AffineCoupling(_mlp(4), "half", 0), ActNorm(),
                                            AffineCoupling(_mlp(4), "half", 1), Permute()]),
                             (BATCH, 2)),
    # Images (B, H, W, C).
    "actnorm_img": Case(ActNorm, (BATCH, 4, 4, 2)),
    "conv1x1_img": Case(Conv1x1, (BATCH, 4, 4, 3)),
    "conv1x1lu_img": Case(lambda: Conv1x1LU(perm_seed=3), (BATCH, 4, 4, 3)),
    "affine_checkerboard_img": Case(
        lambda: AffineCoupling(_conv(4, num_blocks=1), "checkerboard", 0), (BATCH, 4, 4, 2)),
    "affine_channel_img": Case(lambda: AffineCoupling(_conv(8), "channel", 1), (BATCH, 4, 4, 4)),
    "additive_checkerboard_img": Case(lambda: AdditiveCoupling(_conv(2), "checkerboard", 1),
                                      (BATCH, 4, 4, 2)),
    "permute_img": Case(Permute, (BATCH, 4, 4, 3)),
    "squeeze_img": Case(Squeeze, (BATCH, 4, 4, 2)),
    "unsqueeze_img": Case(Unsqueeze, (BATCH, 2, 2, 8)),
    "logit_img": Case(LogitTransform, (BATCH, 4, 4, 2), inputs="unit"),
    "split_prior_vec": Case(lambda: Split(inner=Chain([ActNorm(),
                                                       AffineCoupling(_mlp(6), "alternating")]),
                                          prior=_mlp(6)), (BATCH, 6)),
    "glow_step_img": Case(lambda: Chain([ActNorm(), Conv1x1LU(perm_seed=0),
                                         AffineCoupling(_conv(4), "channel")]), (BATCH, 4, 4, 2)),
    "inverse_coupling_vec": Case(lambda: Inverse(AffineCoupling(_mlp(8), "half", 1)), (BATCH, 4)),
    # RealNVP-style level (coupling, squeeze, coupling) then a Glow-style one,
    # with a learned prior at the split.
    "multiscale_img": Case(lambda: multi_scale(
        [[AffineCoupling(_conv(4), "checkerboard", 1), Squeeze(), ActNorm(), Conv1x1LU(perm_seed=0),
          AffineCoupling(_conv(16), "channel")],
         [Squeeze(), Conv1x1(), AffineCoupling(_conv(32), "channel", 1)]],
        priors=[_conv(8, hidden=4)]), (BATCH, 4, 4, 2)),
}
NAMES = sorted(CASES)
# jit vs eager: every class once, on small vectors where possible (eager Flax
# compiles and dispatches op by op, which is slow). Split covers Chain;
# Unsqueeze is Squeeze's code; multi_scale only nests covered classes.
EAGER = ["actnorm_img", "conv1x1_vec", "conv1x1lu_vec", "affine_half_vec", "additive_half_vec",
         "permute_vec", "squeeze_img", "logit_img", "scale_shift_vec", "split_prior_vec",
         "inverse_coupling_vec"]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _inputs(shape, kind="normal", seed=0) -> jax.Array:
    rng = np.random.default_rng(seed)
    if kind == "unit":
        return jnp.asarray(rng.uniform(-1.0, 1.0, shape), jnp.float32)
    return jnp.asarray(rng.standard_normal(shape), jnp.float32)


def _fwd(model, variables, x, **kw):
    return model.apply(variables, x, method=model.forward_and_log_det, **kw)


def _inv(model, variables, y, **kw):
    return model.apply(variables, y, method=model.inverse_and_log_det, **kw)


def _init(model, key, x):
    return model.init(key, x, method=model.forward_and_log_det)


def _perturb(variables, key, scale=NOISE):
    """Gaussian noise on every parameter (zero-initialised layers included).

    One draw for all leaves: a random op per leaf costs seconds of compile."""
    leaves, treedef = jax.tree.flatten(variables)
    sizes = [p.size for p in leaves]
    noise = scale * jax.random.normal(key, (sum(sizes),), jnp.float32)
    offsets = np.cumsum([0] + sizes)
    return treedef.unflatten([p + noise[a:b].reshape(p.shape).astype(p.dtype)
                              for p, a, b in zip(leaves, offsets[:-1], offsets[1:])])


def _numpy(tree):
    return jax.tree.map(np.asarray, tree)


@functools.lru_cache(maxsize=None)
def _results(name: str) -> dict:
    """Everything the tests need for one case, from one compiled program.

    The forward pass runs per example inside ``jacfwd`` (``has_aux`` returns
    the primal output and the sown log-scales), so the Jacobian costs no
    extra forward pass; the inverse runs batched on ``[f(x); z]``.
    """
    case = CASES[name]
    model = case.make()
    x = _inputs(case.shape, case.inputs, seed=0)

    def compute(key, x):
        k_init, k_noise, k_z = jax.random.split(key, 3)
        v = _perturb(_init(model, k_init, x), k_noise)

        def one(xi):
            def flat_forward(u):
                (y, ld), state = _fwd(model, v, u.reshape((1, *xi.shape)),
                                      mutable=["intermediates"])
                return y.reshape(-1), (y[0], ld[0], state.get("intermediates", {}))

            jac, (y, ld, inter) = jax.jacfwd(flat_forward, has_aux=True)(xi.reshape(-1))
            return jnp.linalg.slogdet(jac)[1], y, ld, inter

        jac_fwd, y, ld, inter = jax.vmap(one)(x)
        z = jax.random.normal(k_z, y.shape, y.dtype)
        both, ld_both = _inv(model, v, jnp.concatenate([y, z]))
        x_of_z, ld_inv = both[BATCH:], ld_both[BATCH:]
        z_rec, ld_fwd_at_xz = _fwd(model, v, x_of_z)
        return dict(variables=v, intermediates=inter, z=z, y=y, ld=ld, jac_fwd=jac_fwd,
                    x_rec=both[:BATCH], ld_inv_at_y=ld_both[:BATCH],
                    x_of_z=x_of_z, ld_inv=ld_inv, z_rec=z_rec, ld_fwd_at_xz=ld_fwd_at_xz)

    out = _numpy(_jit(compute, _key(0), x))
    out.update(x=np.asarray(x), model=model)
    if name in EAGER:
        v = jax.tree.map(jnp.asarray, out["variables"])
        out["eager_fwd"] = _numpy(_fwd(model, v, x))
        out["eager_inv"] = _numpy(_inv(model, v, jnp.asarray(out["z"])))
    return out


# ---------------------------------------------------------------------------
# Properties every bijector must have
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name):
    r = _results(name)
    np.testing.assert_allclose(r["x_rec"], r["x"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(r["z_rec"], r["z"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_jacobian(name):
    """Forward log-det vs autodiff. (The inverse's follows from this,
    ``test_round_trip`` and ``test_forward_log_det_is_minus_inverse``.)"""
    r = _results(name)
    assert r["ld"].shape == (BATCH,) and r["ld_inv"].shape == (BATCH,)
    np.testing.assert_allclose(r["ld"], r["jac_fwd"], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_forward_log_det_is_minus_inverse(name):
    r = _results(name)
    np.testing.assert_allclose(r["ld"], -r["ld_inv_at_y"], atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(r["ld_inv"], -r["ld_fwd_at_xz"], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EAGER)
def test_jit_matches_eager(name):
    r = _results(name)
    (y, ld), (x, ld_inv) = r["eager_fwd"], r["eager_inv"]
    np.testing.assert_allclose(y, r["y"], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ld, r["ld"], atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(x, r["x_of_z"], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ld_inv, r["ld_inv"], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_case_is_not_the_identity(name):
    """Guards the tests above against passing on an identity map."""
    r = _results(name)
    if r["y"].shape == r["x"].shape:
        assert np.max(np.abs(r["y"] - r["x"])) > 0.05
    else:  # Squeeze / Unsqueeze: a rearrangement, not a reshape
        assert np.max(np.abs(r["y"].reshape(r["x"].shape) - r["x"])) > 0.05
    if "affine" in name or "glow" in name or "split" in name or "multiscale" in name:
        assert np.mean(np.abs(r["ld"])) > 1e-2


# ---------------------------------------------------------------------------
# The lecture's table, row by row
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["actnorm_img", "actnorm_vec"])
def test_actnorm_log_det_is_hw_sum_log_s(name):
    """ActNorm: z = s ⊙ x + b, log|det J| = H·W·Σ log|s|."""
    r = _results(name)
    p = {k: a.astype(np.float64) for k, a in r["variables"]["params"].items()}
    s, b = np.exp(p["log_scale"]), p["bias"]
    hw = math.prod(r["x"].shape[1:-1])
    np.testing.assert_allclose(r["ld"], hw * np.sum(np.log(np.abs(s))) * np.ones(BATCH), rtol=1e-5)
    np.testing.assert_allclose(r["y"], s * r["x"] + b, atol=1e-5)


@pytest.mark.parametrize("name", ["conv1x1_img", "conv1x1_vec"])
def test_conv1x1_log_det_is_hw_log_det_w(name):
    """Invertible 1×1 conv: z = W x per pixel, log|det J| = H·W·log|det W|."""
    r = _results(name)
    w = r["variables"]["params"]["kernel"].astype(np.float64)
    hw = math.prod(r["x"].shape[1:-1])
    np.testing.assert_allclose(r["ld"], hw * np.linalg.slogdet(w)[1] * np.ones(BATCH),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["y"], np.einsum("ij,...j->...i", w, r["x"]), atol=1e-5)


@pytest.mark.parametrize("name", ["conv1x1lu_img", "conv1x1lu_vec"])
def test_conv1x1_lu_log_det_is_hw_sum_log_s(name):
    """LU 1×1 conv: W = P L (U + diag(s)), log|det J| = H·W·Σ log|s| = H·W·log|det W|."""
    r = _results(name)
    p = {k: a.astype(np.float64) for k, a in r["variables"]["params"].items()}
    c = r["x"].shape[-1]
    perm = permutation_matrix(c, r["model"].perm_seed)
    assert sorted(perm.sum(0)) == [1.0] * c and not np.allclose(perm, np.eye(c))
    w = perm @ (np.tril(p["lower"], -1) + np.eye(c)) @ (
        np.triu(p["upper"], 1) + np.diag(np.exp(p["log_scale"])))
    hw = math.prod(r["x"].shape[1:-1])
    np.testing.assert_allclose(r["ld"], hw * np.sum(p["log_scale"]) * np.ones(BATCH),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["ld"], hw * np.linalg.slogdet(w)[1] * np.ones(BATCH),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["y"], np.einsum("ij,...j->...i", w, r["x"]), atol=1e-5)


@pytest.mark.parametrize("name", ["affine_checkerboard_img", "affine_channel_img",
                                  "affine_half_vec", "affine_alternating_vec"])
def test_affine_coupling_log_det_is_sum_s(name):
    """Affine coupling: log|det J| = Σ s, with s read back through ``sow``."""
    r = _results(name)
    model, x, y = r["model"], r["x"], r["y"]
    (s,) = r["intermediates"]["log_scale"]  # (B, 1, ...): recorded per example inside jacfwd
    s = s.astype(np.float64).reshape(x.shape)
    assert s.shape == x.shape and np.abs(s).max() > 1e-2
    np.testing.assert_allclose(r["ld"], s.reshape(BATCH, -1).sum(-1), rtol=1e-5, atol=1e-6)
    # s vanishes on the kept entries, y = x there, y = x·exp(s) + t elsewhere
    # with |s| ≤ |scale_factor|.
    kept = np.broadcast_to(make_mask(model.mask_type, x.shape[1:], model.parity),
                           x.shape).astype(bool)
    assert kept.any() and (~kept).any()
    assert np.all(s[kept] == 0.0)
    np.testing.assert_array_equal(y[kept], x[kept])
    assert np.all(np.abs(s) <= np.abs(r["variables"]["params"]["scale_factor"]) + 1e-6)


def test_masks():
    cb = checkerboard_mask(3, 4, 0)[..., 0]
    assert (cb.shape == (3, 4) and cb[0, 0] == 1 and cb[0, 1] == 0 and cb[1, 0] == 0
            and cb[1, 1] == 1)
    np.testing.assert_array_equal(checkerboard_mask(3, 4, 1)[..., 0], 1 - cb)
    np.testing.assert_array_equal(channel_mask(5, 0), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(channel_mask(5, 1), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(make_mask("half", (5,), 1), channel_mask(5, 1))
    np.testing.assert_array_equal(alternating_mask(5, 0), [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(alternating_mask(5, 1), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError):
        checkerboard_mask(2, 2, 2)
    with pytest.raises(ValueError):
        make_mask("checkerboard", (4,), 0)


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------
def _fresh(model, x):
    """Unperturbed init, in the forward direction."""
    return _jit(lambda k, u: _init(model, k, u), _key(0), x)


@pytest.mark.parametrize("shape", [(16, 4, 4, 3), (64, 3)])
def test_actnorm_data_dependent_init_standardises_the_init_batch(shape):
    model = ActNorm()
    x = 3.0 * _inputs(shape, seed=5) + jnp.arange(shape[-1], dtype=jnp.float32) - 2.0
    v = _fresh(model, x)
    y, ld = _fwd(model, v, x)
    y = np.asarray(y).reshape(-1, shape[-1])
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1.0, atol=1e-4)
    assert np.all(np.asarray(ld) < 0)  # the data's std is ≈ 3 > 1: the layer contracts


def test_actnorm_initialised_in_inverse_direction_is_identity():
    model = Inverse(ActNorm())
    x = 3.0 * _inputs((8, 3))
    y, ld = _fwd(model, _fresh(model, x), x)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(ld), 0.0)


@pytest.mark.parametrize("make,shape", [
    (lambda: AffineCoupling(mask_type="checkerboard"), (BATCH, 4, 4, 2)),
    (lambda: AffineCoupling(mask_type="half"), (BATCH, 4)),
    (lambda: AdditiveCoupling(mask_type="channel"), (BATCH, 4, 4, 4)),
    (lambda: Split(inner=AffineCoupling(_conv(4), "checkerboard"), prior=_conv(4)),
     (BATCH, 4, 4, 4)),
], ids=["affine_checkerboard_default", "affine_half_default", "additive_channel_default",
        "split_with_prior"])
def test_coupling_with_zero_init_last_layer_is_identity_at_init(make, shape):
    model = make()
    x = _inputs(shape)

    def both(k, u):
        v = _init(model, k, u)
        return _fwd(model, v, u), _inv(model, v, u)

    for y, ld in _jit(both, _key(0), x):
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
        np.testing.assert_array_equal(np.asarray(ld), 0.0)


def test_conv1x1_inits_are_orthogonal():
    eye = jnp.eye(6)
    w = np.asarray(_fresh(Conv1x1(), eye)["params"]["kernel"])
    np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-5)
    model = Conv1x1LU(perm_seed=0)
    y, ld = _fwd(model, _fresh(model, eye), eye)  # row i of y is W e_i = column i of W
    w_lu = np.asarray(y).T
    np.testing.assert_allclose(w_lu.T @ w_lu, np.eye(6), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ld), 0.0, atol=1e-5)


# ---------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------
def test_chain_is_the_composition_of_its_parts():
    """Chain forward = parts in order, log-dets summed; inverse = parts reversed."""
    r = _results("glow_step_img")
    params = r["variables"]["params"]
    parts = [ActNorm(), Conv1x1LU(perm_seed=0), AffineCoupling(_conv(4), "channel")]

    def by_parts(x, z):
        h, total = x, jnp.zeros(BATCH)
        for i, layer in enumerate(parts):
            h, ld = _fwd(layer, {"params": params[f"layers_{i}"]}, h)
            total = total + ld
        g, total_inv = z, jnp.zeros(BATCH)
        for i, layer in reversed(list(enumerate(parts))):
            g, ld = _inv(layer, {"params": params[f"layers_{i}"]}, g)
            total_inv = total_inv + ld
        return h, total, g, total_inv

    h, total, g, total_inv = _numpy(_jit(by_parts, r["x"], r["z"]))
    np.testing.assert_allclose(r["y"], h, atol=1e-5)
    np.testing.assert_allclose(r["ld"], total, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["x_of_z"], g, atol=1e-5)
    np.testing.assert_allclose(r["ld_inv"], total_inv, rtol=1e-5, atol=1e-5)


def test_inverse_swaps_directions():
    """Inverse(f).forward = f.inverse and Inverse(f).inverse = f.forward, same parameters."""
    r = _results("inverse_coupling_vec")
    f = AffineCoupling(_mlp(8), "half", 1)
    v = {"params": r["variables"]["params"]["bijector"]}
    (y, ld), (x, ld_inv) = _numpy(_jit(lambda a, b: (_inv(f, v, a), _fwd(f, v, b)), r["x"], r["z"]))
    np.testing.assert_allclose(r["y"], y, atol=1e-6)
    np.testing.assert_allclose(r["ld"], ld, atol=1e-6)
    np.testing.assert_allclose(r["x_of_z"], x, atol=1e-6)
    np.testing.assert_allclose(r["ld_inv"], ld_inv, atol=1e-6)


def test_multi_scale_structure():
    model = multi_scale([[Squeeze(), AffineCoupling(_conv(16), "channel")],
                         [Squeeze(), AffineCoupling(_conv(32), "channel")]])
    assert [type(m) for m in model.layers] == [Squeeze, AffineCoupling, Split, Unsqueeze]
    assert [type(m) for m in model.layers[2].inner.layers] == [Squeeze, AffineCoupling, Unsqueeze]
    # z has the data's shape (also checked on the multiscale cases above).
    assert _results("multiscale_img")["y"].shape == CASES["multiscale_img"].shape
    with pytest.raises(ValueError, match="Squeeze steps only"):
        multi_scale([[Squeeze(), Unsqueeze()]])


# ---------------------------------------------------------------------------
# Layer-specific facts
# ---------------------------------------------------------------------------
def test_squeeze_layout_matches_glow():
    """Each 2×2 block becomes 4C channels ordered (c, dy, dx), as Glow's squeeze2d."""
    x = jnp.arange(2 * 4 * 2, dtype=jnp.float32).reshape(1, 2, 4, 2)
    y = np.asarray(squeeze2d(x))
    assert y.shape == (1, 1, 2, 8)
    # Block (0, 1) holds pixels (dy, 2 + dx).
    expected = [x[0, dy, 2 + dx, c] for c in range(2) for dy in range(2) for dx in range(2)]
    np.testing.assert_array_equal(y[0, 0, 1], np.asarray(expected))


def test_logit_transform_closed_form_and_composition():
    alpha = 0.05
    x = jnp.zeros((2, 3))  # the midpoint of [-1, 1): p = 1/2, y = 0
    y, ld = _fwd(LogitTransform(alpha), {}, x)
    np.testing.assert_allclose(np.asarray(y), 0.0, atol=1e-7)
    per_dim = math.log((1 - 2 * alpha) / 2.0) - 2 * math.log(0.5)
    np.testing.assert_allclose(np.asarray(ld), 3 * per_dim, rtol=1e-6)
    # Logit on [-1, 1) = ScaleShift([-1, 1] -> [0, 1]) then logit on [0, 1): log-dets add up.
    u = _inputs((4, 5), "unit", seed=3)
    composed = Chain([ScaleShift(0.5, 0.5), LogitTransform(alpha, low=0.0, high=1.0)])
    y1, ld1 = _fwd(LogitTransform(alpha), {}, u)
    y2, ld2 = _fwd(composed, {}, u)
    np.testing.assert_allclose(np.asarray(y1), np.asarray(y2), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ld1), np.asarray(ld2), rtol=1e-5)


def test_coupling_rejects_a_conditioner_of_the_wrong_width():
    model = AffineCoupling(_mlp(4), mask_type="half")  # needs 2·D = 8 outputs
    with pytest.raises(ValueError, match="2·C outputs"):
        jax.eval_shape(lambda k, u: _init(model, k, u), jax.random.key(0), jnp.zeros((2, 4)))


def test_2d_flow_density_integrates_to_one():
    """log p(x) = log N(f(x)) + log_det is a normalised density on ℝ² (Riemann
    sum over a grid that holds all but a negligible part of the mass)."""
    r = _results("realnvp_2d_chain")
    grid = np.linspace(-9.0, 9.0, 301, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid, indexing="ij")
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1))

    def log_p(v, pts):
        z, ld = _fwd(r["model"], v, pts)
        return standard_normal_log_prob(z) + ld

    log_px = np.asarray(_jit(log_p, r["variables"], pts), np.float64)
    total = float(np.sum(np.exp(log_px)) * float(grid[1] - grid[0]) ** 2)
    assert abs(total - 1.0) < 0.01, total
