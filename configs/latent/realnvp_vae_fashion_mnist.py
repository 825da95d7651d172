"""A normalizing-flow prior for a VAE: RealNVP on the VAE's latent space (Fashion-MNIST),
its exact log-density the prior's, its samples decoded by the VAE.

    jaxgen train  --config configs/vae/vae_fashion_mnist.py --workdir runs/vae_fmnist
    jaxgen train  --config configs/latent/realnvp_vae_fashion_mnist.py --workdir runs/nvp_latent
    jaxgen sample --workdir runs/nvp_latent --num 64 --out nvp_latent.png

configs/flows/realnvp_toy2d.py's vector RealNVP (affine couplings, ActNorm) on the VAE run's
32-d posterior draws (data.name=latents, see fm_vae_fashion_mnist.py), wider.
"""

from jaxgen.configs.flows.realnvp_toy2d import get_config as realnvp_toy2d
from jaxgen.configs.latent import on_vae_latents


def get_config():
    c = realnvp_toy2d()
    on_vae_latents(c, steps=5000)
    c.model.num_layers = 12
    c.model.hidden = (512, 512)
    return c
