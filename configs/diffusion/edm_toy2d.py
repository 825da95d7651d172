"""EDM (Karras et al., 2022) on a 2-D toy density: the preconditioned denoiser, the
log-normal noise levels, and Heun's 18-step sampler (35 network calls).

    jaxgen train --config configs/diffusion/edm_toy2d.py --workdir runs/edm_toy2d
    jaxgen eval  --workdir runs/edm_toy2d      # exact NLL by the probability-flow ODE, MMD²

objective.sigma_data is the data's standard deviation (8gaussians: 2.03 per coordinate);
σ_max = 80 and σ_min = 0.002 are the paper's. Stochastic sampling (Algorithm 2):
--config.sample.s_churn=40 --config.sample.s_tmin=0.05 --config.sample.s_tmax=50.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "mlp"
    c.model.features = (256, 256, 256)
    c.model.time_dim = 64

    c.objective.name = "edm"
    c.objective.sigma_data = 2.0  # the data's std
    c.objective.p_mean = -1.2
    c.objective.p_std = 1.2
    c.objective.sigma_min = 0.002
    c.objective.sigma_max = 80.0

    c.optim.learning_rate = 2e-3
    c.optim.warmup_steps = 200

    c.train.steps = 8000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 4000
    c.train.ema_decay = 0.999

    c.sample.num = 4000
    c.sample.sampler = "heun"  # heun (Algorithm 1 / 2) | euler
    c.sample.steps = 18  # N: NFE 2N - 1 = 35
    c.sample.rho = 7.0
    c.sample.s_churn = 0.0  # > 0: Algorithm 2

    c.eval.num_examples = 5000
    c.eval.mmd_num = 2000
    c.eval.ode_steps = 100
    c.eval.ode_method = "rk4"
    return c
