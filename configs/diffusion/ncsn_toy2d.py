"""Noise-conditional score network (NCSN) + annealed Langevin on a 2-D toy density.

    jaxgen train --config configs/diffusion/ncsn_toy2d.py --workdir runs/ncsn_toy2d
    jaxgen eval  --workdir runs/ncsn_toy2d

Denoising score matching at 10 geometric noise levels σ from 6 (about the
largest distance between two of the 8 Gaussians, Song & Ermon 2020's rule)
down to 0.05 (a seventh of a mode's std 0.354); sampling is annealed Langevin
(Song & Ermon 2019, Algorithm 1) from N(0, 6² I) with a final Tweedie
denoising step. Score models have no likelihood: eval reports MMD² only.
Sliced score matching instead: --config.objective.loss=ssm.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "mlp"
    c.model.features = (256, 256, 256)
    c.model.time_dim = 64

    c.objective.name = "ncsn"
    c.objective.loss = "dsm"  # dsm | ssm
    c.objective.ssm_probe = "rademacher"  # ssm only: rademacher | gaussian
    c.objective.sigma_max = 6.0
    c.objective.sigma_min = 0.05
    c.objective.num_sigmas = 10

    c.optim.learning_rate = 2e-3
    c.optim.warmup_steps = 200

    c.train.steps = 8000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 4000  # each picture: 4000 points x 1000 Langevin steps (~20 s)
    c.train.ema_decay = 0.999

    c.sample.num = 4000
    c.sample.langevin_steps = 100  # T updates per noise level
    c.sample.step_lr = 5e-4  # ε: level i steps α_i = ε σ_i² / σ_L² (0.2 σ_L²)
    c.sample.denoise = True  # final Tweedie step x + σ_L² s(x, σ_L)

    c.eval.num_examples = 5000
    c.eval.mmd_num = 2000
    return c
