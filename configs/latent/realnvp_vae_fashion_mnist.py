"""A normalizing-flow prior for a VAE: RealNVP on the VAE's latent space (Fashion-MNIST),
its exact log-density the prior's, its samples decoded by the VAE.

    jaxgen train  --config configs/vae/vae_fashion_mnist.py --workdir runs/vae_fmnist
    jaxgen train  --config configs/latent/realnvp_vae_fashion_mnist.py --workdir runs/nvp_latent
    jaxgen sample --workdir runs/nvp_latent --num 64 --out nvp_latent.png

configs/flows/realnvp_toy2d.py's vector RealNVP (affine couplings, ActNorm) on the VAE run's
32-d posterior draws (data.name=latents, see fm_vae_fashion_mnist.py), wider.
"""

from jaxgen.configs.flows.realnvp_toy2d import get_config as realnvp_toy2d


def get_config():
    c = realnvp_toy2d()
    c.data.name = "latents"
    c.data.workdir = "runs/vae_fmnist"
    c.data.latent = "sample"  # one draw z ~ q(z|x) per image: the aggregate posterior
    c.model.num_layers = 12
    c.model.hidden = (512, 512)
    c.train.steps = 5000
    c.train.batch_size = 256
    c.sample.num = 64
    c.eval.num_examples = 2000
    c.eval.mmd_num = 0
    return c
