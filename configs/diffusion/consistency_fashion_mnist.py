"""Consistency training (Song et al., 2023) on Fashion-MNIST with the flow-matching run's
U-Net: samples in one network call (two with --config.sample.steps=2).

    jaxgen train --config configs/diffusion/consistency_fashion_mnist.py --workdir runs/ct_fmnist
    jaxgen sample --workdir runs/ct_fmnist --num 64 --out ct.png

CT's schedule as the paper's CIFAR-10 runs (s0 = 2, s1 = 150, μ0 = 0.9) over K =
objective.schedule_steps = train.steps, σ_d = 0.5 (images in [-1, 1]); the improved variant
(Song & Dhariwal, 2023): --config.objective.improved=true --config.objective.s0=10
--config.objective.s1=1280. Consistency distillation from an EDM run
(configs/diffusion/edm_fashion_mnist.py): --config.objective.teacher_workdir=RUN. The data,
network, optimiser and loop are configs/flow_matching/fashion_mnist.py's.
"""

from jaxgen.configs.diffusion.consistency_toy2d import get_config as consistency_toy2d
from jaxgen.configs.flow_matching.fashion_mnist import get_config as fashion_mnist


def get_config():
    c = fashion_mnist()
    ct = consistency_toy2d()
    c.objective, c.sample = ct.objective, ct.sample
    c.objective.sigma_data = 0.5
    c.objective.schedule_steps = c.train.steps  # K
    c.sample.num = 64
    return c
