"""Invertible 1×1 convolutions (Glow; Kingma & Dhariwal, 2018).

A 1×1 convolution applies the same ``C×C`` matrix ``W`` to the channel vector
at every pixel, ``y_ij = W x_ij``, so its Jacobian is block diagonal with
``H·W`` copies of ``W``::

    log|det ∂y/∂x| = H·W · log|det W|

:class:`Conv1x1` stores ``W`` directly (``O(C³)`` slogdet and inverse per
call). :class:`Conv1x1LU` stores Glow's LU parameterisation::

    W = P · L · (U + diag(exp(log_s)))
    log|det W| = Σ_c log_s_c                   (O(C))

with ``P`` a fixed permutation, ``L`` unit lower triangular and ``U``
strictly upper triangular. Both start from a random orthogonal matrix
(QR of a Gaussian matrix, signs fixed so it is Haar distributed). Vectors
``(B, D)`` are treated as one pixel with ``D`` channels (``H·W = 1``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.bijectors.base import Bijector

__all__ = ["Conv1x1", "Conv1x1LU", "permutation_matrix", "random_orthogonal"]


def random_orthogonal(rng: jax.Array, n: int, dtype=jnp.float32) -> jax.Array:
    """A Haar-random ``n×n`` orthogonal matrix: ``Q`` of the QR of a Gaussian
    matrix, columns multiplied by ``sign(diag(R))`` (Mezzadri, 2007)."""
    q, r = jnp.linalg.qr(jax.random.normal(rng, (n, n), jnp.float32))
    return (q * jnp.sign(jnp.diag(r))[None, :]).astype(dtype)


def _apply_channels(w: jax.Array, x: jax.Array) -> jax.Array:
    """``W`` applied to the channel vector at every position: ``y[..., i] = Σ_j W_ij x[..., j]``."""
    return jnp.einsum("...j,ij->...i", x, w)


class Conv1x1(Bijector):
    """Invertible 1×1 convolution with a dense ``C×C`` weight ``W``.

    Forward ``y = W x`` per pixel, inverse ``x = W⁻¹ y`` (``jnp.linalg.inv``),
    ``log_det = H·W·log|det W|`` (``jnp.linalg.slogdet``). ``W`` is initialised
    to a random orthogonal matrix (``log|det W| = 0`` at init). Parameter:
    ``"kernel"`` (C, C).
    """

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        c = x.shape[-1]
        w = self.param("kernel", lambda rng: random_orthogonal(rng, c, x.dtype))
        positions = math.prod(x.shape[1:-1])
        log_abs_det = jnp.linalg.slogdet(w)[1]
        log_det = jnp.full((x.shape[0],), positions * log_abs_det, x.dtype)
        if not inverse:
            return _apply_channels(w, x), log_det
        return _apply_channels(jnp.linalg.inv(w), x), -log_det


def permutation_matrix(c: int, seed: int | None) -> np.ndarray:
    """The fixed permutation ``P`` of :class:`Conv1x1LU`: the identity for
    ``seed=None``, otherwise rows ``numpy.random.default_rng(seed).permutation(c)``
    of the identity (``(P a)_i = a_{perm_i}``). A constant computed at trace
    time from ``c`` and ``seed``, not a variable."""
    if seed is None:
        return np.eye(c, dtype=np.float32)
    return np.eye(c, dtype=np.float32)[np.random.default_rng(seed).permutation(c)]


def _lu_init(key: jax.Array, c: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(L₀, U₀·D, log|diag U₀|)`` from the LU decomposition of a random rotation
    (see :class:`Conv1x1LU` for why the result is still orthogonal)."""
    _, l0, u0 = jax.scipy.linalg.lu(random_orthogonal(key, c, jnp.float32))
    u0 = u0 * jnp.sign(jnp.diag(u0))[None, :]
    return l0, u0, jnp.log(jnp.abs(jnp.diag(u0)))


class Conv1x1LU(Bijector):
    """Invertible 1×1 convolution, ``W = P·L·(U + diag(exp(log_s)))`` (Glow).

    Parameters (all in ``"params"``): ``"lower"`` and ``"upper"`` (C, C; only
    the strict lower / upper triangles are used) and ``"log_scale"`` (C,).
    ``log_det = H·W·Σ_c log_s_c``; the inverse is two triangular solves.

    ``P`` and the signs of the diagonal are constants, not variables, so
    nothing but ``"params"`` has to be checkpointed. Glow takes ``P`` and the
    signs from the LU decomposition of its random initial rotation ``W₀``;
    here ``P`` is fixed in advance (see :func:`permutation_matrix`) and the
    diagonal of ``U`` is positive. The initial weight is still orthogonal: with
    ``W₀ = P₀ L₀ U₀`` (partial pivoting) and ``D = diag(sign(diag U₀))``,
    ``W_init = P L₀ (U₀ D) = P P₀ᵀ W₀ D`` is a product of orthogonal matrices,
    and ``U₀ D`` has the positive diagonal ``|diag U₀| = exp(log_s)``. As
    ``det W = det P · Π_c exp(log_s_c)`` never changes sign, training moves
    ``W`` within one connected component of the invertible matrices, as in
    Glow with its fixed signs.

    Attributes:
      perm_seed: ``None`` for ``P = I``, or a seed for a fixed random ``P``.
    """

    perm_seed: int | None = None

    def factors(self, lower: jax.Array, upper: jax.Array, log_s: jax.Array):
        """``(P, L, U + diag(exp(log_s)))`` from the parameters."""
        c = log_s.shape[0]
        l_mat = jnp.tril(lower, -1) + jnp.eye(c, dtype=lower.dtype)
        u_mat = jnp.triu(upper, 1) + jnp.diag(jnp.exp(log_s))
        return jnp.asarray(permutation_matrix(c, self.perm_seed), lower.dtype), l_mat, u_mat

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        c = x.shape[-1]
        # One random rotation feeds all three parameters, so they share a key
        # (Flax draws a separate one per `param`). Outside `init`, Flax only
        # shape-checks the init functions, and any key will do.
        key = self.make_rng("params") if self.is_initializing() else jax.random.key(0)
        lower = self.param("lower", lambda _: _lu_init(key, c)[0].astype(x.dtype))
        upper = self.param("upper", lambda _: _lu_init(key, c)[1].astype(x.dtype))
        log_s = self.param("log_scale", lambda _: _lu_init(key, c)[2].astype(x.dtype))
        p_mat, l_mat, u_mat = self.factors(lower, upper, log_s)
        positions = math.prod(x.shape[1:-1])
        log_det = jnp.full((x.shape[0],), positions * jnp.sum(log_s), x.dtype)
        if not inverse:
            return _apply_channels(p_mat @ l_mat @ u_mat, x), log_det
        # x = U⁻¹ L⁻¹ Pᵀ y: two triangular solves on the channel vectors.
        rhs = _apply_channels(p_mat.T, x).reshape(-1, c).T
        z = jax.scipy.linalg.solve_triangular(l_mat, rhs, lower=True, unit_diagonal=True)
        out = jax.scipy.linalg.solve_triangular(u_mat, z, lower=False).T
        return out.reshape(x.shape), -log_det
