"""EDM (Karras et al., 2022) on a 2-D toy density: the preconditioned denoiser, the
log-normal noise levels, and Heun's 18-step sampler (35 network calls).

    jaxgen train --config configs/diffusion/edm_toy2d.py --workdir runs/edm_toy2d
    jaxgen eval  --workdir runs/edm_toy2d      # exact NLL by the probability-flow ODE, MMD²

The data, network, optimiser and training loop are ncsn_toy2d.py's. objective.sigma_data
is the data's standard deviation (8gaussians: 2.03 per coordinate); σ_max = 80 and
σ_min = 0.002 are the paper's. Stochastic sampling (Algorithm 2):
--config.sample.s_churn=40 --config.sample.s_tmin=0.05 --config.sample.s_tmax=50.
"""

import ml_collections

from jaxgen.configs.diffusion.ncsn_toy2d import get_config as ncsn_toy2d


def get_config():
    c = ncsn_toy2d()
    c.objective = ml_collections.ConfigDict()
    c.objective.name = "edm"
    c.objective.sigma_data = 2.0  # the data's std
    c.objective.p_mean = -1.2
    c.objective.p_std = 1.2
    c.objective.sigma_min = 0.002
    c.objective.sigma_max = 80.0

    c.sample = ml_collections.ConfigDict()
    c.sample.num = 4000
    c.sample.sampler = "heun"  # heun (Algorithm 1 / 2) | euler
    c.sample.steps = 18  # N: NFE 2N - 1 = 35
    c.sample.rho = 7.0
    c.sample.s_churn = 0.0  # > 0: Algorithm 2

    c.eval.ode_steps = 100
    c.eval.ode_method = "rk4"
    return c
