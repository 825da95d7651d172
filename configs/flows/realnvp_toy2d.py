"""RealNVP (Dinh et al., 2017) on a 2-D toy density, trained by exact maximum likelihood.

    jaxgen train --config configs/flows/realnvp_toy2d.py --workdir runs/realnvp_toy2d
    jaxgen eval  --workdir runs/realnvp_toy2d      # nll_nats vs the data's true entropy
"""

from jaxgen.core.config import base_config


def get_config():
    c = base_config()
    c.data.name = "8gaussians"

    c.model.name = "realnvp"
    c.model.num_layers = 8
    c.model.hidden = (128, 128)
    c.model.actnorm = True

    c.objective.name = "flow_nll"

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 8000
    c.train.batch_size = 512
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.train.sample_every = 2000
    c.train.ema_decay = 0.999

    c.sample.num = 4000
    c.sample.temperature = 1.0

    c.eval.num_examples = 5000
    c.eval.batch_size = 1000
    return c
