"""Flow matching on CIFAR-10: the CIFAR-10 recipe of Lipman, Havasi, Holderrieth, Shaul, Le,
Karrer, Chen, Lopez-Paz, Ben-Hamu & Gat, 2024, "Flow Matching Guide and Code"
(arXiv:2412.06264), the official code github.com/facebookresearch/flow_matching: the
Results table of examples/image/README.md gives FID 2.07 for the unconditional CIFAR-10 U-Net
after 1800 epochs (50000 samples against the training set, Heun on the EDM time grid,
"nfe" 50).

    jaxgen train --config flow_matching/fm_cifar10 --workdir runs/fm_cifar10 \
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/fm_cifar10 --full      # bits/dim over the test set
    jaxgen sample --workdir runs/fm_cifar10 --num 50000 --out samples.npz   # for FID

The network is MODEL_CONFIGS["cifar10"] of examples/image/models/model_configs.py, the ADM
U-Net of Dhariwal & Nichol (2021) as examples/image/models/unet.py writes it: model
channels 128 with multipliers (2, 2, 2) (256 wide at 32, 16 and 8 pixels), 4 ResBlocks per
resolution (model.layout=ddpm: 5 on the way up), attention at 16x16 (attention_resolutions
[2], a downsampling rate) and in the middle with one head, dropout 0.3, scale-shift norm,
average pooling / nearest upsampling without convs (conv_resample False), GroupNorm 32,
sinusoidal time features of size 128 of t in [0, 1] as it is (model.time_scale=1) into a
512 MLP. The repository states no parameter count; instantiating its UNetModel with that
config (torch 2.13) gives 55,676,419, and jaxgen's network has 55,676,419.

Hyperparameters (the README's command and the example's defaults: train_arg_parser.py,
train.py, training/train_loop.py, models/ema.py, training/data_transform.py): the
straight path x_t = t x1 + (1 - t) x0 (CondOTProbPath) with the velocity loss, training times
skewed toward the data (--skewed_timesteps: objective.time_sampling=skewed); AdamW with
learning rate 1e-4, betas (0.9, 0.95), torch's default weight decay 0.01, constant, no
warmup, no gradient clipping; global batch 512 (64 per GPU on 1 node of 8 GPUs); EMA 0.999
with the warm-up min(0.999, (1+n)/(10+n)), which is jaxgen's; random horizontal flips
(train.augment=hflip). 1800 epochs of 97 steps (50000 / 8 GPUs / 64 per GPU, the last
partial batch dropped) = 174,600 steps. Sampling: the README's --ode_method heun2 with
--ode_options '{"nfe": 50}' and --edm_schedule integrates over EDM's 51-point time grid
(training/edm_time_discretization.py, rho = 7); torchdiffeq's heun2 calls the network twice
per interval, so a sample costs 100 network evaluations (NFE 100).

Differences from the recipe: jaxgen's ODE samplers step uniformly in t, not on the EDM grid
(sample.method=heun, sample.steps=50 spends the same 100 evaluations); the example trains
in float16 autocast, here float32 (train.compute_dtype=bfloat16 is jaxgen's mixed
precision); jaxgen scores no FID itself unless the eval.fid_* settings name the Inception
weights and reference statistics.
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="Lipman, Havasi, Holderrieth, Shaul, Le, Karrer, Chen, Lopez-Paz, Ben-Hamu & Gat, "
          "2024. Flow Matching Guide and Code (arXiv:2412.06264); the code's CIFAR-10 recipe",
    table="the Results table of examples/image/README.md",
    params=None,
    params_source="github.com/facebookresearch/flow_matching states none; its "
                  "examples/image UNetModel(**MODEL_CONFIGS['cifar10']) instantiated with "
                  "torch 2.13 (CPU) here has sum(p.numel()) = 55,676,419",
    params_count=55_676_419,
    metrics={"fid": 2.07},
    nfe=100,
    global_batch=512,
    lr=1e-4,
    ema=0.999,
    steps=174_600,
    augmentation="hflip",
    smoke=("train.batch_size=2", "model.channels=(32, 32, 32)", "model.time_features=16",
           "model.time_dim=64", "eval.ode_steps=1"),
)


def get_config():
    c = base_config()
    c.data.name = "cifar10"

    c.model.name = "unet"
    c.model.layout = "ddpm"
    c.model.channels = (256, 256, 256)
    c.model.num_res_blocks = 4
    c.model.attention_resolutions = (16,)
    c.model.num_heads = 1
    c.model.groups = 32
    c.model.dropout = 0.3
    c.model.scale_shift_norm = True
    c.model.resample = "pool"
    c.model.time_features = 128
    c.model.time_dim = 512
    c.model.time_scale = 1.0

    c.objective.name = "flow_matching"
    c.objective.path = "straight"
    c.objective.sigma_min = 0.0
    c.objective.prediction = "velocity"
    c.objective.time_sampling = "skewed"

    c.optim.name = "adamw"
    c.optim.learning_rate = 1e-4
    c.optim.b1 = 0.9
    c.optim.b2 = 0.95
    c.optim.weight_decay = 0.01
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0

    c.train.steps = 174_600
    c.train.batch_size = 512
    c.train.ema_decay = 0.999
    c.train.augment = "hflip"
    c.train.log_every = 500
    c.train.checkpoint_every = 9700  # every 100 epochs, the README's eval_frequency
    c.train.sample_every = 19_400
    c.train.max_to_keep = 2

    c.sample.num = 64
    c.sample.method = "heun"
    c.sample.steps = 50  # 100 network evaluations, as the recipe's heun2 on 50 intervals

    # quick: 256 test images, RK4 x 20 with Hutchinson's divergence; --full: all 10000
    c.eval.num_examples = 256
    c.eval.batch_size = 128
    c.eval.ode_steps = 20
    c.eval.ode_method = "rk4"
    c.eval.divergence = "hutchinson"
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000 eval.batch_size=250 eval.ode_steps=50"
    return c
