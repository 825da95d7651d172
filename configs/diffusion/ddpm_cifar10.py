"""DDPM on CIFAR-10: Ho, Jain & Abbeel, 2020, "Denoising Diffusion Probabilistic Models"
(NeurIPS 2020), Table 1 (unconditional CIFAR-10: IS 9.46, FID 3.17, NLL <= 3.75 bits/dim
on the test set; the L_simple, eps-prediction row) and Table 2.

    jaxgen train --config diffusion/ddpm_cifar10 --workdir runs/ddpm_cifar10 \
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/ddpm_cifar10 --full   # the VLB over all 10000 test images
    jaxgen sample --workdir runs/ddpm_cifar10 --num 50000 --out samples.npz   # for FID / IS

The network is the paper's 35.7M-parameter U-Net (Appendix B; the official code's
`unet2d16b2` in scripts/run_cifar.py of github.com/hojonathanho/diffusion): base width
ch = 128 with multipliers (1, 2, 2, 2) over 32, 16, 8 and 4 pixels, 2 ResBlocks per
resolution (model.layout=ddpm: 3 on the way up, the conv_in and downsampling outputs
being skips too), self-attention at 16x16 and in the middle, GroupNorm with 32 groups,
dropout 0.1, sinusoidal time features of size ch into a 4 ch = 512 MLP. jaxgen's count:
35,746,307 parameters.

Hyperparameters (the paper's Appendix B and the official run_cifar.py defaults):
T = 1000, linear betas 1e-4 .. 0.02, eps prediction with the L_simple loss,
sigma_t^2 = beta_t (fixedlarge) in sampling; Adam with learning rate 2e-4, linear warmup
over 5000 steps then constant, global-norm gradient clipping at 1; global batch 128;
EMA decay 0.9999; 800k steps; random horizontal flips (train.augment=hflip). The sample
metrics use the ancestral sampler over all 1000 steps (NFE 1000).

What jaxgen measures: `jaxgen eval` gives the VLB in bits/dim (eval.full: the whole test
set, all 999 KL terms, as the paper's 3.75); FID and IS need Inception features of 50000
samples: `jaxgen sample --num 50000 --out F.npz` writes the images for an external scorer,
or `jaxgen eval` scores them with eval.fid_num=50000, Inception weights and reference
statistics (the eval.fid_* settings).

Differences from the official code (diffusion_tf/models/unet.py, nn.py), none in the
parameters: its initialisation (variance scaling, fan_avg, uniform, with the second conv of
each ResBlock and the attention output zero-initialised; jaxgen keeps Flax's defaults and
zeroes only the last conv) and its sinusoid frequencies 10000^(-i/63) (jaxgen's:
10000^(-i/64)); jaxgen's EMA warms up as min(0.9999, (1+s)/(10+s)).
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="Ho, Jain & Abbeel, 2020. Denoising Diffusion Probabilistic Models (NeurIPS 2020)",
    table="Table 1",
    params=35_700_000,
    params_source="the paper (Appendix B: 35.7 million parameters for CIFAR-10); the "
                  "official code's unet2d16b2 is commented '# 35.7M' in scripts/run_cifar.py",
    metrics={"fid": 3.17, "is": 9.46, "bits_per_dim": 3.75},
    nfe=1000,
    global_batch=128,
    lr=2e-4,
    ema=0.9999,
    steps=800_000,
    augmentation="hflip",
    smoke=("train.batch_size=2", "model.channels=(32, 64, 64, 64)", "model.time_features=32",
           "model.time_dim=128", "eval.vlb_steps=2"),
)


def get_config():
    c = base_config()
    c.data.name = "cifar10"

    c.model.name = "unet"
    c.model.layout = "ddpm"
    c.model.channels = (128, 256, 256, 256)
    c.model.num_res_blocks = 2
    c.model.attention_resolutions = (16,)
    c.model.groups = 32
    c.model.dropout = 0.1
    c.model.time_features = 128
    c.model.time_dim = 512

    c.objective.name = "ddpm"
    c.objective.num_steps = 1000
    c.objective.schedule = "linear"
    c.objective.prediction = "eps"
    c.objective.variance = "beta"

    c.optim.name = "adam"
    c.optim.learning_rate = 2e-4
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 5000
    c.optim.grad_clip = 1.0

    c.train.steps = 800_000
    c.train.batch_size = 128
    c.train.ema_decay = 0.9999
    c.train.augment = "hflip"
    c.train.log_every = 1000
    c.train.checkpoint_every = 10_000
    c.train.sample_every = 50_000
    c.train.max_to_keep = 2

    c.sample.num = 64
    c.sample.sampler = "ddpm"  # all 1000 ancestral steps, as the paper's samples
    c.sample.clip_x0 = 1.0

    # quick: 256 test images, a 100-term stratified VLB estimate; --full: the paper's
    # number (all 10000 test images, all 999 KL terms)
    c.eval.num_examples = 256
    c.eval.batch_size = 128
    c.eval.vlb_steps = 100
    c.eval.likelihood = "vlb"
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000 eval.batch_size=250 eval.vlb_steps=0"
    return c
