"""Generators and discriminators of the adversarial family.

A GAN model is one Flax module holding a generator and a discriminator as
submodules, with the methods `generate(z, label=None)` and
`discriminate(x, label=None)`; its params are {"generator": ..., "discriminator":
...}, which the objective hands to its two players. `__call__` runs both (to
initialise every parameter).

* :class:`MLPGAN` (``model.name=gan_mlp``): MLPs for vector data (2-D toys):
  G: z -> x, D: x -> logit. LeakyReLU(0.2) in D, ReLU in G (Goodfellow et
  al.'s maxout nets are replaced by these plain MLPs, as in VEEGAN/PacGAN's
  2-D experiments).
* :class:`DCGAN` (``model.name=dcgan``): Radford et al. (2016) for (H, W, C)
  images with H, W divisible by 4 (28x28 -> 7x7): G projects z to a
  (H/4, W/4, 2c) map and upsamples with two stride-2 4x4 *transposed*
  convolutions to tanh outputs; D is two stride-2 4x4 convolutions with
  LeakyReLU(0.2) and a linear logit. One deviation from the paper, on
  purpose: no batch normalisation. BatchNorm makes a sample depend on the
  rest of its batch and needs running statistics as extra state; the WGAN-GP
  paper also forbids it in the critic (the penalty is per example). G uses
  GroupNorm instead (per example, stateless) where the paper has BatchNorm.

Conditioning (``num_classes``; Mirza & Osindero, 2014: the label is fed to both
networks): G gets a learned class embedding concatenated to z; D gets the
one-hot label concatenated to its input (MLP) or as C constant extra channels
(conv).
Two-head discriminator (``class_head=True``; the CAN of Elgammal et al., 2017):
D also returns K class logits from the shared features:
`discriminate(x) -> (logit, class_logits)`.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.nn.conv import ConvTranspose

__all__ = ["TwoPlayerGAN", "MLPGAN", "DCGAN"]


def _one_hot(label, num_classes: int | None, batch: int):
    if num_classes is None:
        if label is not None:
            raise UserError("label given but the model has no num_classes; set "
                             "model.num_classes for a conditional GAN.")
        return None
    if label is None:
        raise UserError(f"this conditional model (num_classes={num_classes}) needs labels.")
    return jax.nn.one_hot(jnp.broadcast_to(label, (batch,)), num_classes)


class _Head(nn.Module):
    """Real/fake logit and, with class_head, K class logits, from features h."""

    class_head: bool
    num_styles: int

    @nn.compact
    def __call__(self, h):
        logit = nn.Dense(1, name="logit")(h)[:, 0]
        if not self.class_head:
            return logit
        return logit, nn.Dense(self.num_styles, name="class_logits")(h)


def kernel_init(init_gain: float):
    """Dense kernels: Flax's default (LeCun normal) for init_gain = 0, else orthogonal
    matrices scaled by init_gain (Metz et al., 2017, appendix: gain 0.8)."""
    return nn.initializers.orthogonal(init_gain) if init_gain > 0 else \
        nn.initializers.lecun_normal()


#: the hidden activations an MLP discriminator may use (model.d_activation)
D_ACTIVATIONS = {"leaky_relu": lambda h: nn.leaky_relu(h, 0.2), "relu": nn.relu,
                 "tanh": jnp.tanh}


class MLPGenerator(nn.Module):
    features: Sequence[int]
    out_dim: int
    num_classes: int | None = None
    init_gain: float = 0.0

    @nn.compact
    def __call__(self, z, label=None):
        y = _one_hot(label, self.num_classes, z.shape[0])
        h = z if y is None else jnp.concatenate(
            [z, nn.Dense(z.shape[-1], use_bias=False, name="class_embedding")(y)], -1)
        init = kernel_init(self.init_gain)
        for i, w in enumerate(self.features):
            h = nn.relu(nn.Dense(w, kernel_init=init, name=f"dense_{i}")(h))
        return nn.Dense(self.out_dim, kernel_init=init, name="out")(h)


class MLPDiscriminator(nn.Module):
    features: Sequence[int]
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10
    input_scale: float = 1.0
    activation: str = "leaky_relu"
    init_gain: float = 0.0

    @nn.compact
    def __call__(self, x, label=None):
        h = self.input_scale * x.reshape(x.shape[0], -1)
        y = _one_hot(label, self.num_classes, h.shape[0])
        if y is not None:
            h = jnp.concatenate([h, y], -1)
        act = D_ACTIVATIONS[self.activation]
        for i, w in enumerate(self.features):
            h = act(nn.Dense(w, kernel_init=kernel_init(self.init_gain), name=f"dense_{i}")(h))
        return _Head(self.class_head, self.num_styles, name="head")(h)


class TwoPlayerGAN(nn.Module):
    """The GAN model interface over the `generator` and `discriminator` submodules that a
    subclass's setup defines: generate(z, label), discriminate(x, label), and __call__
    running both (to initialise every parameter)."""

    def generate(self, z, label=None):
        return self.generator(z, label)

    def discriminate(self, x, label=None):
        return self.discriminator(x, label)

    def __call__(self, z, label=None):
        return self.discriminate(self.generate(z, label), label)


class MLPGAN(TwoPlayerGAN):
    """MLP generator and discriminator.

    Attributes:
      event_shape: shape of one example (from the data).
      latent_dim: size of z ~ N(0, I).
      g_features / d_features: hidden widths.
      num_classes: conditional GAN when set.
      class_head / num_styles: a K-way class head on D (CAN).
      d_input_scale: D multiplies its input by this first (Metz et al., 2017: 1/4, the
        ring of radius 2 brought to about [-1, 1]).
      d_activation: D's hidden activation: leaky_relu (slope 0.2), relu or tanh.
      init_gain: 0: Flax's default kernels (LeCun normal); > 0: G's dense kernels and D's
        hidden ones orthogonal, scaled by this gain (Metz et al.: 0.8).
    """

    event_shape: Sequence[int] = (2,)
    latent_dim: int = 2
    g_features: Sequence[int] = (128, 128, 128)
    d_features: Sequence[int] = (128, 128, 128)
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10
    d_input_scale: float = 1.0
    d_activation: str = "leaky_relu"
    init_gain: float = 0.0

    def setup(self):
        if self.d_activation not in D_ACTIVATIONS:
            raise UserError(f"model.d_activation={self.d_activation!r}; choose one of "
                            f"{', '.join(D_ACTIVATIONS)}.")
        if self.init_gain < 0:
            raise UserError(f"model.init_gain={self.init_gain} must be >= 0 (0: default).")
        d = 1
        for s in self.event_shape:
            d *= s
        self.generator = MLPGenerator(tuple(self.g_features), d, self.num_classes,
                                      float(self.init_gain))
        self.discriminator = MLPDiscriminator(
            tuple(self.d_features), self.num_classes, self.class_head, self.num_styles,
            float(self.d_input_scale), self.d_activation, float(self.init_gain))

    def generate(self, z, label=None):
        return self.generator(z, label).reshape(z.shape[0], *self.event_shape)


class DCGANGenerator(nn.Module):
    event_shape: Sequence[int]
    channels: int = 64
    num_classes: int | None = None
    groups: int = 8

    @nn.compact
    def __call__(self, z, label=None):
        h_, w_, c_out = self.event_shape
        y = _one_hot(label, self.num_classes, z.shape[0])
        if y is not None:
            z = jnp.concatenate([z, nn.Dense(z.shape[-1], use_bias=False,
                                             name="class_embedding")(y)], -1)
        c = self.channels
        h = nn.Dense((h_ // 4) * (w_ // 4) * 2 * c, name="project")(z)
        h = h.reshape(z.shape[0], h_ // 4, w_ // 4, 2 * c)
        h = nn.relu(nn.GroupNorm(num_groups=self.groups, name="norm_0")(h))
        h = ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", name="up_0")(h)
        h = nn.relu(nn.GroupNorm(num_groups=self.groups, name="norm_1")(h))
        h = ConvTranspose(c_out, (4, 4), strides=(2, 2), padding="SAME", name="up_1")(h)
        return jnp.tanh(h)


class DCGANDiscriminator(nn.Module):
    channels: int = 64
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10

    @nn.compact
    def __call__(self, x, label=None):
        y = _one_hot(label, self.num_classes, x.shape[0])
        if y is not None:
            x = jnp.concatenate([x, jnp.broadcast_to(y[:, None, None, :],
                                                     (*x.shape[:3], y.shape[-1]))], -1)
        c = self.channels
        h = nn.leaky_relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME", name="conv_0")(x),
                          0.2)
        h = nn.leaky_relu(nn.Conv(2 * c, (4, 4), strides=(2, 2), padding="SAME",
                                  name="conv_1")(h), 0.2)
        return _Head(self.class_head, self.num_styles, name="head")(h.reshape(h.shape[0], -1))


class DCGAN(TwoPlayerGAN):
    """DCGAN generator and discriminator for (H, W, C) images, H and W divisible by 4.

    Attributes:
      event_shape: (H, W, C), from the data.
      latent_dim: size of z ~ N(0, I).
      g_channels / d_channels: width c (G: 2c at H/4, c at H/2; D: c then 2c).
      num_classes, class_head, num_styles: as in :class:`MLPGAN`.
    """

    event_shape: Sequence[int] = (28, 28, 1)
    latent_dim: int = 64
    g_channels: int = 64
    d_channels: int = 64
    num_classes: int | None = None
    class_head: bool = False
    num_styles: int = 10

    def setup(self):
        shape = tuple(self.event_shape)
        if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
            raise UserError(f"model.name=dcgan expects (H, W, C) images with H and W divisible "
                             f"by 4; got event shape {shape}.")
        self.generator = DCGANGenerator(shape, self.g_channels, self.num_classes,
                                        groups=min(8, self.g_channels))
        self.discriminator = DCGANDiscriminator(self.d_channels, self.num_classes,
                                                self.class_head, self.num_styles)

