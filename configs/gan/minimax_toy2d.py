"""The minimax GAN (Goodfellow et al., 2014) with its saturating generator loss
E log(1 − D(G(z))), on ring8; otherwise as ns_toy2d.py.

    jaxgen train --config configs/gan/minimax_toy2d.py --workdir runs/gan_minimax_ring8
"""

from pathlib import Path

from jaxgen.config import load_config_file


def get_config():
    c = load_config_file(Path(__file__).with_name("ns_toy2d.py"))
    c.objective.loss = "minimax"
    return c
