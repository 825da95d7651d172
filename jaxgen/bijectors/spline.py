"""Rational-quadratic spline couplings: neural spline flows (Durkan, Bekasov, Murray &
Papamakarios, 2019), on the monotonic rational-quadratic spline of Gregory & Delbourgo (1982).

The spline (their Sec. 3.1)
---------------------------
An elementwise monotonic map of ``[−B, B]`` onto itself through ``K + 1`` knots
``(x⁽ᵏ⁾, y⁽ᵏ⁾)``, ``x⁽⁰⁾ = y⁽⁰⁾ = −B``, ``x⁽ᴷ⁾ = y⁽ᴷ⁾ = B``, with positive derivatives
``δ⁽ᵏ⁾`` at the knots. In bin ``k`` (``x⁽ᵏ⁾ ≤ x ≤ x⁽ᵏ⁺¹⁾``), with the bin's width
``w = x⁽ᵏ⁺¹⁾ − x⁽ᵏ⁾``, height ``h = y⁽ᵏ⁺¹⁾ − y⁽ᵏ⁾``, slope ``s = h / w`` and
``ξ = (x − x⁽ᵏ⁾) / w ∈ [0, 1]``::

    y = y⁽ᵏ⁾ + h·[s ξ² + δ⁽ᵏ⁾ ξ(1−ξ)] / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1−ξ)]

    dy/dx = s²·[δ⁽ᵏ⁺¹⁾ ξ² + 2s ξ(1−ξ) + δ⁽ᵏ⁾ (1−ξ)²]
            / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1−ξ)]²

so ``y`` runs from ``y⁽ᵏ⁾`` to ``y⁽ᵏ⁺¹⁾`` with derivative ``δ⁽ᵏ⁾`` and ``δ⁽ᵏ⁺¹⁾`` at the
ends: the spline and its derivative are continuous at every knot, and it is strictly
increasing. Inverse (their appendix A): with ``Δ = y − y⁽ᵏ⁾`` and ``d = δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s``,
the spline equation is the quadratic ``a ξ² + b ξ + c = 0`` in ξ::

    a = h (s − δ⁽ᵏ⁾) + Δ d,   b = h δ⁽ᵏ⁾ − Δ d,   c = −s Δ
    ξ = 2c / (−b − √(b² − 4ac))

the root in ``[0, 1]`` (``q(0) = c ≤ 0 ≤ s(h − Δ) = q(1)``), written so it never divides
by zero (``b > 0`` whenever ``a < 0``, and ``b = hδ⁽ᵏ⁾ > 0`` at ``Δ = 0``).

Outside ``[−B, B]`` the map is the identity (linear tails, log-det 0); ``δ⁽⁰⁾ = δ⁽ᴷ⁾ = 1``
so the tails join the spline with a continuous derivative.

Parameters (their Sec. 3.1): per transformed entry ``3K − 1`` unconstrained
numbers, ``K`` widths and ``K`` heights through a softmax (each bin at least
``min_bin_width`` / ``min_bin_height`` of the ``2B`` range), ``K − 1`` inner derivatives
``δ = min_derivative + softplus(u + c₀)`` with ``c₀ = log(exp(1 − min_derivative) − 1)``:
the offset makes ``u = 0`` give ``δ = 1``, so all-zero parameters (equal bins, every
``δ = s = 1``) give exactly the identity ``y = x``. The conditioner's last layer is
zero-initialised, so :class:`RQSplineCoupling` starts as the identity.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.bijectors.base import Bijector
from jaxgen.bijectors.coupling import _conditioner_output, default_conditioner
from jaxgen.bijectors.masks import make_mask
from jaxgen.distributions import sum_event
from jaxgen.kernel.errors import UserError

__all__ = ["RQSplineCoupling", "rational_quadratic_spline", "spline_knots"]


def _knot_positions(unnormalised: jax.Array, bound: float, min_size: float) -> jax.Array:
    """``K`` unnormalised bin sizes -> the ``K + 1`` knot positions from ``−B`` to ``B``."""
    k = unnormalised.shape[-1]
    if min_size * k >= 1.0:
        raise UserError(f"{k} bins of at least {min_size} of the range do not fit in it; "
                        "lower the minimum bin size or the number of bins.")
    sizes = min_size + (1.0 - min_size * k) * jax.nn.softmax(unnormalised, axis=-1)
    inner = 2.0 * bound * jnp.cumsum(sizes[..., :-1], axis=-1) - bound
    ends = jnp.full(unnormalised.shape[:-1] + (1,), bound, unnormalised.dtype)
    return jnp.concatenate([-ends, inner, ends], axis=-1)  # the ends exactly ±B


def spline_knots(widths: jax.Array, heights: jax.Array, derivatives: jax.Array, *,
                 bound: float = 3.0, min_bin_width: float = 1e-3, min_bin_height: float = 1e-3,
                 min_derivative: float = 1e-3) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The knots ``(x⁽ᵏ⁾, y⁽ᵏ⁾, δ⁽ᵏ⁾)``, each ``(..., K + 1)``, of the unconstrained
    parameters ``widths (..., K)``, ``heights (..., K)``, ``derivatives (..., K − 1)``
    (``δ⁽⁰⁾ = δ⁽ᴷ⁾ = 1``: the linear tails)."""
    if derivatives.shape[-1] != widths.shape[-1] - 1 or heights.shape != widths.shape:
        raise UserError(f"A spline of K bins takes K widths, K heights and K − 1 derivatives; "
                        f"got {widths.shape[-1]}, {heights.shape[-1]}, {derivatives.shape[-1]}.")
    xk = _knot_positions(widths, bound, min_bin_width)
    yk = _knot_positions(heights, bound, min_bin_height)
    offset = math.log(math.expm1(1.0 - min_derivative))  # softplus(offset) = 1 − min_derivative
    inner = min_derivative + jax.nn.softplus(derivatives + offset)
    one = jnp.ones(derivatives.shape[:-1] + (1,), derivatives.dtype)
    return xk, yk, jnp.concatenate([one, inner, one], axis=-1)


