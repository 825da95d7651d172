"""Declared settings of the GAN family: the GAN losses (minimax, NS, WGAN, WGAN-GP, hinge;
conditional, CAN), pix2pix and CycleGAN."""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, positive, setting
from jaxgen.samplers.settings import PriorTemperature

# the names of gan.LOSSES, the table of games (kept equal there)
LOSS_NAMES = ("minimax", "ns", "wgan", "wgan_gp", "hinge", "lsgan")


@dataclasses.dataclass(frozen=True)
class GameSettings:
    """A GAN's training settings besides the game itself (what a plugin loss declares)."""

    n_critic: int = setting(1, "discriminator updates per generator update", check=positive)
    split_batch: bool = setting(True, "n_critic > 1: each critic update gets its own "
                                      "batch_size / n_critic examples")
    clip: float = setting(0.01, "wgan: the critic's weights are clipped to [-c, c]",
                          check=positive)
    gp_weight: float = setting(10.0, "wgan_gp: lambda of the gradient penalty",
                               check=non_negative)
    style_weight: float = setting(0.0, "CAN: weight of G's style ambiguity (needs "
                                       "model.class_head)", check=non_negative)
    class_weight: float = setting(1.0, "CAN: weight of D's class head loss",
                                  check=non_negative)
    ortho_weight: float = setting(0.0, "BigGAN: beta of G's orthogonal regularisation "
                                       "||W^T W * (1 - I)||_F^2 over its kernels (0: off)",
                                  check=non_negative)
    unroll_steps: int = setting(0, "unrolled GAN (Metz et al., 2017): G's loss is taken "
                                   "against D after k differentiable gradient steps on D's "
                                   "loss (0: the plain game)", check=non_negative)
    unroll_lr: float = setting(1e-2, "unroll_steps > 0: the step size of each unrolled "
                                     "(plain gradient) step of D", check=positive)
    pack: int = setting(1, "PacGAN (Lin et al., 2018): D judges packs of m samples of one "
                           "source, concatenated along the last axis (1: one at a time)",
                        check=positive)


@dataclasses.dataclass(frozen=True)
class GANSettings(GameSettings):
    loss: str = setting("ns", "the game: a name of the loss table gan.LOSSES",
                        choices=LOSS_NAMES)


@dataclasses.dataclass(frozen=True)
class GANSample(PriorTemperature):
    truncation: float = setting(0.0, "> 0: the truncation trick, z ~ N(0, I) truncated to "
                                     "[-psi, psi] (0: none)", check=non_negative)


@dataclasses.dataclass(frozen=True)
class Pix2PixSettings:
    task: str = setting("edges", "the paired task built from each image",
                        choices=("edges", "inpaint"))
    l1_weight: float = setting(100.0, "lambda of the L1 term (Isola et al.)",
                               check=non_negative)
    adv_weight: float = setting(1.0, "weight of the generator's adversarial term (0: L1 "
                                     "alone, Isola et al.'s ablation; D still trains)",
                                check=non_negative)
    edge_threshold: float = setting(2.0, "edges: Sobel magnitude (model space) counted as an "
                                         "edge", check=non_negative)
    hole_size: int = setting(14, "inpaint: side of the square hole", check=positive)


@dataclasses.dataclass(frozen=True)
class CycleGANSettings:
    class_x: int = setting(7, "the label of domain X", check=non_negative)
    class_y: int = setting(9, "the label of domain Y", check=non_negative)
    cycle_weight: float = setting(10.0, "lambda_cyc", check=non_negative)
    identity_weight: float = setting(0.0, "lambda_id of the identity loss (0: off)",
                                     check=non_negative)
