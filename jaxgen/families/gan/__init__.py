"""GANs: the minimax game and its variants (non-saturating, WGAN, WGAN-GP, hinge),
conditional GANs, CAN, DCGAN; pix2pix and CycleGAN (image-to-image); inversion and
latent editing (`jaxgen invert`, `jaxgen edit`)."""

from jaxgen.families.gan import commands
from jaxgen.families.gan.config import CycleGANSettings, GANSample, GANSettings, Pix2PixSettings
from jaxgen.kernel.registry import Command, ObjectiveSpec, register_command, register_objective

register_objective(ObjectiveSpec(
    "gan", "jaxgen.families.gan.gan:make", settings=GANSettings, sample=GANSample,
    summary="a GAN (no likelihood)"))
register_objective(ObjectiveSpec(
    "pix2pix", "jaxgen.families.gan.pix2pix:make", settings=Pix2PixSettings,
    kinds=("images",), summary="pix2pix (paired image-to-image translation)"))
register_objective(ObjectiveSpec(
    "cyclegan", "jaxgen.families.gan.cyclegan:make", settings=CycleGANSettings,
    kinds=("images",), summary="CycleGAN (unpaired image-to-image translation)"))
register_command(Command("invert", "GAN inversion: find z* with G(z*) = a given picture",
                         commands.configure_invert, commands.invert))
register_command(Command("edit", "GAN editing: move z along an attribute's hyperplane normal",
                         commands.configure_edit, commands.edit))
