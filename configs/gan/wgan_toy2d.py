"""WGAN with weight clipping (Arjovsky et al., 2017) on ring8: critic weights in
[−c, c], c = 0.01, n_critic = 5, RMSProp with lr 5e-5 (the paper's settings).

    jaxgen train --config configs/gan/wgan_toy2d.py --workdir runs/wgan_ring8

train.batch_size = n_critic × m: each critic update sees its own m = 64 points.
"""

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    c.objective.loss = "wgan"
    c.objective.n_critic = 5
    c.objective.clip = 0.01
    c.optim.name = "rmsprop"
    c.optim.learning_rate = 5e-5
    c.optim.b2 = 0.9  # RMSProp's decay
    c.train.batch_size = 5 * 64
    return c
