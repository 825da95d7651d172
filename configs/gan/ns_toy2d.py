"""Non-saturating GAN (Goodfellow et al., 2014, the generator "trick") on ring8.

    jaxgen train --config configs/gan/ns_toy2d.py --workdir runs/gan_ns_ring8
    jaxgen eval  --workdir runs/gan_ns_ring8      # MMD and the mode metrics

The 2-D mode-collapse setting of VEEGAN (Srivastava et al., 2017) and PacGAN
(Lin et al., 2018): a ring of 8 Gaussians (std 0.02) or, with
--config.data.name=grid25, a 5x5 grid (std 0.05); a 2-d latent; MLP generator
and discriminator; Adam(5e-4, β1 = 0.5). `jaxgen eval` reports, from
eval.mode_samples = 2500 generated points, the modes covered, the % of
high-quality samples (within 3σ of a mode) and the reverse KL over modes.
minimax_toy2d.py, wgan_toy2d.py and wgan_gp_toy2d.py change only the game.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "ring8"

    c.model.name = "gan_mlp"
    c.model.latent_dim = 2
    c.model.g_features = (128, 128, 128)
    c.model.d_features = (128, 128, 128)

    c.objective.name = "gan"
    c.objective.loss = "ns"  # minimax | ns | wgan | wgan_gp | hinge
    c.objective.n_critic = 1  # discriminator updates per generator update
    c.objective.split_batch = True  # n_critic > 1: each critic update gets batch_size/n_critic
    c.objective.clip = 0.01  # wgan: weight clipping
    c.objective.gp_weight = 10.0  # wgan_gp: lambda
    c.objective.style_weight = 0.0  # CAN's style ambiguity (labelled images; can_fashion_mnist)
    c.objective.class_weight = 1.0  # CAN: weight of D's class head loss

    c.optim.name = "adam"
    c.optim.learning_rate = 5e-4  # 1e-4 leaves ring8 unconverged after 10k steps
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0

    c.train.steps = 10000
    c.train.batch_size = 256
    c.train.log_every = 200
    c.train.checkpoint_every = 2500
    c.train.sample_every = 2500
    c.train.ema_decay = 0.0  # measure the game's own generator, not an average

    c.sample.num = 2500
    c.sample.truncation = 0.0  # > 0: the truncation trick

    c.eval.num_examples = 2500
    c.eval.mmd_num = 2500
    c.eval.mode_samples = 2500
    return c
