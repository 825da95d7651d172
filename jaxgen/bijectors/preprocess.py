"""Fixed pre-processing bijectors whose Jacobian counts in the likelihood.

:class:`LogitTransform` is RealNVP's (Dinh et al., 2017, Sec. 4.1) logit
pre-processing, which maps the bounded pixel range to all of ℝ so the
Gaussian latent does not waste mass outside it::

    u = (x − low) / (high − low) ∈ [0, 1)
    p = α + (1 − 2α)·u ∈ [α, 1 − α)
    y = logit(p) = log p − log(1 − p)

    log|det ∂y/∂x| = Σ_d [ log((1 − 2α)/(high − low)) − log p_d − log(1 − p_d) ]
                   = Σ_d [ log((1 − 2α)/(high − low)) + softplus(y_d) + softplus(−y_d) ]

(the second form is the one computed: exact and stable for every ``y``).

How it composes with the bits/dim convention
--------------------------------------------
jaxgen's model space for 8-bit images is ``z = 2·(x + u)/256 − 1 ∈ [−1, 1)``
(uniform dequantisation in ``jaxgen.kernel.transforms``), hence the defaults
``low = −1, high = 1``. A flow whose first layer is ``LogitTransform`` has
model-space density ``log p(z) = log N(f(z)) + log_det``, where ``log_det``
already includes the logit's Jacobian above; ``jaxgen.eval.likelihood`` then
adds the constant ``D·log(2/256)`` of the pixel → model-space map once.
So the pre-processing Jacobian is counted exactly once and nothing else is
needed: bits/dim = −(log p(z) + D·log(2/256)) / (D ln 2), the same quantity
RealNVP and Glow report on the [0, 256) pixel scale.

:class:`ScaleShift` is a fixed affine map ``y = scale·x + shift`` (e.g.
``ScaleShift(0.5, 0.5)``: ``[−1, 1] → [0, 1]``), log_det = ``D·log|scale|``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxgen.bijectors.base import Bijector
from jaxgen.distributions import sum_event
from jaxgen.kernel.errors import UserError

__all__ = ["LogitTransform", "ScaleShift"]


class LogitTransform(Bijector):
    """``y = logit(α + (1 − 2α)·(x − low)/(high − low))`` with its exact log-det.

    Attributes:
      alpha: RealNVP's α (0.05 for CIFAR-10 in the paper); keeps ``p`` away
        from 0 and 1, in ``(0, 0.5)``.
      low, high: the input range mapped to ``[0, 1]``; jaxgen's model space
        ``[−1, 1)`` by default.
    """

    alpha: float = 0.05
    low: float = -1.0
    high: float = 1.0

    def _log_det(self, y: jax.Array) -> jax.Array:
        const = math.log((1.0 - 2.0 * self.alpha) / (self.high - self.low))
        return sum_event(const + jax.nn.softplus(y) + jax.nn.softplus(-y))

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        if not 0.0 < self.alpha < 0.5:
            raise UserError(f"alpha must be in (0, 0.5), got {self.alpha}.")
        if not self.high > self.low:
            raise UserError(f"Need high > low, got low={self.low}, high={self.high}.")
        width = self.high - self.low
        if not inverse:
            p = self.alpha + (1.0 - 2.0 * self.alpha) * (x - self.low) / width
            y = jnp.log(p) - jnp.log1p(-p)
            return y, self._log_det(y)
        p = jax.nn.sigmoid(x)
        out = self.low + width * (p - self.alpha) / (1.0 - 2.0 * self.alpha)
        return out, -self._log_det(x)


class ScaleShift(Bijector):
    """Fixed affine map ``y = scale·x + shift``; ``log_det = D·log|scale|``.

    Attributes:
      scale: non-zero multiplier.
      shift: offset added after scaling.
    """

    scale: float = 1.0
    shift: float = 0.0

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        if self.scale == 0:
            raise UserError("ScaleShift needs a non-zero scale.")
        d = math.prod(x.shape[1:])
        log_det = jnp.full((x.shape[0],), d * math.log(abs(self.scale)), x.dtype)
        if not inverse:
            return self.scale * x + self.shift, log_det
        return (x - self.shift) / self.scale, -log_det
