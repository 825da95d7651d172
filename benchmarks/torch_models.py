"""PyTorch twins of four jaxgen architectures and their train steps, for benchmarking.

Each twin computes the same function with the same layers as its Flax original
(same padding, GroupNorm placement, activations, time embedding, skips and
upsampling), has the same parameter count, and its step does the same work as
one `jaxgen.runner.step` step of the config it comes from:

    mlp       configs/flow_matching/toy2d.py                 jaxgen/nn/mlp.py (TimeMLP)
    unet      configs/diffusion/ddpm_fashion_mnist.py        jaxgen/nn/unet.py (UNet)
    dcgan     configs/gan/dcgan_fashion_mnist.py             jaxgen/nn/gan.py (DCGAN)
    pixelcnn  configs/autoregressive/pixelcnn_fashion_mnist.py
                                                             jaxgen/nn/autoregressive.py (PixelCNN)

One step = preprocess the raw batch (uint8 images -> model space, as
`jaxgen.kernel.transforms.preprocess`), the objective's loss (and the cheap
metrics jaxgen's loss also computes), backward, global-norm clipping where the
config has it, Adam with the config's learning-rate schedule, and the EMA of
the parameters with jaxgen's warm-up `min(decay, (1 + s) / (10 + s))`.

Layout: the modules take NCHW tensors (PyTorch's convention); jaxgen's are
NHWC. `channels_last=True` keeps the same NCHW shapes in NHWC memory, the
layout XLA uses. Weights are initialised as Flax does (LeCun-normal kernels,
zero biases; the U-Net's last conv zero), so the losses start where jaxgen's do.

This module needs only torch and numpy; it never imports jaxgen, and jaxgen
never imports it (torch is an optional benchmark extra).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TimeMLP", "UNet", "DCGAN", "PixelCNN", "OptimSettings", "Twin", "BUILDERS",
           "build_mlp", "build_unet", "build_dcgan", "build_pixelcnn", "param_count"]


# ------------------------------------------------------------------ init
def _fan_in(m: nn.Module) -> int:
    w = m.weight
    if isinstance(m, nn.ConvTranspose2d):  # weight (in, out, kh, kw); Flax: (kh, kw, in, out)
        return w.shape[0] * w.shape[2] * w.shape[3]
    return math.prod(w.shape[1:])  # Linear (out, in); Conv2d (out, in, kh, kw)


def flax_init_(module: nn.Module) -> nn.Module:
    """Flax's defaults: LeCun-normal kernels (truncated normal, variance 1 / fan_in), zero
    biases; GroupNorm scale 1, bias 0 (as PyTorch's)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            # variance_scaling(1, "fan_in", "truncated_normal"): the std is corrected for
            # the truncation at +-2 std (0.8796... is the std of a N(0, 1) cut there).
            std = math.sqrt(1.0 / _fan_in(m)) / 0.87962566103423978
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------- time embedding
def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0,
                         scale: float = 1000.0) -> torch.Tensor:
    """`jaxgen.nn.embeddings.sinusoidal_embedding`: dim/2 sines then dim/2 cosines of
    scale * t (t in [0, 1]), a zero column when dim is odd."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (scale * t.float())[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimeEmbedding(nn.Module):
    """sinusoidal(t) -> Linear(dim) -> SiLU -> Linear(dim)."""

    def __init__(self, dim: int, scale: float = 1000.0):
        super().__init__()
        self.dim, self.scale = dim, scale
        self.dense_0 = nn.Linear(dim, dim)
        self.dense_1 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = sinusoidal_embedding(t, self.dim, scale=self.scale)
        return self.dense_1(F.silu(self.dense_0(h)))


# --------------------------------------------------------------- 1. MLP
class TimeMLP(nn.Module):
    """`jaxgen.nn.mlp.TimeMLP`: concat(x, temb) -> [Linear -> SiLU] x len(features) -> Linear."""

    def __init__(self, in_dim: int = 2, features: Sequence[int] = (256, 256, 256),
                 time_dim: int = 64, out_dim: int | None = None):
        super().__init__()
        self.time_embedding = TimeEmbedding(time_dim)
        widths = [in_dim + time_dim, *features]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], out_dim or in_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, self.time_embedding(t)], dim=-1)
        for layer in self.dense:
            h = F.silu(layer(h))
        return self.out(h)


# ------------------------------------------------------------- 2. U-Net
def _group_norm(groups: int, channels: int) -> nn.GroupNorm:
    """GroupNorm with gcd(groups, channels) groups and Flax's epsilon (1e-6)."""
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GN -> SiLU -> conv3x3 -> + Linear(SiLU(temb)) -> GN -> SiLU -> conv3x3, plus the
    residual (through a 1x1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, groups: int = 8):
        super().__init__()
        self.norm_0 = _group_norm(groups, in_channels)
        self.conv_0 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm_1 = _group_norm(groups, out_channels)
        self.conv_1 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = (nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels
                     else None)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv_0(F.silu(self.norm_0(x)))
        h = h + self.time_proj(F.silu(temb))[:, :, None, None]
        h = self.conv_1(F.silu(self.norm_1(h)))
        return (x if self.skip is None else self.skip(x)) + h


