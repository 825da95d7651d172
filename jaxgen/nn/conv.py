"""A transposed convolution computed as s x s ordinary convolutions (sub-pixel form).

`lax.conv_transpose` with stride s is a convolution of the input dilated by s
(s - 1 zeros between pixels). XLA:CPU has no fast kernel for input-dilated
convolutions: it emits a plain loop nest, and the gradient of the kernel of a
4x4 stride-2 layer (DCGAN's 7x7x128 -> 14x14x64) is far slower than the forward pass.

The same map without any dilation: output pixel n = s*m + r (r the phase)
only meets the kernel taps t = t0(r), t0(r) + s, ... (those that land on a real
input pixel), so

    y[s*m + r] = sum_u k[t0(r) + s*u] . x[m + u + c(r)],

an ordinary stride-1 convolution of x with the sub-kernel k[t0(r)::s]; the s^2
phase outputs (2-D) are then interleaved. Every tap does useful work and the
gradients are ordinary convolution gradients. With very few output channels the s^2 thin
convolutions cost more than they save, so layers with fewer than MIN_FEATURES
outputs keep Flax's form. `ConvTranspose` is Flax's layer (same params, names,
shapes and init, so checkpoints are interchangeable) with this `__call__` for
2-D, strided, undilated, unmasked inputs; anything else is Flax's.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

MIN_FEATURES = 8


def transpose_padding(k: int, s: int, padding) -> tuple[int, int]:
    """Padding of the dilated input that `lax.conv_transpose` uses for one dimension."""
    if padding == "SAME":
        total = k + s - 2
        before = k - 1 if s > k - 1 else math.ceil(total / 2)
    elif padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        before = k - 1
    else:
        return tuple(padding)
    return before, total - before


def _phase(k: int, s: int, pad_before: int, r: int) -> tuple[int, int]:
    """First kernel tap of output phase r, and the input offset of its first tap."""
    t0 = (pad_before - r) % s
    return t0, (r + t0 - pad_before) // s


def conv_transpose_subpixel(x, kernel, strides, pads):
    """`lax.conv_transpose(x, kernel, strides, pads)` (NHWC, HWIO, pads on the dilated
    input, no kernel flip) as strides[0] * strides[1] stride-1 convolutions."""
    (sh, sw), (kh, kw) = strides, kernel.shape[:2]
    _, h, w, _ = x.shape
    out_h = (h - 1) * sh + 1 + sum(pads[0]) - kh + 1
    out_w = (w - 1) * sw + 1 + sum(pads[1]) - kw + 1
    mh, mw = -(-out_h // sh), -(-out_w // sw)  # phase outputs, padded to equal size
    rows = []
    for rh in range(sh):
        th, ch = _phase(kh, sh, pads[0][0], rh)
        cols = []
        for rw in range(sw):
            tw, cw = _phase(kw, sw, pads[1][0], rw)
            sub = kernel[th::sh, tw::sw]
            if sub.shape[0] == 0 or sub.shape[1] == 0:  # no tap reaches this phase
                cols.append(jnp.zeros((x.shape[0], mh, mw, kernel.shape[-1]), x.dtype))
                continue
            # y_r[m] = sum_u sub[u] x[m + u + c] for m < mh: x padded by -c before, to fit after.
            # Negative padding is done by slicing: with negative padding, the float32 kernel
            # gradient came out wrong on XLA:CPU (jax 0.10.2; float64 and finite differences
            # agreed with each other, not with it).
            xs, pads_hw = x, []
            for axis, c, m, k, n in ((1, ch, mh, sub.shape[0], h), (2, cw, mw, sub.shape[1], w)):
                lo, hi = -c, m - 1 + k - 1 + c - (n - 1)
                xs = lax.slice_in_dim(xs, max(-lo, 0), n - max(-hi, 0), axis=axis)
                pads_hw.append((max(lo, 0), max(hi, 0)))
            cols.append(lax.conv_general_dilated(xs, sub, (1, 1), pads_hw,
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")))
        rows.append(jnp.stack(cols, axis=3))  # (B, mh, mw, sw, C)
    y = jnp.stack(rows, axis=2)  # (B, mh, sh, mw, sw, C)
    y = y.reshape(x.shape[0], mh * sh, mw * sw, kernel.shape[-1])
    return y[:, :out_h, :out_w]


class ConvTranspose(nn.ConvTranspose):
    """Flax's ConvTranspose (same params), computed in sub-pixel form where it applies."""

    @nn.compact
    def __call__(self, inputs):
        kernel_size = ((self.kernel_size,) * 2 if isinstance(self.kernel_size, int)
                       else tuple(self.kernel_size))
        strides = self.strides or 1
        strides = (strides,) * len(kernel_size) if isinstance(strides, int) else tuple(strides)
        dilation = self.kernel_dilation or 1
        plain = (len(kernel_size) == 2 and inputs.ndim == 4 and self.mask is None
                 and not self.transpose_kernel and self.padding != "CIRCULAR"
                 and dilation in (1, (1, 1)) and strides != (1, 1)
                 and self.features >= MIN_FEATURES)
        if not plain:
            return super().__call__(inputs)
        kernel = self.param("kernel", self.kernel_init,
                            kernel_size + (inputs.shape[-1], self.features), self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        padding = self.padding
        if isinstance(padding, str):
            pads = [transpose_padding(k, s, padding.upper()) for k, s in zip(kernel_size, strides)]
        else:
            pads = [(p, p) if isinstance(p, int) else tuple(p) for p in
                    ((padding,) * 2 if isinstance(padding, int) else padding)]
        y = conv_transpose_subpixel(inputs, kernel, strides, pads)
        if bias is not None:
            y = y + bias
        return y
