"""Conditional flow matching on a 2-D toy density (the README's default run).

    jaxgen train --config configs/flow_matching/toy2d.py --workdir runs/fm_toy2d
    jaxgen eval  --workdir runs/fm_toy2d

Other toys: --config.data.name=checkerboard (ring8, grid25, moons, swissroll,
pinwheel). Those with a closed-form density report the true entropy in eval.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "mlp"
    c.model.features = (256, 256, 256)
    c.model.time_dim = 64

    c.objective.name = "flow_matching"
    c.objective.sigma_min = 0.0  # 0 = the lecture's straight path; > 0: the OT path (Lipman)

    c.optim.learning_rate = 2e-3
    c.optim.warmup_steps = 200

    c.train.steps = 8000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 2000
    c.train.ema_decay = 0.999

    c.sample.num = 4000
    c.sample.steps = 100
    c.sample.method = "heun"

    c.eval.num_examples = 5000
    c.eval.batch_size = 1000
    c.eval.ode_steps = 100
    c.eval.ode_method = "rk4"
    return c
