"""Neural spline flows: the rational-quadratic spline (`jaxgen.bijectors.spline`), its
coupling, and RealNVP with `coupling="spline"` (configs/flows/nsf_*.py).

Property tests over random inputs and random spline / conditioner parameters:

* the spline inverts (both ways, also in the tails, which are the identity with log-det 0);
* its elementwise log-derivative is autodiff's and central differences' (both directions),
  and a coupling's log-det is `slogdet(jacfwd)` of the whole layer;
* it is strictly increasing, and it and its derivative are continuous at every knot and at
  ±B (where the tails join);
* all-zero parameters, a coupling at init and a spline RealNVP at init are the identity;
* a 2-D spline flow's log-likelihood is the change-of-variables sum, its density integrates
  to 1, and the multi-scale image model inverts with the log-det of its Jacobian.

Each test compiles one small program (`fast_jit`): the file runs in ~25 s with -n 2 on 2 cores.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_jit

from jaxgen.bijectors import RQSplineCoupling, rational_quadratic_spline, spline_knots
from jaxgen.bijectors.conditioners import ConvConditioner, MLPConditioner
from jaxgen.families.flows.objective import flow_log_prob
from jaxgen.kernel.errors import UserError
from jaxgen.nn.flows import RealNVP

BOUND = 3.0
BINS = 5
EPS32 = float(np.finfo(np.float32).eps)


def _params(key, shape, scale=1.0):
    """Random unconstrained (widths, heights, derivatives) for splines of shape `shape`."""
    kw, kh, kd = jax.random.split(key, 3)
    return (scale * jax.random.normal(kw, (*shape, BINS)),
            scale * jax.random.normal(kh, (*shape, BINS)),
            scale * jax.random.normal(kd, (*shape, BINS - 1)))


def _spline(x, params, inverse=False):
    return rational_quadratic_spline(x, *params, inverse=inverse, bound=BOUND)


def _perturbed(model, x, key, scale):
    """Init in the forward direction, then Gaussian noise on every parameter (the
    zero-initialised last layers included, so nothing is the identity)."""
    v = model.init(key, x, method=model.forward_and_log_det)["params"]
    leaves, tree = jax.tree.flatten(v)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    return jax.tree.unflatten(tree, [p + scale * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys)])


def _fwd(model, params, x):
    return model.apply({"params": params}, x, method=model.forward_and_log_det)


def _inv(model, params, y):
    return model.apply({"params": params}, y, method=model.inverse_and_log_det)


def _slogdet_one(model, params, xi):
    """log|det ∂f/∂x| of the whole layer at one example, from its full Jacobian."""
    flat = lambda u: _fwd(model, params, u.reshape((1, *xi.shape)))[0].reshape(-1)
    return jnp.linalg.slogdet(jax.jacfwd(flat)(xi.reshape(-1)))[1]


# ------------------------------------------------------------------------ the spline
def test_spline_inverts_both_ways_and_is_the_identity_in_the_tails():
    n = 4000

    def run(key):
        kx, kp, kz = jax.random.split(key, 3)
        x = jax.random.uniform(kx, (n,), minval=-1.5 * BOUND, maxval=1.5 * BOUND)
        x = x.at[:4].set(jnp.array([-BOUND, BOUND, -BOUND - 1e-3, BOUND + 1e-3]))
        p = _params(kp, (n,))
        y, ld = _spline(x, p)
        x_back, ld_back = _spline(y, p, inverse=True)
        z = jax.random.uniform(kz, (n,), minval=-1.5 * BOUND, maxval=1.5 * BOUND)
        x_of_z, ld_z = _spline(z, p, inverse=True)
        z_back, ld_z_back = _spline(x_of_z, p)
        return x, y, ld, x_back, ld_back, z, z_back, ld_z, ld_z_back

    x, y, ld, x_back, ld_back, z, z_back, ld_z, ld_z_back = map(
        np.asarray, fast_jit(run, jax.random.key(0)))
    # To 1e-5, but where the first map is nearly flat (or steep): there float32's rounding of
    # its output, eps·B, comes back magnified by the inverse's slope |d in / d out|.
    for a, back, ld_first in ((x, x_back, ld), (z, z_back, ld_z)):
        err = np.abs(back - a)
        assert np.all(err <= 1e-5 + 4 * EPS32 * BOUND * np.exp(-ld_first)), err.max()
        assert np.mean(err <= 1e-5) > 0.99
    np.testing.assert_allclose(ld_back, -ld, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ld_z_back, -ld_z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y[:2], [-BOUND, BOUND], atol=1e-6)  # ±B map to ±B
    out = np.abs(x) > BOUND
    assert out.sum() > 1000 and np.all(y[out] == x[out]) and np.all(ld[out] == 0.0)
    out_z = np.abs(z) > BOUND
    assert np.all(z_back[out_z] == z[out_z]) and np.all(ld_z[out_z] == 0.0)
    # inside, a real spline: far from the identity, with log-derivatives of both signs
    assert np.max(np.abs(y - x)[~out]) > 0.5 and ld[~out].min() < -1.0 < 1.0 < ld[~out].max()


def test_spline_log_derivative_matches_autodiff_and_central_differences():
    n = 1000

    def run(key):
        kx, kp = jax.random.split(key)
        x = jax.random.uniform(kx, (n,), minval=-1.2 * BOUND, maxval=1.2 * BOUND)
        p = _params(kp, (n,))
        y, ld = _spline(x, p)
        _, ld_inv = _spline(y, p, inverse=True)
        grad = jax.vmap(jax.grad(lambda xi, pi: _spline(xi, pi)[0]))(x, p)
        grad_inv = jax.vmap(jax.grad(lambda yi, pi: _spline(yi, pi, inverse=True)[0]))(y, p)
        # steps of 1e-3, less where the map is steep, so the output moves by at most ~1e-3
        h = 1e-3 * jnp.minimum(1.0, jnp.exp(-ld))
        fd = (_spline(x + h, p)[0] - _spline(x - h, p)[0]) / (2 * h)
        h = 1e-3 * jnp.minimum(1.0, jnp.exp(-ld_inv))
        fd_inv = (_spline(y + h, p, inverse=True)[0] - _spline(y - h, p, inverse=True)[0]) / (2 * h)
        return x, ld, ld_inv, grad, grad_inv, fd, fd_inv

    x, ld, ld_inv, grad, grad_inv, fd, fd_inv = map(np.asarray, fast_jit(run, jax.random.key(1)))
    np.testing.assert_allclose(np.exp(ld), grad, rtol=1e-4)
    np.testing.assert_allclose(np.exp(ld_inv), grad_inv, rtol=1e-4)
    # float32 differences resolve slopes up to ~100 (steeper: autodiff's check above)
    ok, ok_inv = np.exp(ld) < 100, np.exp(ld_inv) < 100
    assert ok.mean() > 0.95 and ok_inv.mean() > 0.95
    np.testing.assert_allclose(fd[ok], np.exp(ld[ok]), rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(fd_inv[ok_inv], np.exp(ld_inv[ok_inv]), rtol=2e-2, atol=2e-3)
    out = np.abs(x) > BOUND
    assert out.any() and np.all(grad[out] == 1.0) and np.all(ld[out] == 0.0)
    assert np.ptp(ld[~out]) > 2.0  # the derivative varies: not a linear map


def test_spline_is_increasing_and_continuous_at_the_knots_and_the_bounds():
    m, n, eps = 16, 4001, 2e-5

    def run(key):
        p = _params(key, (m,))
        grid = jnp.linspace(-BOUND - 0.5, BOUND + 0.5, n)
        y, ld = _spline(jnp.broadcast_to(grid, (m, n)),
                        [jnp.broadcast_to(a[:, None], (m, n, a.shape[-1])) for a in p])
        xk, yk, dk = spline_knots(*p, bound=BOUND)
        pk = [jnp.broadcast_to(a[:, None], (m, BINS + 1, a.shape[-1])) for a in p]
        at = lambda v: _spline(v, pk)
        return y, ld, xk, yk, dk, at(xk), at(xk - eps), at(xk + eps)

    y, ld, xk, yk, dk, (y_k, ld_k), (y_lo, ld_lo), (y_hi, ld_hi) = jax.tree.map(
        np.asarray, fast_jit(run, jax.random.key(2)))
    assert np.all(np.diff(y, axis=1) > 0) and np.all(np.isfinite(ld))
    np.testing.assert_allclose(xk[:, [0, -1]], [[-BOUND, BOUND]] * m)
    np.testing.assert_allclose(yk[:, [0, -1]], [[-BOUND, BOUND]] * m)
    np.testing.assert_allclose(dk[:, [0, -1]], 1.0)  # the tails' slope
    # the knots: y(x_k) = y_k, no jump across, and the derivative there is δ_k from both sides
    np.testing.assert_allclose(y_k, yk, atol=2e-6)
    np.testing.assert_allclose(np.exp(ld_k), dk, rtol=1e-4)
    slope = np.maximum(np.exp(ld_lo), np.exp(ld_hi))
    assert np.all(np.abs(y_hi - y_lo) <= 2.5 * eps * slope + 1e-6)
    np.testing.assert_allclose(np.exp(ld_lo), dk, rtol=2e-2)
    np.testing.assert_allclose(np.exp(ld_hi), dk, rtol=2e-2)
    # the ends are joined to the tails (outside: y = x, log-det 0)
    np.testing.assert_allclose(y_lo[:, 0], -BOUND - eps, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y_hi[:, -1], BOUND + eps, rtol=0, atol=1e-6)
    assert np.all(ld_lo[:, 0] == 0.0) and np.all(ld_hi[:, -1] == 0.0)


# ----------------------------------------------------------------------- couplings
COUPLING_CASES = {
    "vector_alternating": (lambda: RQSplineCoupling(
        MLPConditioner(5 * (3 * BINS - 1), hidden=(16,)), mask_type="alternating",
        num_bins=BINS, tail_bound=2.0), (3, 5)),
    "image_checkerboard": (lambda: RQSplineCoupling(
        ConvConditioner(2 * (3 * BINS - 1), hidden=8, num_blocks=0), mask_type="checkerboard",
        parity=1, num_bins=BINS, tail_bound=2.0), (2, 4, 4, 2)),
    "image_channel": (lambda: RQSplineCoupling(
        ConvConditioner(3 * (3 * BINS - 1), hidden=8, num_blocks=0), mask_type="channel",
        num_bins=BINS, tail_bound=2.0), (2, 2, 2, 3)),
}


@pytest.mark.parametrize("name", list(COUPLING_CASES))
def test_coupling_inverts_and_its_log_det_is_slogdet_of_the_jacobian(name):
    make, shape = COUPLING_CASES[name]
    model = make()
    x = 1.5 * jax.random.normal(jax.random.key(3), shape)  # some entries beyond the bound

    def run(key, x):
        params = _perturbed(model, x, key, scale=0.1)
        y, ld = _fwd(model, params, x)
        x_back, ld_inv = _inv(model, params, y)
        want = jax.vmap(lambda xi: _slogdet_one(model, params, xi))(x)
        return y, ld, x_back, ld_inv, want

    y, ld, x_back, ld_inv, want = map(np.asarray, fast_jit(run, jax.random.key(4), x))
    x = np.asarray(x)
    np.testing.assert_allclose(x_back, x, atol=1e-5)
    np.testing.assert_allclose(ld_inv, -ld, atol=1e-4)
    np.testing.assert_allclose(ld, want, rtol=1e-4, atol=1e-4)
    assert np.abs(ld).max() > 0.2 and np.abs(y - x).max() > 0.1  # not the identity
    assert (np.abs(x) > 2.0).any()
    c = np.arange(shape[-1])
    if model.mask_type == "checkerboard":  # parity 1: (i + j) odd kept
        kept = (np.add.outer(np.arange(shape[1]), np.arange(shape[2])) % 2 == 1)[:, :, None]
    else:  # parity 0: even channels ("alternating"), the first half ("channel")
        kept = c % 2 == 0 if model.mask_type == "alternating" else c < shape[-1] // 2
    kept, inside = np.broadcast_to(kept, x.shape), np.abs(x) <= 2.0
    assert np.all(y[kept] == x[kept]) and np.all(y[~kept & inside] != x[~kept & inside])
    assert np.all(y[~kept & ~inside] == x[~kept & ~inside])  # the tails


def test_zero_parameters_couplings_and_spline_realnvp_are_the_identity_at_init():
    def run(key):
        k1, k2, k3 = jax.random.split(key, 3)
        x = jnp.linspace(-1.5 * BOUND, 1.5 * BOUND, 1001)
        zeros = (jnp.zeros((1001, BINS)), jnp.zeros((1001, BINS)), jnp.zeros((1001, BINS - 1)))
        out = [_spline(x, zeros), _spline(x, zeros, inverse=True)]
        for model, xb in [(RQSplineCoupling(mask_type="half", num_bins=8, tail_bound=2.0),
                           2.0 * jax.random.normal(k1, (8, 6))),
                          (RQSplineCoupling(num_bins=8), 2.0 * jax.random.normal(k2, (2, 4, 4, 3))),
                          (RealNVP(num_layers=3, hidden=(16,), actnorm=False, coupling="spline"),
                           4.0 * jax.random.normal(k3, (16, 2)))]:
            params = model.init(key, xb, method=model.forward_and_log_det)["params"]
            out += [(xb, *_fwd(model, params, xb), *_inv(model, params, xb))]
        return x, out

    x, out = jax.tree.map(np.asarray, fast_jit(run, jax.random.key(5)))
    for y, ld in out[:2]:
        np.testing.assert_allclose(y, x, atol=1e-6, rtol=0)
        np.testing.assert_allclose(ld, 0.0, atol=1e-6)
    for xb, y, ld, x_inv, ld_inv in out[2:]:
        np.testing.assert_allclose(y, xb, atol=1e-5, rtol=0)
        np.testing.assert_allclose(x_inv, xb, atol=1e-5, rtol=0)
        np.testing.assert_allclose(ld, 0.0, atol=1e-5)
        np.testing.assert_allclose(ld_inv, 0.0, atol=1e-5)


# ------------------------------------------------------------------------- models
def test_2d_spline_flow_log_likelihood_is_the_change_of_variables_sum():
    model = RealNVP(num_layers=3, hidden=(16,), coupling="spline", num_bins=6, tail_bound=3.0)
    x = 1.5 * jax.random.normal(jax.random.key(6), (64, 2))
    lim, g = 10.0, 400
    grid = np.linspace(-lim, lim, g, endpoint=False) + lim / g
    pts = jnp.asarray(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2), jnp.float32)

    def run(key, x, pts):
        params = _perturbed(model, x, key, scale=0.1)

        def one(xi):  # z = f(x) and its full Jacobian, from one forward pass
            f = lambda u: _fwd(model, params, u[None])[0][0]
            return jax.jacfwd(lambda u: (f(u), f(u)), has_aux=True)(xi)

        jac, z = jax.vmap(one)(x)
        by_hand = (-0.5 * jnp.sum(z ** 2, axis=1) - math.log(2 * math.pi)
                   + jnp.linalg.slogdet(jac)[1])
        logp, _, ld = flow_log_prob(params, jnp.concatenate([x, pts]), model=model)
        x_back, _ = _inv(model, params, z)
        mass = jnp.sum(jnp.exp(logp[len(x):])) * (2 * lim / g) ** 2
        return logp[:len(x)], by_hand, ld[:len(x)], x_back, mass

    logp, by_hand, ld, x_back, mass = map(np.asarray, fast_jit(run, jax.random.key(7), x, pts))
    np.testing.assert_allclose(logp, by_hand, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(x_back, np.asarray(x), atol=1e-5)
    assert np.std(ld) > 0.1  # a non-trivial flow: the log-det varies over the batch
    assert abs(float(mass) - 1.0) < 0.01, mass


@pytest.mark.heavy  # 17 s; the image couplings' log-dets are checked in CI above
def test_spline_realnvp_on_images_inverts_with_the_log_det_of_its_jacobian():
    model = RealNVP(num_scales=1, hidden=4, num_blocks=0, coupling="spline", num_bins=4)
    x = jax.random.uniform(jax.random.key(8), (2, 4, 4, 2), minval=-0.95, maxval=0.95)

    def run(key, x):
        params = _perturbed(model, x, key, scale=0.1)
        z, ld = _fwd(model, params, x)
        x_back, ld_inv = _inv(model, params, z)
        return x_back, ld, ld_inv, _slogdet_one(model, params, x[0])

    x_back, ld, ld_inv, want = map(np.asarray, fast_jit(run, jax.random.key(9), x))
    np.testing.assert_allclose(x_back, np.asarray(x), atol=1e-5)
    np.testing.assert_allclose(ld_inv, -ld, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ld[0], want, rtol=1e-5, atol=1e-3)


def test_an_unknown_coupling_is_a_user_error():
    with pytest.raises(UserError, match="model.coupling"):
        RealNVP(coupling="cubic").init(jax.random.key(0), jnp.zeros((2, 2)),
                                       method=RealNVP.forward_and_log_det)
