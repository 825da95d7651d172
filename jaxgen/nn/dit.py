"""DiT: the diffusion transformer of Peebles & Xie (2023), "Scalable Diffusion Models with
Transformers", for images and h x w x C latent maps.

    x (B, H, W, C) -> patchify: a p x p stride-p conv to `hidden`, (B, T, hidden),
                      T = (H/p)(W/p), + 2-D position embeddings (fixed sin-cos or learned)
    c = time embedding of t (+ class embedding of the label)
    N x DiT block with adaLN-Zero:
        (β1, γ1, α1, β2, γ2, α2) = Dense_6h(SiLU(c))          (zero-initialised)
        h = h + α1 · Attention(LN(h) (1 + γ1) + β1)
        h = h + α2 · MLP(LN(h) (1 + γ2) + β2)                  (LN without affine)
    final layer: (β, γ) = Dense_2h(SiLU(c)); Dense_{p²·C_out}(LN(h) (1 + γ) + β) (both
                 zero-initialised), then unpatchify to (B, H, W, C_out)

Every gate α and the output start at zero, so each block starts as the identity and
the network's output is exactly 0 at initialisation (the "-Zero" of adaLN-Zero), a
neutral start for an ε / velocity / denoiser prediction, as the U-Net's zero last conv.

Sizes (the paper's Table 1): `SIZES[size] = (depth, hidden, heads)`, S (12, 384, 6),
B (12, 768, 12), L (24, 1024, 16), XL (28, 1152, 16), with patch p ∈ {2, 4, 8}
(`model.size`, `model.patch`; `model.depth` / `hidden` / `num_heads` > 0 override the
size's). On ImageNet 256's 32 x 32 x 4 latents with 1000 classes and the learned Σ
(8 output channels), the parameter counts are the paper's 33M, 130M, 458M and 675M
(tests/test_dit.py checks them). Initialisation as the authors' code: Xavier-uniform
Dense kernels and patch embedding, N(0, 0.02) time MLP and class table, zero adaLN and
output layers.

The interface is the U-Net's, `model(x, t, label=None)`, so every objective that takes
the U-Net (DDPM, NCSN, flow matching, the latent priors) takes `model.name=dit`. Time
enters as the U-Net's: sinusoidal features of t · time_scale (1000: jaxgen's [0, 1] onto
DDPM's step numbers) into a two-layer MLP. The class table has a null row (label=None),
for classifier-free guidance.

Scale: the Dense kernels carry logical axis names ("embed", "mlp", "heads"), which
`jaxgen.runner.sharding` maps onto the fsdp axis; the attention's two einsums honour the
model's compute dtype (train.compute_dtype=bfloat16) as the Dense layers do; with
`remat` (train.remat) each block is rematerialised.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.errors import UserError
from jaxgen.nn import remat as remat_lib
from jaxgen.nn.embeddings import ClassEmbedding, TimeEmbedding, broadcast_time

__all__ = ["DiT", "DiTBlock", "SIZES", "POSITIONS", "patchify", "unpatchify",
           "sincos_2d"]

#: size -> (depth, hidden, heads), Peebles & Xie (2023), Table 1
SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
POSITIONS = ("sincos", "learned")

_xavier = nn.initializers.xavier_uniform()
_zeros = nn.initializers.zeros


def _dense(features: int, axes: tuple[str, str], name: str, zero: bool = False) -> nn.Dense:
    """A Dense layer whose kernel carries logical axis names (for the sharding rules)."""
    return nn.Dense(features, name=name,
                    kernel_init=nn.with_logical_partitioning(_zeros if zero else _xavier, axes),
                    bias_init=nn.with_logical_partitioning(_zeros, (axes[1],)))


def patchify(x: jax.Array, p: int) -> jax.Array:
    """(B, H, W, C) -> (B, (H/p)(W/p), p·p·C): raster order over patches, each patch
    flattened row by row, channels last."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(x: jax.Array, p: int, h: int, w: int) -> jax.Array:
    """The inverse of `patchify`: (B, (h/p)(w/p), p·p·C) -> (B, h, w, C)."""
    b, _, d = x.shape
    c = d // (p * p)
    x = x.reshape(b, h // p, w // p, p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def sincos_2d(dim: int, gh: int, gw: int) -> np.ndarray:
    """(gh·gw, dim) fixed 2-D sin-cos position embeddings (MAE's, which DiT uses): half the
    features encode the row, half the column, each as 1-D sin-cos with ω_k = 10000^(−k/(dim/4))."""
    if dim % 4:
        raise UserError(f"sin-cos position embeddings need a width divisible by 4, got {dim}.")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))

    def one_d(pos):
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(gh, dtype=np.float64), np.arange(gw, dtype=np.float64),
                             indexing="ij")
    return np.concatenate([one_d(cols), one_d(rows)], axis=1).astype(np.float32)


def _modulate(x, shift, scale):
    return x * (1.0 + scale[:, None]) + shift[:, None]


def _layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False, name=name)


