"""Time (noise-level) and class embeddings shared by the networks.

The sinusoidal features are those of the Transformer (Vaswani et al., 2017) as
used for diffusion time steps by DDPM (Ho et al., 2020). jaxgen's continuous
time lives in ``[0, 1]`` (flow matching, continuous diffusion), while the
frequencies were designed for integer positions ``0..~1000``; so ``t`` is
multiplied by ``scale=1000`` before the features are taken. Without it the
highest-period features would be almost constant over ``[0, 1]`` and most of
the embedding wasted. Discrete-step callers (DDPM with integer ``t`` in
``0..T-1``) pass ``scale=1.0``.
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError

__all__ = ["sinusoidal_embedding", "TimeEmbedding", "broadcast_time", "ClassEmbedding"]


def broadcast_time(t: jax.Array, batch_size: int) -> jax.Array:
    """Return ``t`` as a float32 ``(B,)`` vector (a scalar is broadcast).

    Lets a network be called as ``model.apply(p, x, t)`` with the scalar time
    an ODE solver passes, or with per-example times during training.
    """
    t = jnp.asarray(t, jnp.float32)
    if t.ndim == 0:
        return jnp.broadcast_to(t, (batch_size,))
    if t.shape != (batch_size,):
        raise UserError(f"t must be a scalar or have shape ({batch_size},), got {t.shape}.")
    return t


def sinusoidal_embedding(
    t: jax.Array, dim: int, max_period: float = 10_000.0, scale: float = 1000.0
) -> jax.Array:
    """Sinusoidal features of times ``t``.

    Args:
      t: ``(B,)`` (or scalar) times, nominally in ``[0, 1]``.
      dim: feature size; ``dim // 2`` sines then ``dim // 2`` cosines, plus a
        zero column when ``dim`` is odd.
      max_period: longest period, in units of ``scale * t``.
      scale: ``t`` is multiplied by this first (see the module docstring).

    Returns:
      ``(B, dim)`` float32 features (``(1, dim)`` for a scalar ``t``).
    """
    if dim < 2:
        raise UserError(f"dim must be >= 2, got {dim}.")
    t = jnp.asarray(t, jnp.float32).reshape(-1)
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = (scale * t)[:, None] * freqs[None, :]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


class TimeEmbedding(nn.Module):
    """``sinusoidal(t) -> Dense(dim) -> SiLU -> Dense(dim)``.

    Attributes:
      dim: output (and, by default, sinusoidal feature) size.
      scale: multiplier applied to ``t`` before the sinusoids.
      features: the sinusoidal feature size when it differs from ``dim`` (DDPM's
        ``ch`` features into a ``4 ch`` MLP); None: ``dim``.
      kernel_init: the two Dense layers' kernel initialiser (None: Flax's default).
    """

    dim: int
    scale: float = 1000.0
    features: int | None = None
    kernel_init: Callable | None = None

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        h = sinusoidal_embedding(t, self.features or self.dim, scale=self.scale)
        init = {} if self.kernel_init is None else {"kernel_init": self.kernel_init}
        h = nn.Dense(self.dim, name="dense_0", **init)(h)
        h = nn.silu(h)
        return nn.Dense(self.dim, name="dense_1", **init)(h)


class ClassEmbedding(nn.Module):
    """Learned class embedding with an extra "no label" entry.

    The table has ``num_classes + 1`` rows; row ``num_classes`` is the null
    label used when ``label is None`` (unconditional call) and available for
    label dropout in classifier-free guidance (Ho & Salimans, 2022). The
    parameters are the same whether or not the model is initialised with
    labels.
    """

    num_classes: int
    dim: int
    init: Callable | None = None  # the table's initialiser (None: Flax's default)

    @nn.compact
    def __call__(self, label: jax.Array | None, batch_size: int) -> jax.Array:
        if label is None:
            label = jnp.full((batch_size,), self.num_classes, jnp.int32)
        label = jnp.asarray(label, jnp.int32).reshape(-1)
        if label.shape != (batch_size,):
            raise UserError(f"label must have shape ({batch_size},), got {label.shape}.")
        init = {} if self.init is None else {"embedding_init": self.init}
        return nn.Embed(self.num_classes + 1, self.dim, name="embed", **init)(label)
