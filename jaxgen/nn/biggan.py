"""BigGAN's pieces (Brock et al., 2018) and a small class-conditional BigGAN for 28x28 images.

Pieces, each usable on its own:

* Spectral normalisation (Miyato et al., 2018): a layer's weight W, seen as the matrix
  M = kernel.reshape(fan_in, fan_out), is used as M / σ̂ with σ̂ a power-iteration
  estimate of its top singular value. Design: the power-iteration vector u (R^fan_out,
  one per layer) is **non-gradient state**, the variable collection "spectral" (not
  "params"), so no optimizer ever sees it. The forward pass is a pure function of
  (kernel, u): v = M u / ‖M u‖, σ̂ = vᵀ M u = ‖M u‖ with u held constant, so ∂σ̂/∂M = v uᵀ,
  Miyato's gradient. σ̂ ≤ σ_max for any unit u (equality at the top right-singular vector).
  The GAN objective keeps the collection under params["spectral"] and, after each step's
  gradient updates, refreshes it with one power iteration on the updated kernels
  (`power_iterate_tree`, the model's `refresh_state`): u ← Mᵀ M u / ‖Mᵀ M u‖ — Miyato's
  Algorithm 1, one iteration per step, accumulating across steps. At init u starts from a
  random direction refined by INIT_ITERATIONS iterations on the initial kernel.
* Orthogonal regularisation (Brock et al., 2018, Sec. 3.1): R_β(W) = β ‖WᵀW ⊙ (1 − I)‖_F²
  with W = kernel.reshape(fan_in, fan_out), so WᵀW is the (fan_out, fan_out) Gram matrix of
  the filters (the convention of BigGAN's code, which computes w wᵀ of PyTorch's (out, in)
  weight). Its gradient is 4β W (WᵀW ⊙ (1 − I)). `orthogonal_penalty(params)` sums it
  (β = 1) over every leaf named "kernel" with ndim ≥ 2: conv and dense kernels only; not
  biases, not the shared class embedding ("embedding"), not the conditional batch norms'
  gain/bias maps ("gain_map", "bias_map"; BigGAN's code does regularise those, the paper's
  text names weight matrices). The GAN objective adds `objective.ortho_weight` · R to G's
  loss.
* Class-conditional batch norm: BN(x) = γ_y ⊙ (x − μ_B) / sqrt(σ²_B + ε) + β_y with
  γ_y = 1 + e_y G_γ and β_y = e_y G_β linear in the shared class embedding e_y.
  **Always the current batch's statistics** (μ_B, σ²_B over batch and positions), at train
  and at sample time: no running averages, so the model has no BN state. This is what
  BigGAN's "standing statistics" approximate (they recompute the statistics over many
  sampled batches at sample time instead of using running averages); the price is that a
  sample depends on the other samples of its batch — sample in batches of many (e.g. ≥ 64).
* Self-attention (SAGAN, Zhang et al., 2018): f, g (C/8 channels), h (C/2) and the output
  v (C) 1x1 convolutions, s_ij = f(x_j)ᵀ g(x_i) for query position j and key position i,
  β_j· = softmax_i(s_·j), o_j = v(Σ_i β_ji h(x_i)), y = γ o + x with γ a scalar initialised
  to 0 (identity at init). As in BigGAN's code, keys and values are 2x2 max-pooled (the
  attention over 196 positions of a 14x14 map cost ~40 ms of a CPU step; pooled: 49).
* Projection discriminator (Miyato & Koyama, 2018): D(x, y) = ψ(φ(x)) + embed(y)ᵀ φ(x),
  φ the sum-pooled features, ψ a linear layer, embed a (spectral-normalised) class embedding.

:class:`BigGAN` (``model.name=biggan``): G: z -> dense -> (H/4, W/4, 4c) -> two residual
up-blocks (conditional BN, ReLU, nearest upsampling, 3x3 convs; 1x1 shortcut) with one
self-attention block at H/2 between them -> BN, ReLU, 3x3 conv, tanh. D: residual
down-blocks (3x3 convs, average pooling, 1x1 shortcut; all spectral-normalised) to H/2,
self-attention, down to H/4, one more residual block, ReLU, sum pooling, linear +
projection. Simplifications against the paper: no hierarchical latent (z enters only at
the input), spectral norm in D only, Flax's default initialisers.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgen.kernel.errors import UserError
from jaxgen.nn.gan import TwoPlayerGAN

__all__ = ["BigGAN", "SNConv", "SNDense", "ConditionalBatchNorm", "SelfAttention",
           "ProjectionHead", "power_iteration", "power_iterate_tree", "orthogonal_penalty"]

SPECTRAL = "spectral"  # the variable collection of the power-iteration vectors
INIT_ITERATIONS = 10


# ------------------------------------------------------------------ spectral norm
def _normalize(x, eps: float = 1e-12):
    return x / (jnp.linalg.norm(x) + eps)


def kernel_matrix(kernel):
    """A conv (kh, kw, in, out) or dense (in, out) kernel as the (fan_in, fan_out) matrix."""
    return kernel.reshape(-1, kernel.shape[-1])


def power_iteration(m, u, iterations: int = 1):
    """`iterations` power iterations on Mᵀ M from u (R^fan_out): u ← MᵀMu / ‖MᵀMu‖."""
    for _ in range(iterations):
        u = _normalize(m.T @ _normalize(m @ u))
    return u


def sigma_estimate(m, u):
    """σ̂ = ‖M u‖ for unit u (u held constant): ≤ σ_max(M), = σ_max at the top vector."""
    return jnp.linalg.norm(m @ lax.stop_gradient(u))


def power_iterate_tree(params, state, iterations: int = 1):
    """One refresh of every u in `state` (a "spectral" tree mirroring `params`): each u at
    path (..., layer, "u") iterates on the kernel at (..., layer, "kernel") of params."""
    return {k: (power_iteration(kernel_matrix(params["kernel"]), v, iterations) if k == "u"
                else power_iterate_tree(params[k], v, iterations)) for k, v in state.items()}


def _spectral(module: nn.Module, kernel):
    """kernel / σ̂, with the layer's u (collection "spectral") read, never written."""
    m = kernel_matrix(kernel)

    def init_u():
        u0 = _normalize(jax.random.normal(module.make_rng("params"), (m.shape[1],)))
        return power_iteration(lax.stop_gradient(m), u0, INIT_ITERATIONS)

    u = module.variable(SPECTRAL, "u", init_u).value
    return kernel / sigma_estimate(m, u)


