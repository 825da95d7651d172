"""DDPM (Ho et al., 2020) on a 2-D toy density: the lecture's Algorithms 1 and 2.

    jaxgen train --config configs/diffusion/ddpm_toy2d.py --workdir runs/ddpm_toy2d
    jaxgen eval  --workdir runs/ddpm_toy2d     # VLB and probability-flow-ODE NLL, MMD²

Writes samples/forward_process.png and samples/reverse_process.png at the end.
Try --config.sample.sampler=ddim --config.sample.steps=50, sampler=dpm_solver
(DPM-Solver++(2M); 10-20 steps match DDIM-50 here), or sampler=ode.

24000 steps x 512 (212 s of training measured here, on 2 CPU cores partly shared with
another run). Why not 8000: the probability-flow ODE's NLL keeps improving after the
samples already meet the sampler target (sliced W1 0.7-2.0x its floor at 8000 steps). On
random anisotropic mixtures it was not tuned on (`jaxgen reproduce defaults-quality`,
data.name=random_mixture, mixture_seed 1, 2, 3), 8000 steps left 0.084, 0.064 and
0.099 nats above the true entropy (target: < 0.1), 24000 steps 0.040, 0.041 and 0.038.
Tuned on mixture_seed 12 (7 components): 8000 steps 0.223, 16000 0.102, 24000 0.039;
at 8000 steps a learning rate of 2e-3 (0.199) or the cosine schedule (0.381) did not help.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "mlp"
    c.model.features = (256, 256, 256)
    c.model.time_dim = 64

    c.objective.name = "ddpm"
    c.objective.num_steps = 1000  # T
    c.objective.schedule = "linear"  # linear | cosine
    c.objective.prediction = "eps"  # eps (the lecture's) | x0 | v
    c.objective.variance = "beta"  # σ_t² of p(x_{t-1} | x_t): beta | beta_tilde
    c.objective.label_dropout = 0.0  # classifier-free guidance (with model.num_classes)

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 24000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 4000
    c.train.ema_decay = 0.999

    c.sample.num = 2000
    c.sample.sampler = "ddpm"  # ddpm (ancestral, all T steps) | ddim | ode | dpm_solver
    c.sample.steps = 100  # ddim / ode steps
    c.sample.method = "rk4"  # ode solver
    c.sample.eta = 0.0  # ddim: 0 deterministic, 1 = DDPM's β̃ variance
    c.sample.clip_x0 = 0.0  # 0: no clipping of the predicted x_0 (points are unbounded)

    c.eval.num_examples = 2000
    c.eval.batch_size = 1000
    c.eval.ode_steps = 100
    c.eval.vlb_steps = 0  # 0: all T−1 KL terms of the bound
    return c
