"""SNGAN's ResNet generator and discriminator for 32x32 images (Miyato et al., 2018).

The CIFAR-10 ResNets of the paper's Table 2 ("SN-GANs (ResNet)"), layer for layer as in the
authors' code (pfnet-research/sngan_projection: gen_models/resnet_32.py, dis_models/
snresnet_32.py and their resblocks.py, the unconditional configs/sn_cifar10_unconditional.yml):

* G: z (128) -> dense -> (H/8, W/8, c) -> 3 up-blocks [BN, ReLU, 2x nearest upsampling,
  conv3x3, BN, ReLU, conv3x3; shortcut: upsampling, conv1x1] -> BN, ReLU, conv3x3 -> tanh;
  c = 256 (`g_channels`).
* D (every convolution and the linear layer spectral-normalised): an optimised first block
  [conv3x3, ReLU, conv3x3, 2x2 average pooling; shortcut: pooling, conv1x1], a down-block
  [ReLU, conv3x3, ReLU, conv3x3, pooling; shortcut: conv1x1, pooling], two blocks without
  pooling and with the identity as shortcut, ReLU, the sum over positions, a linear layer
  without bias; c = 128 (`d_channels`).

Spectral normalisation, the batch norm and the up/down-sampling are BigGAN's pieces
(`jaxgen.nn.biggan`): the power-iteration vectors are non-gradient state (collection
"spectral") refreshed once per step (Miyato's Algorithm 1), and G's batch norms use the
current batch's statistics also when sampling (the authors' code switches to running
averages there). Flax's default initialisers (LeCun normal) stand in for the code's Glorot
uniform ones.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn.biggan import (
    SPECTRAL,
    BigGAN,
    ConditionalBatchNorm,
    SNConv,
    SNDense,
    _avg_pool,
    _upsample,
)
from jaxgen.nn.gan import TwoPlayerGAN

__all__ = ["SNGAN"]


class _GBlock(nn.Module):
    """SNGAN's up-block: BN, ReLU, upsample, conv3, BN, ReLU, conv3; + upsample, conv1."""

    features: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(ConditionalBatchNorm(name="bn_0")(x))
        h = nn.Conv(self.features, (3, 3), padding="SAME", name="conv_0")(_upsample(h))
        h = nn.relu(ConditionalBatchNorm(name="bn_1")(h))
        h = nn.Conv(self.features, (3, 3), padding="SAME", name="conv_1")(h)
        return h + nn.Conv(self.features, (1, 1), name="shortcut")(_upsample(x))


class _DBlock(nn.Module):
    """SNGAN's D blocks (all SN). first: conv3, ReLU, conv3, pool; + pool, conv1. Otherwise
    ReLU, conv3, ReLU, conv3, [pool]; + [conv1, pool] where it pools or changes the width,
    else the identity."""

    features: int
    down: bool = True
    first: bool = False

    @nn.compact
    def __call__(self, x):
        h = x if self.first else nn.relu(x)
        h = SNConv(self.features, name="conv_0")(h)
        h = SNConv(self.features, name="conv_1")(nn.relu(h))
        if self.down:
            h = _avg_pool(h)
        if self.first:
            return h + SNConv(self.features, (1, 1), name="shortcut")(_avg_pool(x))
        if self.down or x.shape[-1] != self.features:
            s = SNConv(self.features, (1, 1), name="shortcut")(x)
            return h + (_avg_pool(s) if self.down else s)
        return h + x


class _Generator(nn.Module):
    event_shape: Sequence[int]
    channels: int

    @nn.compact
    def __call__(self, z, label=None):
        if label is not None:
            raise UserError("model.name=sngan is unconditional; drop the labels.")
        h_, w_, c_out = self.event_shape
        c = self.channels
        h = nn.Dense((h_ // 8) * (w_ // 8) * c, name="project")(z)
        h = h.reshape(z.shape[0], h_ // 8, w_ // 8, c)
        for i in range(3):
            h = _GBlock(c, name=f"block_{i}")(h)
        h = nn.relu(ConditionalBatchNorm(name="bn_out")(h))
        return jnp.tanh(nn.Conv(c_out, (3, 3), padding="SAME", name="out")(h))


class _Discriminator(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x, label=None):
        if label is not None:
            raise UserError("model.name=sngan is unconditional; drop the labels.")
        c = self.channels
        h = _DBlock(c, first=True, name="block_0")(x)
        h = _DBlock(c, name="block_1")(h)
        h = _DBlock(c, down=False, name="block_2")(h)
        h = _DBlock(c, down=False, name="block_3")(h)
        phi = jnp.sum(nn.relu(h), axis=(1, 2))
        return SNDense(1, use_bias=False, name="out")(phi)[:, 0]


class SNGAN(TwoPlayerGAN):
    """SNGAN's ResNet G and spectral-normalised ResNet D (module doc), for (H, W, C) images
    with H and W divisible by 8 (32x32: G starts at 4x4, D ends at 8x8).

    Attributes:
      event_shape: (H, W, C), from the data.
      latent_dim: size of z ~ N(0, I) (128 in the paper).
      g_channels: G's width (256 in the paper's CIFAR-10 ResNet).
      d_channels: D's width (128).
    """

    event_shape: Sequence[int] = (32, 32, 3)
    latent_dim: int = 128
    g_channels: int = 256
    d_channels: int = 128
    # the variable collections beyond "params": non-gradient state the GAN objective keeps
    # under params[name] and refreshes with `refresh_state` after each step
    state_collections: ClassVar[tuple[str, ...]] = (SPECTRAL,)

    def setup(self):
        shape = tuple(self.event_shape)
        if len(shape) != 3 or shape[0] % 8 or shape[1] % 8:
            raise UserError(f"model.name=sngan expects (H, W, C) images with H and W divisible "
                            f"by 8; got event shape {shape}.")
        self.generator = _Generator(shape, self.g_channels)
        self.discriminator = _Discriminator(self.d_channels)

    # the state collections after one power iteration on params' current kernels
    refresh_state = staticmethod(BigGAN.refresh_state)
