"""Progressive growing of GANs (Karras et al., 2018, "Progressive growing of GANs for
improved quality, stability, and variation"): ``model.name=progan``.

G and D start at a low resolution (28x28 images: 7x7) and grow by doubling (7 -> 14 ->
28); each new block is *faded in*. With ``phase_steps`` = P generator steps per phase,
the schedule of the training step s (the paper counts images shown; here steps) is

    t = s / P,  stage = min(S - 1, floor((t + 1) / 2)),
    alpha = 1 at stage 0, else clip(t - (2 stage - 1), 0, 1),

i.e. P steps at 7x7, then per new resolution P steps of fade-in (alpha 0 -> 1) and P
steps stable; the last stage stays. During a fade G's output at the new resolution r is

    (1 - alpha) * upsample(toRGB_{r/2}(h_{r/2})) + alpha * toRGB_r(block_r(upsample(h_{r/2}))),

and D's input is read at both resolutions the same way:

    (1 - alpha) * fromRGB_{r/2}(pool(x)) + alpha * block_r(fromRGB_r(x)).

The real images fade in too (the paper's Appendix A.1): D's first operation blends its
input at r with its 2x-pooled-and-upsampled copy, x' = alpha x + (1 - alpha) up(pool(x)),
for real and fake alike, so both go through the same map.

The stage and alpha are traced scalars: the whole growth runs in ONE compiled program (no
recompilation, no resharding: every parameter exists from the start with its final shape).
Every level runs at every step and `level_weights` says how much each counts (zero for the
levels not grown yet, which therefore get zero gradients). The alternative, a `lax.switch`
that runs only the current stage's levels, was measured on XLA:CPU at 41.8 s per G + D
gradient against 0.75 s for the same stage without the conditional (batch 64, 2 shared
cores): the CPU backend loses its convolution fast paths inside conditionals. So this model
does not buy the paper's speed-up at low resolution; it keeps the paper's training
dynamics (growth, fade-ins) at the cost of full-resolution steps throughout.
G's output and D's input are always full resolution (H, W, C): G's level-r image is
upsampled (nearest), D average-pools its input to each level, which inverts the nearest
upsampling exactly, so samples, FD and pictures need no special case.

The paper's other three pieces:

* equalised learning rate: every weight is drawn from N(0, 1) and scaled at run time by
  He's constant c = gain / sqrt(fan_in) (gain sqrt(2); 1 for toRGB and D's output), so
  Adam's per-parameter step sizes act on the same dynamic range for every layer;
* pixel norm in G after every convolution (and on z):
  b = a / sqrt(mean_c a_c^2 + 1e-8), per pixel over channels;
* minibatch standard deviation at the start of D's last block: the std over a group of
  `mbstd_group` examples of every feature at every position, averaged into one number per
  group, appended as a constant feature map (group members are strided: rows i, i + B/g, ...).

D's last block: conv 3x3, conv over the whole 7x7 map (the paper's 4x4 "valid" conv at
4x4) as a dense layer, and a linear output. Unconditional; G's output is linear (no tanh),
as in the paper. The step counter is the objective's non-gradient state (the GAN family
keeps it in params["growth"] and passes it as `step`), so a resume lands mid-fade exactly.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from jaxgen.kernel.errors import UserError

__all__ = ["ProGAN", "growth_schedule", "pixel_norm", "minibatch_stddev",
           "EqualizedDense", "EqualizedConv"]

_LEAK = 0.2


def growth_schedule(step, phase_steps: int, num_stages: int):
    """(stage, alpha) of training step `step` (module doc): int32 and float32 scalars."""
    t = jnp.asarray(step, jnp.float32) / float(phase_steps)
    stage = jnp.minimum(num_stages - 1, jnp.floor((t + 1.0) / 2.0)).astype(jnp.int32)
    alpha = jnp.where(stage == 0, 1.0, jnp.clip(t - (2.0 * stage - 1.0), 0.0, 1.0))
    return stage, alpha.astype(jnp.float32)


def _float32(a):
    """a in float32 at least (bfloat16 activations: the statistics in float32)."""
    return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def pixel_norm(a, eps: float = 1e-8):
    """a / sqrt(mean over channels of a^2 + eps), per pixel (per example for vectors);
    computed and returned in float32 (or wider) whatever a's dtype."""
    a = _float32(a)
    return a * lax.rsqrt(jnp.mean(jnp.square(a), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x, group_size: int = 4):
    """x (B, H, W, C) -> (B, H, W, C + 1): the group's mean feature std as a new channel.

    Groups of g examples, g the largest divisor of B not above `group_size` (the paper's
    min(4, B) when B divides by it, as training batches do; any B works, e.g. a last partial
    batch)."""
    b = x.shape[0]
    g = next(d for d in range(min(group_size, b), 0, -1) if b % d == 0)
    y = _float32(x).reshape(g, b // g, *x.shape[1:])  # the statistics in float32
    std = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)            # (B/g, H, W, C)
    s = jnp.mean(std, axis=(1, 2, 3))                     # (B/g,)
    s = jnp.tile(s, g)                                    # row i -> group i mod B/g
    return jnp.concatenate([x, jnp.broadcast_to(s[:, None, None, None],
                                                (*x.shape[:3], 1)).astype(x.dtype)], -1)


def _he(fan_in: int, gain: float) -> float:
    return gain / math.sqrt(fan_in)


def _compute(x, dtype):
    """x in the layer's compute dtype (`dtype`; None: x's own)."""
    return x if dtype is None else x.astype(dtype)


class EqualizedDense(nn.Module):
    """Dense layer with an N(0, 1) kernel scaled at run time by gain / sqrt(fan_in).

    dtype: the matmul's dtype (None: the input's); the kernel is scaled in float32 first.
    Set by `jaxgen.nn.precision` under `train.compute_dtype`; params stay float32."""

    features: int
    gain: float = math.sqrt(2.0)
    dtype: Any = None

    honours_compute_dtype: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", nn.initializers.normal(1.0), (x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        w = w * _he(x.shape[-1], self.gain)
        x = _compute(x, self.dtype)
        return x @ w.astype(x.dtype) + b.astype(x.dtype)


class EqualizedConv(nn.Module):
    """k x k stride-1 SAME convolution with the run-time He scale of EqualizedDense
    (dtype: as EqualizedDense's)."""

    features: int
    kernel_size: int = 3
    gain: float = math.sqrt(2.0)
    dtype: Any = None

    honours_compute_dtype: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x):
        k, c = self.kernel_size, x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0), (k, k, c, self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        x = _compute(x, self.dtype)
        y = lax.conv_general_dilated(x, (w * _he(k * k * c, self.gain)).astype(x.dtype),
                                     (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + b.astype(x.dtype)


def upsample(x, factor: int):
    """Nearest-neighbour upsampling of (B, H, W, C) by an integer factor."""
    if factor == 1:
        return x
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downsample(x, factor: int):
    """Average pooling of (B, H, W, C) over factor x factor blocks (inverts `upsample`)."""
    if factor == 1:
        return x
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def _act(x):
    return nn.leaky_relu(x, _LEAK)


class _GBlock(nn.Module):
    """G's block at one resolution: (upsample x2 unless first) two 3x3 convs with pixel norm."""

    features: int
    first: bool

    @nn.compact
    def __call__(self, h):
        if not self.first:
            h = upsample(h, 2)
        h = pixel_norm(_act(EqualizedConv(self.features, name="conv_0")(h)))
        return pixel_norm(_act(EqualizedConv(self.features, name="conv_1")(h)))


class _DBlock(nn.Module):
    """D's block at one resolution: two 3x3 convs, then 2x average pooling."""

    features: int
    out_features: int

    @nn.compact
    def __call__(self, h):
        h = _act(EqualizedConv(self.features, name="conv_0")(h))
        h = _act(EqualizedConv(self.out_features, name="conv_1")(h))
        return downsample(h, 2)


def level_weights(stage, alpha, num_stages: int):
    """How each resolution level counts at (stage, alpha), as (S,) float32 arrays:

    out: G's output image is sum_L out_L * upsample(toRGB_L(h_L)): alpha at L = stage,
      1 - alpha at L = stage - 1 (1 at stage 0), else 0.
    deep: D's features at level L are deep_L * block_{L+1}(h_{L+1}) + (1 - deep_L) *
      fromRGB_L(x_L): 1 below stage - 1, alpha at stage - 1, 0 from stage on.
    sharp: D reads level L's input as sharp_L * x_L + (1 - sharp_L) * up(x_{L-1}): alpha at
      L = stage (the reals' fade-in), else 1.
    """
    levels = jnp.arange(num_stages)
    out = jnp.where(levels == stage, alpha, jnp.where(levels == stage - 1, 1.0 - alpha, 0.0))
    deep = jnp.where(levels < stage - 1, 1.0, jnp.where(levels == stage - 1, alpha, 0.0))
    sharp = jnp.where(levels == stage, alpha, 1.0)
    return out.astype(jnp.float32), deep.astype(jnp.float32), sharp.astype(jnp.float32)


class ProGANGenerator(nn.Module):
    base: Sequence[int]          # (H0, W0) of stage 0
    channels: Sequence[int]      # width per stage
    out_channels: int

    @nn.compact
    def __call__(self, z, stage, alpha):
        s = len(self.channels)
        (h0, w0), c0 = self.base, self.channels[0]
        out_w, _, _ = level_weights(stage, alpha, s)
        h = pixel_norm(z)
        h = EqualizedDense(h0 * w0 * c0, gain=math.sqrt(2.0) / 4.0,  # the paper's code's gain
                           name="project")(h)
        h = pixel_norm(_act(h).reshape(z.shape[0], h0, w0, c0))
        img = 0.0
        for i, c in enumerate(self.channels):
            h = _GBlock(c, first=(i == 0), name=f"block_{i}")(h)
            rgb = EqualizedConv(self.out_channels, 1, gain=1.0, name=f"to_rgb_{i}")(h)
            img = img + out_w[i] * upsample(rgb, 2 ** (s - 1 - i))
        return img


class ProGANDiscriminator(nn.Module):
    channels: Sequence[int]
    mbstd_group: int = 4

    @nn.compact
    def __call__(self, x, stage, alpha):
        s = len(self.channels)
        _, deep, sharp = level_weights(stage, alpha, s)
        xs = [x]                                  # xs[L]: the input at level L's resolution
        for _ in range(s - 1):
            xs.insert(0, downsample(xs[0], 2))
        h = None
        for i in range(s - 1, -1, -1):
            xi = xs[i] if i == 0 else sharp[i] * xs[i] + (1.0 - sharp[i]) * upsample(xs[i - 1], 2)
            fresh = _act(EqualizedConv(self.channels[i], 1, name=f"from_rgb_{i}")(xi))
            h = fresh if h is None else deep[i] * h + (1.0 - deep[i]) * fresh
            if i > 0:
                h = _DBlock(self.channels[i], self.channels[i - 1], name=f"block_{i}")(h)
        h = minibatch_stddev(h, self.mbstd_group)
        h = _act(EqualizedConv(self.channels[0], name="final_conv")(h))
        h = _act(EqualizedDense(self.channels[0], name="final_dense")(h.reshape(h.shape[0], -1)))
        return EqualizedDense(1, gain=1.0, name="out")(h)[:, 0]


class ProGAN(nn.Module):
    """Progressive GAN for (H, W, C) images; stage 0 is (H, W) / 2^(S-1), S = len(g_channels).

    Attributes:
      event_shape: (H, W, C), from the data.
      latent_dim: size of z ~ N(0, I).
      g_channels / d_channels: widths per stage, lowest resolution first (equal lengths:
        the number of stages S; 28x28 with S = 3 grows 7 -> 14 -> 28).
      phase_steps: steps of each phase (stable / fade-in), the schedule of the module doc.
      mbstd_group: largest group of the minibatch-stddev layer (groups of the largest divisor
        of the batch not above it).
      num_classes / class_head / num_styles: unsupported (unconditional, one head); present
        so the GAN family's checks read them.
    """

    event_shape: Sequence[int] = (28, 28, 1)
    latent_dim: int = 128
    g_channels: Sequence[int] = (64, 32, 16)
    d_channels: Sequence[int] = (64, 32, 16)
    phase_steps: int = 1000
    mbstd_group: int = 4
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10

    grows: ClassVar[bool] = True  # the GAN family keeps a step counter and passes `step`

    def setup(self):
        shape = tuple(self.event_shape)
        s = len(self.g_channels)
        if len(self.d_channels) != s:
            raise UserError(f"model.g_channels has {s} stages but model.d_channels has "
                            f"{len(self.d_channels)}; give both one width per resolution.")
        f = 2 ** (s - 1)
        if len(shape) != 3 or shape[0] % f or shape[1] % f:
            raise UserError(f"model.name=progan with {s} stages needs (H, W, C) images with H "
                            f"and W divisible by {f}; got event shape {shape}.")
        if self.num_classes is not None or self.class_head:
            raise UserError("model.name=progan is unconditional; unset model.num_classes and "
                            "model.class_head (or use model.name=dcgan).")
        if self.phase_steps < 1:
            raise UserError(f"model.phase_steps must be >= 1, got {self.phase_steps}.")
        self.generator = ProGANGenerator((shape[0] // f, shape[1] // f),
                                         tuple(self.g_channels), shape[2])
        self.discriminator = ProGANDiscriminator(tuple(self.d_channels), self.mbstd_group)

    def schedule(self, step):
        """(stage, alpha) at training step `step`."""
        return growth_schedule(step, self.phase_steps, len(self.g_channels))

    def resolution(self, stage):
        """Side length (H) of the images at `stage`."""
        return self.event_shape[0] // 2 ** (len(self.g_channels) - 1) * 2 ** stage

    def generate(self, z, label=None, step=None):
        if label is not None:
            raise UserError("model.name=progan is unconditional; drop the labels.")
        return self.generator(z, *self._at(step))

    def discriminate(self, x, label=None, step=None):
        return self.discriminator(x, *self._at(step))

    def _at(self, step):
        if step is None:  # the grown model
            return jnp.int32(len(self.g_channels) - 1), jnp.float32(1.0)
        return self.schedule(step)

    def __call__(self, z, label=None, step=None):
        return self.discriminate(self.generate(z, label, step), label, step)
