"""Conditioner networks for coupling layers and learned split priors.

A conditioner maps the masked (kept) part of a coupling layer's input to the
parameters of the transform of the other part: for an affine coupling
(RealNVP; Dinh et al., 2017) ``2·C`` outputs, a shift ``t`` and a raw
log-scale, for an additive coupling (NICE; Dinh et al., 2015) ``C`` shifts.
Their last layer is zero-initialised, so a coupling starts as the identity
(as in Glow's ``Conv2DZeros``; Kingma & Dhariwal, 2018). Any Flax module with
this ``(x) -> (..., out)`` signature can be given to a coupling instead.

* :class:`MLPConditioner` for vectors ``(B, D)``:
  ``Dense → ReLU → … → Dense(out, zero init)``.
* :class:`ConvConditioner` for images ``(B, H, W, C)``: Glow's
  ``conv3×3 → ReLU → [residual blocks] → conv3×3(out, zero init)``, each
  residual block ``ReLU → conv3×3 → ReLU → conv1×1`` added back.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jaxgen.kernel.errors import UserError

__all__ = ["MLPConditioner", "ConvConditioner"]


class MLPConditioner(nn.Module):
    """MLP ``(B, D) -> (B, out_features)`` with a zero-initialised last layer.

    Attributes:
      out_features: output size (``2·D`` for an affine coupling, ``D`` for an
        additive one).
      hidden: hidden layer widths.
    """

    out_features: int
    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, name=f"dense_{i}")(h))
        return nn.Dense(self.out_features, kernel_init=nn.initializers.zeros,
                        bias_init=nn.initializers.zeros, name="out")(h)


class ConvConditioner(nn.Module):
    """Small conv ResNet ``(B, H, W, C) -> (B, H, W, out_channels)``, zero-init output.

    Attributes:
      out_channels: output channels (``2·C`` for an affine coupling).
      hidden: width of the hidden feature maps.
      num_blocks: residual blocks between the first and the last conv.
    """

    out_channels: int
    hidden: int = 64
    num_blocks: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise UserError(f"ConvConditioner expects NHWC input, got shape {x.shape}.")
        h = nn.Conv(self.hidden, (3, 3), name="conv_in")(x)
        for i in range(self.num_blocks):
            r = nn.Conv(self.hidden, (3, 3), name=f"block_{i}_conv3")(nn.relu(h))
            r = nn.Conv(self.hidden, (1, 1), name=f"block_{i}_conv1")(nn.relu(r))
            h = h + r
        return nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros,
                       bias_init=nn.initializers.zeros, name="conv_out")(nn.relu(h))
