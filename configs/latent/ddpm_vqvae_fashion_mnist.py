"""DDPM on a VQ-VAE's pre-quantised latents (Fashion-MNIST); samples are quantised to the
nearest codes and decoded by the VQ-VAE.

    jaxgen train  --config configs/vae/vqvae_fashion_mnist.py --workdir runs/vqvae_fmnist
    jaxgen train  --config configs/latent/ddpm_vqvae_fashion_mnist.py --workdir runs/ddpm_vq
    jaxgen sample --workdir runs/ddpm_vq --num 64 --out ddpm_vq.png

data.latent=pre_quantized reads the VQ-VAE encoder's output z_e(x) before quantisation
(7 x 7 x 16 maps, flattened to 784-d points) of the run's own training images (its test
images for held-out data). The diffusion model is ddpm_vae_fashion_mnist.py's (DDPM,
T = 1000, linear schedule, eps prediction, an MLP, DDIM in 50 steps), wider; a
sampled map is snapped to its nearest codebook vectors, as the VQ-VAE's own decoder sees
them, and decoded. The lectures' other pairing, an autoregressive prior over the discrete
codes themselves, is `jaxgen codes` + configs/autoregressive/vqvae_prior.py.
"""

from jaxgen.configs.latent.ddpm_vae_fashion_mnist import get_config as ddpm_vae


def get_config():
    c = ddpm_vae()
    c.data.workdir = "runs/vqvae_fmnist"
    c.data.latent = "pre_quantized"  # the encoder's continuous maps z_e(x)
    c.model.features = (1024, 1024, 1024)
    return c
