"""A plain (deterministic) autoencoder with the 2-d VAE's networks on Fashion-MNIST.

    jaxgen train  --config configs/vae/ae2d_fashion_mnist.py --workdir runs/ae2d_fmnist
    jaxgen sample --workdir runs/ae2d_fmnist --num 64 --out ae.png   # decoded z ~ N(0, I)

vae2d_fashion_mnist.py with objective.encoder = "deterministic": z = μ(x), no
noise and no KL term, the same discretised logistic decoder, so the loss is the
reconstruction NLL −log P(x | μ(x)) alone. Nothing ties its codes to N(0, I):
decoding prior draws shows how good an autoencoder is at generation (the
lecture's "AE are very good at compression but bad at generation"; `jaxgen
reproduce ae-vs-vae`). It has no likelihood bound (no posterior).
"""

from jaxgen.configs.vae.vae2d_fashion_mnist import get_config as vae2d_fashion_mnist


def get_config():
    c = vae2d_fashion_mnist()
    c.objective.encoder = "deterministic"  # gaussian (the VAE) | deterministic (an AE)
    return c