def rational_quadratic_spline(x: jax.Array, widths: jax.Array, heights: jax.Array,
                              derivatives: jax.Array, inverse: bool = False, bound: float = 3.0,
                              min_bin_width: float = 1e-3, min_bin_height: float = 1e-3,
                              min_derivative: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """The monotonic rational-quadratic spline, elementwise: ``(out, log|d out / d in|)``.

    Args:
      x: inputs, any shape ``S`` (the spline's ``y`` when ``inverse``).
      widths, heights: ``S + (K,)`` unnormalised bin widths and heights (softmax).
      derivatives: ``S + (K − 1,)`` unconstrained inner knot derivatives (softplus).
      inverse: ``False``: ``y = g(x)`` and ``log g'(x)``; ``True``: ``x = g⁻¹(y)`` and
        ``log |dx/dy| = −log g'(x)``.
      bound: ``B``; outside ``[−B, B]`` the map is the identity with log-det 0.
      min_bin_width, min_bin_height: the smallest bin, as a fraction of ``2B``.
      min_derivative: the smallest knot derivative.

    Returns ``(out, log_abs_det)``, both of shape ``S``.
    """
    xk, yk, dk = spline_knots(widths, heights, derivatives, bound=bound,
                              min_bin_width=min_bin_width, min_bin_height=min_bin_height,
                              min_derivative=min_derivative)
    inside = (x >= -bound) & (x <= bound)
    v = jnp.clip(x, -bound, bound)  # the tails' points go through the spline unused
    search = yk if inverse else xk
    idx = jnp.sum(v[..., None] >= search[..., 1:-1], axis=-1)  # bin 0 .. K − 1

    def at(knots, shift=0):
        return jnp.take_along_axis(knots, (idx + shift)[..., None], axis=-1)[..., 0]

    x0, y0, d0, d1 = at(xk), at(yk), at(dk), at(dk, 1)
    w, h = at(xk, 1) - x0, at(yk, 1) - y0
    s = h / w
    d = d1 + d0 - 2.0 * s
    if inverse:
        delta = v - y0
        a = h * (s - d0) + delta * d
        b = h * d0 - delta * d
        c = -s * delta
        xi = 2.0 * c / (-b - jnp.sqrt(jnp.maximum(b * b - 4.0 * a * c, 0.0)))
        xi = jnp.clip(xi, 0.0, 1.0)
        out = x0 + xi * w
    else:
        xi = (v - x0) / w  # in [0, 1]: x0 <= v <= x1 by the search, and rounding is monotone
    t = xi * (1.0 - xi)
    denom = s + d * t
    if not inverse:
        out = y0 + h * (s * xi * xi + d0 * t) / denom
    log_grad = (2.0 * jnp.log(s) + jnp.log(d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) ** 2)
                - 2.0 * jnp.log(denom))
    out = jnp.where(inside, out, x)
    log_det = jnp.where(inside, -log_grad if inverse else log_grad, 0.0)
    return out, log_det


