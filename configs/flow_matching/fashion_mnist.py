"""Conditional flow matching on Fashion-MNIST (offline, Debian's dataset-fashion-mnist).

    jaxgen train --config configs/flow_matching/fashion_mnist.py --workdir runs/fm_fmnist
    jaxgen eval  --workdir runs/fm_fmnist          # bits/dim, Hutchinson divergence (quick)
    jaxgen eval  --workdir runs/fm_fmnist --full   # all 10000 test images, RK4 x 50 (hours)

Training runs 3000 steps; the default eval is quick, a check of a run (128 test images,
RK4 x 20), `--full` (eval.full) the number to quote. The README gives the measured times.

A small U-Net sized for CPU; scale model.channels and train.steps up on a GPU.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.path = ""  # tfds data_dir; default ~/.cache/jaxgen/tfds (prepared on first use)

    c.model.name = "unet"
    c.model.channels = (32, 64)
    c.model.num_res_blocks = 1
    c.model.time_dim = 128
    c.model.groups = 8

    c.objective.name = "flow_matching"
    c.objective.sigma_min = 0.0

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 3000
    c.train.batch_size = 64
    c.train.log_every = 50
    c.train.checkpoint_every = 500
    c.train.sample_every = 1000
    c.train.ema_decay = 0.999

    c.sample.num = 64
    c.sample.steps = 50
    c.sample.method = "heun"

    # quick (about a minute on 2 CPU cores); --full: the whole test set, RK4 x 50
    c.eval.num_examples = 128
    c.eval.batch_size = 64
    c.eval.ode_steps = 20
    c.eval.ode_method = "rk4"
    c.eval.divergence = "hutchinson"
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000 eval.batch_size=100 eval.ode_steps=50"
    return c
