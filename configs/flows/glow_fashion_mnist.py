"""Glow (Kingma & Dhariwal, 2018) on Fashion-MNIST (offline), exact bits/dim.

    jaxgen train --config configs/flows/glow_fashion_mnist.py --workdir runs/glow_fmnist
    jaxgen eval  --workdir runs/glow_fmnist

2 scales of squeeze → K × (ActNorm → 1×1 conv (LU) → affine coupling) → split
with a learned prior; sized for CPU (K = 4, 32 hidden channels).
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "glow"
    c.model.steps = 4
    c.model.num_scales = 2
    c.model.hidden = 32
    c.model.num_blocks = 1
    c.model.learned_prior = True
    c.model.logit_alpha = 0.0

    c.objective.name = "flow_nll"

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200
    c.optim.grad_clip = 100.0

    c.train.steps = 2000
    c.train.batch_size = 64
    c.train.log_every = 50
    c.train.checkpoint_every = 500
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999

    c.sample.num = 64
    c.sample.temperature = 0.7

    c.eval.num_examples = 10000  # the whole test set: one pass per image, within a minute
    c.eval.batch_size = 500
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000"  # --full: the default already is
    return c
