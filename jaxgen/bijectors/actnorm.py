"""Activation normalisation (Glow; Kingma & Dhariwal, 2018).

Per-channel affine map, written as in the lecture's table::

    y = s ⊙ x + b,   s = exp(log_s)            (forward, data → latent)
    log|det ∂y/∂x| = (H·W) · Σ_c log|s_c| = (H·W) · Σ_c log_s_c

``s = exp(log_s)`` is positive for every parameter value, so the layer is
always invertible. (Glow's code writes ``(x + b')·s``; the two are the same
family with ``b = b'·s``.)

Data-dependent initialisation: when the module is initialised in the forward
direction (``init(..., method=forward_and_log_det)``), ``log_s`` and ``b`` are
set from the init batch so that ``y`` has zero mean and unit variance per
channel (statistics over batch and spatial axes). Under ``jit`` with a
batch sharded over devices the statistics are those of the global batch, so
one device and several initialise identically. Initialised in the inverse
direction the layer starts as the identity.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.bijectors.base import Bijector

__all__ = ["ActNorm"]


class ActNorm(Bijector):
    """Per-channel ``y = exp(log_s) ⊙ x + b`` with data-dependent init.

    Works on images ``(B, H, W, C)`` and vectors ``(B, D)`` (channels = last
    axis; the log-det is multiplied by the number of positions per channel).

    Attributes:
      eps: added to the init batch's standard deviation before the log.
    """

    eps: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        c = x.shape[-1]
        data_init = self.is_initializing() and not inverse
        if data_init:
            axes = tuple(range(x.ndim - 1))
            xs = jax.lax.stop_gradient(x)
            mean = jnp.mean(xs, axis=axes)
            log_s0 = -jnp.log(jnp.std(xs, axis=axes) + self.eps)
            b0 = -mean * jnp.exp(log_s0)
        else:
            log_s0 = jnp.zeros((c,), x.dtype)
            b0 = jnp.zeros((c,), x.dtype)
        log_s = self.param("log_scale", lambda _: log_s0.astype(x.dtype))
        b = self.param("bias", lambda _: b0.astype(x.dtype))
        positions = math.prod(x.shape[1:-1])
        log_det = jnp.full((x.shape[0],), positions * jnp.sum(log_s), x.dtype)
        if not inverse:
            return x * jnp.exp(log_s) + b, log_det
        return (x - b) * jnp.exp(-log_s), -log_det
