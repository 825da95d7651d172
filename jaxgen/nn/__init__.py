"""Flax Linen modules. Networks only: no losses, nothing from jaxgen's training.

Every network takes ``(x, t, label=None)`` with ``t`` of shape ``(B,)`` or a
scalar (broadcast over the batch, as an ODE solver passes it) and times in
``[0, 1]``.
"""

from jaxgen.nn.embeddings import ClassEmbedding, TimeEmbedding, sinusoidal_embedding
from jaxgen.nn.mlp import TimeMLP
from jaxgen.nn.unet import UNet

__all__ = ["ClassEmbedding", "TimeEmbedding", "TimeMLP", "UNet", "sinusoidal_embedding"]
