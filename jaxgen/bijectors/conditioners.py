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
* :class:`ConvConditioner` for images ``(B, H, W, C)``: a small ResNet
  ``conv3×3 → ReLU → [residual blocks] → conv3×3(out, zero init)``, each
  residual block ``ReLU → conv3×3 → ReLU → conv1×1`` added back.
* :class:`GlowConditioner` (images): the coupling network of openai/glow's ``model.py``
  (``f``): ``conv3×3 → ActNorm → ReLU → conv1×1 → ActNorm → ReLU →`` :class:`ZeroConv`,
  the convolutions without biases (ActNorm follows them), their weights N(0, 0.05²), the
  3×3 ones reading the input with Glow's edge channel (:func:`edge_padded`).
* :class:`ZeroConv` (images): Glow's ``conv2d_zeros``, ``(conv(x) + b)·exp(3·logs)`` with
  everything zero-initialised; Glow's learned priors (its split prior and ``--learntop``)
  and the last layer of its coupling network.
* :class:`DinhResNet` (images): the s/t network of RealNVP's released code
  (tensorflow/models, ``research/real_nvp``, ``resnet``): the input ``[x, −x]`` (and the
  checkerboard mask as one more channel), a weight-normalised 3×3 convolution, residual
  blocks ``norm → ReLU → conv3×3 → norm → ReLU → conv3×3`` added back, a weight-normalised
  1×1 "skip" convolution of the input and of every block's output summed, then
  ``norm → ReLU → conv1×1``. Where the code has batch normalisation (statistics of the
  batch in training, running averages in evaluation) this has an ActNorm (a per-channel
  affine map initialised from the first batch's statistics, then learned): a flow here
  keeps no state besides its parameters, and a likelihood that depended on the rest of its
  batch would not be one example's.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.bijectors.actnorm import ActNorm
from jaxgen.bijectors.masks import checkerboard_mask
from jaxgen.kernel.errors import UserError

__all__ = ["MLPConditioner", "ConvConditioner", "GlowConditioner", "ZeroConv", "DinhResNet",
           "WNConv", "edge_padded"]


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


def _check_image(name: str, x: jax.Array) -> None:
    if x.ndim != 4:
        raise UserError(f"{name} expects NHWC input, got shape {x.shape}.")


def edge_padded(x: jax.Array, size: int) -> jax.Array:
    """``x`` (B, H, W, C) zero-padded for a 'VALID' ``size×size`` convolution to keep H×W,
    with one more channel that is 1 on the padding and 0 on the image (Glow's
    ``add_edge_padding``: the convolution can tell the border's zeros from the image's)."""
    p = (size - 1) // 2
    if p == 0:
        return x
    pad = ((0, 0), (p, p), (p, p), (0, 0))
    edge = jnp.pad(jnp.zeros(x.shape[:3] + (1,), x.dtype), pad, constant_values=1.0)
    return jnp.concatenate([jnp.pad(x, pad), edge], axis=-1)


class ZeroConv(nn.Module):
    """Glow's ``conv2d_zeros``: ``(conv(x) + b) · exp(logscale_factor · logs)``, kernel ``W``,
    bias ``b`` and per-channel ``logs`` all zero at init (the output starts at 0).

    Attributes:
      features: output channels.
      size: square kernel size; a 3×3 one reads :func:`edge_padded` input.
      logscale_factor: Glow's 3.
    """

    features: int
    size: int = 3
    logscale_factor: float = 3.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_image("ZeroConv", x)
        h = nn.Conv(self.features, (self.size, self.size), padding="VALID",
                    kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros,
                    name="conv")(edge_padded(x, self.size))
        logs = self.param("logs", nn.initializers.zeros, (self.features,))
        return h * jnp.exp(self.logscale_factor * logs)


def _actnorm(name: str):
    """An ActNorm used as a normalisation layer (its log-det dropped)."""
    norm = ActNorm(name=name)
    return lambda h: norm(h)[0]


class GlowConditioner(nn.Module):
    """openai/glow's coupling network ``f`` (module doc): ``(B, H, W, C) -> (B, H, W, out)``.

    Attributes:
      out_channels: output channels.
      hidden: width of the two hidden layers (Glow's ``--width``, 512).
    """

    out_channels: int
    hidden: int = 512

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_image("GlowConditioner", x)
        init = nn.initializers.normal(0.05)
        h = nn.Conv(self.hidden, (3, 3), padding="VALID", use_bias=False, kernel_init=init,
                    name="conv_1")(edge_padded(x, 3))
        h = nn.relu(_actnorm("actnorm_1")(h))
        h = nn.Conv(self.hidden, (1, 1), use_bias=False, kernel_init=init, name="conv_2")(h)
        h = nn.relu(_actnorm("actnorm_2")(h))
        return ZeroConv(self.out_channels, name="out")(h)


class WNConv(nn.Module):
    """A 'SAME' convolution with weight normalisation (Salimans & Kingma, 2016) as in
    RealNVP's code: each filter ``v`` used as ``g · v / ‖v‖`` (``magnitude``) or as
    ``v / ‖v‖`` (no magnitude: a normalisation follows), plus an optional bias.

    Attributes:
      features: output channels.
      size: square kernel size.
      use_bias: add a per-channel bias.
      magnitude: learn the per-filter norm ``g``.
      zero_magnitude: start ``g`` at 0 (the layer's output starts at its bias, 0).
    """

    features: int
    size: int = 3
    use_bias: bool = True
    magnitude: bool = True
    zero_magnitude: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.size, self.size, x.shape[-1], self.features)
        v = self.param("kernel", nn.initializers.normal(0.05), shape)
        w = v / jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2)) + 1e-12)
        if self.magnitude:
            init = nn.initializers.zeros if self.zero_magnitude else nn.initializers.ones
            w = w * self.param("magnitude", init, (self.features,))
        y = jax.lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class DinhResNet(nn.Module):
    """RealNVP's s/t ResNet (module doc): ``(B, H, W, C) -> (B, H, W, out_channels)``; the
    output layer's magnitude starts at 0, so a coupling starts as the identity.

    Attributes:
      out_channels: output channels.
      hidden: feature maps (RealNVP's CIFAR-10 model: 64 at the first scale).
      num_blocks: residual blocks (8 for CIFAR-10).
      mask: "checkerboard": the coupling's checkerboard mask (``parity``) is one more input
        channel, as in the code's masked couplings; "": none (channel couplings).
      parity: the checkerboard's parity (the coupling's).
    """

    out_channels: int
    hidden: int = 64
    num_blocks: int = 8
    mask: str = ""
    parity: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_image("DinhResNet", x)
        if self.mask not in ("", "checkerboard"):
            raise UserError(f"DinhResNet.mask={self.mask!r}: expected '' or 'checkerboard'.")
        d = self.hidden
        h = _actnorm("norm_in")(x)
        feats = [h, -h]
        if self.mask:
            m = jnp.asarray(checkerboard_mask(x.shape[1], x.shape[2], self.parity), x.dtype)
            feats.append(jnp.broadcast_to(m, x.shape[:3] + (1,)))
        h = WNConv(d, 3, magnitude=False, name="conv_in")(nn.relu(jnp.concatenate(feats, -1)))
        skip = WNConv(d, 1, name="skip_in")(h)
        for i in range(self.num_blocks):
            r = nn.relu(_actnorm(f"block_{i}_norm_0")(h))
            r = WNConv(d, 3, use_bias=False, magnitude=False, name=f"block_{i}_conv_0")(r)
            r = nn.relu(_actnorm(f"block_{i}_norm_1")(r))
            h = h + WNConv(d, 3, name=f"block_{i}_conv_1")(r)
            skip = skip + WNConv(d, 1, name=f"block_{i}_skip")(h)
        h = nn.relu(_actnorm("norm_out")(skip))
        return WNConv(self.out_channels, 1, zero_magnitude=True, name="conv_out")(h)
