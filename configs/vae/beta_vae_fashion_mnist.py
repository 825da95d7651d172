"""β-VAE (Higgins et al., 2017) on Fashion-MNIST: the VAE config with β = 4 and a KL warm-up.

    jaxgen train  --config configs/vae/beta_vae_fashion_mnist.py --workdir runs/beta_vae_fmnist
    jaxgen eval   --workdir runs/beta_vae_fmnist   # IWAE (k = 100; --full: 1000) and ELBO bits/dim

β > 1 weighs the KL to the factorised prior more, trading reconstruction (and
likelihood: the β = 1 ELBO reported by eval is lower) for a latent space whose
coordinates vary independently; fewer dimensions stay active (the training log's
kl_active_dims). The KL weight rises linearly from 0 to β over the first
objective.kl_warmup_steps steps. A 10-d latent keeps the traversals readable.
Eval settings as in vae_fashion_mnist.py (quick by default; --full: k = 1000, all images).
"""

from jaxgen.configs.vae.vae_fashion_mnist import get_config as vae_fashion_mnist


def get_config():
    c = vae_fashion_mnist()
    c.model.latent_dim = 10
    c.objective.beta = 4.0
    c.objective.kl_warmup_steps = 1000
    return c
