"""A DDPM-style U-Net (Ho et al., 2020) for 28x28, 32x32, 64x64 or 8x8 images, in two layouts.

Layout ``"compact"`` (the default) for ``channels=(c0, c1, ..., cL)`` (``L + 1``
resolution levels)::

    x -> conv3x3(c0)
      down level l:  num_res_blocks x ResBlock(c_l)  (each output kept as a skip)
                     then a stride-2 conv3x3 (except at the lowest level)
      middle:        ResBlock(cL) [-> attention] -> ResBlock(cL)
      up level l:    num_res_blocks x [concat(skip) -> ResBlock(c_l)]
                     then nearest x2 resize + conv3x3(c_{l-1}) (except at the top)
      -> GroupNorm -> SiLU -> conv3x3(out_channels), zero-initialised

Layout ``"ddpm"``: the network of Ho et al.'s official code (``diffusion_tf/models/
unet.py``) and of Dhariwal & Nichol's (2021) ADM U-Net: the output of the first conv and
of every downsampling are skips too, so the up path has ``num_res_blocks + 1`` ResBlocks
per level, and the upsampling conv keeps its level's width (the next ResBlock changes it).

Every ResBlock adds a projection of the time (and optional class) embedding
after its first convolution, or, with ``scale_shift_norm``, uses it as the scale and
shift of its second GroupNorm (ADM's FiLM). The zero-initialised last convolution makes
the network output exactly 0 at initialisation, a neutral start for an
epsilon / velocity / score prediction.

The features of the published networks are fields (all off by default, so the default
network is the compact one): ``attention_resolutions`` (self-attention after every
ResBlock of the levels with those side lengths, and in the middle), ``num_heads`` /
``head_channels`` (multi-head attention), ``dropout`` (before each ResBlock's last
conv, in the train step only: `jaxgen.nn.dropout`), ``resample`` (stride-2 conv and
nearest + conv, average pooling and nearest alone (ADM's ``conv_resample=False``), or
ResBlocks that resample inside (BigGAN's, ADM's ``resblock_updown``)), and
``time_features`` (the sinusoidal features' size when the time MLP is wider, as DDPM's
``ch -> 4 ch`` MLP).

CPU efficiency choices of the compact layout: one skip per ResBlock, so the up path has
``num_res_blocks`` blocks per level instead of ``num_res_blocks + 1``; attention is off
by default and, when on, only used at the lowest resolution (7x7 for 28x28), where it is
cheap. For ``channels=(32, 64)`` on 28x28x1 the network has about 0.48M parameters.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn import dropout as dropout_lib
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.embeddings import ClassEmbedding, TimeEmbedding, broadcast_time

__all__ = ["UNet", "ResBlock", "AttentionBlock", "LAYOUTS", "RESAMPLES"]

LAYOUTS = ("compact", "ddpm")
RESAMPLES = ("conv", "pool", "resblock")
UP_ATTENTION = ("every", "last")


def _group_norm(groups: int, channels: int, name: str) -> nn.GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups, so any width works."""
    return nn.GroupNorm(num_groups=math.gcd(groups, channels), name=name)


def _resize(x: jax.Array, how: str) -> jax.Array:
    """"down": 2x2 average pooling; "up": nearest x2; "none": x."""
    if how == "down":
        return nn.avg_pool(x, (2, 2), strides=(2, 2))
    if how == "up":
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return x


class ResBlock(nn.Module):
    """``GN -> SiLU -> conv -> +time -> GN -> SiLU -> [dropout] -> conv``, plus a residual.

    The residual goes through a 1x1 conv when the channel count changes. With
    ``scale_shift``, the time projection is twice as wide and gives the second GroupNorm's
    scale and shift, ``GN(h) (1 + s) + b``, instead of being added before it. ``resample``
    "down" / "up" halves / doubles the size inside the block (after the first SiLU, on
    both paths; BigGAN's up/down blocks as ADM uses them); ``resample_proj``: such a
    block's residual goes through a 1x1 conv too (DDPM++'s). ``key``: dropout's key (None:
    no dropout).
    """

    out_channels: int
    groups: int = 8
    dropout: float = 0.0
    scale_shift: bool = False
    resample: str = "none"
    resample_proj: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array, key: jax.Array | None = None
                 ) -> jax.Array:
        in_channels = x.shape[-1]
        h = nn.silu(_group_norm(self.groups, in_channels, "norm_0")(x))
        h, x = _resize(h, self.resample), _resize(x, self.resample)
        h = nn.Conv(self.out_channels, (3, 3), name="conv_0")(h)
        width = self.out_channels * (2 if self.scale_shift else 1)
        emb = nn.Dense(width, name="time_proj")(nn.silu(temb))[:, None, None, :]
        if self.scale_shift:
            scale, shift = jnp.split(emb, 2, axis=-1)
            h = _group_norm(self.groups, self.out_channels, "norm_1")(h) * (1 + scale) + shift
        else:
            h = _group_norm(self.groups, self.out_channels, "norm_1")(h + emb)
        h = nn.silu(h)
        if self.dropout > 0 and key is not None:
            h = nn.Dropout(self.dropout, name="dropout")(h, deterministic=False, rng=key)
        h = nn.Conv(self.out_channels, (3, 3), name="conv_1")(h)
        if in_channels != self.out_channels or (self.resample_proj and self.resample != "none"):
            x = nn.Conv(self.out_channels, (1, 1), name="skip")(x)
        return x + h


