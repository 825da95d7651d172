"""Flow matching on a VAE's latent space (latent flow matching; the recipe of Rombach et
al., 2022, with a VAE in place of their autoencoder) on Fashion-MNIST.

    # 1. the autoencoder: the conv VAE, 32-d latent
    jaxgen train --config configs/vae/vae_fashion_mnist.py --workdir runs/vae_fmnist
    # 2. the prior (this file) on its latents, decoded by it
    jaxgen train  --config configs/latent/fm_vae_fashion_mnist.py --workdir runs/fm_latent
    jaxgen sample --workdir runs/fm_latent --num 64 --out fm_latent.png

data.name=latents encodes the VAE run's own training images (its test images for
held-out data) to one posterior draw z ~ q(z|x) each (data.latent=sample; `mean`: the
posterior means), 32-d points; the prior is the toy flow-matching
MLP, the samples are latents that the VAE's decoder turns into images (end-of-run grids
and `jaxgen sample`). Everything not set here is configs/flow_matching/toy2d.py's.
"""

from jaxgen.configs.flow_matching.toy2d import get_config as flow_matching_toy2d
from jaxgen.configs.latent import on_vae_latents


def get_config():
    c = flow_matching_toy2d()
    on_vae_latents(c, steps=5000)
    c.model.features = (512, 512, 512)
    return c
