"""RealNVP on CIFAR-10: Dinh, Sohl-Dickstein & Bengio, 2017, "Density estimation using
Real NVP" (ICLR 2017), Table 1 (CIFAR-10: 3.49 bits/dim on the test set).

    jaxgen train --config flows/realnvp_cifar10 --workdir runs/realnvp_cifar10 \\
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/realnvp_cifar10 --full   # exact bits/dim of all 10000 test images

The multi-scale architecture of the paper's Sec. 3.6 and 4.1 as its released code
(tensorflow/models, research/real_nvp/real_nvp_multiscale_dataset.py) builds it, with the
paper's CIFAR-10 sizes ("8 residual blocks, 64 feature maps, and downscale only once"; in
the code: residual_blocks=8, base_dim=64, n_scale=2): logit pre-processing with alpha =
0.05 (the code's data_constraint 0.9), then 3 checkerboard affine couplings, squeeze, 3
channel couplings on channel halves, factor out half of the channels, and 4 checkerboard
couplings at 16x16; the widths as the code's (64 at 32x32, 128 for the channel couplings
and at 16x16: model.widen). The s and t networks are the code's ResNet
(model.conditioner=dinh): input [x, -x] (and the mask), weight-normalised convolutions,
8 residual blocks of two 3x3 convolutions, 1x1 skip connections summed, a 1x1 output.
The paper states no parameter count; the released code's count for these sizes is
19,609,545 trainable parameters, counted analytically from real_nvp_multiscale_dataset.py
and real_nvp_utils.py (batch norms' betas included, their running averages not); jaxgen's
is 19,628,271 (+0.10%: ActNorm has a scale besides the bias where batch norm here has a
bias alone, the couplings' log-scale bounds are per channel, and the ActNorms after the
couplings have parameters where the code's output batch norm has none).

Hyperparameters (the code's defaults, get_default_hparams, and the paper's Sec. 4.1):
global batch 64, Adam with learning rate 1e-3, beta1 = 0.9, beta2 = 0.999, gradient
clipping at global norm 100, no EMA (ema 0), 500,000 steps (neither the paper nor the code
fixes a number: chosen here), no augmentation (the code flips CelebA and LSUN images only;
it has no CIFAR-10 reader). The likelihood is one pass of the flow (NFE 1).

Differences from the paper and its code: batch normalisation, in the s/t networks and of
the coupling outputs, is replaced by ActNorm (a per-channel affine map initialised from
the first batch, Glow's replacement): jaxgen's flows keep no state besides their
parameters, and a batch-statistics likelihood is not a per-example one; the L2 penalty
(5e-5) on the weight-norm magnitudes and log-scale bounds is not applied (jaxgen's
optimizers have no per-parameter penalty); the factored-out half is chosen by jaxgen's
squeeze order (the code re-squeezes in another order first).
"""

import ml_collections

from jaxgen.configs.flows.glow_cifar10 import get_config as glow_cifar10

PAPER = dict(
    paper="Dinh, Sohl-Dickstein & Bengio, 2017. Density estimation using Real NVP (ICLR 2017)",
    table="Table 1",
    params=None,
    params_source="the paper states no count; params_count is the released code's "
                  "(tensorflow/models research/real_nvp, residual_blocks=8, base_dim=64, "
                  "n_scale=2: the paper's CIFAR-10 sizes), its trainable variables counted "
                  "analytically from real_nvp_multiscale_dataset.py and real_nvp_utils.py",
    params_count=19_609_545,
    metrics={"bits_per_dim": 3.49},
    nfe=1,
    global_batch=64,
    lr=1e-3,
    ema=0.0,
    steps=500_000,
    augmentation="none",
    smoke=("train.batch_size=2", "model.hidden=8", "model.num_blocks=1",
           "eval.num_examples=2"),
)


def get_config():
    c = glow_cifar10()  # CIFAR-10, the exact likelihood, the logging and eval settings
    c.model = ml_collections.ConfigDict({"name": "realnvp"})
    c.model.num_scales = 1
    c.model.hidden = 64
    c.model.num_blocks = 8
    c.model.logit_alpha = 0.05
    c.model.conditioner = "dinh"
    c.model.widen = True
    c.model.channel_coupling = "halves"
    c.model.coupling_norm = True

    c.optim.b2 = 0.999
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 100.0

    c.train.steps = 500_000
    c.train.batch_size = 64
    return c