class Downsample(nn.Module):
    """Flax's stride-2 3x3 'SAME' conv: on an even size the padding is (0, 1) per spatial
    axis (nothing before, one after), not PyTorch's symmetric padding=1, which would sample
    the other phase of the grid. The explicit pad keeps the function identical."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # 'SAME': total pad = max((ceil(n / 2) - 1) * 2 + 3 - n, 0), the extra one after.
        ph, pw = max((-(-h // 2) - 1) * 2 + 3 - h, 0), max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        return self.conv(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)))


class UNet(nn.Module):
    """`jaxgen.nn.unet.UNet` without attention or classes (the DDPM config's): conv_in,
    down levels (ResBlocks, each output kept as a skip, stride-2 conv between levels), two
    middle ResBlocks, up levels (concat(h, skip) -> ResBlock; nearest x2 + conv3x3 between
    levels), GN -> SiLU -> zero-initialised conv_out."""

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64),
                 num_res_blocks: int = 1, time_dim: int = 128, groups: int = 8,
                 out_channels: int | None = None):
        super().__init__()
        channels = tuple(channels)
        self.channels, self.num_res_blocks = channels, num_res_blocks
        last = len(channels) - 1
        self.time_embedding = TimeEmbedding(time_dim)
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_widths, width = [], channels[0]
        for level, ch in enumerate(channels):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(width, ch, time_dim, groups))
                width = ch
                skip_widths.append(ch)
            self.down.append(blocks)
            if level != last:
                self.downsample.append(Downsample(ch))

        self.mid = nn.ModuleList([ResBlock(width, channels[-1], time_dim, groups),
                                  ResBlock(channels[-1], channels[-1], time_dim, groups)])
        width = channels[-1]

        # Built top level first in the order they run: the lowest level first.
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(channels))):
            ch = channels[level]
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(width + skip_widths.pop(), ch, time_dim, groups))
                width = ch
            self.up.append(blocks)
            if level != 0:
                self.upsample.append(nn.Conv2d(ch, channels[level - 1], 3, padding=1))
                width = channels[level - 1]

        self.norm_out = _group_norm(groups, width)
        self.conv_out = nn.Conv2d(width, out_channels or in_channels, 3, padding=1)
        flax_init_(self)
        nn.init.zeros_(self.conv_out.weight)  # the network starts at exactly 0
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h = self.conv_in(x)
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, temb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        for block in self.mid:
            h = block(h, temb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# -------------------------------------------------------------- 3. DCGAN
class DCGANGenerator(nn.Module):
    """Linear(z) -> (H/4, W/4, 2c) -> GN -> ReLU -> ConvT(c, 4, s2) -> GN -> ReLU ->
    ConvT(C, 4, s2) -> tanh. PyTorch's ConvTranspose2d(k=4, s=2, padding=1) pads the
    stride-dilated input by k - 1 - 1 = 2 on each side, Flax's 'SAME' transposed conv the
    same (2, 2): output 2n, same work."""

    def __init__(self, event_shape=(28, 28, 1), latent_dim: int = 64, channels: int = 64,
                 groups: int = 8, channels_last: bool = False):
        super().__init__()
        h, w, c_out = event_shape
        self.h4, self.w4, self.c = h // 4, w // 4, channels
        self.channels_last = channels_last
        self.project = nn.Linear(latent_dim, self.h4 * self.w4 * 2 * channels)
        self.norm_0 = nn.GroupNorm(groups, 2 * channels, eps=1e-6)
        self.up_0 = nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1)
        self.norm_1 = nn.GroupNorm(groups, channels, eps=1e-6)
        self.up_1 = nn.ConvTranspose2d(channels, c_out, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z)
        if self.channels_last:  # jaxgen's (B, H/4, W/4, 2c) reshape; an NCHW view of NHWC
            h = h.view(z.shape[0], self.h4, self.w4, 2 * self.c).permute(0, 3, 1, 2)
        else:
            h = h.view(z.shape[0], 2 * self.c, self.h4, self.w4)
        h = self.up_0(F.relu(self.norm_0(h)))
        return torch.tanh(self.up_1(F.relu(self.norm_1(h))))


class DCGANDiscriminator(nn.Module):
    """Conv(c, 4, s2) -> LeakyReLU(0.2) -> Conv(2c, 4, s2) -> LeakyReLU(0.2) -> Linear(1).
    Flax's 'SAME' 4x4 stride-2 conv on 28 (then 14) pads (1, 1), as padding=1 here."""

    def __init__(self, event_shape=(28, 28, 1), channels: int = 64,
                 channels_last: bool = False):
        super().__init__()
        h, w, c_in = event_shape
        self.channels_last = channels_last
        self.conv_0 = nn.Conv2d(c_in, channels, 4, stride=2, padding=1)
        self.conv_1 = nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1)
        self.logit = nn.Linear((h // 4) * (w // 4) * 2 * channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv_0(x), 0.2)
        h = F.leaky_relu(self.conv_1(h), 0.2)
        if self.channels_last:  # flatten in NHWC order (a view of channels_last memory)
            h = h.permute(0, 2, 3, 1)
        return self.logit(h.reshape(h.shape[0], -1))[:, 0]


class DCGAN(nn.Module):
    """Generator and discriminator (`jaxgen.nn.gan.DCGAN`, unconditional, one head)."""

    def __init__(self, event_shape=(28, 28, 1), latent_dim: int = 64, g_channels: int = 64,
                 d_channels: int = 64, channels_last: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = DCGANGenerator(event_shape, latent_dim, g_channels,
                                        groups=min(8, g_channels), channels_last=channels_last)
        self.discriminator = DCGANDiscriminator(event_shape, d_channels, channels_last)
        flax_init_(self)


# ----------------------------------------------------------- 4. PixelCNN
def raster_mask(kh: int, kw: int, mask_type: str) -> torch.Tensor:
    """Rows above the centre, the centre row left of the centre, the centre itself only for
    mask "B" (`jaxgen.nn.autoregressive.raster_mask`)."""
    m = torch.ones(kh, kw)
    cy, cx = kh // 2, kw // 2
    m[cy, cx + (mask_type == "B"):] = 0.0
    m[cy + 1:] = 0.0
    return m


class MaskedConv2d(nn.Conv2d):
    """A 'SAME' (odd kernel: symmetric padding) convolution whose kernel is multiplied by
    the raster mask on every call, as jaxgen's MaskedConv2D does (the masked-out entries
    are still parameters, so the count matches)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", raster_mask(kernel_size, kernel_size, mask_type)[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class PixelCNN(nn.Module):
    """`jaxgen.nn.autoregressive.PixelCNN(gated=False)`: reads [x, 1]; 7x7 mask-A conv;
    `num_layers` blocks h <- h + MaskB3x3(ReLU(h)); ReLU -> 1x1 (hidden) -> ReLU -> 1x1
    (num_outputs). jaxgen's 1x1 layers are Dense over the channel axis: the same matmul.
    Returns (B, num_outputs, H, W) logits (the class axis where F.cross_entropy wants it)."""

    def __init__(self, channels: int = 32, num_layers: int = 5, hidden: int = 64,
                 num_outputs: int = 256):
        super().__init__()
        self.conv_a = MaskedConv2d(2, channels, 7, "A")
        self.conv_b = nn.ModuleList(MaskedConv2d(channels, channels, 3, "B")
                                    for _ in range(num_layers))
        self.head1 = nn.Conv2d(channels, hidden, 1)
        self.head2 = nn.Conv2d(hidden, num_outputs, 1)
        flax_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_a(torch.cat([x, torch.ones_like(x)], dim=1))
        for conv in self.conv_b:
            h = h + conv(F.relu(h))
        return self.head2(F.relu(self.head1(F.relu(h))))


# --------------------------------------------------- training machinery
@dataclasses.dataclass
class OptimSettings:
    """One player's optimizer, as `jaxgen.runner.optim.make_optimizer` builds it: Adam, a
    linear warm-up then cosine (or constant) learning rate, global-norm clipping."""

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 100
    decay_steps: int = 0  # 0: total_steps
    end_lr_factor: float = 0.0
    grad_clip: float = 1.0  # 0: off
    total_steps: int = 2000  # train.steps

    def lr_at(self, count: int) -> float:
        """optax's join_schedules([linear(0, lr, warmup), cosine(lr, total - warmup)])."""
        lr, warmup = self.learning_rate, self.warmup_steps
        if warmup > 0 and count < warmup:
            return lr * count / warmup
        if self.schedule == "constant":
            return lr
        n = max(1, (self.decay_steps or self.total_steps) - warmup)
        k = min(max(count - max(warmup, 0), 0), n)
        alpha = self.end_lr_factor
        return lr * ((1.0 - alpha) * 0.5 * (1.0 + math.cos(math.pi * k / n)) + alpha)


class Player:
    """A set of parameters with its own Adam; `update(loss)` is one optimizer step."""

    def __init__(self, module: nn.Module, settings: OptimSettings):
        self.params = [p for p in module.parameters()]
        self.settings = settings
        self.optimizer = torch.optim.Adam(self.params, lr=settings.lr_at(0),
                                          betas=(settings.b1, settings.b2), eps=settings.eps)
        self.count = 0

    def update(self, loss: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s = self.settings
        if s.grad_clip and s.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.params, s.grad_clip)
        else:  # jaxgen logs every player's gradient norm
            norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad) for p in self.params]))
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr_at(self.count)
        self.optimizer.step()
        self.count += 1
        return norm


