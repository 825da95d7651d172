"""Image-to-image translation networks: a small U-Net generator and PatchGAN discriminators.

* :class:`UNetGenerator`: for (H, W, C) images with H, W divisible by 4
  (28x28 -> 14x14 -> 7x7): an encoder of a 3x3 conv at full resolution and
  two stride-2 4x4 convs (c, 2c, 4c channels), a 3x3 conv at H/4, and a
  decoder of two stride-2 4x4 *transposed* convs, each followed by the skip
  connection from the encoder level of the same resolution (concatenated on
  channels, as in Isola et al.'s U-Net), then a 3x3 conv to `out_channels`
  and tanh (model space is [-1, 1]).
* :class:`PatchDiscriminator`: two stride-2 4x4 convs (c, 2c) with
  LeakyReLU(0.2) and a 3x3 conv to one channel: (B, H, W, C) -> (B, H/4, W/4)
  patch logits, each seeing an 18x18 receptive field (PatchGAN, Isola et al.
  2017 §3.2.2). The conditional D(x_in, x_out) of pix2pix is this network on
  the two images concatenated on channels.

No batch normalisation, on purpose (as in `jaxgen.nn.gan`): BatchNorm makes a
translation depend on the rest of its batch and needs running statistics as
extra state. The generator uses GroupNorm (per example, stateless) instead;
the discriminators have no normalisation.

Models (one Flax module each, as `jaxgen.nn.gan`):

* :class:`Pix2Pix` (``model.name=pix2pix_unet``): submodules `generator` and
  `discriminator`; methods `translate(x_in)` and `discriminate(x_in, x_out)`.
* :class:`CycleGAN` (``model.name=cyclegan``): submodules `g_xy` (G: X -> Y),
  `g_yx` (F: Y -> X), `d_x`, `d_y` (unconditional PatchGANs). Each is called
  through its own name: `model.apply({"params": p}, x, method=network("g_xy"))`
  runs G, and likewise "g_yx", "d_x", "d_y" (the submodules hold those names,
  so the module cannot also have methods of the same names).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.conv import ConvTranspose

__all__ = ["UNetGenerator", "PatchDiscriminator", "Pix2Pix", "CycleGAN", "network"]

CYCLEGAN_NETWORKS = ("g_xy", "g_yx", "d_x", "d_y")


def _check_images(event_shape, model_name: str) -> tuple:
    shape = tuple(event_shape)
    if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
        raise UserError(f"model.name={model_name} expects (H, W, C) images with H and W "
                         f"divisible by 4; got event shape {shape}.")
    return shape


def _group_norm(channels: int, groups: int, name: str, parent=None) -> nn.GroupNorm:
    kwargs = {} if parent is None else {"parent": parent}
    return nn.GroupNorm(num_groups=math.gcd(groups, channels), name=name, **kwargs)


def _down(module, h, w, groups, name):
    """The generator's down step (a block): stride-2 conv, GroupNorm, LeakyReLU(0.2).

    Its layers are `module`'s submodules `name` and `name`_norm (see `jaxgen.nn.remat`)."""
    h = nn.Conv(w, (4, 4), strides=(2, 2), padding="SAME", name=name, parent=module)(h)
    return nn.leaky_relu(_group_norm(w, groups, f"{name}_norm", module)(h), 0.2)


def _up(module, h, skip, w, groups, name):
    """The generator's up step (a block): stride-2 transposed conv, the skip
    concatenated, GroupNorm, ReLU."""
    h = ConvTranspose(w, (4, 4), strides=(2, 2), padding="SAME", name=name, parent=module)(h)
    h = jnp.concatenate([h, skip], -1)
    return nn.relu(_group_norm(2 * w, groups, f"{name}_norm", module)(h))


