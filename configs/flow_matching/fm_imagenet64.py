"""Flow matching on ImageNet 64x64: Lipman, Chen, Ben-Hamu, Nickel & Le, 2023, "Flow Matching
for Generative Modeling" (ICLR 2023), Table 1 (unconditional ImageNet 64x64, FM w/ OT:
NLL 3.31 bits/dim, FID 14.45, NFE 138) with the training hyperparameters of its Table 3
(Appendix E).

    jaxgen train --config flow_matching/fm_imagenet64 --workdir runs/fm_imagenet64 \
        --config.data.source=/path/to/imagenet64   # the official npz files, or prepared
    jaxgen eval  --workdir runs/fm_imagenet64 --full   # bits/dim over the 50000 val images
    jaxgen sample --workdir runs/fm_imagenet64 --num 50000 --out samples.npz   # for FID

The network is the paper's U-Net of Dhariwal & Nichol (2021) with Table 3's ImageNet-64
column: 192 channels with multipliers (1, 2, 3, 4) over 64, 32, 16 and 8 pixels, depth 3
(ResBlocks per resolution; model.layout=ddpm: 4 on the way up), attention at 32, 16 and 8
pixels and in the middle with heads of 64 channels, dropout 0.0. The rest is ADM's, as
the authors' own implementation of it writes the same network (MODEL_CONFIGS["imagenet"] of
github.com/facebookresearch/flow_matching, examples/image: the same widths, depth,
attention and heads): scale-shift norm, BigGAN-style ResBlocks that down- and upsample
(resblock_updown), GroupNorm 32, sinusoidal time features of size 192 of t as it is
(model.time_scale=1) into a 768 MLP; unconditional, as every model of the paper. The paper
states no parameter count; that UNetModel with num_classes=None and dropout 0.0,
instantiated with torch 2.13 (CPU) here, has 295,131,267 parameters, and so has jaxgen's.

Hyperparameters (Table 3 and Appendix E): the OT path x_t = t x1 + (1 - (1 - sigma_min) t)
x0 with the velocity loss, t ~ U[0, 1]; Adam with betas (0.9, 0.999), eps 1e-8, no weight
decay, learning rate 1e-4, constant, no warmup; effective batch 2048 (16 GPUs); 250 epochs,
157k iterations; 16-bit mixed precision (train.compute_dtype=bfloat16 here). The paper
names no EMA and no augmentation: train.ema_decay=0 (the EMA copy is the params) and
train.augment=none. The sample metrics use dopri5 with absolute and relative tolerance
1e-5 (torchdiffeq), 138 network evaluations per sample on average; the NLL is the
importance-weighted estimate over K = 10 uniform dequantizations.

Differences from the paper: jaxgen has fixed-step ODE solvers only (sample.method=rk4 with
sample.steps=35 spends 140 evaluations, about the paper's 138); `jaxgen eval` reports the
K = 1 dequantized bits/dim (a bound above the paper's K = 10 estimate; the paper's own
K = 1 figure for this model is 3.35, its Table 4); the paper's sigma_min is not restated
here: the straight path (sigma_min = 0, the authors' flow_matching library's
CondOTProbPath) is used, and --config.objective.path=ot --config.objective.sigma_min=S
sets another; nor is its data preparation: jaxgen's imagenet64 is Chrabaszcz et al.'s
box-resized ImageNet 64x64 (its validation set is the test split).
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="Lipman, Chen, Ben-Hamu, Nickel & Le, 2023. Flow Matching for Generative Modeling "
          "(ICLR 2023)",
    table="Table 1",
    params=None,
    params_source="the paper states none; the ADM U-Net with its Table 3 ImageNet-64 "
                  "column as the authors' github.com/facebookresearch/flow_matching writes "
                  "it (examples/image UNetModel(**MODEL_CONFIGS['imagenet'], "
                  "num_classes=None, dropout=0.0)), instantiated with torch 2.13 (CPU) here: "
                  "sum(p.numel()) = 295,131,267",
    params_count=295_131_267,
    metrics={"fid": 14.45, "bits_per_dim": 3.31},
    nfe=138,
    global_batch=2048,
    lr=1e-4,
    ema=0.0,
    steps=157_000,
    augmentation="none",
    smoke=("train.batch_size=2", "model.channels=(32, 64, 96, 128)", "model.head_channels=32",
           "model.time_features=32", "model.time_dim=128", "eval.ode_steps=1"),
)


def get_config():
    c = base_config()
    c.data.name = "imagenet64"

    c.model.name = "unet"
    c.model.layout = "ddpm"
    c.model.channels = (192, 384, 576, 768)
    c.model.num_res_blocks = 3
    c.model.attention_resolutions = (32, 16, 8)
    c.model.head_channels = 64
    c.model.groups = 32
    c.model.dropout = 0.0
    c.model.scale_shift_norm = True
    c.model.resample = "resblock"
    c.model.time_features = 192
    c.model.time_dim = 768
    c.model.time_scale = 1.0

    c.objective.name = "flow_matching"
    c.objective.path = "straight"
    c.objective.sigma_min = 0.0
    c.objective.prediction = "velocity"

    c.optim.name = "adam"
    c.optim.learning_rate = 1e-4
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0

    c.train.steps = 157_000
    c.train.batch_size = 2048
    c.train.ema_decay = 0.0
    c.train.augment = "none"
    c.train.compute_dtype = "bfloat16"
    c.train.log_every = 500
    c.train.checkpoint_every = 5000
    c.train.sample_every = 20_000
    c.train.max_to_keep = 2

    c.sample.num = 64
    c.sample.method = "rk4"
    c.sample.steps = 35  # 140 network evaluations, about the paper's dopri5 average of 138

    # quick: 256 validation images, RK4 x 20 with Hutchinson's divergence; --full: all 50000
    c.eval.num_examples = 256
    c.eval.batch_size = 128
    c.eval.ode_steps = 20
    c.eval.ode_method = "rk4"
    c.eval.divergence = "hutchinson"
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=50000 eval.batch_size=250 eval.ode_steps=50"
    return c
