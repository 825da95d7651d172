"""Conditional flow matching on Fashion-MNIST with a DiT backbone (Peebles & Xie, 2023).

    jaxgen train --config configs/flow_matching/dit_fashion_mnist.py --workdir runs/fm_dit
    jaxgen eval  --workdir runs/fm_dit

Everything but the network comes from fashion_mnist.py (the U-Net run). The DiT is
smaller than the paper's S at CPU scale: patch 4 (7 x 7 = 49 tokens of a 28 x 28 image),
6 adaLN-Zero blocks of width 192 with 3 heads; `--config.model.depth=0
--config.model.hidden=0 --config.model.num_heads=0` gives DiT-S itself (model.size),
and model.patch=2 the paper's /2 (196 tokens).
"""

import ml_collections

from jaxgen.configs.flow_matching.fashion_mnist import get_config as fashion_mnist


def get_config():
    c = fashion_mnist()
    c.model = ml_collections.ConfigDict()
    c.model.name = "dit"
    c.model.size = "S"  # S | B | L | XL: the paper's depth, width and heads
    c.model.patch = 4
    c.model.depth = 6  # > 0: overrides the size's 12
    c.model.hidden = 192  # > 0: overrides the size's 384
    c.model.num_heads = 3  # > 0: overrides the size's 6
    c.model.positions = "sincos"  # sincos | learned
    return c
