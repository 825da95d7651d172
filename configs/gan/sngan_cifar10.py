"""SNGAN on CIFAR-10: Miyato, Kataoka, Koyama & Yoshida, 2018, "Spectral Normalization for
Generative Adversarial Networks" (ICLR 2018), Table 2 (unsupervised CIFAR-10, SN-GANs with
the ResNet networks: Inception score 8.22, FID 21.7).

    jaxgen train --config gan/sngan_cifar10 --workdir runs/sngan_cifar10 \\
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval --workdir runs/sngan_cifar10 --full     # IS and FID of 50000 samples
    jaxgen sample --workdir runs/sngan_cifar10 --num 64 --out sngan.png

The networks are the authors' ResNets for 32x32 images (jaxgen/nn/sngan.py, from
pfnet-research/sngan_projection: gen_models/resnet_32.py with ch=256, dim_z=128,
bottom_width=4, and dis_models/snresnet_32.py with ch=128, as its unconditional
configs/sn_cifar10_unconditional.yml sets them): G 4,276,739 and D 1,053,824 parameters,
5,330,563 in all (counted from those files: the paper states no count), the same numbers
in jaxgen. Every layer of D is spectral-normalised, one power iteration per step (the
vector u is state, not a parameter).

Hyperparameters (the paper's and the same config file's): the hinge loss, n_dis = 5
discriminator updates per generator update, Adam with learning rate 2e-4, beta1 = 0 and
beta2 = 0.9 for both players, decayed linearly to 0 over the run as the authors' train.py
does (LinearShift from iteration 0: optim.schedule=linear; D's 5 updates a step decay over
250,000 updates), 50,000 generator updates (train.steps), batch 64 per discriminator update
(global batch 320 = 5 x 64, each critic update its own 64 real images: objective.split_batch)
and 64 latents per generator update, no EMA (ema 0), no augmentation, no gradient clipping.
A sample is one pass of G (NFE 1).

What jaxgen measures: `jaxgen eval --full` scores 50000 samples with pytorch-fid's
Inception-V3 (IS with 10 splits, FID against the training set's statistics). Differences
from the authors' code: G's batch norms use the current batch's statistics when sampling
too (the code uses running averages); G draws 64 latents for its update where
sn_cifar10_unconditional.yml sets n_gen_samples: 128; Flax's LeCun-normal initialisation
replaces Glorot-uniform.
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="Miyato, Kataoka, Koyama & Yoshida, 2018. Spectral Normalization for Generative "
          "Adversarial Networks (ICLR 2018)",
    table="Table 2",
    params=None,
    params_source="the paper states no count; params_count is the authors' code's "
                  "(pfnet-research/sngan_projection: ResNetGenerator(ch=256, dim_z=128, "
                  "bottom_width=4) 4,276,739 + SNResNetProjectionDiscriminator(ch=128, "
                  "n_classes=0) 1,053,824; trainable parameters counted from "
                  "gen_models/resnet_32.py, dis_models/snresnet_32.py and their resblocks.py, "
                  "batch norms' gamma and beta included, running averages and the spectral "
                  "norm vectors u not)",
    params_count=5_330_563,
    params_of=("generator", "discriminator"),
    metrics={"is": 8.22, "fid": 21.7},
    nfe=1,
    global_batch=320,
    lr=2e-4,
    ema=0.0,
    steps=50_000,
    augmentation="none",
    smoke=("train.batch_size=2", "objective.split_batch=false", "model.g_channels=8",
           "model.d_channels=8", "model.latent_dim=8"),
)


def get_config():
    c = base_config()
    c.data.name = "cifar10"

    c.model.name = "sngan"
    c.model.latent_dim = 128
    c.model.g_channels = 256
    c.model.d_channels = 128

    c.objective.name = "gan"
    c.objective.loss = "hinge"
    c.objective.n_critic = 5
    c.objective.split_batch = True

    c.optim.name = "adam"
    c.optim.learning_rate = 2e-4
    c.optim.b1 = 0.0
    c.optim.b2 = 0.9
    c.optim.schedule = "linear"
    c.optim.end_lr_factor = 0.0
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 0.0
    # D updates 5 times a step: its decay spans its own 5 x 50,000 updates
    c.optim.players = {"discriminator": {"decay_steps": 250_000}}

    c.train.steps = 50_000
    c.train.batch_size = 320
    c.train.ema_decay = 0.0
    c.train.log_every = 500
    c.train.checkpoint_every = 5000
    c.train.sample_every = 5000
    c.train.max_to_keep = 2

    c.sample.num = 64

    c.eval.use_ema = False
    c.eval.num_examples = 1000
    c.eval.batch_size = 500
    c.eval.mmd_num = 0
    c.eval.full = "eval.fid_num=50000"
    return c