class Ema:
    """EMA of all parameters with jaxgen's warm-up: decay_s = min(decay, (1+s)/(10+s))."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.params = [p for p in module.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.step = 0

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1.0 + self.step) / (10.0 + self.step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - d)
        self.step += 1


@dataclasses.dataclass
class Twin:
    """A PyTorch twin ready to time: `step_fn()` runs one full train step and returns its
    metrics (tensors; "loss" always)."""

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer | dict
    batch: torch.Tensor
    step_fn: Callable[[], dict]
    channels_last: bool = False

    @property
    def params(self) -> int:
        return param_count(self.model)


def _images_to_model_space(x_u8: torch.Tensor, dequantize: bool,
                           channels_last: bool) -> torch.Tensor:
    """`transforms.preprocess("images", ...)`: 2 (x + u) / 256 - 1, u ~ U[0, 1) or 1/2."""
    x = x_u8.float()
    x = x + (torch.rand_like(x) if dequantize else 0.5)
    x = x * (2.0 / 256.0) - 1.0
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _image_batch(batch, batch_size: int, event_shape, seed: int) -> torch.Tensor:
    """Raw uint8 images as NCHW (B, C, H, W), from jaxgen's (B, H, W, C) numpy batch, or
    random pixels when none is given."""
    if batch is None:
        h, w, c = event_shape
        batch = np.random.default_rng(seed).integers(0, 256, (batch_size, h, w, c), np.uint8)
    batch = np.asarray(batch)
    if batch.ndim == 3:
        batch = batch[..., None]
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


# ------------------------------------------------------------ 1. MLP step
def build_mlp(batch=None, *, batch_size: int = 512, features=(256, 256, 256),
              time_dim: int = 64, sigma_min: float = 0.0, optim: OptimSettings | None = None,
              ema_decay: float = 0.999, seed: int = 0, channels_last: bool = False) -> Twin:
    """Flow matching on 2-D points (configs/flow_matching/toy2d.py): with x0 ~ N(0, I),
    t ~ U[0, 1], x_t = t x1 + (1 - (1 - s) t) x0, loss = mean ||u(x_t, t) - (x1 - (1 - s) x0)||^2
    over examples and dimensions. `batch`: (B, 2) points (default: 8 Gaussians)."""
    del channels_last  # no convolutions
    torch.manual_seed(seed)
    if batch is None:
        rng = np.random.default_rng(seed)
        angles = rng.integers(0, 8, batch_size) * (np.pi / 4)
        modes = 4.0 / 1.414 * np.stack([np.cos(angles), np.sin(angles)], -1)
        batch = modes + rng.normal(0.0, 0.5 / 1.414, (batch_size, 2))
    x1 = torch.as_tensor(np.asarray(batch, np.float32))
    model = flax_init_(TimeMLP(x1.shape[-1], features, time_dim))
    player = Player(model, optim or OptimSettings(2e-3, warmup_steps=200, total_steps=8000))
    ema = Ema(model, ema_decay)

    def step() -> dict:
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        tt = t[:, None]
        xt = tt * x1 + (1.0 - (1.0 - sigma_min) * tt) * x0
        target = x1 - (1.0 - sigma_min) * x0
        sq = (model(xt, t) - target).square()
        loss = sq.mean()
        grad_norm = player.update(loss)
        ema.update()
        with torch.no_grad():
            velocity_norm = sq.detach().sum(-1).sqrt().mean()
        return {"loss": loss.detach(), "grad_norm": grad_norm, "velocity_norm": velocity_norm}

    return Twin("mlp", model, player.optimizer, x1, step)


# ----------------------------------------------------------- 2. U-Net step
class _LinearSchedule:
    """DDPM's linear beta_1 = 1e-4 ... beta_T = 0.02 (scaled by 1000/T), t = 0 ... T;
    computed in float64 and stored in float32, as `diffusion_process.linear_schedule`."""

    def __init__(self, num_steps: int):
        scale = 1000.0 / num_steps
        betas = np.concatenate([[0.0], np.minimum(
            np.linspace(scale * 1e-4, scale * 0.02, num_steps), 0.999)])
        alphas = 1.0 - betas
        alpha_bars = np.cumprod(alphas)
        f32 = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
        self.T = num_steps
        self.betas, self.alphas, self.alpha_bars = f32(betas), f32(alphas), f32(alpha_bars)
        # posterior variance beta~_t (0 at t = 0, 1); the model variance "beta" with its
        # t = 0, 1 entries set to beta~_2 (Ho et al.'s decoder variance)
        ab_prev = np.concatenate([[1.0], alpha_bars[:-1]])
        pv = np.where(np.arange(num_steps + 1) >= 1,
                      (1.0 - ab_prev) / np.maximum(1.0 - alpha_bars, 1e-20) * betas, 0.0)
        pv32 = np.asarray(pv, np.float32)
        var = np.asarray(betas, np.float32).copy()
        var[0] = var[1] = pv32[2]
        self.model_var = torch.as_tensor(var)


def _normal_kl(m1, v1, m2, v2):
    return 0.5 * (torch.log(v2) - torch.log(v1) + (v1 + (m1 - m2).square()) / v2 - 1.0)


def _discretized_gaussian_log_prob(x, mean, var, bin_width: float, lo: float, hi: float):
    """log P(bin of x) under N(mean, var), the edge bins open (Ho et al., eq. 13)."""
    std = var.sqrt()
    a = (x - bin_width / 2 - mean) / std
    b = (x + bin_width / 2 - mean) / std
    ndtr = torch.special.ndtr
    mid = torch.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
    log_mid = torch.log(torch.clamp(mid, min=1e-30))
    first, last = x - bin_width < lo, x + bin_width > hi
    return torch.where(first, torch.special.log_ndtr(b),
                       torch.where(last, torch.special.log_ndtr(-a), log_mid))


def _sum_event(x):
    return x.reshape(x.shape[0], -1).sum(-1)


def build_unet(batch=None, *, batch_size: int = 64, event_shape=(28, 28, 1),
               channels=(32, 64), num_res_blocks: int = 1, time_dim: int = 128, groups: int = 8,
               num_steps: int = 1000, optim: OptimSettings | None = None,
               ema_decay: float = 0.995, seed: int = 0, channels_last: bool = False) -> Twin:
    """DDPM (configs/diffusion/ddpm_fashion_mnist.py): images as bin centres (no
    dequantisation), t ~ U{1..T}, eps ~ N(0, I), loss = mean (eps - eps_theta(x_t, t/T))^2;
    plus, without gradient, the one-sample VLB estimate jaxgen's loss logs (L_T + T l_t, a
    discretised-Gaussian L_0 at t = 1), so the elementwise work matches too."""
    torch.manual_seed(seed)
    raw = _image_batch(batch, batch_size, event_shape, seed)
    model = UNet(raw.shape[1], channels, num_res_blocks, time_dim, groups)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    player = Player(model, optim or OptimSettings(1e-3, warmup_steps=200, total_steps=3000))
    ema = Ema(model, ema_decay)
    s = _LinearSchedule(num_steps)
    T = s.T
    bw = 2.0 / 256.0  # one 8-bit bin in model space [-1, 1)
    event_dim = math.prod(raw.shape[1:])
    bpd = 1.0 / (event_dim * math.log(2.0))

    def at(arr, t):
        return arr[t].view(-1, 1, 1, 1)

    def step() -> dict:
        x0 = _images_to_model_space(raw, dequantize=False, channels_last=channels_last)
        b = x0.shape[0]
        t = torch.randint(1, T + 1, (b,))
        eps = torch.randn_like(x0)
        ab = at(s.alpha_bars, t)
        xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps
        out = model(xt, t.float() / T)
        mse = (out - eps).square().mean()
        grad_norm = player.update(mse)
        ema.update()
        with torch.no_grad():  # one-sample VLB estimate (metrics only)
            a, beta = at(s.alphas, t), at(s.betas, t)
            ab_prev = at(s.alpha_bars, t - 1)
            mean = (xt - (1.0 - a) / (1.0 - ab).sqrt() * out.detach()) / a.sqrt()
            var = at(s.model_var, t)
            q_mean = (ab_prev.sqrt() * beta / (1.0 - ab)) * x0 + (
                a.sqrt() * (1.0 - ab_prev) / (1.0 - ab)) * xt
            q_var = (1.0 - ab_prev) / (1.0 - ab) * beta
            kl_t = _sum_event(_normal_kl(q_mean, torch.clamp(q_var, min=1e-30), mean, var))
            l0_t = -_sum_event(_discretized_gaussian_log_prob(x0, mean, var, bw, -1.0, 1.0))
            ell = torch.where(t == 1, l0_t, kl_t)
            abT = s.alpha_bars[T]
            prior = _sum_event(_normal_kl(abT.sqrt() * x0, 1.0 - abT, torch.zeros(()),
                                          torch.ones(())))
            vlb = prior + T * ell
            metrics = {"vlb_bpd": vlb.mean() * bpd, "prior_bpd": prior.mean() * bpd,
                       "recon_bpd": T * torch.where(t == 1, ell, 0.0).mean() * bpd,
                       "diffusion_bpd": T * torch.where(t == 1, 0.0, ell).mean() * bpd}
        return {"loss": mse.detach(), "grad_norm": grad_norm, **metrics}

    return Twin("unet", model, player.optimizer, raw, step, channels_last)


# ----------------------------------------------------------- 3. DCGAN step
def build_dcgan(batch=None, *, batch_size: int = 64, event_shape=(28, 28, 1),
                latent_dim: int = 64, g_channels: int = 64, d_channels: int = 64,
                optim_d: OptimSettings | None = None, optim_g: OptimSettings | None = None,
                ema_decay: float = 0.999, seed: int = 0, channels_last: bool = False) -> Twin:
    """The non-saturating GAN step of jaxgen (objective gan, loss ns, n_critic 1):

    1. discriminator: dequantise the real batch; fakes G(z) for B fresh latents with no
       gradient (jaxgen differentiates D's loss w.r.t. D's params only); D on the real and
       on the fake batch (two calls); loss E softplus(-l_real) + E softplus(l_fake);
       backward, Adam step of D.
    2. generator: B fresh latents; loss E softplus(-D(G(z))) with the *updated* D, whose
       parameters are frozen (gradients flow through D to G, none to D's weights); backward,
       Adam step of G.
    3. EMA of both players' parameters (jaxgen averages every player).
    No clipping (grad_clip 0), constant learning rate 2e-4, b1 0.5 (the config's)."""
    torch.manual_seed(seed)
    raw = _image_batch(batch, batch_size, event_shape, seed)
    model = DCGAN(event_shape, latent_dim, g_channels, d_channels, channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    G, D = model.generator, model.discriminator
    gan_optim = OptimSettings(2e-4, b1=0.5, schedule="constant", warmup_steps=0, grad_clip=0.0,
                              total_steps=5000)
    d_player = Player(D, optim_d or gan_optim)
    g_player = Player(G, optim_g or gan_optim)
    ema = Ema(model, ema_decay)

    def step() -> dict:
        x = _images_to_model_space(raw, dequantize=True, channels_last=channels_last)
        b = x.shape[0]
        with torch.no_grad():
            fake = G(torch.randn(b, latent_dim))
        real_out, fake_out = D(x), D(fake)
        d_loss = F.softplus(-real_out).mean() + F.softplus(fake_out).mean()
        d_norm = d_player.update(d_loss)

        D.requires_grad_(False)
        out = D(G(torch.randn(b, latent_dim)))
        g_loss = F.softplus(-out).mean()
        g_norm = g_player.update(g_loss)
        D.requires_grad_(True)
        ema.update()
        with torch.no_grad():
            m = {"discriminator/d_real": torch.sigmoid(real_out).mean(),
                 "discriminator/d_fake": torch.sigmoid(fake_out).mean(),
                 "generator/d_fake": torch.sigmoid(out).mean()}
        return {"loss": (d_loss + g_loss).detach(), "discriminator/loss": d_loss.detach(),
                "generator/loss": g_loss.detach(), "discriminator/grad_norm": d_norm,
                "generator/grad_norm": g_norm, **m}

    optimizers = {"discriminator": d_player.optimizer, "generator": g_player.optimizer}
    return Twin("dcgan", model, optimizers, raw, step, channels_last)


# -------------------------------------------------------- 4. PixelCNN step
def build_pixelcnn(batch=None, *, batch_size: int = 32, event_shape=(28, 28, 1),
                   channels: int = 32, num_layers: int = 5, hidden: int = 64,
                   optim: OptimSettings | None = None, ema_decay: float = 0.999, seed: int = 0,
                   channels_last: bool = False) -> Twin:
    """Autoregressive NLL (configs/autoregressive/pixelcnn_fashion_mnist.py): the network
    reads bin centres 2 (k + 1/2) / 256 - 1; loss = mean over examples of
    -sum_i log softmax(logits_i)[k_i], divided by D = mean cross-entropy per pixel."""
    torch.manual_seed(seed)
    raw = _image_batch(batch, batch_size, event_shape, seed)
    if raw.shape[1] != 1:
        raise ValueError(f"PixelCNN models 1-channel images, got {raw.shape[1]} channels.")
    model = PixelCNN(channels, num_layers, hidden, 256)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    player = Player(model, optim or OptimSettings(1e-3, warmup_steps=200, total_steps=5000))
    ema = Ema(model, ema_decay)
    dim = math.prod(raw.shape[1:])

    def step() -> dict:
        x = _images_to_model_space(raw, dequantize=False, channels_last=channels_last)
        k = raw[:, 0].long()  # the 8-bit values, (B, H, W)
        loss = F.cross_entropy(model(x), k)  # mean over B*H*W = mean_x(-log p(x)) / D
        grad_norm = player.update(loss)
        ema.update()
        nll = loss.detach() * dim
        return {"loss": loss.detach(), "grad_norm": grad_norm, "nll_nats": nll,
                "bits_per_dim": loss.detach() / math.log(2.0)}

    return Twin("pixelcnn", model, player.optimizer, raw, step, channels_last)


BUILDERS: dict[str, Callable[..., Twin]] = {
    "mlp": build_mlp, "unet": build_unet, "dcgan": build_dcgan, "pixelcnn": build_pixelcnn}
