"""WGAN-GP (Gulrajani et al., 2017) on ring8 with the lecture's Algorithm 1 defaults:
λ = 10, n_critic = 5, Adam(α = 1e-4, β1 = 0, β2 = 0.9).

    jaxgen train --config configs/gan/wgan_gp_toy2d.py --workdir runs/wgan_gp_ring8

train.batch_size = n_critic × m: each critic iteration samples its own m = 64
real points (Algorithm 1, line 4); ε ~ U[0, 1] is drawn per example.
"""

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    c.objective.loss = "wgan_gp"
    c.objective.n_critic = 5
    c.objective.gp_weight = 10.0
    c.optim.learning_rate = 1e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.train.batch_size = 5 * 64
    return c
