"""Encoders and decoders of the VAE family (Kingma & Welling, 2014; van den Oord et al., 2017).

Three modules, each with `encode` and `decode` methods (and `__call__` =
decode(encode(x)), used to initialise every parameter):

* :class:`MLPVAE` (``model.name=vae_mlp``): MLP encoder x -> (mean, log_var)
  of a diagonal Gaussian q(z|x), MLP decoder z -> parameter maps. For 2-D toys
  and flattened images.
* :class:`ConvVAE` (``model.name=vae_conv``): for (H, W, C) images with H, W
  divisible by 4 (28x28x1: 28 -> 14 -> 7). Encoder: two stride-2 3x3 convs
  (``channels``), flatten, Dense(``hidden``), then (mean, log_var). Decoder:
  Dense(``hidden``) -> Dense to a (H/4, W/4, c1) map, two stride-2 3x3
  transposed convs back to (H, W), a 3x3 conv to the parameter maps.
* :class:`VQVAEConv` (``model.name=vqvae_conv``): the same conv stacks without
  the bottleneck Dense layers: the encoder gives a (H/4, W/4, D) map of
  continuous vectors (D = ``embed_dim``), to be quantised by the objective's
  codebook; the decoder maps such a map back to an image (B, H, W, C).
* :class:`VQVAE2Conv` (``model.name=vqvae2_conv``): VQ-VAE-2's two levels, a top
  (H/4, W/4, D) map and a bottom (H/2, W/2, D) map conditioned on the decoded top.

Decoder outputs of the Gaussian VAEs have shape ``(B, *event_shape,
decoder_outputs)``: one map per parameter of p(x|z) (e.g. mean and log-scale
for the discretised logistic). ``decoder_outputs`` is set by the objective
(from objective.decoder) with ``module.clone(decoder_outputs=...)``, not in
configs; ``event_shape`` is filled in from the data by the registry.

Networks only: the likelihoods, the codebook and the losses live in
`jaxgen.families.vae.vae` / `jaxgen.families.vae.vqvae`.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.conv import ConvTranspose

__all__ = ["MLPVAE", "ConvVAE", "VQVAEConv", "VQVAE2Conv"]


def _check_spatial(event_shape, name: str):
    if len(event_shape) != 3 or event_shape[0] % 4 or event_shape[1] % 4:
        raise UserError(f"{name} expects (H, W, C) images with H and W divisible by 4 "
                         f"(28x28x1: 28 -> 14 -> 7); got event shape {tuple(event_shape)}.")


class _MLP(nn.Module):
    features: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, h):
        for i, w in enumerate(self.features):
            h = nn.silu(nn.Dense(w, name=f"dense_{i}")(h))
        return nn.Dense(self.out, name="out")(h)


class MLPVAE(nn.Module):
    """MLP encoder/decoder pair over flattened data.

    Attributes:
      event_shape: shape of one example (from the data).
      latent_dim: size of z.
      features: hidden widths of the encoder; the decoder uses them reversed.
      decoder_outputs: parameter maps per data dimension (set by the objective).
    """

    event_shape: Sequence[int] = (2,)
    latent_dim: int = 2
    features: Sequence[int] = (128, 128)
    decoder_outputs: int = 1

    def setup(self):
        d = math.prod(self.event_shape)
        self.encoder = _MLP(tuple(self.features), 2 * self.latent_dim)
        self.decoder = _MLP(tuple(self.features)[::-1], d * self.decoder_outputs)

    def encode(self, x):
        """x (B, *event_shape) -> (mean, log_var), each (B, latent_dim)."""
        h = self.encoder(x.reshape(x.shape[0], -1))
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z):
        """z (B, latent_dim) -> (B, *event_shape, decoder_outputs)."""
        out = self.decoder(z)
        return out.reshape(z.shape[0], *self.event_shape, self.decoder_outputs)

    def __call__(self, x):
        mean, _ = self.encode(x)
        return self.decode(mean)


class _ConvDown(nn.Module):
    """Two stride-2 3x3 convs: (H, W) -> (H/4, W/4)."""

    channels: Sequence[int]

    @nn.compact
    def __call__(self, x):
        h = x
        for i, c in enumerate(self.channels):
            h = nn.silu(nn.Conv(c, (3, 3), strides=(2, 2), name=f"conv_{i}")(h))
        return h


class _ConvUp(nn.Module):
    """Two stride-2 3x3 transposed convs (H/4 -> H), then a 3x3 conv to `out` maps."""

    channels: Sequence[int]  # the encoder's, e.g. (32, 64): up path 64 -> 32 -> 32
    out: int

    @nn.compact
    def __call__(self, h):
        widths = list(self.channels)[::-1][1:] + [self.channels[0]]
        for i, c in enumerate(widths):
            h = nn.silu(ConvTranspose(c, (3, 3), strides=(2, 2), name=f"deconv_{i}")(h))
        return nn.Conv(self.out, (3, 3), name="out")(h)


class ConvVAE(nn.Module):
    """Small conv encoder/decoder for 28x28x1 (any H, W divisible by 4).

    Attributes:
      event_shape: (H, W, C) (from the data).
      latent_dim: size of z.
      channels: widths of the two stride-2 convs (the decoder mirrors them).
      hidden: width of the Dense layer on each side of the bottleneck.
      decoder_outputs: parameter maps per pixel and channel (set by the objective).
    """

    event_shape: Sequence[int] = (28, 28, 1)
    latent_dim: int = 16
    channels: Sequence[int] = (32, 64)
    hidden: int = 256
    decoder_outputs: int = 1

    def setup(self):
        _check_spatial(self.event_shape, "model.name=vae_conv")
        if len(self.channels) != 2:
            raise UserError(f"model.channels must have 2 entries (28 -> 14 -> 7), "
                             f"got {tuple(self.channels)}.")
        h, w, c = self.event_shape
        self.down = _ConvDown(tuple(self.channels))
        self.enc_hidden = nn.Dense(self.hidden)
        self.enc_out = nn.Dense(2 * self.latent_dim)
        self.dec_hidden = nn.Dense(self.hidden)
        self.dec_map = nn.Dense((h // 4) * (w // 4) * self.channels[-1])
        self.up = _ConvUp(tuple(self.channels), c * self.decoder_outputs)

    def encode(self, x):
        """x (B, H, W, C) -> (mean, log_var), each (B, latent_dim)."""
        h = self.down(x)
        h = nn.silu(self.enc_hidden(h.reshape(h.shape[0], -1)))
        h = self.enc_out(h)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z):
        """z (B, latent_dim) -> (B, H, W, C, decoder_outputs)."""
        hh, ww, c = self.event_shape
        h = nn.silu(self.dec_hidden(z))
        h = nn.silu(self.dec_map(h)).reshape(z.shape[0], hh // 4, ww // 4, self.channels[-1])
        out = self.up(h)
        return out.reshape(z.shape[0], hh, ww, c, self.decoder_outputs)

    def __call__(self, x):
        mean, _ = self.encode(x)
        return self.decode(mean)


class _ResConv(nn.Conv):
    """The VQ-VAEs' residual block ``h + conv(silu(h))``: an `nn.Conv` (same params, same
    name) that adds its own input, so the whole block is one module to rematerialise."""

    def __call__(self, h):
        return h + super().__call__(nn.silu(h))


class _VQConvFields(nn.Module):
    """The fields (and their checks) of the VQ-VAE conv nets, one level or two."""

    FIELD_CHECKS = {"num_res": lambda v: None if v >= 0 else "must be >= 0"}  # 0: no res blocks

    event_shape: Sequence[int] = (28, 28, 1)
    embed_dim: int = 16
    channels: Sequence[int] = (32, 64)
    num_res: int = 1
    remat: str = "none"

    def _check(self, name: str):
        _check_spatial(self.event_shape, f"model.name={name}")
        if len(self.channels) != 2:
            raise UserError(f"model.channels must have 2 entries (28 -> 14 -> 7), "
                             f"got {tuple(self.channels)}.")


class VQVAEConv(_VQConvFields):
    """VQ-VAE encoder/decoder: (H, W, C) <-> a (H/4, W/4, embed_dim) map of vectors.

    Attributes:
      event_shape: (H, W, C) (from the data).
      embed_dim: D, the size of each code vector.
      channels: widths of the two stride-2 convs (the decoder mirrors them).
      num_res: 3x3 residual conv blocks at the H/4 resolution on each side.
      remat: "none", or a `jax.checkpoint_policies` name: the residual blocks are
        rematerialised in the backward pass with that policy (`jaxgen.nn.remat`).
    """

    def setup(self):
        self._check("vqvae_conv")
        c_top = self.channels[-1]
        res = remat_lib.block(_ResConv, self.remat)
        self.down = _ConvDown(tuple(self.channels))
        self.enc_res = [res(c_top, (3, 3)) for _ in range(self.num_res)]
        self.enc_out = nn.Conv(self.embed_dim, (1, 1))
        self.dec_in = nn.Conv(c_top, (3, 3))
        self.dec_res = [res(c_top, (3, 3)) for _ in range(self.num_res)]
        self.up = _ConvUp(tuple(self.channels), self.event_shape[-1])

    def encode(self, x):
        """x (B, H, W, C) -> z_e (B, H/4, W/4, embed_dim)."""
        h = self.down(x)
        for block in self.enc_res:
            h = block(h)
        return self.enc_out(nn.silu(h))

    def decode(self, e):
        """e (B, H/4, W/4, embed_dim) -> (B, H, W, C)."""
        h = self.dec_in(e)
        for block in self.dec_res:
            h = block(h)
        return self.up(nn.silu(h))

    def __call__(self, x):
        return self.decode(self.encode(x))


class VQVAE2Conv(_VQConvFields):
    """VQ-VAE-2's two-level encoder/decoder (Razavi et al., 2019), (H, W, C) images.

    Bottom features h = E_b(x) at H/2 (a stride-2 conv + res blocks; 14x14 for 28x28);
    the top map z_t = E_t(h) at H/4 (7x7). The quantised top e_t is decoded and
    upsampled to H/2 (D_t) and concatenated with h before the bottom's 1x1 projection:
    z_b = P_b([h, D_t(e_t)]), so the bottom codes carry what the top does not. The
    decoder takes both: D([e_b, U(e_t)]) (U a stride-2 transposed conv), up to (H, W).

    Methods (the objective quantises between them): `features(x) -> h`,
    `encode_top(h) -> z_t` (B, H/4, W/4, D), `encode_bottom(h, e_t) -> z_b`
    (B, H/2, W/2, D), `decode(e_t, e_b) -> (B, H, W, C)`.

    Attributes:
      event_shape: (H, W, C) (from the data).
      embed_dim: D, the size of each code vector (both levels).
      channels: widths at H/2 (bottom) and H/4 (top).
      num_res: 3x3 residual conv blocks at each level, on each side.
      remat: as :class:`VQVAEConv`.
    """

    def setup(self):
        self._check("vqvae2_conv")
        c_b, c_t = self.channels
        block = remat_lib.block(_ResConv, self.remat)

        def res(c, name):
            return [block(c, (3, 3), name=f"{name}_{i}") for i in range(self.num_res)]

        self.down_b = nn.Conv(c_b, (3, 3), strides=(2, 2))
        self.res_b = res(c_b, "res_b")
        self.down_t = nn.Conv(c_t, (3, 3), strides=(2, 2))
        self.res_t = res(c_t, "res_t")
        self.out_t = nn.Conv(self.embed_dim, (1, 1))
        self.dec_t_in = nn.Conv(c_t, (3, 3))
        self.dec_t_res = res(c_t, "dec_t_res")
        self.dec_t_up = ConvTranspose(c_b, (3, 3), strides=(2, 2))
        self.out_b = nn.Conv(self.embed_dim, (1, 1))
        self.up_t = ConvTranspose(self.embed_dim, (3, 3), strides=(2, 2))
        self.dec_in = nn.Conv(c_b, (3, 3))
        self.dec_res = res(c_b, "dec_res")
        self.dec_up = ConvTranspose(c_b, (3, 3), strides=(2, 2))
        self.dec_out = nn.Conv(self.event_shape[-1], (3, 3))

    @staticmethod
    def _res(h, blocks):
        for block in blocks:
            h = block(h)
        return h

    def features(self, x):
        """x (B, H, W, C) -> the bottom features h (B, H/2, W/2, channels[0])."""
        return self._res(nn.silu(self.down_b(x)), self.res_b)

    def encode_top(self, h):
        """h -> z_t (B, H/4, W/4, embed_dim)."""
        return self.out_t(nn.silu(self._res(nn.silu(self.down_t(h)), self.res_t)))

    def encode_bottom(self, h, e_t):
        """h and the quantised top e_t -> z_b (B, H/2, W/2, embed_dim)."""
        d = self._res(self.dec_t_in(e_t), self.dec_t_res)
        d = nn.silu(self.dec_t_up(nn.silu(d)))
        return self.out_b(jnp.concatenate([h, d], axis=-1))

    def decode(self, e_t, e_b):
        """(e_t (B, H/4, W/4, D), e_b (B, H/2, W/2, D)) -> (B, H, W, C)."""
        h = self.dec_in(jnp.concatenate([e_b, self.up_t(e_t)], axis=-1))
        h = nn.silu(self._res(h, self.dec_res))
        return self.dec_out(nn.silu(self.dec_up(h)))

    def __call__(self, x):
        h = self.features(x)
        z_t = self.encode_top(h)
        return self.decode(z_t, self.encode_bottom(h, z_t))


def latent_shape(module: nn.Module) -> tuple:
    """Shape of one example's latent: (latent_dim,) or (H/4, W/4, embed_dim)."""
    if isinstance(module, VQVAEConv):
        h, w, _ = module.event_shape
        return (h // 4, w // 4, module.embed_dim)
    return (module.latent_dim,)
