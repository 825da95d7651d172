"""VAE on a 2-D toy density: MLP encoder/decoder, Gaussian decoder with learned variance.

    jaxgen train --config configs/vae/vae_toy2d.py --workdir runs/vae_toy2d
    jaxgen eval  --workdir runs/vae_toy2d      # IWAE (k = 1000) nll_nats vs the true entropy

p(x) = ∫ N(x; μ(z), diag s(z)²) N(z; 0, I) dz is a continuous mixture of
Gaussians; eval reports the IWAE bound (k = eval.iwae_k) and the ELBO in nats,
beside the data's true entropy, and MMD between samples and held-out points.
Samples are draws x ~ p(x|z) (sample.mode=draw), so the scatter shows the
model's density, not only the decoder means (mode=mean: a curve, typically).
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "vae_mlp"
    c.model.latent_dim = 2
    c.model.features = (128, 128)

    c.objective.name = "vae"
    c.objective.decoder = "gaussian_learned"
    c.objective.learned_std = "pixel"  # gaussian_learned: a log-scale per dimension, or "example"
    c.objective.decoder_std = 0.1  # decoder=gaussian: fixed scale
    c.objective.beta = 1.0
    c.objective.kl_warmup_steps = 0

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 10000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 2000
    c.train.ema_decay = 0.999

    c.sample.num = 4000
    c.sample.mode = "draw"  # mean | draw

    c.eval.num_examples = 5000
    c.eval.batch_size = 500
    c.eval.iwae_k = 1000
    c.eval.iwae_chunk = 100
    c.eval.elbo_samples = 1
    c.eval.mmd_num = 2000
    return c
