"""Squeeze and the multi-scale architecture (RealNVP; Dinh et al., 2017; Glow;
Kingma & Dhariwal, 2018).

:class:`Squeeze` trades space for channels, ``(B, H, W, C) -> (B, H/2, W/2, 4C)``
(each 2×2 block becomes 4·C channels, ordered ``(c, dy, dx)`` as in Glow's
``squeeze2d``); :class:`Unsqueeze` is its inverse. Both are permutations of
the entries: log_det = 0.

:class:`Split` is Glow's "split" / RealNVP's "factor out": after a scale, half
of the channels stop being transformed and are kept as that scale's latent;
only the other half goes on through ``inner`` (the next, coarser scales).
Here the factored-out half is *not* removed from the tensor: it is kept in
place, untouched by ``inner``, so the whole flow is a bijection from ``x`` to
a latent ``z`` of the same shape, and ``standard_normal_log_prob(z)`` evaluates
every scale's latent under N(0, I) at once. Sampling draws ``z`` of the
data's shape (times a temperature) and runs the inverse.

Optional learned prior (Glow's ``split2d_prior``): instead of N(0, I) the
factored-out half ``x_b`` gets ``N(μ(x_a), σ(x_a)²)`` conditioned on the half
``x_a`` that goes on. This is the same as standardising,
``z_b = (x_b − μ(x_a)) / σ(x_a)`` with log_det ``−Σ log σ``, and then using
N(0, I), which is how :class:`Split` implements it (``log σ`` bounded as in
:class:`~jaxgen.bijectors.coupling.AffineCoupling`, or, with ``bounded=False``, the
conditioner's output itself, as in Glow's ``split2d_prior``).

:class:`LearnedPrior` is Glow's ``--learntop``: the latent of the last scale gets
``N(μ, σ²)`` with a learned mean and log-σ per position and channel (Glow computes them
with a zero-initialised convolution of a zero tensor, whose edge channel makes them differ
at the border; :class:`~jaxgen.bijectors.conditioners.ZeroConv` does the same), again as a
standardisation ``z = (x − μ)·exp(−log σ)``.

:func:`multi_scale` nests levels into one :class:`~jaxgen.bijectors.base.Chain`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.bijectors.base import Bijector, Chain
from jaxgen.distributions import sum_event
from jaxgen.kernel.errors import UserError

__all__ = ["Squeeze", "Unsqueeze", "Split", "LearnedPrior", "multi_scale", "squeeze2d",
           "unsqueeze2d"]


def squeeze2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Space-to-depth ``(B, H, W, C) -> (B, H/f, W/f, f·f·C)``, channels ordered ``(c, dy, dx)``."""
    b, h, w, c = x.shape
    if h % factor or w % factor:
        raise UserError(f"Squeeze by {factor} needs H and W divisible by {factor}, got {x.shape}.")
    x = x.reshape(b, h // factor, factor, w // factor, factor, c)
    x = x.transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(b, h // factor, w // factor, c * factor * factor)


def unsqueeze2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Depth-to-space, the exact inverse of :func:`squeeze2d`."""
    b, h, w, c = x.shape
    if c % (factor * factor):
        raise UserError(
            f"Unsqueeze by {factor} needs C divisible by {factor * factor}, got {x.shape}.")
    x = x.reshape(b, h, w, c // (factor * factor), factor, factor)
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(b, h * factor, w * factor, c // (factor * factor))


class Squeeze(Bijector):
    """``(B, H, W, C) -> (B, H/f, W/f, f²C)`` forward (:func:`squeeze2d`); log_det = 0.

    Attributes:
      factor: spatial block size (2 in RealNVP and Glow).
    """

    factor: int = 2

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        y = unsqueeze2d(x, self.factor) if inverse else squeeze2d(x, self.factor)
        return y, jnp.zeros((x.shape[0],), x.dtype)


class Unsqueeze(Bijector):
    """``(B, H, W, C) -> (B, fH, fW, C/f²)`` forward; the inverse of :class:`Squeeze`."""

    factor: int = 2

    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        y = squeeze2d(x, self.factor) if inverse else unsqueeze2d(x, self.factor)
        return y, jnp.zeros((x.shape[0],), x.dtype)


class Split(Bijector):
    """Factor out the last ``C − C//2`` channels; run ``inner`` on the first ``C//2``.

    Forward: ``x = [x_a, x_b]`` (channel halves) ``-> [inner(x_a), z_b]`` with
    ``z_b = x_b`` or, with a ``prior``, ``z_b = (x_b − μ(x_a))·exp(−log σ(x_a))``.
    ``log_det = log_det_inner − Σ log σ``. ``inner`` must keep the shape of its
    input (wrap any :class:`Squeeze` in it with an :class:`Unsqueeze`, as
    :func:`multi_scale` does).

    Attributes:
      inner: shape-preserving bijector for the half that goes on.
      prior: optional conditioner ``(B, ..., C//2) -> (B, ..., 2·(C − C//2))``
        (mean, raw log-σ) for Glow's learned prior, zero-initialised last layer
        so it starts as N(0, I); ``None`` for N(0, I).
      bounded: log σ = a ⊙ tanh(raw) with a learned per-channel bound a (parameter
        "prior_scale_factor", initialised to 1); False: log σ = raw (Glow's).
    """

    inner: nn.Module
    prior: nn.Module | None = None
    bounded: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        c = x.shape[-1]
        if c < 2:
            raise UserError(f"Split needs at least 2 channels, got shape {x.shape}.")
        keep = c // 2
        a, b = x[..., :keep], x[..., keep:]

        def standardiser(cond):
            h = self.prior(cond)
            expected = cond.shape[:-1] + (2 * (c - keep),)
            if h.shape != expected:
                raise UserError(f"Split prior returned {h.shape}; expected {expected}.")
            mean, raw = jnp.split(h, 2, axis=-1)
            if not self.bounded:
                return mean, raw
            factor = self.param("prior_scale_factor", nn.initializers.ones, (c - keep,), x.dtype)
            return mean, factor * jnp.tanh(raw)

        log_det = jnp.zeros((x.shape[0],), x.dtype)
        if not inverse:
            if self.prior is not None:
                mean, log_sigma = standardiser(a)
                b = (b - mean) * jnp.exp(-log_sigma)
                log_det = log_det - sum_event(log_sigma)
            a_out, ld_inner = self.inner(a, inverse=False)
        else:
            a_out, ld_inner = self.inner(a, inverse=True)
            if self.prior is not None:
                mean, log_sigma = standardiser(a_out)
                b = b * jnp.exp(log_sigma) + mean
                log_det = log_det + sum_event(log_sigma)
        if a_out.shape != a.shape:
            raise UserError(
                f"Split.inner must keep the shape {a.shape}; it returned {a_out.shape}.")
        return jnp.concatenate([a_out, b], axis=-1), log_det + ld_inner


class LearnedPrior(Bijector):
    """Glow's learned top prior as a standardisation (module doc): ``z = (x − μ)·exp(−log σ)``,
    ``log_det = −Σ log σ``, with ``(μ, log σ)`` = the two channel halves of ``net`` applied to
    zeros of shape (B, H, W, 2C): a learned function of the position alone.

    Attributes:
      net: ``(B, H, W, 2C) -> (B, H, W, 2C)``, zero at init (N(0, I) to start with), e.g.
        ``ZeroConv(2C)``.
    """

    net: nn.Module

    @nn.compact
    def __call__(self, x: jax.Array, inverse: bool = False) -> tuple[jax.Array, jax.Array]:
        c = x.shape[-1]
        h = self.net(jnp.zeros(x.shape[:-1] + (2 * c,), x.dtype))
        if h.shape != x.shape[:-1] + (2 * c,):
            raise UserError(f"LearnedPrior.net returned {h.shape}; expected "
                            f"{x.shape[:-1] + (2 * c,)}.")
        mean, log_sigma = h[..., :c], h[..., c:]
        log_det = -sum_event(log_sigma)
        if not inverse:
            return (x - mean) * jnp.exp(-log_sigma), log_det
        return x * jnp.exp(log_sigma) + mean, -log_det


def multi_scale(levels: Sequence[Sequence[nn.Module]],
                priors: Sequence[nn.Module | None] | None = None,
                bounded: bool = True) -> Chain:
    """Nests ``levels`` into one multi-scale flow with the data's shape in and out.

    Level ``i`` runs ``levels[i]`` (bijectors, including any :class:`Squeeze`),
    then, except for the last level, a :class:`Split` whose ``inner`` is level
    ``i + 1``; then one :class:`Unsqueeze` per top-level :class:`Squeeze` in
    ``levels[i]`` (levels must not contain :class:`Unsqueeze` themselves), so
    every level keeps its input's shape and the returned flow maps ``x`` of
    shape ``(B, H, W, C)`` to ``z`` of the same shape. For example

    * Glow, ``L`` levels of ``K`` steps:
      ``levels[i] = [Squeeze(), *K × (ActNorm(), Conv1x1LU(), AffineCoupling(..., "channel"))]``;
    * RealNVP: ``levels[i] = [3 checkerboard couplings, Squeeze(), 3 channel
      couplings]`` and a last level of 4 checkerboard couplings.

    Args:
      levels: one sequence of fresh bijector instances per scale, finest first.
      priors: ``len(levels) − 1`` optional learned-prior conditioners, one per
        :class:`Split` (see :class:`Split`); ``None`` for N(0, I) everywhere.
      bounded: the splits' ``bounded`` (a tanh-bounded learned log σ, or Glow's raw one).

    Returns:
      A :class:`~jaxgen.bijectors.base.Chain`.
    """
    if not levels:
        raise UserError("multi_scale needs at least one level.")
    if priors is not None and len(priors) != len(levels) - 1:
        raise UserError(f"Expected {len(levels) - 1} priors (one per split), got {len(priors)}.")
    inner = None
    for i in reversed(range(len(levels))):
        steps = list(levels[i])
        if inner is not None:
            steps.append(Split(inner=inner, prior=None if priors is None else priors[i],
                               bounded=bounded))
        squeezes = [s.factor for s in levels[i] if isinstance(s, Squeeze)]
        unsqueezes = [s.factor for s in levels[i] if isinstance(s, Unsqueeze)]
        if unsqueezes:
            raise UserError("multi_scale adds the Unsqueeze steps itself; give Squeeze steps only.")
        steps.extend(Unsqueeze(factor=f) for f in reversed(squeezes))
        inner = Chain(steps)
    return inner