class AttentionBlock(nn.Module):
    """Spatial self-attention over ``heads`` heads (the channels split evenly between
    them), with a residual connection."""

    groups: int = 8
    heads: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, hgt, wid, c = x.shape
        if c % self.heads:
            raise UserError(f"attention over {self.heads} heads needs a width divisible by "
                            f"{self.heads}, got {c}; change model.num_heads or "
                            "model.head_channels.")
        d = c // self.heads
        h = _group_norm(self.groups, c, "norm")(x).reshape(b, hgt * wid, c)
        q, k, v = (a.reshape(b, hgt * wid, self.heads, d)
                   for a in jnp.split(nn.Dense(3 * c, name="qkv")(h), 3, axis=-1))
        attn = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d), axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, hgt * wid, c)
        out = nn.Dense(c, name="proj")(out)
        return x + out.reshape(b, hgt, wid, c)


def _non_negative(v):
    return None if v >= 0 else "must be >= 0"


class UNet(nn.Module):
    """Time- (and optionally class-) conditioned U-Net on NHWC images.

    Attributes:
      channels: width of each resolution level, top to bottom; the spatial
        size must be divisible by ``2 ** (len(channels) - 1)``.
      num_res_blocks: ResBlocks per level on the down path (the up path has as many in
        the compact layout, one more in the ddpm layout).
      time_dim: size of the time embedding.
      groups: GroupNorm groups (reduced to ``gcd(groups, width)``).
      out_channels: output channels; ``None`` means the input's.
      num_classes: if set, a class embedding is added to the time embedding;
        ``label=None`` selects the extra "no label" entry.
      attention: add self-attention at the lowest resolution (and in the middle).
      remat: "none", or a `jax.checkpoint_policies` name: every ResBlock and
        attention block is rematerialised in the backward pass with that policy
        (`jaxgen.nn.remat`; same params, less activation memory).
      layout: "compact" (one skip per ResBlock) or "ddpm" (also conv_in's and each
        downsampling's output as skips, num_res_blocks + 1 up ResBlocks per level,
        width-keeping upsampling convs: Ho et al.'s and ADM's network).
      attention_resolutions: side lengths (16 for 16x16) of the levels where every
        ResBlock is followed by self-attention; the middle gets attention too.
      num_heads: attention heads (when head_channels is 0).
      head_channels: > 0: attention heads of this many channels (width // head_channels
        heads), instead of num_heads.
      dropout: dropout rate before each ResBlock's last conv, in training only.
      scale_shift_norm: the time embedding scales and shifts each ResBlock's second
        GroupNorm (ADM) instead of being added after the first conv.
      resample: how levels change size: "conv" (stride-2 conv3x3; nearest x2 + conv3x3),
        "pool" (2x2 average pooling; nearest x2, no parameters) or "resblock" (a ResBlock
        that pools or repeats inside, BigGAN-style).
      time_features: size of the sinusoidal time features the time MLP reads (0:
        time_dim); DDPM and ADM use the base width, with a 4x wider MLP.
      time_scale: t is multiplied by this before the sinusoids (1000 maps jaxgen's
        [0, 1] onto DDPM's step numbers; 1 reads t as it is).
      stem_channels: the width conv_in maps the image to (0: channels[0]); DDPM++ (Song et
        al. 2021, as EDM trains it) maps to the base width, then widens in the first block.
      up_attention: on the up path at an attention resolution, attention after "every"
        ResBlock, or after the "last" of each level's (DDPM++).
      resample_proj: resample="resblock": the resampling blocks' residual goes through a
        1x1 conv (DDPM++'s), not only when the width changes.
    """

    channels: Sequence[int] = (32, 64)
    num_res_blocks: int = 1
    time_dim: int = 128
    groups: int = 8
    out_channels: int | None = None
    num_classes: int | None = None
    attention: bool = False
    remat: str = "none"
    layout: str = "compact"
    attention_resolutions: Sequence[int] = ()
    num_heads: int = 1
    head_channels: int = 0
    dropout: float = 0.0
    scale_shift_norm: bool = False
    resample: str = "conv"
    time_features: int = 0
    time_scale: float = 1000.0
    stem_channels: int = 0
    up_attention: str = "every"
    resample_proj: bool = False

    FIELD_CHECKS = {"head_channels": _non_negative, "time_features": _non_negative,
                    "stem_channels": _non_negative,
                    "dropout": lambda v: None if 0 <= v < 1 else "must lie in [0, 1)"}

    def _check(self) -> None:
        for field, value, choices in (("layout", self.layout, LAYOUTS),
                                      ("resample", self.resample, RESAMPLES),
                                      ("up_attention", self.up_attention, UP_ATTENTION)):
            if value not in choices:
                raise UserError(f"model.{field}={value!r} is not one of "
                                f"{', '.join(choices)}.")

    def _heads(self, width: int) -> int:
        if not self.head_channels:
            return self.num_heads
        if width % self.head_channels:
            raise UserError(f"model.head_channels={self.head_channels} does not divide the "
                            f"width {width} of an attention block.")
        return width // self.head_channels

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        """Args: ``x`` (B, H, W, C) float; ``t`` (B,) or scalar; ``label`` (B,) or None.

        Returns ``(B, H, W, out_channels or C)``.
        """
        if x.ndim != 4:
            raise UserError(f"UNet expects NHWC input (B, H, W, C), got shape {x.shape}.")
        self._check()
        batch, height, width, in_channels = x.shape
        factor = 2 ** (len(self.channels) - 1)
        if height % factor or width % factor:
            raise UserError(
                f"Spatial size {height}x{width} must be divisible by {factor} "
                f"for {len(self.channels)} resolution levels."
            )
        last = len(self.channels) - 1
        ddpm = self.layout == "ddpm"
        res_block = remat_lib.block(ResBlock, self.remat)
        attn_block = remat_lib.block(AttentionBlock, self.remat)
        call_key = dropout_lib.call_key() if self.dropout > 0 else None
        blocks = iter(range(1 << 30))

        def res(ch, name, h, resample="none"):
            key = None if call_key is None else jax.random.fold_in(call_key, next(blocks))
            return res_block(ch, self.groups, self.dropout, self.scale_shift_norm, resample,
                             self.resample_proj, name=name)(h, temb, key)

        def attends(level, h):
            return (self.attention and level == last) or h.shape[1] in tuple(
                self.attention_resolutions)

        def attn(name, h):
            return attn_block(self.groups, self._heads(h.shape[-1]), name=name)(h)

        temb = TimeEmbedding(self.time_dim, scale=self.time_scale,
                             features=self.time_features or None,
                             name="time_embedding")(broadcast_time(t, batch))
        if self.num_classes is not None:
            temb = temb + ClassEmbedding(
                self.num_classes, self.time_dim, name="class_embedding")(label, batch)
        elif label is not None:
            raise UserError("label given but UNet.num_classes is None.")

        h = nn.Conv(self.stem_channels or self.channels[0], (3, 3), name="conv_in")(x)

        skips = [h] if ddpm else []
        for level, ch in enumerate(self.channels):
            for i in range(self.num_res_blocks):
                h = res(ch, f"down_{level}_res_{i}", h)
                if attends(level, h):
                    h = attn(f"down_{level}_attn_{i}", h)
                skips.append(h)
            if level != last:
                name = f"down_{level}_downsample"
                if self.resample == "conv":
                    h = nn.Conv(ch, (3, 3), strides=(2, 2), name=name)(h)
                elif self.resample == "pool":
                    h = _resize(h, "down")
                else:
                    h = res(ch, name, h, "down")
                if ddpm:
                    skips.append(h)

        h = res(self.channels[-1], "mid_res_0", h)
        if self.attention or tuple(self.attention_resolutions):
            h = attn("mid_attn", h)
        h = res(self.channels[-1], "mid_res_1", h)

        for level in reversed(range(len(self.channels))):
            ch = self.channels[level]
            n_up = self.num_res_blocks + (1 if ddpm else 0)
            for i in range(n_up):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                h = res(ch, f"up_{level}_res_{i}", h)
                if attends(level, h) and (self.up_attention == "every" or i == n_up - 1):
                    h = attn(f"up_{level}_attn_{i}", h)
            if level != 0:
                name = f"up_{level}_upsample"
                if self.resample == "conv":
                    h = _resize(h, "up")
                    h = nn.Conv(ch if ddpm else self.channels[level - 1], (3, 3), name=name)(h)
                elif self.resample == "pool":
                    h = _resize(h, "up")
                else:
                    h = res(ch, name, h, "up")

        h = nn.silu(_group_norm(self.groups, h.shape[-1], "norm_out")(h))
        return nn.Conv(
            self.out_channels or in_channels,
            (3, 3),
            kernel_init=nn.initializers.zeros_init(),
            bias_init=nn.initializers.zeros_init(),
            name="conv_out",
        )(h)
