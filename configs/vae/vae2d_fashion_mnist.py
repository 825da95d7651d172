"""VAE with a 2-d latent on Fashion-MNIST: the latent manifold picture (Kingma & Welling, fig. 4).

    jaxgen train  --config configs/vae/vae2d_fashion_mnist.py --workdir runs/vae2d_fmnist
    jaxgen eval   --workdir runs/vae2d_fmnist    # IWAE (k = 100; --full: 1000) and ELBO bits/dim

The vae_fashion_mnist.py model with model.latent_dim = 2: each decoded point of
a grid of Gaussian quantiles Φ⁻¹((i + ½)/n) on both axes shows how the classes
are laid out in the plane (`info["latent"].manifold_grid`). Two dimensions
cost likelihood (a worse bound than the 32-d model); the picture is the point.
Eval settings as in vae_fashion_mnist.py (quick by default; --full: k = 1000, all images).
"""

from jaxgen.configs.vae.vae_fashion_mnist import get_config as vae_fashion_mnist


def get_config():
    c = vae_fashion_mnist()
    c.model.latent_dim = 2
    return c
