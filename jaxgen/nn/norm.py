"""Group normalisation (Wu & He, 2018) with a hand-written backward pass.

For x of shape (B, *spatial, C) and G groups of C/G channels, over the n = |spatial| · C/G
values of each (example, group):

    μ = mean(x),  r = (mean(x²) − μ² + ε)^(−1/2),  x̂ = (x − μ) r,  y = γ x̂ + β

(the statistics in float32 whatever x's dtype; the same formulas as Flax's
``nn.GroupNorm`` with its defaults, and the same parameters: ``scale`` γ = 1 and ``bias``
β = 0 per channel). The backward pass is the closed form

    S1 = Σ_spatial dy,  S2 = Σ_spatial dy · x̂          (per example and channel)
    dβ = Σ_b S1,  dγ = Σ_b S2
    dx = r (γ dy − m1 − x̂ m2),  m1 = Σ_{c∈g} γ_c S1 / n,  m2 = Σ_{c∈g} γ_c S2 / n

so each pass is one reduction over the spatial axes with the channels kept minor, plus
one elementwise pass. XLA:CPU differentiating Flax's version emits reductions over the
(spatial, channel-in-group) axes of a 5-D view, forward and backward, which is where most
of a U-Net train step went (`benchmarks/profile_step.py`). `tests/test_nn.py` checks
values and gradients against Flax's module.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["GroupNorm", "group_norm", "gcd_group_norm"]


def _stats(x, groups: int, eps: float):
    """(μ, r) per (example, group), float32, shape (B, G)."""
    b, c = x.shape[0], x.shape[-1]
    axes = tuple(range(1, x.ndim - 1))
    n = math.prod(x.shape[1:-1]) * (c // groups)
    xf = x.astype(jnp.float32)
    s1 = jnp.sum(xf, axes).reshape(b, groups, c // groups).sum(-1)
    s2 = jnp.sum(jnp.square(xf), axes).reshape(b, groups, c // groups).sum(-1)
    mean = s1 / n
    var = jnp.maximum(s2 / n - jnp.square(mean), 0.0)
    return mean, jax.lax.rsqrt(var + eps)


def _per_channel(v, x):
    """(B, G) -> (B, 1, …, 1, C): each group's value on its channels."""
    b, c = x.shape[0], x.shape[-1]
    return jnp.repeat(v, c // v.shape[1], axis=1).reshape(b, *([1] * (x.ndim - 2)), c)


def _normalise(x, mean, r):
    return (x.astype(jnp.float32) - _per_channel(mean, x)) * _per_channel(r, x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def group_norm(x, scale, bias, groups: int, eps: float = 1e-6):
    """y = γ (x − μ) r + β over groups of channels (module doc); y has x's dtype."""
    return _forward(x, scale, bias, groups, eps)[0]


def _forward(x, scale, bias, groups, eps):
    mean, r = _stats(x, groups, eps)
    y = _normalise(x, mean, r) * scale.astype(jnp.float32) + bias.astype(jnp.float32)
    return y.astype(x.dtype), (x, scale, mean, r)


def _backward(groups, eps, res, dy):
    del eps
    x, scale, mean, r = res
    b, c = x.shape[0], x.shape[-1]
    axes = tuple(range(1, x.ndim - 1))
    n = math.prod(x.shape[1:-1]) * (c // groups)
    g = scale.astype(jnp.float32)
    dyf = dy.astype(jnp.float32)
    xhat = _normalise(x, mean, r)
    s1 = jnp.sum(dyf, axes)  # (B, C)
    s2 = jnp.sum(dyf * xhat, axes)
    m1 = (s1 * g).reshape(b, groups, c // groups).sum(-1) / n
    m2 = (s2 * g).reshape(b, groups, c // groups).sum(-1) / n
    dx = _per_channel(r, x) * (dyf * g - _per_channel(m1, x) - xhat * _per_channel(m2, x))
    return (dx.astype(x.dtype), jnp.sum(s2, 0).astype(scale.dtype),
            jnp.sum(s1, 0).astype(scale.dtype))


group_norm.defvjp(_forward, _backward)


class GroupNorm(nn.Module):
    """`group_norm` as a Flax module: params ``scale`` (ones) and ``bias`` (zeros) of shape
    (C,), as ``flax.linen.GroupNorm`` names them (a checkpoint of either loads in the
    other)."""

    num_groups: int = 32
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        if c % self.num_groups:
            raise ValueError(f"GroupNorm: {c} channels are not divisible into "
                             f"{self.num_groups} groups.")
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return group_norm(x, scale, bias, self.num_groups, self.epsilon)


def gcd_group_norm(groups: int, channels: int, name: str) -> GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups, so any width works."""
    return GroupNorm(num_groups=math.gcd(groups, channels), name=name)