class SNDense(nn.Module):
    """A dense layer whose kernel is spectral-normalised (module doc).

    dtype: the matmul's dtype (None: as before, the promotion of input and kernel); σ̂ and
    kernel / σ̂ are computed in float32 first. Set by `jaxgen.nn.precision` under
    `train.compute_dtype`; params and the power-iteration vector stay float32."""

    features: int
    use_bias: bool = True
    dtype: Any = None

    honours_compute_dtype: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (x.shape[-1], self.features))
        kernel = _spectral(self, kernel)
        if self.dtype is not None:
            x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        y = x @ kernel
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        return y


class SNConv(nn.Module):
    """A stride-1 "SAME" convolution (NHWC) whose kernel is spectral-normalised
    (dtype: the convolution's dtype, None: the input's; as SNDense's)."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    use_bias: bool = True
    dtype: Any = None

    honours_compute_dtype: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (*self.kernel_size, x.shape[-1], self.features))
        if self.dtype is not None:
            x = x.astype(self.dtype)
        y = lax.conv_general_dilated(x, _spectral(self, kernel).astype(x.dtype), (1, 1),
                                     "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        return y


def _conv(spectral: bool, features: int, size: int, name: str | None = None):
    if spectral:
        return SNConv(features, (size, size), name=name)
    return nn.Conv(features, (size, size), padding="SAME", name=name)


# ------------------------------------------------------------ orthogonal regularisation
def orthogonal_term(w):
    """‖WᵀW ⊙ (1 − I)‖_F² of W (fan_in, fan_out) (β = 1).

    A wide W (fan_out > fan_in: G's projection of z, 64 -> 7·7·48) goes through the smaller
    Gram matrix, ‖WᵀW‖_F² = ‖WWᵀ‖_F² = Σ σ⁴, minus the diagonal's Σ_j ‖w_j‖⁴: the same
    value at fan_in² · fan_out multiply-adds instead of fan_out² · fan_in (37x fewer for
    that layer). No cancellation to fear there: fan_out > fan_in columns cannot be
    orthogonal, the off-diagonal part is at least (1 − fan_in / fan_out) of the total for
    columns of equal norm."""
    fan_in, fan_out = w.shape
    if fan_out > fan_in:
        cols = jnp.sum(jnp.square(w), axis=0)  # ‖w_j‖², the Gram's diagonal
        return jnp.sum(jnp.square(w @ w.T)) - jnp.sum(jnp.square(cols))
    gram = w.T @ w
    off = gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))
    return jnp.sum(jnp.square(off))


def orthogonal_penalty(params):
    """Σ over the leaves named "kernel" with ndim ≥ 2 of orthogonal_term(kernel_matrix(k))."""
    total = jnp.zeros((), jnp.float32)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = getattr(path[-1], "key", None)
        if name == "kernel" and leaf.ndim >= 2:
            total = total + orthogonal_term(kernel_matrix(leaf).astype(jnp.float32))
    return total


# ------------------------------------------------------------- conditional batch norm
class ConditionalBatchNorm(nn.Module):
    """Batch norm with the current batch's statistics and a gain/bias per condition.

    cond (B, E) (the shared class embedding) or None: γ = 1 + cond G_γ, β = cond G_β
    (G_γ, G_β: "gain_map", "bias_map", zero-initialised, so it starts as plain BN);
    without cond, per-channel learned γ ("scale") and β ("bias").
    """

    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x, cond=None):
        c = x.shape[-1]
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))  # statistics in float32
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axes)
        var = jnp.mean(jnp.square(x - mean), axes)
        xn = (x - mean) * lax.rsqrt(var + self.epsilon)
        if cond is None:
            gamma = 1.0 + self.param("scale", nn.initializers.zeros, (c,))
            beta = self.param("bias", nn.initializers.zeros, (c,))
        else:
            g = self.param("gain_map", nn.initializers.zeros, (cond.shape[-1], c))
            b = self.param("bias_map", nn.initializers.zeros, (cond.shape[-1], c))
            shape = (cond.shape[0],) + (1,) * (x.ndim - 2) + (c,)
            gamma = (1.0 + cond @ g).reshape(shape)
            beta = (cond @ b).reshape(shape)
        return xn * gamma + beta


# --------------------------------------------------------------------- self-attention
def _max_pool(x):
    """2x2 max pooling, stride 2 (NHWC, even H and W)."""
    b, h, w, c = x.shape
    return jnp.max(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (module doc); spectral: its 1x1 convs are SN'd.

    pool: keys g and values h are 2x2 max-pooled first (BigGAN's code does this; 4x fewer
    positions to attend over, H and W even), the queries f stay at every position.
    """

    spectral: bool = False
    pool: bool = True

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        ck, cv = max(1, c // 8), max(1, c // 2)
        f = _conv(self.spectral, ck, 1, "f")(x).reshape(b, h * w, ck)
        g = _conv(self.spectral, ck, 1, "g")(x)
        hv = _conv(self.spectral, cv, 1, "h")(x)
        if self.pool:
            g, hv = _max_pool(g), _max_pool(hv)
        g, hv = g.reshape(b, -1, ck), hv.reshape(b, -1, cv)
        logits = jnp.einsum("bjk,bik->bji", f, g)
        beta = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)),
                              axis=-1).astype(hv.dtype)  # (b, j, i), softmax in float32
        o = jnp.einsum("bji,bic->bjc", beta, hv).reshape(b, h, w, cv)
        o = _conv(self.spectral, c, 1, "v")(o)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return x + gamma * o


