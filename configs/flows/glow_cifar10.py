"""Glow on CIFAR-10: Kingma & Dhariwal, 2018, "Glow: Generative Flow with Invertible 1x1
Convolutions" (NeurIPS 2018), Table 2 (CIFAR-10: 3.35 bits/dim on the test set).

    jaxgen train --config flows/glow_cifar10 --workdir runs/glow_cifar10 \\
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/glow_cifar10 --full   # exact bits/dim of all 10000 test images

The network is the official code's (github.com/openai/glow), its README's "CIFAR-10
Quantitative result" command (--n_level 3 --depth 32 --flow_permutation 2 --flow_coupling 1
--learntop --lr 0.001 --n_bits_x 8, --width 512 by default): L = 3 levels of K = 32 steps
of ActNorm, invertible 1x1 convolution (the dense W its code uses, model.lu=False) and
affine coupling on channel halves, y_b = (x_b + t)·sigmoid(s + 2) (model.coupling=affine),
coupling networks conv3x3 → ActNorm → ReLU → conv1x1 → ActNorm → ReLU → zero-initialised
conv3x3 with 512 hidden channels and Glow's edge channel (model.conditioner=glow), learned
split priors and the learned top prior (model.learned_top). The paper states no parameter
count; the official model's is 44,603,604, counted from model.py and tfops.py (per step at
c channels: ActNorm 2c, W c², the coupling network 9·(c/2 + 1)·512 + 2·512 + 512² + 2·512
+ 9·513·c + 2c; per split 9·(c/2 + 1)·c + 2c; the top prior 9·97·96 + 2·96; c = 12, 24,
48), and jaxgen's count is the same number.

Hyperparameters (the official train.py defaults for that command): global batch 512 (8
GPUs x 64 images), learning rate 1e-3 after a linear warmup over 10 epochs (977 steps),
then constant; no gradient clipping; Adam with beta1 = 0.9 and beta2 = 0.9898 (train.py's
beta2 = 1 - 1/(iterations per epoch) = 1 - 1/98); the test numbers of train.py come from
the raw parameters (its Polyak swap is commented out), so no EMA here (ema 0); 200,000
steps (about 2000 epochs: train.py itself runs until stopped, epochs = 1,000,000, so this
number is chosen here, not the paper's); no augmentation. The likelihood is one pass of
the flow (NFE 1), a sample one inverse pass.

Memory: XLA's buffer assignment for the train step (compiled for the CPU from shapes alone)
needs 48.0 GiB of temporaries at batch 512 on one device, 5.8 GiB at batch 64;
--config.train.grad_accum=8 (8 micro-batches of 64, the same update) gives 5.8 GiB at 512,
for a device with less memory. With 8 devices (train.mesh) each holds 64 images, as the
official run's 8 GPUs did.

Differences from the official code: Adam where train.py defaults to Adamax; no data
augmentation (train.py's default for CIFAR-10 shifts images by up to 10% of their size,
which jaxgen's train.augment does not offer); dequantisation and the bits/dim as jaxgen
counts them (uniform noise, the [-1, 1) model space; the same bits/dim); the initial
1x1 weights drawn as jaxgen draws orthogonal matrices.
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="Kingma & Dhariwal, 2018. Glow: Generative Flow with Invertible 1x1 Convolutions "
          "(NeurIPS 2018)",
    table="Table 2",
    params=None,
    params_source="the paper states no count; params_count is the official code's "
                  "(github.com/openai/glow, the README's CIFAR-10 command: n_level 3, depth 32, "
                  "width 512, affine coupling, invconv, learntop), counted analytically from "
                  "its model.py and tfops.py (per-layer formula in the docstring)",
    params_count=44_603_604,
    metrics={"bits_per_dim": 3.35},
    nfe=1,
    global_batch=512,
    lr=1e-3,
    ema=0.0,
    steps=200_000,
    augmentation="none",
    smoke=("train.batch_size=2", "model.hidden=8", "model.steps=2", "eval.num_examples=2"),
)


def get_config():
    c = base_config()
    c.data.name = "cifar10"

    c.model.name = "glow"
    c.model.num_scales = 3
    c.model.steps = 32
    c.model.hidden = 512
    c.model.coupling = "affine"
    c.model.conditioner = "glow"
    c.model.lu = False
    c.model.learned_prior = True
    c.model.learned_top = True
    c.model.logit_alpha = 0.0

    c.objective.name = "flow_nll"

    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.b1 = 0.9
    c.optim.b2 = 0.9898
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 977
    c.optim.grad_clip = 0.0

    c.train.steps = 200_000
    c.train.batch_size = 512
    c.train.ema_decay = 0.0
    c.train.log_every = 500
    c.train.checkpoint_every = 10_000
    c.train.sample_every = 50_000
    c.train.max_to_keep = 2

    c.sample.num = 64
    c.sample.temperature = 1.0

    c.eval.use_ema = False
    c.eval.num_examples = 1000
    c.eval.batch_size = 500
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000"
    return c
