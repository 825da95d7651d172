"""The bijector protocol, composition (``Chain``, ``Inverse``) and the prior.

Protocol
--------
A bijector is a Flax Linen module ``f`` with two methods (as in distrax,
whose abstract API is one ``forward_and_log_det``):

* ``forward_and_log_det(x) -> (y, log_det)``: the *normalizing* direction,
  data ``x`` towards latent ``z``. ``log_det`` has shape ``(B,)`` and is
  ``log|det ∂f/∂x|`` per example, so that for a flow ``z = f(x)``

      log p(x) = log p_Z(f(x)) + log|det ∂f/∂x|

  (the lecture writes the same thing from the generative side,
  ``log p(x) = log p0(z0) − Σ_j log|det ∂f_j/∂z_{j−1}|`` with
  ``f_j`` the latent→data maps; our ``f`` is their inverse).
* ``inverse_and_log_det(y) -> (x, log_det)``: latent → data (sampling),
  with ``log_det = log|det ∂f⁻¹/∂y| = −(forward log_det at x = f⁻¹(y))``.

Both directions share one set of parameters: every concrete bijector
implements a single ``@nn.compact __call__(x, inverse=False)`` and the two
public methods call it. The leading axis is always the batch; ``log_det``
sums over every other axis. Images are NHWC, vectors ``(B, D)``; "channels"
means the last axis for both (a vector is a 1×1 image with D channels).

Usage (parameters live in the ``"params"`` collection only, so a trainer that
keeps ``variables["params"]`` loses nothing)::

    flow = Chain([ActNorm(), Conv1x1LU(), AffineCoupling(ConvConditioner(2 * c))])
    params = flow.init(rng, x, method=flow.forward_and_log_det)["params"]
    z, log_det = flow.apply({"params": params}, x, method=flow.forward_and_log_det)
    log_px = standard_normal_log_prob(z) + log_det
    x_back, _ = flow.apply({"params": params}, z, method=flow.inverse_and_log_det)

``init`` runs the *forward* direction on the given batch: data-dependent
initialisation (:class:`~jaxgen.bijectors.actnorm.ActNorm`) sees the data at
its own depth in the flow. Affine couplings record their log-scales with
``self.sow("intermediates", "log_scale", s)``; pass ``mutable=["intermediates"]``
to ``apply`` to read them.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import distributions
from jaxgen.distributions import sum_event

__all__ = [
    "Bijector",
    "Chain",
    "Inverse",
    "standard_normal_log_prob",
]


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """``log N(z; 0, I)`` per example, summed over all non-batch axes: ``(B,)``.

    With a multi-scale flow (:func:`~jaxgen.bijectors.multiscale.multi_scale`)
    ``z`` holds every scale's factored-out latent in the data's shape, so this
    one call evaluates all of them under N(0, I).
    """
    return sum_event(distributions.standard_normal_log_prob(z))


class Bijector(nn.Module):
    """Base class: an invertible map with an exact log-determinant.

    Subclasses implement ``__call__(x, inverse=False) -> (out, log_det)``
    (usually ``@nn.compact``); ``inverse=False`` is the forward (data→latent)
    direction. Do not override the two public methods.
    """

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(x, inverse).")

    def forward_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Data → latent: ``(f(x), log|det ∂f/∂x|)`` with log_det of shape (B,)."""
        return self(x, inverse=False)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latent → data: ``(f⁻¹(y), log|det ∂f⁻¹/∂y|)`` with log_det of shape (B,)."""
        return self(y, inverse=True)


class Chain(Bijector):
    """Composition ``f = f_n ∘ … ∘ f_1`` of ``layers = [f_1, …, f_n]``.

    Forward runs the layers in order, inverse in reverse order; the
    log-determinants add up (chain rule: ``det`` of a product of Jacobians is
    the product of ``det``s).

    Attributes:
      layers: bijectors, applied first to last in the forward direction. Each
        is a fresh module instance (do not reuse one instance twice: Flax would
        share its parameters).
    """

    layers: Sequence[nn.Module]

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros((x.shape[0],), x.dtype)
        order = reversed(self.layers) if inverse else self.layers
        for layer in order:
            x, ld = layer(x, inverse=inverse)
            log_det = log_det + ld
        return x, log_det


class Inverse(Bijector):
    """``f⁻¹`` as a bijector: swaps ``forward_and_log_det`` and ``inverse_and_log_det``.

    Note that ``init`` then runs ``bijector`` in *its* inverse direction, so a
    wrapped :class:`~jaxgen.bijectors.actnorm.ActNorm` starts as the identity
    rather than from data statistics.

    Attributes:
      bijector: the bijector to invert.
    """

    bijector: nn.Module

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        return self.bijector(x, inverse=not inverse)