# -------------------------------------------------------------------- discriminator head
class ProjectionHead(nn.Module):
    """D(x, y) = ψ(φ) + embed(y)ᵀ φ for features φ (B, F); label None: ψ(φ) only."""

    num_classes: int | None = None

    @nn.compact
    def __call__(self, phi, label=None):
        out = SNDense(1, name="psi")(phi)[:, 0]
        if self.num_classes is None:
            return out
        y = jax.nn.one_hot(jnp.broadcast_to(label, phi.shape[:1]), self.num_classes)
        e = SNDense(phi.shape[-1], use_bias=False, name="embed")(y)  # rows of the embedding
        return out + jnp.sum(e * phi, -1)


# ---------------------------------------------------------------------------- networks
# Both written as broadcast/reshape: their gradients are then a sum and a broadcast, where
# jnp.repeat's and reduce_window's gradients ran slowly on XLA:CPU.
def _upsample(x):
    """Nearest-neighbour 2x upsampling (NHWC)."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(
        b, 2 * h, 2 * w, c)


def _avg_pool(x):
    """2x2 average pooling, stride 2 (NHWC, even H and W)."""
    b, h, w, c = x.shape
    return jnp.mean(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class GBlock(nn.Module):
    """BigGAN's up-block: CBN, ReLU, upsample, conv3, CBN, ReLU, conv3; + upsample, conv1."""

    features: int

    @nn.compact
    def __call__(self, x, cond):
        h = nn.relu(ConditionalBatchNorm(name="bn_0")(x, cond))
        h = nn.Conv(self.features, (3, 3), padding="SAME", name="conv_0")(_upsample(h))
        h = nn.relu(ConditionalBatchNorm(name="bn_1")(h, cond))
        h = nn.Conv(self.features, (3, 3), padding="SAME", name="conv_1")(h)
        return h + nn.Conv(self.features, (1, 1), name="shortcut")(_upsample(x))


