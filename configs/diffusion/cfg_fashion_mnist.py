"""Class-conditional DDPM on Fashion-MNIST with classifier-free guidance (Ho & Salimans, 2022).

Labels are dropped to the null label with probability objective.label_dropout
in training; at sampling time ε̃ = (1 + w)·ε(x, c) − w·ε(x, ∅).

    jaxgen train  --config configs/diffusion/cfg_fashion_mnist.py --workdir runs/cfg_fmnist
    # writes samples/classes_w0.png, classes_w1.png, classes_w3.png (a row per class)
    jaxgen sample --workdir runs/cfg_fmnist --num 80 --out w2.png --classes --config.sample.guidance=2
"""

from jaxgen.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "unet"
    c.model.channels = (32, 64)
    c.model.num_res_blocks = 1
    c.model.time_dim = 128
    c.model.groups = 8
    c.model.num_classes = 10

    c.objective.name = "ddpm"
    c.objective.num_steps = 1000
    c.objective.schedule = "linear"
    c.objective.prediction = "eps"
    c.objective.variance = "beta"
    c.objective.label_dropout = 0.1

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 3000
    c.train.batch_size = 64
    c.train.log_every = 50
    c.train.checkpoint_every = 250
    c.train.sample_every = 1000
    c.train.ema_decay = 0.995

    c.sample.num = 64
    c.sample.sampler = "ddim"
    c.sample.steps = 50
    c.sample.eta = 0.0
    c.sample.method = "rk4"
    c.sample.clip_x0 = 1.0
    c.sample.guidance = 0.0  # w; 0 = the plain conditional model
    c.sample.guidance_grid = (0.0, 1.0, 3.0)  # end-of-run class grids

    c.eval.num_examples = 500
    c.eval.batch_size = 100
    c.eval.vlb_steps = 100
    c.eval.ode_steps = 50
    c.eval.ode_method = "rk4"
    c.eval.divergence = "hutchinson"
    c.eval.mmd_num = 0
    return c
