"""The minimax GAN (Goodfellow et al., 2014) with its saturating generator loss
E log(1 − D(G(z))), on ring8; otherwise as ns_toy2d.py.

    jaxgen train --config configs/gan/minimax_toy2d.py --workdir runs/gan_minimax_ring8
"""

from jaxgen.configs.gan.ns_toy2d import get_config as ns_toy2d


def get_config():
    c = ns_toy2d()
    c.objective.loss = "minimax"
    return c