class DBlock(nn.Module):
    """BigGAN's down-block (all SN): [ReLU,] conv3, ReLU, conv3, [avgpool]; + conv1, [avgpool].
    first: no ReLU before the first conv (the input is the image)."""

    features: int
    down: bool = True
    first: bool = False

    @nn.compact
    def __call__(self, x):
        h = x if self.first else nn.relu(x)
        h = SNConv(self.features, name="conv_0")(h)
        h = SNConv(self.features, name="conv_1")(nn.relu(h))
        s = SNConv(self.features, (1, 1), name="shortcut")(x)
        if self.down:
            h, s = _avg_pool(h), _avg_pool(s)
        return h + s


class BigGANGenerator(nn.Module):
    event_shape: Sequence[int]
    channels: int
    embed_dim: int
    num_classes: int | None = None

    @nn.compact
    def __call__(self, z, label=None):
        h_, w_, c_out = self.event_shape
        c = self.channels
        cond = None
        if self.num_classes is not None:
            if label is None:
                raise UserError(f"this conditional model (num_classes={self.num_classes}) "
                                "needs labels.")
            cond = nn.Embed(self.num_classes, self.embed_dim, name="shared")(
                jnp.broadcast_to(label, z.shape[:1]))
        h = nn.Dense((h_ // 4) * (w_ // 4) * 4 * c, name="project")(z)
        h = h.reshape(z.shape[0], h_ // 4, w_ // 4, 4 * c)
        h = GBlock(2 * c, name="block_0")(h, cond)
        h = SelfAttention(name="attention")(h)
        h = GBlock(c, name="block_1")(h, cond)
        h = nn.relu(ConditionalBatchNorm(name="bn_out")(h))
        return jnp.tanh(nn.Conv(c_out, (3, 3), padding="SAME", name="out")(h))


class BigGANDiscriminator(nn.Module):
    channels: int
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x, label=None):
        if self.num_classes is None and label is not None:
            raise UserError("label given but the model has no num_classes; set "
                            "model.num_classes for a conditional GAN.")
        if self.num_classes is not None and label is None:
            raise UserError(f"this conditional model (num_classes={self.num_classes}) needs "
                            "labels.")
        c = self.channels
        h = DBlock(c, first=True, name="block_0")(x)
        h = SelfAttention(spectral=True, name="attention")(h)
        h = DBlock(2 * c, name="block_1")(h)
        h = DBlock(4 * c, down=False, name="block_2")(h)
        phi = jnp.sum(nn.relu(h), axis=(1, 2))  # sum pooling
        return ProjectionHead(self.num_classes, name="head")(phi, label)


class BigGAN(TwoPlayerGAN):
    """A small BigGAN for (H, W, C) images, H and W divisible by 4 (module doc).

    Attributes:
      event_shape: (H, W, C), from the data.
      latent_dim: size of z ~ N(0, I).
      g_channels / d_channels: width c (G: 4c at H/4, 2c at H/2, c at H; D: c, 2c, 4c).
      embed_dim: size of G's shared class embedding (the conditional BNs' input).
      num_classes: class-conditional when set (conditional BN in G, projection in D).
      class_head / num_styles: the GAN interface's CAN head; BigGAN has none (False).
    """

    event_shape: Sequence[int] = (28, 28, 1)
    latent_dim: int = 64
    g_channels: int = 16
    d_channels: int = 16
    embed_dim: int = 32
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10
    # the variable collections beyond "params": non-gradient state the GAN objective keeps
    # under params[name] and refreshes with `refresh_state` after each step
    state_collections: ClassVar[tuple[str, ...]] = (SPECTRAL,)

    def setup(self):
        shape = tuple(self.event_shape)
        if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
            raise UserError(f"model.name=biggan expects (H, W, C) images with H and W "
                            f"divisible by 4; got event shape {shape}.")
        if self.class_head:
            raise UserError("model.name=biggan has no class head (CAN); set "
                            "model.class_head=False.")
        self.generator = BigGANGenerator(shape, self.g_channels, self.embed_dim,
                                         self.num_classes)
        self.discriminator = BigGANDiscriminator(self.d_channels, self.num_classes)

    @staticmethod
    def refresh_state(params):
        """The state collections after one power iteration on params' current kernels."""
        return {SPECTRAL: power_iterate_tree(params, params[SPECTRAL])}