class Attention(nn.Module):
    """Multi-head self-attention: qkv Dense -> softmax(q kᵀ / √d) v -> proj Dense. Its two
    einsums run in the compute dtype when the model has one (`jaxgen.nn.precision`)."""

    hidden: int
    num_heads: int
    dtype: Any = None
    honours_compute_dtype = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, _ = x.shape
        d = self.hidden // self.num_heads
        qkv = _dense(3 * self.hidden, ("embed", "heads"), "qkv")(x)
        q, k, v = jnp.split(qkv.reshape(b, t, 3, self.num_heads, d), 3, axis=2)
        q, k, v = (a[:, :, 0] for a in (q, k, v))  # (B, T, heads, d)
        if self.dtype is not None:
            q, k, v = (a.astype(self.dtype) for a in (q, k, v))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / math.sqrt(d)
        w = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", w.astype(v.dtype), v).astype(jnp.float32)
        return _dense(self.hidden, ("heads", "embed"), "proj")(out.reshape(b, t, self.hidden))


class DiTBlock(nn.Module):
    """One adaLN-Zero block (module docstring)."""

    hidden: int
    num_heads: int
    mlp_ratio: float = 4.0

    @nn.compact
    def __call__(self, h: jax.Array, c: jax.Array) -> jax.Array:
        mod = _dense(6 * self.hidden, ("embed", "mlp"), "adaLN_modulation", zero=True)(
            nn.silu(c))
        shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(mod, 6, axis=-1)
        a = Attention(self.hidden, self.num_heads, name="attn")(
            _modulate(_layer_norm("norm1")(h), shift1, scale1))
        h = h + gate1[:, None] * a
        m = _modulate(_layer_norm("norm2")(h), shift2, scale2)
        m = _dense(int(self.hidden * self.mlp_ratio), ("embed", "mlp"), "fc1")(m)
        m = _dense(self.hidden, ("mlp", "embed"), "fc2")(nn.gelu(m, approximate=True))
        return h + gate2[:, None] * m


class DiT(nn.Module):
    """The diffusion transformer (module docstring).

    Attributes:
      size: "S", "B", "L" or "XL": depth, width and heads of the paper's Table 1.
      patch: the patch side p (the spatial size must be divisible by it).
      depth, hidden, num_heads: > 0: override the size's.
      mlp_ratio: the MLP's width over hidden.
      out_channels: output channels (None: the input's; 2C for DiT's learned Σ).
      num_classes: if set, a class embedding (with a null row) is added to the time's.
      positions: "sincos" (fixed 2-D sin-cos) or "learned" (a table, initialised from them).
      time_features: size of the sinusoidal time features (DiT: 256).
      time_scale: t is multiplied by this before the sinusoids (as the U-Net's).
      remat: "none" or a `jax.checkpoint_policies` name (each block rematerialised).
    """

    size: str = "S"
    patch: int = 2
    depth: int = 0
    hidden: int = 0
    num_heads: int = 0
    mlp_ratio: float = 4.0
    out_channels: int | None = None
    num_classes: int | None = None
    positions: str = "sincos"
    time_features: int = 256
    time_scale: float = 1000.0
    remat: str = "none"

    def dims(self) -> tuple[int, int, int]:
        """(depth, hidden, heads) after the overrides, checked."""
        if self.size not in SIZES:
            raise UserError(f"model.size={self.size!r} is not one of {', '.join(SIZES)}.")
        depth, hidden, heads = SIZES[self.size]
        depth, hidden, heads = (self.depth or depth, self.hidden or hidden,
                                self.num_heads or heads)
        if hidden % heads:
            raise UserError(f"model.hidden={hidden} is not divisible by model.num_heads="
                            f"{heads}.")
        if self.positions not in POSITIONS:
            raise UserError(f"model.positions={self.positions!r} is not one of "
                            f"{', '.join(POSITIONS)}.")
        return depth, hidden, heads

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, label: jax.Array | None = None) -> jax.Array:
        if x.ndim != 4:
            raise UserError(f"DiT expects NHWC input (B, H, W, C), got shape {x.shape}.")
        depth, hidden, heads = self.dims()
        b, h, w, c = x.shape
        p = self.patch
        if p < 1 or h % p or w % p:
            raise UserError(f"model.patch={p} must divide the spatial size {h}x{w}.")
        out_c = self.out_channels or c
        tokens = nn.Conv(hidden, (p, p), strides=(p, p), padding="VALID", name="x_embedder",
                         kernel_init=_xavier)(x).reshape(b, -1, hidden)
        pos = sincos_2d(hidden, h // p, w // p)
        if self.positions == "learned":
            pos = self.param("pos_embed", lambda *_: jnp.asarray(pos))
        tokens = tokens + pos[None]
        c_emb = TimeEmbedding(hidden, scale=self.time_scale, features=self.time_features,
                              kernel_init=nn.initializers.normal(0.02), name="t_embedder")(
            broadcast_time(t, b))
        if self.num_classes is not None:
            c_emb = c_emb + ClassEmbedding(self.num_classes, hidden, name="y_embedder",
                                           init=nn.initializers.normal(0.02))(label, b)
        elif label is not None:
            raise UserError("label given but DiT.num_classes is None.")
        block = remat_lib.block(DiTBlock, self.remat)
        for i in range(depth):
            tokens = block(hidden, heads, self.mlp_ratio, name=f"block_{i}")(tokens, c_emb)
        shift, scale = jnp.split(_dense(2 * hidden, ("embed", "mlp"), "final_adaLN",
                                        zero=True)(nn.silu(c_emb)), 2, axis=-1)
        out = _dense(p * p * out_c, ("embed", "mlp"), "final_linear", zero=True)(
            _modulate(_layer_norm("final_norm")(tokens), shift, scale))
        return unpatchify(out, p, h, w)

