"""DDPM (Ho et al., 2020) on Fashion-MNIST (offline, Debian's dataset-fashion-mnist).

    jaxgen train  --config configs/diffusion/ddpm_fashion_mnist.py --workdir runs/ddpm_fmnist
    jaxgen eval   --workdir runs/ddpm_fmnist      # VLB bits/dim (with its terms), PF-ODE bits/dim
    jaxgen eval   --workdir runs/ddpm_fmnist --full   # all 10000 test images, all 999 KL terms
    jaxgen sample --workdir runs/ddpm_fmnist --num 64 --out ddpm.png --time   # 1000 ancestral steps
    jaxgen sample --workdir runs/ddpm_fmnist --num 64 --out ddim.png --time \
        --config.sample.sampler=ddim --config.sample.steps=50

The VLB is a bound on the probability of the 8-bit image itself (discretised
Gaussian decoder), so images are fed as bin centres, not dequantised. A small
U-Net sized for CPU; scale model.channels and train.steps up on a GPU.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "unet"
    c.model.channels = (32, 64)
    c.model.num_res_blocks = 1
    c.model.time_dim = 128
    c.model.groups = 8

    c.objective.name = "ddpm"
    c.objective.num_steps = 1000
    c.objective.schedule = "linear"
    c.objective.prediction = "eps"
    c.objective.variance = "beta"

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 3000
    c.train.batch_size = 64
    c.train.log_every = 50
    c.train.checkpoint_every = 250
    c.train.sample_every = 1000
    c.train.ema_decay = 0.995

    c.sample.num = 64
    c.sample.sampler = "ddim"  # pictures during training; ddpm = all 1000 ancestral steps
    c.sample.steps = 50
    c.sample.eta = 0.0
    c.sample.method = "rk4"  # sampler=ode
    c.sample.clip_x0 = 1.0

    # quick (about a minute on 2 CPU cores); --full: the whole test set, the whole VLB sum,
    # RK4 x 50
    c.eval.num_examples = 64
    c.eval.batch_size = 64
    c.eval.vlb_steps = 100  # stratified estimate of Σ L_{t-1} (0: all 999 terms)
    c.eval.ode_steps = 20
    c.eval.ode_method = "rk4"
    c.eval.divergence = "hutchinson"
    c.eval.mmd_num = 0
    c.eval.full = ("eval.num_examples=10000 eval.batch_size=100 eval.vlb_steps=0 "
                   "eval.ode_steps=50")
    return c