class UNetGenerator(nn.Module):
    """(B, H, W, C_in) -> (B, H, W, out_channels) in [-1, 1]; H, W divisible by 4.

    Attributes:
      out_channels: channels of the output image.
      channels: width c (c at H, 2c at H/2, 4c at H/4).
      groups: GroupNorm groups (gcd with each width).
      remat: "none", or a `jax.checkpoint_policies` name: the two down and two up
        steps are rematerialised in the backward pass with that policy
        (`jaxgen.nn.remat`; same params).
    """

    out_channels: int
    channels: int = 32
    groups: int = 8
    remat: str = "none"

    @nn.compact
    def __call__(self, x):
        c, g = self.channels, self.groups
        # static: the width, the groups and the name (positions counted from the module, 0)
        down_block = remat_lib.block(_down, self.remat, (2, 3, 4))
        up_block = remat_lib.block(_up, self.remat, (3, 4, 5))

        def down(h, w, name):
            return down_block(self, h, w, g, name)

        def up(h, skip, w, name):
            return up_block(self, h, skip, w, g, name)

        e0 = nn.leaky_relu(nn.Conv(c, (3, 3), padding="SAME", name="in")(x), 0.2)  # H
        e1 = down(e0, 2 * c, "down_0")  # H/2
        e2 = down(e1, 4 * c, "down_1")  # H/4
        h = nn.relu(_group_norm(4 * c, g, "mid_norm")(
            nn.Conv(4 * c, (3, 3), padding="SAME", name="mid")(e2)))
        h = up(h, e1, 2 * c, "up_0")  # H/2, skip from e1
        h = up(h, e0, c, "up_1")  # H, skip from e0
        return jnp.tanh(nn.Conv(self.out_channels, (3, 3), padding="SAME", name="out")(h))


class PatchDiscriminator(nn.Module):
    """(B, H, W, C) -> (B, H/4, W/4) patch logits (no sigmoid)."""

    channels: int = 32

    @nn.compact
    def __call__(self, x):
        c = self.channels
        h = nn.leaky_relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME", name="conv_0")(x),
                          0.2)
        h = nn.leaky_relu(nn.Conv(2 * c, (4, 4), strides=(2, 2), padding="SAME",
                                  name="conv_1")(h), 0.2)
        return nn.Conv(1, (3, 3), padding="SAME", name="logits")(h)[..., 0]


class Pix2Pix(nn.Module):
    """U-Net generator G(x_in) and conditional PatchGAN D(x_in, x_out).

    Attributes:
      event_shape: (H, W, C) of the images (from the data); the task input has
        the same shape.
      g_channels / d_channels: widths of G and D.
      groups: GroupNorm groups in G.
      remat: "none", or a `jax.checkpoint_policies` name: G's down and up steps are
        rematerialised in the backward pass (`jaxgen.nn.remat`); D has no blocks.
    """

    event_shape: Sequence[int] = (28, 28, 1)
    g_channels: int = 32
    d_channels: int = 32
    groups: int = 8
    remat: str = "none"

    def setup(self):
        shape = _check_images(self.event_shape, "pix2pix_unet")
        self.generator = UNetGenerator(shape[-1], self.g_channels, self.groups, self.remat)
        self.discriminator = PatchDiscriminator(self.d_channels)

    def translate(self, x_in):
        return self.generator(x_in)

    def discriminate(self, x_in, x_out):
        return self.discriminator(jnp.concatenate([x_in, x_out], -1))

    def __call__(self, x_in):
        return self.discriminate(x_in, self.translate(x_in))


class CycleGAN(nn.Module):
    """Two U-Net generators G: X -> Y (`g_xy`), F: Y -> X (`g_yx`) and two PatchGANs.

    Both domains are images of `event_shape` (two classes of one dataset).
    Call a network by name: `model.apply({"params": p}, x, method=network("g_xy"))`.

    Attributes: as :class:`Pix2Pix`.
    """

    event_shape: Sequence[int] = (28, 28, 1)
    g_channels: int = 32
    d_channels: int = 32
    groups: int = 8
    remat: str = "none"

    def setup(self):
        shape = _check_images(self.event_shape, "cyclegan")
        self.g_xy = UNetGenerator(shape[-1], self.g_channels, self.groups, self.remat)
        self.g_yx = UNetGenerator(shape[-1], self.g_channels, self.groups, self.remat)
        self.d_x = PatchDiscriminator(self.d_channels)
        self.d_y = PatchDiscriminator(self.d_channels)

    def __call__(self, x, y):
        """Runs all four networks (to initialise every parameter)."""
        return self.d_y(self.g_xy(x)), self.d_x(self.g_yx(y))


def network(name: str):
    """`method=` for `CycleGAN.apply` running the submodule `name` (g_xy, g_yx, d_x or d_y)."""
    if name not in CYCLEGAN_NETWORKS:
        raise UserError(f"unknown CycleGAN network {name!r}; expected one of "
                         f"{', '.join(CYCLEGAN_NETWORKS)}.")

    def run(module, x):
        return getattr(module, name)(x)

    run.__name__ = name
    return run
