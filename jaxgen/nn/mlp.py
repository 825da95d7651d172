"""Time-conditioned MLP for vector data (2-D toy densities, flattened inputs)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn.embeddings import ClassEmbedding, TimeEmbedding, broadcast_time

__all__ = ["TimeMLP"]


class TimeMLP(nn.Module):
    """MLP ``(x, t[, label]) -> (B, out_dim)``: a velocity / noise / score net.

    The time embedding (:class:`TimeEmbedding`, plus a class embedding when
    ``num_classes`` is set) is concatenated to the input, then
    ``Dense -> SiLU`` for each entry of ``features``, then a linear output
    layer.

    Attributes:
      features: hidden layer widths.
      out_dim: output size; ``None`` means the input size ``D``.
      time_dim: size of the time embedding.
      num_classes: if set, a learned class embedding is added to the time
        embedding; ``label=None`` then selects the extra "no label" entry
        (see :class:`ClassEmbedding`).
    """

    features: Sequence[int] = (256, 256, 256)
    out_dim: int | None = None
    time_dim: int = 64
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        """Args: ``x`` (B, D); ``t`` (B,) or scalar; ``label`` (B,) ints or None."""
        if x.ndim != 2:
            raise UserError(f"TimeMLP expects x of shape (B, D), got {x.shape}.")
        batch = x.shape[0]
        temb = TimeEmbedding(self.time_dim, name="time_embedding")(broadcast_time(t, batch))
        if self.num_classes is not None:
            temb = temb + ClassEmbedding(
                self.num_classes, self.time_dim, name="class_embedding")(label, batch)
        elif label is not None:
            raise UserError("label given but TimeMLP.num_classes is None.")
        h = jnp.concatenate([x, temb.astype(x.dtype)], axis=-1)
        for i, width in enumerate(self.features):
            h = nn.silu(nn.Dense(width, name=f"dense_{i}")(h))
        return nn.Dense(self.out_dim or x.shape[-1], name="out")(h)
