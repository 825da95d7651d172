"""DDPM on a VAE's latent space (Fashion-MNIST); the samples are decoded by the VAE.

    jaxgen train  --config configs/vae/vae_fashion_mnist.py --workdir runs/vae_fmnist
    jaxgen train  --config configs/latent/ddpm_vae_fashion_mnist.py --workdir runs/ddpm_latent
    jaxgen sample --workdir runs/ddpm_latent --num 64 --out ddpm_latent.png

configs/diffusion/ddpm_toy2d.py's DDPM (T = 1000, linear schedule, eps prediction, MLP)
on posterior draws of the VAE run's 32-d latent (data.name=latents, see fm_vae_fashion_mnist.py),
wider, DDIM with 50 steps for sampling.
"""

from jaxgen.configs.diffusion.ddpm_toy2d import get_config as ddpm_toy2d
from jaxgen.configs.latent import on_vae_latents


def get_config():
    c = ddpm_toy2d()
    on_vae_latents(c, steps=8000)
    c.model.features = (512, 512, 512)
    c.sample.sampler = "ddim"
    c.sample.steps = 50
    return c
