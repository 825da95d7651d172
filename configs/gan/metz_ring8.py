"""The mode-collapse setting of the Unrolled GAN paper (Metz et al., 2017, appendix A,
"mixture of Gaussians"): the minimax GAN on a ring of 8 Gaussians (radius 2, std 0.02).

    jaxgen train --config configs/gan/metz_ring8.py --workdir runs/metz_ring8
    jaxgen train ... --config.objective.unroll_steps=5     # the unrolled GAN
    jaxgen train ... --config.objective.pack=2             # PacGAN2

As the appendix describes it: G = an MLP of 2 hidden layers of 128 ReLU units from
z ~ N(0, I_256) to 2-d, kernels orthogonal with gain 0.8; D scales its input by 1/4,
then 1 hidden layer of 128 ReLU units to a logit; the minimax game (G minimises
E log(1 − D(G(z))), the saturating loss); Adam(lr 1e-4, β1 = 0.5) for both players;
batches of 512. The paper trains 25k+ steps, one player per step; here each step updates
D then G (the trainer's step), so 25 000 steps are 25 000 updates of each player.
Under this protocol the plain GAN visits one mode at a time and rotates between them
(the paper's Figure 1, top row); k = 5 or 10 unrolled D steps spread G over the ring.
"""

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    c.data.name = "ring8"

    c.model.latent_dim = 256
    c.model.g_features = (128, 128)
    c.model.d_features = (128,)
    c.model.d_input_scale = 0.25
    c.model.d_activation = "relu"
    c.model.init_gain = 0.8

    c.objective.loss = "minimax"
    c.objective.unroll_steps = 0  # the unrolled GAN: 5 or 10 (Metz et al.)
    c.objective.unroll_lr = 1e-2  # step size of each unrolled D step
    c.objective.pack = 1  # PacGAN: 2, 3 or 4

    c.optim.learning_rate = 1e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999

    c.train.steps = 25000
    c.train.batch_size = 512
    c.train.checkpoint_every = 5000
    c.train.sample_every = 5000
    c.train.max_to_keep = 6
    return c
