"""Latent diffusion on a VQ-VAE's pre-quantised maps (Fashion-MNIST): a DDPM with a
convolutional U-Net on the encoder's 7 x 7 x 16 maps; samples are snapped to the nearest
codes and decoded by the VQ-VAE.

    jaxgen train  --config configs/vae/vqvae_fashion_mnist.py --workdir runs/vqvae_fmnist
    jaxgen train  --config configs/latent/ddpm_vqvae_fashion_mnist.py --workdir runs/ddpm_vq
    jaxgen sample --workdir runs/ddpm_vq --num 64 --out ddpm_vq.png

data.latent=pre_quantized reads the VQ-VAE encoder's output z_e(x) before quantisation of
the run's own training images (its test images for held-out data), and data.keep_shape
keeps them as 7 x 7 x 16 maps, so the denoiser sees their spatial layout (the recipe of
Rombach et al., 2022, whose U-Net denoises an autoencoder's latent maps). The U-Net has
one resolution level (7 x 7 is not halved), model.channels wide; the DDPM is
ddpm_vae_fashion_mnist.py's (T = 1000, linear schedule, eps prediction, DDIM in 50 steps).
A sampled map is snapped to its nearest codebook vectors, as the VQ-VAE's own decoder sees
them, and decoded. The MLP denoiser on the flattened 784-d maps instead:
`jaxgen train --config configs/latent/ddpm_vae_fashion_mnist.py --config.data.workdir=VQ
--config.data.latent=pre_quantized --config.model.features="(1024, 1024, 1024)"`. The
lectures' other pairing, an autoregressive prior over the discrete codes themselves, is
`jaxgen codes` + configs/autoregressive/vqvae_prior.py.
"""

import ml_collections

from jaxgen.configs.latent.ddpm_vae_fashion_mnist import get_config as ddpm_vae


def get_config():
    c = ddpm_vae()
    c.data.workdir = "runs/vqvae_fmnist"
    c.data.latent = "pre_quantized"  # the encoder's continuous maps z_e(x)
    c.data.keep_shape = True  # (7, 7, 16) maps for the U-Net
    c.model = ml_collections.ConfigDict({
        "name": "unet", "channels": (64,), "num_res_blocks": 1, "time_dim": 128,
        "groups": 8})
    c.train.steps = 3000  # 155 ms/step on 2 CPU cores: about 8 minutes
    c.train.batch_size = 128
    return c
