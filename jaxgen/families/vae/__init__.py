"""The VAE family: the VAE (Kingma & Welling, 2014), beta-VAE and the IWAE bound; the
VQ-VAE (van den Oord et al., 2017), VQ-VAE-2 (Razavi et al., 2019) and `jaxgen codes`, which
exports their code maps."""

from jaxgen.families.vae import commands
from jaxgen.families.vae.config import VAEEval, VAESample, VAESettings, VQVAESettings
from jaxgen.kernel.registry import Command, ObjectiveSpec, register_command, register_objective

register_objective(ObjectiveSpec(
    "vae", "jaxgen.families.vae.vae:make", settings=VAESettings, sample=VAESample,
    eval=VAEEval, summary="a VAE (ELBO / IWAE bound)"))
register_objective(ObjectiveSpec(
    "vqvae", "jaxgen.families.vae.vqvae:make", settings=VQVAESettings, kinds=("images",),
    summary="a VQ-VAE (discrete codes; uniform-prior bound)"))
register_objective(ObjectiveSpec(
    "vqvae2", "jaxgen.families.vae.vqvae2:make", settings=VQVAESettings, kinds=("images",),
    summary="a VQ-VAE-2 (top and bottom code maps; uniform-prior bound)"))
register_command(Command("codes", "export a VQ-VAE's code maps (to train a prior on)",
                         commands.configure_codes, commands.codes))
