"""EDM on CIFAR-10: Karras, Aittala, Aila & Laine, 2022, "Elucidating the Design Space of
Diffusion-Based Generative Models" (NeurIPS 2022), Table 2, config F, unconditional
CIFAR-10 with the DDPM++ network and EDM's preconditioning and loss: FID 1.97 at NFE 35
(Heun's 2nd-order sampler, Algorithm 1, 18 noise levels).

    jaxgen train --config diffusion/edm_cifar10 --workdir runs/edm_cifar10 \
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/edm_cifar10 --full     # bits/dim by the probability-flow ODE
    jaxgen sample --workdir runs/edm_cifar10 --num 50000 --out samples.npz   # for FID

The network is DDPM++ (Song et al., 2021) as the official code writes it (github.com/
NVlabs/edm, training/networks.py, SongUNet with train.py's --arch=ddpmpp settings): base
width 128 with multipliers (2, 2, 2), i.e. 256 wide at 32, 16 and 8 pixels, 4 ResBlocks
per resolution (model.layout=ddpm: 5 on the way up), the image mapped to 128 channels first
(model.stem_channels), BigGAN-style resampling blocks whose residual has a 1x1 conv
(model.resample=resblock, model.resample_proj), self-attention after every down block at
16x16, after the last up block there (model.up_attention=last) and in the middle, one
head, GroupNorm 32, dropout 0.13, sinusoidal features of c_noise = ln(σ)/4 as it is
(model.time_scale=1) into a 512 MLP. The paper states no parameter count for it;
instantiating SongUNet with those settings (torch 2.13, CPU) gives 55,732,739, and jaxgen's
network has 55,732,739.

Hyperparameters (the paper's Table 7 and train.py's defaults): σ_data = 0.5, ln σ ~ N(−1.2,
1.2²), λ(σ) = (σ² + σ_d²)/(σ σ_d)²; Adam with learning rate 1e-3 (train.py's 10e-4), betas
(0.9, 0.999), eps 1e-8, ramped up linearly over 10 Mimg (19,531 steps of 512) then constant,
no gradient clipping; global batch 512; 200 Mimg = 390,625 steps; EMA half-life 0.5 Mimg,
a per-step decay of 0.5^(512/500000) = 0.99929. Sampling: σ_min = 0.002, σ_max = 80, ρ = 7,
18 levels, deterministic (S_churn = 0): 35 network evaluations (NFE 35).

Differences from the official recipe: EDM trains with its non-leaky augmentation pipeline
(p = 0.12, the augmentation's 9 parameters conditioning the network), which jaxgen does not
have (augmentation "none"; the paper's Table 2 credits augmentation and dropout with part of
its gain on CIFAR-10); EDM's EMA ramps its half-life up with the images seen (at most 5 %
of them), jaxgen's warms up as min(0.99929, (1+s)/(10+s)); its positional embedding spaces
frequencies with endpoint=True (10000^(-i/63)), jaxgen's 10000^(-i/64); the initialisation
is Flax's defaults, not the official code's. jaxgen scores FID itself only when the eval.fid_*
settings name the Inception weights and reference statistics.
"""

from jaxgen.configs.diffusion.edm_fashion_mnist import get_config as edm_fashion_mnist
from jaxgen.configs.flow_matching.fm_cifar10 import get_config as fm_cifar10

PAPER = dict(
    paper="Karras, Aittala, Aila & Laine, 2022. Elucidating the Design Space of "
          "Diffusion-Based Generative Models (NeurIPS 2022)",
    table="Table 2",
    params=None,
    params_source="the paper states none for DDPM++; github.com/NVlabs/edm "
                  "training/networks.py SongUNet with train.py's ddpmpp settings "
                  "(img_resolution 32, model_channels 128, channel_mult [2, 2, 2], "
                  "channel_mult_noise 1, resample_filter [1, 1], no augment_dim) instantiated "
                  "with torch 2.13 (CPU) here has sum(p.numel()) = 55,732,739",
    params_count=55_732_739,
    metrics={"fid": 1.97},
    nfe=35,
    global_batch=512,
    lr=1e-3,
    ema=0.99929,
    steps=390_625,
    augmentation="none",
    smoke=("train.batch_size=2", "model.channels=(32, 32, 32)", "model.stem_channels=16",
           "model.time_features=16", "model.time_dim=64", "eval.ode_steps=1"),
)


def get_config():
    # fm_cifar10's data, network widths, attention, time features and eval; DDPM++'s blocks
    c = fm_cifar10()
    c.model.stem_channels = 128
    c.model.up_attention = "last"
    c.model.dropout = 0.13
    c.model.scale_shift_norm = False
    c.model.resample = "resblock"
    c.model.resample_proj = True

    edm = edm_fashion_mnist()  # the paper's loss and sampler: sigma_d 0.5, P_mean -1.2,
    c.objective, c.sample = edm.objective, edm.sample  # P_std 1.2, Heun on 18 levels

    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.warmup_steps = 19_531  # 10 Mimg, then constant

    c.train.steps = 390_625
    c.train.ema_decay = 0.99929
    c.train.augment = "none"
    c.train.checkpoint_every = 10_000
    c.train.sample_every = 50_000
    return c
