"""Consistency training (Song et al., 2023) on a 2-D toy density: one network call per
sample.

    jaxgen train --config configs/diffusion/consistency_toy2d.py --workdir runs/ct_toy2d
    jaxgen eval  --workdir runs/ct_toy2d     # MMD² and the mixture metrics of 1-step samples

The data, network, optimiser and loop are ncsn_toy2d.py's. CT's schedule (s0 = 2, s1 = 150,
μ0 = 0.9) over K = objective.schedule_steps = train.steps. The improved variant:
--config.objective.improved=true --config.objective.s0=10 --config.objective.s1=1280.
Two-step samples: --config.sample.steps=2 (re-noised to σ = sample.sigmas[0]).
"""

import ml_collections

from jaxgen.configs.diffusion.ncsn_toy2d import get_config as ncsn_toy2d


def get_config():
    c = ncsn_toy2d()
    c.objective = ml_collections.ConfigDict()
    c.objective.name = "consistency"
    c.objective.sigma_data = 2.0  # the data's std
    c.objective.sigma_min = 0.002
    c.objective.sigma_max = 80.0
    c.objective.improved = False
    c.objective.s0 = 2
    c.objective.s1 = 150
    c.objective.schedule_steps = 8000  # K
    c.objective.mu0 = 0.9

    c.sample = ml_collections.ConfigDict()
    c.sample.num = 4000
    c.sample.steps = 1
    c.sample.sigmas = (0.821,)
    return c
