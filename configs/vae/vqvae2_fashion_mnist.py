"""VQ-VAE-2 (Razavi et al., 2019) on Fashion-MNIST: a 7x7 top and a 14x14 bottom code map.

    jaxgen train --config configs/vae/vqvae2_fashion_mnist.py --workdir runs/vqvae2
    jaxgen codes --workdir runs/vqvae2 --out runs/vqvae2_codes_train.npz --split train
    jaxgen codes --workdir runs/vqvae2 --out runs/vqvae2_codes_test.npz --split test
    # then the priors: configs/autoregressive/vqvae2_top_prior.py, vqvae2_bottom_prior.py

Two levels, each the one-level VQ-VAE's quantiser with its own K = 128 codebook (EMA,
restarts) and commitment term (β = 0.25); the bottom encoder sees the decoded top, the
decoder both maps (jaxgen/families/vae/vqvae2.py). The training log has mse and, per
level, commitment_*, perplexity_*, usage_*, dead_codes_*; pictures: reconstructions and
each level's code usage. Everything else is the one-level config's.
"""

from jaxgen.configs.vae.vqvae_fashion_mnist import get_config as vqvae_fashion_mnist


def get_config():
    c = vqvae_fashion_mnist()
    c.model.name = "vqvae2_conv"
    c.objective.name = "vqvae2"
    c.train.steps = 2000
    return c
