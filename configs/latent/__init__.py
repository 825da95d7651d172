"""Priors in an autoencoder's latent space. `on_vae_latents` holds what every
config here shares: the data (one posterior draw per image of the VAE run), the batch, and
the picture and eval sizes of 32-d latent points."""


def on_vae_latents(c, steps: int, workdir: str = "runs/vae_fmnist"):
    """Config `c` (a 2-D toy config of a prior family) retargeted to a VAE run's latents."""
    c.data.name = "latents"
    c.data.workdir = workdir
    c.data.latent = "sample"  # one draw z ~ q(z|x) per image: the aggregate posterior
    c.train.steps = steps
    c.train.batch_size = 256
    c.sample.num = 64
    c.eval.num_examples = 2000
    c.eval.mmd_num = 0
    return c
