"""A small DDPM-style U-Net (Ho et al., 2020) for 28x28, 32x32 or 8x8 images.

Layout for ``channels=(c0, c1, ..., cL)`` (``L + 1`` resolution levels)::

    x -> conv3x3(c0)
      down level l:  num_res_blocks x ResBlock(c_l)  (each output kept as a skip)
                     then a stride-2 conv3x3 (except at the lowest level)
      middle:        ResBlock(cL) [-> attention] -> ResBlock(cL)
      up level l:    num_res_blocks x [concat(skip) -> ResBlock(c_l)]
                     then nearest x2 resize + conv3x3(c_{l-1}) (except at the top)
      -> GroupNorm -> SiLU -> conv3x3(out_channels), zero-initialised

Every ResBlock adds a projection of the time (and optional class) embedding
after its first convolution. The zero-initialised last convolution makes the
network output exactly 0 at initialisation, a neutral start for an
epsilon / velocity / score prediction.

CPU efficiency choices: one skip per ResBlock (not also after each
downsample, as in the original DDPM) so the up path has ``num_res_blocks``
blocks per level instead of ``num_res_blocks + 1``; attention is off by
default and, when on, only used at the lowest resolution (7x7 for 28x28),
where it is cheap. For ``channels=(32, 64)`` on 28x28x1 the network has about
0.48M parameters.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.embeddings import ClassEmbedding, TimeEmbedding, broadcast_time

__all__ = ["UNet", "ResBlock", "AttentionBlock"]


def _group_norm(groups: int, channels: int, name: str) -> nn.GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups, so any width works."""
    return nn.GroupNorm(num_groups=math.gcd(groups, channels), name=name)


class ResBlock(nn.Module):
    """``GN -> SiLU -> conv -> +time -> GN -> SiLU -> conv``, plus a residual.

    The residual goes through a 1x1 conv when the channel count changes.
    """

    out_channels: int
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array) -> jax.Array:
        in_channels = x.shape[-1]
        h = nn.silu(_group_norm(self.groups, in_channels, "norm_0")(x))
        h = nn.Conv(self.out_channels, (3, 3), name="conv_0")(h)
        h = h + nn.Dense(self.out_channels, name="time_proj")(nn.silu(temb))[:, None, None, :]
        h = nn.silu(_group_norm(self.groups, self.out_channels, "norm_1")(h))
        h = nn.Conv(self.out_channels, (3, 3), name="conv_1")(h)
        if in_channels != self.out_channels:
            x = nn.Conv(self.out_channels, (1, 1), name="skip")(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head spatial self-attention with a residual connection."""

    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, hgt, wid, c = x.shape
        h = _group_norm(self.groups, c, "norm")(x).reshape(b, hgt * wid, c)
        q, k, v = jnp.split(nn.Dense(3 * c, name="qkv")(h), 3, axis=-1)
        attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k) / math.sqrt(c), axis=-1)
        out = nn.Dense(c, name="proj")(jnp.einsum("bqk,bkc->bqc", attn, v))
        return x + out.reshape(b, hgt, wid, c)


class UNet(nn.Module):
    """Time- (and optionally class-) conditioned U-Net on NHWC images.

    Attributes:
      channels: width of each resolution level, top to bottom; the spatial
        size must be divisible by ``2 ** (len(channels) - 1)``.
      num_res_blocks: ResBlocks per level on each path.
      time_dim: size of the time embedding.
      groups: GroupNorm groups (reduced to ``gcd(groups, width)``).
      out_channels: output channels; ``None`` means the input's.
      num_classes: if set, a class embedding is added to the time embedding;
        ``label=None`` selects the extra "no label" entry.
      attention: add self-attention at the lowest resolution.
      remat: "none", or a `jax.checkpoint_policies` name: every ResBlock and
        attention block is rematerialised in the backward pass with that policy
        (`jaxgen.nn.remat`; same params, less activation memory).
    """

    channels: Sequence[int] = (32, 64)
    num_res_blocks: int = 1
    time_dim: int = 128
    groups: int = 8
    out_channels: int | None = None
    num_classes: int | None = None
    attention: bool = False
    remat: str = "none"

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        """Args: ``x`` (B, H, W, C) float; ``t`` (B,) or scalar; ``label`` (B,) or None.

        Returns ``(B, H, W, out_channels or C)``.
        """
        if x.ndim != 4:
            raise UserError(f"UNet expects NHWC input (B, H, W, C), got shape {x.shape}.")
        batch, height, width, in_channels = x.shape
        factor = 2 ** (len(self.channels) - 1)
        if height % factor or width % factor:
            raise UserError(
                f"Spatial size {height}x{width} must be divisible by {factor} "
                f"for {len(self.channels)} resolution levels."
            )
        last = len(self.channels) - 1
        res_block = remat_lib.block(ResBlock, self.remat)
        attn_block = remat_lib.block(AttentionBlock, self.remat)

        temb = TimeEmbedding(self.time_dim, name="time_embedding")(broadcast_time(t, batch))
        if self.num_classes is not None:
            temb = temb + ClassEmbedding(
                self.num_classes, self.time_dim, name="class_embedding")(label, batch)
        elif label is not None:
            raise UserError("label given but UNet.num_classes is None.")

        h = nn.Conv(self.channels[0], (3, 3), name="conv_in")(x)

        skips = []
        for level, ch in enumerate(self.channels):
            for i in range(self.num_res_blocks):
                h = res_block(ch, self.groups, name=f"down_{level}_res_{i}")(h, temb)
                if self.attention and level == last:
                    h = attn_block(self.groups, name=f"down_{level}_attn_{i}")(h)
                skips.append(h)
            if level != last:
                h = nn.Conv(ch, (3, 3), strides=(2, 2), name=f"down_{level}_downsample")(h)

        h = res_block(self.channels[-1], self.groups, name="mid_res_0")(h, temb)
        if self.attention:
            h = attn_block(self.groups, name="mid_attn")(h)
        h = res_block(self.channels[-1], self.groups, name="mid_res_1")(h, temb)

        for level in reversed(range(len(self.channels))):
            ch = self.channels[level]
            for i in range(self.num_res_blocks):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                h = res_block(ch, self.groups, name=f"up_{level}_res_{i}")(h, temb)
                if self.attention and level == last:
                    h = attn_block(self.groups, name=f"up_{level}_attn_{i}")(h)
            if level != 0:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest x2
                h = nn.Conv(self.channels[level - 1], (3, 3), name=f"up_{level}_upsample")(h)

        h = nn.silu(_group_norm(self.groups, h.shape[-1], "norm_out")(h))
        return nn.Conv(
            self.out_channels or in_channels,
            (3, 3),
            kernel_init=nn.initializers.zeros_init(),
            bias_init=nn.initializers.zeros_init(),
            name="conv_out",
        )(h)
