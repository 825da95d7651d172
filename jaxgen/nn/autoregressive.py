"""Autoregressive networks: p(x) = Π_i p(x_i | x_<i), one output per position.

Every module maps a batch of examples `x` (B, *event_shape) to per-position
outputs (B, D, num_outputs), D = prod(event_shape), in raster order, where
**output i depends only on inputs j < i** (the "next-element" form): output i
parameterises p(x_i | x_<i) (logits over `num_outputs` bins, or the (mean,
log-scale) of a Gaussian for real-valued sequences; `num_outputs` is set by
the objective). How each one is causal:

* :class:`FiniteMemoryMLP` (``model.name=ar_mlp``): the lecture's finite memory
  p(x_i | x_{i−k}, …, x_{i−1}): an MLP over a window of the last k = ``context``
  inputs, plus a learned embedding of the position i (θ_d depends on d, not on
  x_d). Causal by construction: the window of position i is x_{i−k..i−1}.
* :class:`RNN` (``model.name=ar_rnn``): h_i = f_θ(h_{i−1}, x_{i−1}), output
  g_θ(h_i) (GRU or LSTM cells of flax.linen, stacked).
* :class:`WaveNet` (``model.name=wavenet``): 1-D dilated causal convolutions
  (left padding only), residual and skip connections, gated tanh·sigmoid units
  (van den Oord et al., 2016a).
* :class:`PixelCNN` (``model.name=pixelcnn``): 2-D, raster order, for (H, W, 1)
  images, and (plain only) for colour images (H, W, C), the sub-pixels in the order
  R → G → B within each pixel. ``gated=False``: masked convolutions (van den Oord et
  al., 2016b), mask A (centre excluded) on the first 7x7 layer, mask B (centre included)
  after, ReLU residual blocks (the 3x3 convolution alone, or the paper's Fig. 5 block
  1x1 → 3x3 → 1x1, ``block``). With C > 1 colours every layer's feature maps are split
  into C groups (contiguous thirds for RGB) and at the centre of a kernel group g reads
  the input groups < g (mask A) or ≤ g (mask B), the 1x1 layers of the blocks and of the
  output head too (their "mask B"): output group g (the 256-way logits of colour g) then
  sees the colours < g of its own pixel and every pixel before it (the paper's Sec. 3.4,
  Fig. 4). ``gated=True``: the two-stack *gated* PixelCNN
  of van den Oord et al. (2016c), vertical and horizontal stacks with
  tanh·sigmoid gates and the vertical-to-horizontal link, written with shifts
  instead of masks (as PixelCNN++ does): the vertical stack is fed the image
  shifted down one row (so it sees only rows above), the horizontal stack the
  image shifted right one column (so it sees only pixels to the left); no blind
  spot.
* :class:`CausalTransformer` (``model.name=ar_transformer``): pre-LN blocks with
  the lecture's mask softmax(QKᵀ/√d_k + M) V, M_ij = 0 for i ≥ j, −∞ for j > i;
  learned or sinusoidal positions.

The sequence models (all but PixelCNN) flatten images in raster order and are
*shifted internally*: position i reads the features [x_{i−1}, 1] (and [0, 0]
at i = 0, a start token the zero padding of the convolutions also produces),
and every layer after that may look at positions ≤ i. PixelCNN uses mask A
(plain) or shifted stacks (gated) instead. `tests/test_autoregressive.py`
checks ∂ output_i / ∂ x_j = 0 for j ≥ i for every model.

Incremental decoding (for sampling and coding one element at a time): every
model has ``incremental = True`` and

    state = model.initial_state(batch_size, length, shape)   # zeros, no params needed
    state, out_i = model.apply(v, state, x_prev, i, method=model.step)

where x_prev (B,) is x_{i−1} (ignored at i = 0), out_i (B, num_outputs)
equals model(x)[:, i], and `shape` is the event shape (only PixelCNN uses it,
for the image width; without it a square image is assumed). The state is: the
window of the last k inputs (MLP), the RNN carry, one queue per dilated layer
(WaveNet, "fast WaveNet": the last (kernel−1)·dilation inputs of each layer),
the KV cache (Transformer: keys and values of every layer at every position,
(layers, B, heads, length, d_head)), per-layer rings of the last image rows
(PixelCNN, "fast PixelCNN": each layer's activation at pixel i from a small
patch of the layer below; the gated one computes its vertical stack a row at a
time, see `PixelCNN`). Each step then costs O(1) in the length (MLP, RNN,
WaveNet, PixelCNN) or O(length) (Transformer: one query against the
fixed-size cache, the positions > i masked) instead of a full pass over the
sequence. The cache is kept heads-major so the per-step attention needs no
transpose of it (2.4x faster sampling on a CPU).

Networks only: the likelihoods and samplers live in
`jaxgen.families.autoregressive.objective`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.errors import UserError
from jaxgen.nn.embeddings import sinusoidal_embedding

__all__ = ["FiniteMemoryMLP", "RNN", "WaveNet", "PixelCNN", "CausalTransformer",
           "MaskedConv2D", "raster_mask", "causal_attention", "shift_right", "AR_MODELS"]


# ------------------------------------------------------------------ helpers
def shift_right(x):
    """(B, L) -> (B, L, 2): position i holds [x_{i−1}, 1], position 0 holds [0, 0].

    The second feature tells a real x_{i−1} = 0 from the start (and from the
    zero padding of a causal convolution).
    """
    feats = jnp.stack([x, jnp.ones_like(x)], -1)
    return jnp.pad(feats, ((0, 0), (1, 0), (0, 0)))[:, :x.shape[1]]


def _prev_features(x_prev, i):
    """The step form of `shift_right`: x_prev (B,) = x_{i−1} -> (B, 2), zeros at i = 0."""
    valid = (jnp.asarray(i) > 0).astype(x_prev.dtype)
    return jnp.stack([x_prev * valid, jnp.broadcast_to(valid, x_prev.shape)], -1)


def _flat(x):
    return x.reshape(x.shape[0], -1)


def _check_length(length: int, max_len: int, name: str):
    if length > max_len:
        raise UserError(f"{name}: sequence length {length} exceeds model.max_len={max_len} "
                         "(the registry sets it to the data's dimension).")


# ------------------------------------------------------- finite-memory MLP
class FiniteMemoryMLP(nn.Module):
    """p(x_i | x_{i−k}, …, x_{i−1}): an MLP over the last k = `context` inputs.

    Position i sees the window [f_{i−k+1}, …, f_i] of shifted features (f_i =
    [x_{i−1}, 1]; zeros before the start), flattened to 2k numbers, plus (with
    `positional`) a learned embedding of i added after the first layer.
    """

    context: int = 2
    features: Sequence[int] = (256, 256)
    num_outputs: int = 256
    max_len: int = 1024
    positional: bool = True

    incremental = True

    def setup(self):
        self.layers = [nn.Dense(w, name=f"dense_{j}") for j, w in enumerate(self.features)]
        self.out = nn.Dense(self.num_outputs, name="out")
        if self.positional:
            self.pos = self.param("pos", nn.initializers.normal(0.02),
                                  (self.max_len, tuple(self.features)[0]))

    def _head(self, window, idx):
        h = self.layers[0](window)
        if self.positional:
            h = h + self.pos[idx]
        h = nn.silu(h)
        for layer in self.layers[1:]:
            h = nn.silu(layer(h))
        return self.out(h)

    def __call__(self, x):
        f = shift_right(_flat(x))
        length, k = f.shape[1], self.context
        _check_length(length, self.max_len, "FiniteMemoryMLP")
        fp = jnp.pad(f, ((0, 0), (k - 1, 0), (0, 0)))
        window = jnp.concatenate([fp[:, j:j + length] for j in range(k)], -1)  # oldest first
        return self._head(window, jnp.arange(length))

    def initial_state(self, batch_size: int, length: int | None = None, shape=None):
        del length, shape
        return jnp.zeros((batch_size, self.context, 2), jnp.float32)

    def step(self, state, x_prev, i):
        window = jnp.concatenate([state[:, 1:], _prev_features(x_prev, i)[:, None]], 1)
        return window, self._head(window.reshape(window.shape[0], -1), i)


# ---------------------------------------------------------------------- RNN
class _RNNCore(nn.Module):
    """One time step of the stacked cells and the output layer."""

    hidden: int
    num_layers: int
    cell: str
    num_outputs: int

    @nn.compact
    def __call__(self, carry, feat):
        h = feat
        new = []
        for j in range(self.num_layers):
            if self.cell == "gru":
                c = nn.GRUCell(self.hidden, name=f"cell_{j}")
            else:
                c = nn.OptimizedLSTMCell(self.hidden, name=f"cell_{j}")
            cj, h = c(carry[j], h)
            new.append(cj)
        return tuple(new), nn.Dense(self.num_outputs, name="out")(h)


class RNN(nn.Module):
    """h_i = RNN(h_{i−1}, x_{i−1}), p(x_i | x_<i) = p(x_i | h_i) (the lecture's slide).

    `cell`: "gru" or "lstm"; `num_layers` stacked cells of width `hidden`.
    Training runs the cell over the sequence with `nn.scan`; `step` is one
    call of the same cell on the carried state.
    """

    hidden: int = 256
    num_layers: int = 1
    cell: str = "gru"
    num_outputs: int = 256

    incremental = True

    def setup(self):
        if self.cell not in ("gru", "lstm"):
            raise UserError(f"model.cell must be gru or lstm, got {self.cell!r}.")
        self.core = _RNNCore(self.hidden, self.num_layers, self.cell, self.num_outputs)

    def initial_state(self, batch_size: int, length: int | None = None, shape=None):
        del length, shape
        z = jnp.zeros((batch_size, self.hidden), jnp.float32)
        return tuple(z if self.cell == "gru" else (z, z) for _ in range(self.num_layers))

    def __call__(self, x):
        f = shift_right(_flat(x))
        scan = nn.scan(lambda m, c, xs: m(c, xs), variable_broadcast="params",
                       split_rngs={"params": False}, in_axes=1, out_axes=1)
        _, out = scan(self.core, self.initial_state(f.shape[0]), f)
        return out

    def step(self, state, x_prev, i):
        return self.core(state, _prev_features(x_prev, i))


# ------------------------------------------------------------------ WaveNet
class WaveNet(nn.Module):
    """Stacked dilated causal 1-D convolutions (van den Oord et al., 2016a).

    An input causal convolution (kernel `kernel_size`) of the shifted features,
    then one residual block per entry of `dilations`:
        z = tanh(W_f ∗_d h) · σ(W_g ∗_d h),   h ← h + W_r z,   skip += W_s z
    (∗_d: causal convolution with dilation d, left padding (kernel−1)·d), and
    the head relu → 1x1 → relu → 1x1 on the sum of the skips. Receptive field:
    x_{i−R−1} … x_{i−1} with R = (kernel − 1)·(1 + Σ dilations).
    """

    channels: int = 64
    skip_channels: int = 64
    kernel_size: int = 2
    dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    num_outputs: int = 256

    incremental = True

    def setup(self):
        k = self.kernel_size
        self.inp = nn.Conv(self.channels, (k,), padding="VALID", name="inp")
        self.gates = [nn.Conv(2 * self.channels, (k,), kernel_dilation=(d,), padding="VALID",
                              name=f"gate_{j}") for j, d in enumerate(self.dilations)]
        self.res = [nn.Dense(self.channels, name=f"res_{j}") for j in range(len(self.dilations))]
        self.skip = [nn.Dense(self.skip_channels, name=f"skip_{j}")
                     for j in range(len(self.dilations))]
        self.head1 = nn.Dense(self.skip_channels, name="head1")
        self.head2 = nn.Dense(self.num_outputs, name="head2")

    @property
    def receptive_field(self) -> int:
        """R: output i sees x_{i−R−1} … x_{i−1}."""
        return (self.kernel_size - 1) * (1 + sum(self.dilations))

    def _causal(self, conv, h, dilation: int):
        return conv(jnp.pad(h, ((0, 0), ((self.kernel_size - 1) * dilation, 0), (0, 0))))

    def _block(self, j, conv_out, h):
        f, g = jnp.split(conv_out, 2, -1)
        z = jnp.tanh(f) * nn.sigmoid(g)
        return h + self.res[j](z), self.skip[j](z)

    def _head(self, skips):
        return self.head2(nn.relu(self.head1(nn.relu(skips))))

    def __call__(self, x):
        h = self._causal(self.inp, shift_right(_flat(x)), 1)
        skips = 0.0
        for j, d in enumerate(self.dilations):
            h, s = self._block(j, self._causal(self.gates[j], h, d), h)
            skips = skips + s
        return self._head(skips)

    def initial_state(self, batch_size: int, length: int | None = None, shape=None):
        del length, shape
        k = self.kernel_size
        return ([jnp.zeros((batch_size, k - 1, 2), jnp.float32)]
                + [jnp.zeros((batch_size, (k - 1) * d, self.channels), jnp.float32)
                   for d in self.dilations])

    def step(self, state, x_prev, i):
        window = jnp.concatenate([state[0], _prev_features(x_prev, i)[:, None]], 1)
        new = [window[:, 1:]]
        h = self.inp(window)  # (B, 1, C): the VALID conv of the last `kernel` inputs
        skips = 0.0
        for j in range(len(self.dilations)):
            window = jnp.concatenate([state[j + 1], h], 1)
            new.append(window[:, 1:])
            h, s = self._block(j, self.gates[j](window), h)
            skips = skips + s
        return new, self._head(skips)[:, 0]


# ----------------------------------------------------------------- PixelCNN
def raster_mask(kh: int, kw: int, mask_type: str) -> np.ndarray:
    """(kh, kw) 0/1 mask of a raster-order masked convolution.

    Rows above the centre are kept, the centre row left of the centre is kept,
    the centre itself only for mask "B"; everything after is zeroed.
    """
    if mask_type not in ("A", "B"):
        raise UserError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
    m = np.ones((kh, kw), np.float32)
    cy, cx = kh // 2, kw // 2
    m[cy, cx + (mask_type == "B"):] = 0.0
    m[cy + 1:] = 0.0
    return m


def channel_groups(n: int, colors: int) -> np.ndarray:
    """The colour group (0 … colors − 1) of each of n feature maps: contiguous blocks."""
    return (np.arange(n) * colors) // n


def colour_mask(kh: int, kw: int, in_groups, out_groups, mask_type: str) -> np.ndarray:
    """(kh, kw, C_in, C_out) 0/1 mask of a raster-and-colour masked convolution: the
    positions before the centre (`raster_mask`'s) are kept for every pair of channels;
    at the centre output group g reads input groups < g (mask "A") or ≤ g (mask "B").
    With one group this is `raster_mask` for every pair of channels."""
    spatial = raster_mask(kh, kw, "A")[:, :, None, None]
    gi = np.asarray(in_groups)[:, None]
    go = np.asarray(out_groups)[None, :]
    centre = (gi < go) if mask_type == "A" else (gi <= go)
    m = np.broadcast_to(spatial, (kh, kw, gi.shape[0], go.shape[1])).copy()
    m[kh // 2, kw // 2] = centre.astype(np.float32)
    return m


class MaskedConv2D(nn.Module):
    """A 'SAME' 2-D convolution whose kernel is multiplied by `raster_mask` (NHWC), or with
    `colors` > 1 by `colour_mask` (`in_groups`: the colour group of each input channel,
    None: contiguous blocks).

    dtype: the convolution's dtype (None: as before, the input's and the kernel's); set by
    `jaxgen.nn.precision` under `train.compute_dtype`, the params stay float32."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    mask_type: str = "B"
    dtype: Any = None
    colors: int = 1
    in_groups: Sequence[int] | None = None

    honours_compute_dtype: ClassVar[bool] = True

    def mask(self, c_in: int) -> np.ndarray:
        """The 0/1 mask, broadcastable to the kernel (kh, kw, C_in, features)."""
        kh, kw = self.kernel_size
        if self.colors == 1:
            return raster_mask(kh, kw, self.mask_type)[:, :, None, None]
        groups = (channel_groups(c_in, self.colors) if self.in_groups is None
                  else self.in_groups)
        return colour_mask(kh, kw, groups, channel_groups(self.features, self.colors),
                           self.mask_type)

    @nn.compact
    def __call__(self, x):
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        kernel = kernel * jnp.asarray(self.mask(x.shape[-1]))
        if self.dtype is not None:
            x, kernel, bias = x.astype(self.dtype), kernel.astype(self.dtype), \
                bias.astype(self.dtype)
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias


def pointwise_mask(c_in: int, c_out: int, colors: int) -> np.ndarray:
    """(C_in, C_out) mask of a 1x1 layer between colour-grouped features: output group g
    reads input groups ≤ g (a 1x1 mask-B convolution); all ones for one colour."""
    return colour_mask(1, 1, channel_groups(c_in, colors), channel_groups(c_out, colors),
                       "B")[0, 0]


class _MaskedDense(nn.Module):
    """A 1x1 layer over colour-grouped features ("kernel" (C_in, features), "bias", as
    `nn.Dense`'s) masked by `pointwise_mask`."""

    features: int
    colors: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        mask = pointwise_mask(x.shape[-1], self.features, self.colors)
        return x @ (kernel * jnp.asarray(mask)) + bias


def _pointwise(features: int, colors: int, name: str) -> nn.Module:
    """A 1x1 layer: `nn.Dense` for one colour, `_MaskedDense` for several."""
    if colors == 1:
        return nn.Dense(features, name=name)
    return _MaskedDense(features, colors, name=name)


def _down_shift(x):
    """Row r <- row r − 1 (zeros in row 0)."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def _right_shift(x):
    """Column c <- column c − 1 (zeros in column 0)."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


def _gate(a):
    """The gated unit tanh(a) · σ(b) of the two halves of the channels."""
    a, b = jnp.split(a, 2, -1)
    return jnp.tanh(a) * nn.sigmoid(b)


class _GatedLayer(nn.Module):
    """One layer of the two-stack gated PixelCNN (van den Oord et al., 2016c, fig. 2).

    v: vertical stack, at row r a function of image rows < r only. Its
    convolution has a (k//2 + 1, k) kernel over rows r − k//2 … r (top padding),
    so that property is kept. h: horizontal stack, at (r, c) a function of
    pixels strictly before (r, c) in raster order; a (1, k//2 + 1) kernel over
    columns c − k//2 … c (left padding), plus a 1x1 of the vertical features
    at (r, c) (the link). Gates: tanh(a) · σ(b). Residual on h after layer 0.
    """

    channels: int
    kernel: int
    residual: bool

    @nn.compact
    def __call__(self, v, h):
        k, p = self.kernel, self.channels
        kv = k // 2 + 1
        v_in = jnp.pad(v, ((0, 0), (kv - 1, 0), (k // 2, k // 2), (0, 0)))
        v_conv = nn.Conv(2 * p, (kv, k), padding="VALID", name="v_conv")(v_in)
        h_in = jnp.pad(h, ((0, 0), (0, 0), (k // 2, 0), (0, 0)))
        h_conv = (nn.Conv(2 * p, (1, k // 2 + 1), padding="VALID", name="h_conv")(h_in)
                  + nn.Dense(2 * p, name="v_to_h")(v_conv))
        h_out = nn.Dense(p, name="h_out")(_gate(h_conv))
        return _gate(v_conv), (h + h_out if self.residual else h_out)


def _dense(p, x):
    """An `nn.Dense` from its params {"kernel", "bias"}."""
    return x @ p["kernel"] + p["bias"]


def _ring_rows(buf, first, n: int):
    """Rows first … first + n − 1 of a ring buffer of image rows (B, R, cols, C), row r in
    slot r mod R (rows before the image: slots never written, zeros)."""
    return jnp.take(buf, (first + jnp.arange(n)) % buf.shape[1], axis=1)


def _put(buf, value, row, col, channel=0):
    """buf (B, R, cols, C)[:, row mod R, col, channel:channel + n] <- value (B, n)."""
    return jax.lax.dynamic_update_slice(buf, value[:, None, None].astype(buf.dtype),
                                        (0, row % buf.shape[1], col, channel))


_XPAD = 4  # columns of zero padding either side of the input ring (the 7-wide kernels' 3,
#            and the gated horizontal stack's 4: it reads x at columns c − 4 … c − 1)


PIXELCNN_BLOCKS = ("plain", "bottleneck")  # PixelCNN's model.block


class PixelCNN(nn.Module):
    """PixelCNN over (H, W, C) images in raster order, the C colours of a pixel one after
    the other; outputs (B, H·W·C, num_outputs). C > 1: plain only (module doc).

    The network reads [x, 1] (the constant channel marks the image border for
    the zero padding; with colours, the constant is in colour group 0, so at the centre
    only groups > 0 read it). `gated=False`: a 7x7 mask-A convolution to `channels` maps,
    `num_layers` residual blocks, then relu → 1x1 (`hidden`) → relu → 1x1, the last one
    C·num_outputs wide (colour-major: colour g's logits are group g). Blocks (`block`):
    "plain" h ← h + MaskB3x3(relu(h)); "bottleneck" (the Pixel RNN paper's Fig. 5)
    h ← h + 1x1(relu(MaskB3x3(relu(1x1(relu(h)))))), the inner width channels // 2.
    `gated=True`: `num_layers` two-stack gated layers (`_GatedLayer`; the
    first with a 7-wide kernel on the shifted image, the rest 3-wide), then
    the same 1x1 head on the horizontal stack.

    `step` computes position i alone from per-layer caches of what the layers
    computed before ("fast PixelCNN"), with the same parameters as the full
    pass (read from `self.variables`); the state (`initial_state`) holds rings
    of image rows, so its size does not grow with H:

    * plain: the input [x, 1] of the last 4 rows (the mask-A 7x7 kernel's rows
      r − 3 … r, columns padded by 4), and per residual block the input of its 3x3
      convolution in the last 2 rows (mask B 3x3: rows r − 1, r), each (B, R, W + pad,
      C). Step i, of pixel (r, c) and colour k, writes x_{i−1}, computes conv_a at
      (r, c) from a (4, 7) patch, then each block's value at (r, c) from a (2, 3) patch
      of its ring (written first at (r, c): mask B sees the centre), then the head, and
      returns colour k's outputs. The masked-out part of a patch may hold stale values
      (rows r − R, or colours ≥ k of pixel (r, c), not written yet): the mask
      multiplies them by 0. With colours every step recomputes the whole pixel; the
      groups > k it writes into the rings are rewritten by the pixel's later steps,
      the last of which (k = C − 1) reads only colours < C − 1 of its own pixel, so
      what later pixels read is exact.
    * gated: the vertical stack at row r reads rows < r only, but all of a
      row's columns, so at c = 0 (`lax.cond`) the whole row r of every
      layer's vertical stack is computed from the input ring (rows r − 4 …
      r − 1) and each layer's vertical input of row r − 1 (kept, (B, W, C));
      the vertical-to-horizontal links (the `v_to_h` 1x1 of the row) are kept
      for the row. The horizontal stack at (r, c) reads x at columns c − 4 …
      c − 1 of row r (layer 0) and each later layer its input at column c − 1
      (kept, zero at c = 0: the left padding).

    Per step: O(C²) per layer instead of O(H·W·C²) (plain), plus one row of
    the vertical stack every W steps (gated).
    """

    channels: int = 64
    num_layers: int = 5
    hidden: int = 128
    gated: bool = False
    num_outputs: int = 256
    block: str = "plain"

    incremental = True

    def _check(self, colors: int) -> None:
        if self.block not in PIXELCNN_BLOCKS:
            raise UserError(f"model.block={self.block!r}: expected one of {PIXELCNN_BLOCKS}.")
        if self.gated and (colors > 1 or self.block != "plain"):
            raise UserError("model.gated=True takes (H, W, 1) images and model.block=plain; "
                            "for colour images or bottleneck blocks set model.gated=False.")

    @nn.compact
    def __call__(self, x):
        if x.ndim == 3:  # (B, H, W) maps, e.g. a VQ-VAE's codes
            x = x[..., None]
        if x.ndim != 4:
            raise UserError(f"PixelCNN models (H, W, C) images; got a batch of shape {x.shape}.")
        colors = x.shape[-1]
        self._check(colors)
        xin = jnp.concatenate([x, jnp.ones_like(x[..., :1])], -1)
        if self.gated:
            v, h = _down_shift(xin), _right_shift(xin)
            for j in range(self.num_layers):
                v, h = _GatedLayer(self.channels, 7 if j == 0 else 3, residual=j > 0,
                                   name=f"gated_{j}")(v, h)
        else:
            groups = tuple(range(colors)) + (0,)  # [x_0 … x_{C−1}, 1]
            h = MaskedConv2D(self.channels, (7, 7), "A", colors=colors,
                             in_groups=groups if colors > 1 else None, name="conv_a")(xin)
            inner = self.channels // 2
            for j in range(self.num_layers):
                if self.block == "plain":
                    h = h + MaskedConv2D(self.channels, (3, 3), "B", colors=colors,
                                         name=f"conv_b_{j}")(nn.relu(h))
                    continue
                r = _pointwise(inner, colors, f"block_{j}_in")(nn.relu(h))
                r = MaskedConv2D(inner, (3, 3), "B", colors=colors,
                                 name=f"block_{j}_conv")(nn.relu(r))
                h = h + _pointwise(self.channels, colors, f"block_{j}_out")(nn.relu(r))
        h = nn.relu(_pointwise(self.hidden, colors, "head1")(nn.relu(h)))  # 1x1 convs
        out = _pointwise(colors * self.num_outputs, colors, "head2")(h)
        return out.reshape(x.shape[0], -1, self.num_outputs)

    # ------------------------------------------------ incremental decoding
    def initial_state(self, batch_size: int, length: int, shape=None):
        """The empty caches for images of `shape` (H, W[, C]); without it the image is
        taken to be square with one colour, √length x √length. Only W and C set the
        sizes."""
        if shape is None:
            side = math.isqrt(length)
            if side * side != length:
                raise UserError(f"PixelCNN.initial_state: {length} pixels are not a square "
                                 "image; pass shape=(H, W).")
            shape = (side, side)
        colors = int(shape[2]) if len(shape) > 2 else 1
        self._check(colors)
        w, b, ch = int(shape[1]), batch_size, self.channels
        ring = jnp.zeros((b, 5 if self.gated else 4, w + 2 * _XPAD, colors + 1), jnp.float32)
        if not self.gated:
            inner = ch if self.block == "plain" else ch // 2
            return {"x": ring,
                    "h": jnp.zeros((self.num_layers, b, 2, w + 2, inner), jnp.float32)}
        inner = max(self.num_layers - 1, 0)  # layers 1 … L−1 read a kept input
        return {"x": ring, "v": jnp.zeros((inner, b, w, ch), jnp.float32),
                "h": jnp.zeros((inner, b, ch), jnp.float32),
                "link": jnp.zeros((self.num_layers, b, w, 2 * ch), jnp.float32)}

    def step(self, state, x_prev, i):
        """Writes x_{i−1} into the caches and returns out_i = model(x)[:, i] (class doc)."""
        p = self.variables["params"]
        colors = state["x"].shape[-1] - 1
        width = state["x"].shape[2] - 2 * _XPAD
        pixel, k = jnp.divmod(i, colors)
        r, c = jnp.divmod(pixel, width)
        pixel_p, k_p = jnp.divmod(i - 1, colors)  # position i − 1; at i = 0 written as 0
        rp, cp = jnp.divmod(pixel_p, width)
        feats = _prev_features(x_prev, i)  # (B, 2): [x_{i−1}, 1], zeros at i = 0
        xring = _put(state["x"], feats[:, 1:], rp, cp + _XPAD, colors)
        state = {**state, "x": _put(xring, feats[:, :1], rp, cp + _XPAD, k_p)}
        state, h = (self._gated_step if self.gated else self._plain_step)(p, state, r, c)
        h = nn.relu(self._dense(p["head1"], nn.relu(h), colors))
        out = self._dense(p["head2"], h, colors).reshape(h.shape[0], colors, -1)
        return state, jax.lax.dynamic_index_in_dim(out, k, 1, keepdims=False)

    @staticmethod
    def _dense(q, x, colors: int):
        """A 1x1 layer from its params, masked by `pointwise_mask` for several colours."""
        if colors == 1:
            return _dense(q, x)
        kernel = q["kernel"] * jnp.asarray(pointwise_mask(*q["kernel"].shape, colors))
        return x @ kernel + q["bias"]

    def _plain_step(self, p, state, r, c):
        colors = state["x"].shape[-1] - 1
        rows = _ring_rows(jax.lax.dynamic_slice_in_dim(state["x"], c + _XPAD - 3, 7, 2),
                          r - 3, 4)  # (B, 4, 7, C + 1): rows r − 3 … r, columns c − 3 … c + 3

        def conv(q, patch, mask_type, groups=None):
            kernel = q["kernel"]
            if colors == 1:
                mask = raster_mask(*kernel.shape[:2], mask_type)[:, :, None, None]
            else:
                mask = colour_mask(*kernel.shape[:2], channel_groups(kernel.shape[2], colors)
                                   if groups is None else groups,
                                   channel_groups(kernel.shape[3], colors), mask_type)
            rows_used = patch.shape[1]
            return jnp.einsum("byxi,yxio->bo", patch,
                              kernel[:rows_used] * jnp.asarray(mask)[:rows_used]) + q["bias"]

        h = conv(p["conv_a"], rows, "A", tuple(range(colors)) + (0,))
        caches = []
        for j in range(self.num_layers):
            if self.block == "plain":
                q3, r_in = p[f"conv_b_{j}"], nn.relu(h)
            else:
                q3 = p[f"block_{j}_conv"]
                r_in = nn.relu(self._dense(p[f"block_{j}_in"], nn.relu(h), colors))
            ring = _put(state["h"][j], r_in, r, c + 1)  # column c sits at c + 1
            caches.append(ring)
            patch = _ring_rows(jax.lax.dynamic_slice_in_dim(ring, c, 3, 2), r - 1, 2)
            out = conv(q3, patch, "B")
            if self.block == "plain":
                h = h + out
            else:
                h = h + self._dense(p[f"block_{j}_out"], nn.relu(out), colors)
        if caches:
            state = {**state, "h": jnp.stack(caches)}
        return state, h

    def _vertical_row(self, p, xring, v_prev, r):
        """Row r of every layer's vertical stack: the new kept inputs (row r of layers
        1 … L−1) and the row's vertical-to-horizontal links."""
        width = xring.shape[2] - 2 * _XPAD
        v_in = _ring_rows(xring, r - 4, 4)[:, :, _XPAD - 3:_XPAD + width + 3]  # (B, 4, W+6, 2)
        kept, links = [], []
        for j in range(self.num_layers):
            q = p[f"gated_{j}"]
            if j > 0:  # rows r − 1, r of this layer's input, padded by one column
                kept.append(v_in)
                v_in = jnp.pad(jnp.stack([v_prev[j - 1], v_in], 1),
                               ((0, 0), (0, 0), (1, 1), (0, 0)))
            v_conv = jax.lax.conv_general_dilated(
                v_in, q["v_conv"]["kernel"], (1, 1), "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"))[:, 0] + q["v_conv"]["bias"]
            links.append(_dense(q["v_to_h"], v_conv))
            v_in = _gate(v_conv)  # (B, W, C): the next layer's input at row r
        return (jnp.stack(kept) if kept else v_prev), jnp.stack(links)

    def _gated_step(self, p, state, r, c):
        v, link = jax.lax.cond(c == 0, lambda: self._vertical_row(p, state["x"], state["v"], r),
                               lambda: (state["v"], state["link"]))
        x_left = _ring_rows(jax.lax.dynamic_slice_in_dim(state["x"], c + _XPAD - 4, 4, 2),
                            r, 1)[:, 0]  # (B, 4, 2): x at columns c − 4 … c − 1 of row r
        left = (c > 0).astype(jnp.float32)
        kept, h = [], x_left[:, -1]  # the right-shifted input at (r, c)
        for j in range(self.num_layers):
            q = p[f"gated_{j}"]
            window = x_left if j == 0 else jnp.stack([state["h"][j - 1] * left, h], 1)
            if j > 0:
                kept.append(h)
            a = (jnp.einsum("bxi,xio->bo", window, q["h_conv"]["kernel"][0])
                 + q["h_conv"]["bias"]
                 + jax.lax.dynamic_index_in_dim(link[j], c, 1, keepdims=False))
            out = _dense(q["h_out"], _gate(a))
            h = out if j == 0 else h + out
        h_kept = jnp.stack(kept) if kept else state["h"]
        return {**state, "v": v, "link": link, "h": h_kept}, h


# -------------------------------------------------------------- Transformer
def causal_attention(q, k, v, mask):
    """softmax(QKᵀ/√d_k + M) V, M_ij = 0 where `mask[i, j]` (i ≥ j) and −∞ elsewhere.

    q (B, H, Lq, d), k and v (B, H, Lk, d), mask (Lq, Lk) bool; returns (B, H, Lq, d).
    Every row keeps at least its diagonal, so no row is all −∞.
    """
    logits = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    m = jnp.where(mask, 0.0, -jnp.inf)
    w = jax.nn.softmax(logits + m, axis=-1)
    return jnp.einsum("bhqk,bhkd->bhqd", w, v)


class _Block(nn.Module):
    """Pre-LN transformer block: h + Attn(LN(h)), then h + MLP(LN(h))."""

    d_model: int
    num_heads: int
    mlp_ratio: int

    def setup(self):
        if self.d_model % self.num_heads:
            raise UserError(f"model.d_model={self.d_model} must be divisible by "
                             f"model.num_heads={self.num_heads}.")
        self.ln1 = nn.LayerNorm(name="ln1")
        self.qkv = nn.Dense(3 * self.d_model, name="qkv")
        self.proj = nn.Dense(self.d_model, name="proj")
        self.ln2 = nn.LayerNorm(name="ln2")
        self.fc1 = nn.Dense(self.mlp_ratio * self.d_model, name="fc1")
        self.fc2 = nn.Dense(self.d_model, name="fc2")

    def _qkv(self, h):
        """(B, L, d) -> q, k, v, each (B, heads, L, d_head)."""
        b, n = h.shape[:2]
        q, k, v = jnp.split(self.qkv(self.ln1(h)), 3, -1)
        shape = (b, n, self.num_heads, self.d_model // self.num_heads)
        return tuple(jnp.swapaxes(t.reshape(shape), 1, 2) for t in (q, k, v))

    def _merge(self, a):
        """(B, heads, L, d_head) -> (B, L, d)."""
        return jnp.swapaxes(a, 1, 2).reshape(a.shape[0], a.shape[2], self.d_model)

    def _mlp(self, h):
        return h + self.fc2(nn.gelu(self.fc1(self.ln2(h))))

    def __call__(self, h):
        b, n = h.shape[:2]
        q, k, v = self._qkv(h)
        mask = jnp.tril(jnp.ones((n, n), bool))  # i ≥ j
        h = h + self.proj(self._merge(causal_attention(q, k, v, mask)))
        return self._mlp(h)

    def decode(self, h, cache, layer: int, i):
        """h (B, 1, d) at position i. `cache` {"k", "v"}: (layers, B, heads, L, d_head);
        this block's key and value of position i are written in place at [layer, :, :, i]."""
        q, k, v = self._qkv(h)
        cache = {name: jax.lax.dynamic_update_slice(cache[name],  # in the cache's dtype
                                                    new[None].astype(cache[name].dtype),
                                                    (layer, 0, 0, i, 0))
                 for name, new in (("k", k), ("v", v))}
        mask = (jnp.arange(cache["k"].shape[3]) <= i)[None, :]
        a = causal_attention(q, cache["k"][layer].astype(q.dtype),  # q's dtype: bf16 compute
                             cache["v"][layer].astype(q.dtype), mask)
        return self._mlp(h + self.proj(self._merge(a))), cache


class CausalTransformer(nn.Module):
    """A decoder-only transformer over the shifted sequence (GPT-style, pre-LN).

    Embedding Dense(d_model) of the features [x_{i−1}, 1] plus positions
    (`positions`: "learned", a (max_len, d_model) table, or "sinusoidal"),
    `num_layers` blocks with the causal mask, a final LayerNorm and Dense.
    `step` decodes one position with the KV cache.
    """

    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    mlp_ratio: int = 4
    num_outputs: int = 256
    max_len: int = 1024
    positions: str = "learned"

    incremental = True

    def setup(self):
        if self.positions not in ("learned", "sinusoidal"):
            raise UserError(f"model.positions must be learned or sinusoidal, got "
                             f"{self.positions!r}.")
        self.embed = nn.Dense(self.d_model, name="embed")
        if self.positions == "learned":
            self.pos = self.param("pos", nn.initializers.normal(0.02),
                                  (self.max_len, self.d_model))
        self.blocks = [_Block(self.d_model, self.num_heads, self.mlp_ratio, name=f"block_{j}")
                       for j in range(self.num_layers)]
        self.ln_f = nn.LayerNorm(name="ln_f")
        self.out = nn.Dense(self.num_outputs, name="out")

    def _positions(self, idx):
        if self.positions == "learned":
            return self.pos[idx]
        idx = jnp.asarray(idx)
        return sinusoidal_embedding(idx.reshape(-1), self.d_model, scale=1.0).reshape(
            *idx.shape, self.d_model)

    def __call__(self, x):
        f = shift_right(_flat(x))
        _check_length(f.shape[1], self.max_len, "CausalTransformer")
        h = self.embed(f) + self._positions(jnp.arange(f.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.out(self.ln_f(h))

    def initial_state(self, batch_size: int, length: int, shape=None):
        """The empty KV cache: {"k", "v"} of shape (layers, B, heads, length, d_head)."""
        del shape
        z = jnp.zeros((self.num_layers, batch_size, self.num_heads, length,
                       self.d_model // self.num_heads), jnp.float32)
        return {"k": z, "v": z}

    def step(self, state, x_prev, i):
        h = self.embed(_prev_features(x_prev, i))[:, None] + self._positions(i)
        for j, block in enumerate(self.blocks):
            h, state = block.decode(h, state, j, i)
        return state, self.out(self.ln_f(h))[:, 0]


AR_MODELS = (FiniteMemoryMLP, RNN, WaveNet, PixelCNN, CausalTransformer)
