r"""VQ-VAE-2's top prior: the causal transformer over the 7 x 7 top code maps, p(top).

    jaxgen train --config configs/vae/vqvae2_fashion_mnist.py --workdir runs/vqvae2
    jaxgen codes --workdir runs/vqvae2 --out runs/vqvae2_codes_train.npz --split train
    jaxgen codes --workdir runs/vqvae2 --out runs/vqvae2_codes_test.npz --split test
    jaxgen train --config configs/autoregressive/vqvae2_top_prior.py --workdir runs/vqvae2_top_prior
    jaxgen eval  --workdir runs/vqvae2_top_prior    # exact −log p(top) of the test maps

The one-level prior's config (vqvae_prior.py) on the export's `codes_top` array
(data.levels); the bottom prior, p(bottom | top), is vqvae2_bottom_prior.py. The top
maps alone do not decode (the decoder needs both levels), so this run's pictures are
grey code maps; samples through both levels come from the bottom prior.
"""

from jaxgen.configs.autoregressive.vqvae_prior import get_config as vqvae_prior


def get_config():
    c = vqvae_prior()
    c.data.path = "runs/vqvae2_codes_train.npz"
    c.data.eval_path = "runs/vqvae2_codes_test.npz"
    c.data.levels = ("top",)
    c.train.steps = 1000
    return c
