"""EDM (Karras et al., 2022) on Fashion-MNIST with the flow-matching run's U-Net.

    jaxgen train --config configs/diffusion/edm_fashion_mnist.py --workdir runs/edm_fmnist
    jaxgen eval  --workdir runs/edm_fmnist     # bits/dim by the probability-flow ODE
    jaxgen sample --workdir runs/edm_fmnist --num 64 --out edm.png

Images in [-1, 1] have σ_d = 0.5 (the paper's); the noise levels, loss weight and the
18-step Heun sampler (NFE 35) are the paper's. Everything but the objective and the
sampler comes from configs/flow_matching/fashion_mnist.py; --config.model.name=dit with
the DiT keys of flow_matching/dit_fashion_mnist.py swaps the backbone.
"""

import ml_collections

from jaxgen.configs.flow_matching.fashion_mnist import get_config as fashion_mnist


def get_config():
    c = fashion_mnist()
    c.objective = ml_collections.ConfigDict()
    c.objective.name = "edm"
    c.objective.sigma_data = 0.5
    c.objective.p_mean = -1.2
    c.objective.p_std = 1.2
    c.objective.sigma_min = 0.002
    c.objective.sigma_max = 80.0

    c.sample = ml_collections.ConfigDict()
    c.sample.num = 64
    c.sample.sampler = "heun"
    c.sample.steps = 18  # NFE 35
    c.sample.rho = 7.0
    c.sample.s_churn = 0.0
    return c