class RQSplineCoupling(Bijector):
    """Rational-quadratic spline coupling: each unmasked entry through its own spline,
    whose ``3K − 1`` parameters the conditioner computes from the kept part.

    Same conventions as :class:`~jaxgen.bijectors.coupling.AffineCoupling`: ``mask = 1``
    kept (``y = x`` there, log-det 0), the conditioner sees ``mask ⊙ x`` and returns
    ``(3K − 1)·C`` outputs per position (channel ``c``'s ``K`` widths, ``K`` heights and
    ``K − 1`` derivatives are outputs ``c·(3K−1)`` to ``(c+1)·(3K−1) − 1``), and with its
    last layer zero-initialised the coupling is the identity at init.
    ``log|det ∂y/∂x| = Σ_unmasked log g'(x)``: the Jacobian is triangular.

    Attributes:
      conditioner: Flax module ``(B, ..., C) -> (B, ..., (3K − 1)·C)``; ``None`` for
        :func:`~jaxgen.bijectors.coupling.default_conditioner`.
      mask_type: ``"checkerboard"``, ``"channel"``, ``"half"`` or ``"alternating"``.
      parity: 0 or 1; which set of entries is kept.
      num_bins: ``K``, the spline's bins.
      tail_bound: ``B``: the spline maps ``[−B, B]`` onto itself, the identity outside.
      min_bin_width, min_bin_height: the smallest bin, as a fraction of ``2B``.
      min_derivative: the smallest knot derivative.
    """

    conditioner: nn.Module | None = None
    mask_type: str = "checkerboard"
    parity: int = 0
    num_bins: int = 8
    tail_bound: float = 3.0
    min_bin_width: float = 1e-3
    min_bin_height: float = 1e-3
    min_derivative: float = 1e-3

    @staticmethod
    def params_per_entry(num_bins: int) -> int:
        """``3K − 1``: the conditioner outputs per transformed entry."""
        return 3 * num_bins - 1

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        k = self.num_bins
        if k < 1:
            raise UserError(f"A spline needs at least one bin; got num_bins={k}.")
        n = self.params_per_entry(k)
        mask = jnp.asarray(make_mask(self.mask_type, x.shape[1:], self.parity), x.dtype)
        net = self.conditioner if self.conditioner is not None else default_conditioner(x, n)
        params = _conditioner_output(net, x * mask, n).reshape(x.shape + (n,))
        widths, heights, derivatives = jnp.split(params, [k, 2 * k], axis=-1)
        y, log_det = rational_quadratic_spline(
            x, widths, heights, derivatives, inverse=inverse, bound=self.tail_bound,
            min_bin_width=self.min_bin_width, min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative)
        kept = mask > 0
        return jnp.where(kept, x, y), sum_event(jnp.where(kept, 0.0, log_det))
