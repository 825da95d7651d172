r"""PixelCNN on CIFAR-10: van den Oord, Kalchbrenner & Kavukcuoglu, 2016, "Pixel Recurrent
Neural Networks" (ICML 2016), Table 5 (CIFAR-10: PixelCNN 3.14 bits/dim on the test set).

    jaxgen train --config autoregressive/pixelcnn_cifar10 --workdir runs/pixelcnn_cifar10 \
        --config.data.source=/path/to/cifar-10-binary.tar.gz
    jaxgen eval  --workdir runs/pixelcnn_cifar10 --full   # exact bits/dim, all 10000 test images
    jaxgen sample --workdir runs/pixelcnn_cifar10 --num 16 --out pixelcnn_cifar10.png

The network of the paper's Table 4 and Fig. 5 (jaxgen/nn/autoregressive.py, PixelCNN with
model.block=bottleneck): a 7x7 mask-A convolution to 2h = 256 feature maps, residual blocks
ReLU → 1x1 (h = 128) → ReLU → 3x3 mask B (h) → ReLU → 1x1 (2h) added back, then ReLU →
1x1 mask B → ReLU → 1x1 mask B to a 256-way softmax for each of R, G and B. Every layer's
feature maps are split into three colour groups and the masks let the group of G read R
and the group of B read R and G at the current pixel (the paper's Sec. 3.4 and Fig. 4):
p(x) is the product over the 3072 sub-pixels in raster order, R → G → B within a pixel,
exactly (tests/test_paper_models.py checks that each output's gradient with respect to
its own and every later sub-pixel is zero). "The PixelCNN has 15 layers and h = 128" (the
paper, as quoted in carpedm20/pixel-rnn-tensorflow issue #5): read here as 15 residual
blocks; the paper gives no width for the 1x1 output layer, 1024 here. The paper states no
parameter count and its authors released no code: params_count below is this network's
own count by formula (7·7·4·256 + 256 for the first layer, 15 x (256·128 + 128 + 9·128·128
+ 128 + 128·256 + 256) for the blocks, 256·1024 + 1024 + 1024·768 + 768 for the head:
4,303,360), which the test checks the built network against; it is not an official figure.

Hyperparameters (the paper's Sec. 5.2, as far as it gives them): RMSProp, batch 16 for
CIFAR-10 ("smaller batch sizes ... as this seems to regularize the models"), no
preprocessing or augmentation besides scaling; no EMA (ema 0). The paper sets its learning
rates by hand and gives neither them nor a step count: learning rate 1e-4 (RMSProp decay
0.95), global-norm clipping at 1 and 500,000 steps (160 epochs) are chosen here. The
likelihood is one pass of the network (NFE 1); a sample takes 3072 sequential steps
(sample.sampler=auto: the cached incremental step, each sub-pixel from per-layer caches).
"""

from jaxgen.kernel.config import base_config

PAPER = dict(
    paper="van den Oord, Kalchbrenner & Kavukcuoglu, 2016. Pixel Recurrent Neural Networks "
          "(ICML 2016)",
    table="Table 5",
    params=None,
    params_source="neither a count in the paper nor an official implementation exists; "
                  "params_count is the count, by formula, of the paper's Table 4 / Fig. 5 "
                  "network with 15 residual blocks, h = 128 and a 1024-wide 1x1 output layer "
                  "(the formula is in the docstring), not an official figure",
    params_count=4_303_360,
    metrics={"bits_per_dim": 3.14},
    nfe=1,
    global_batch=16,
    lr=1e-4,
    ema=0.0,
    steps=500_000,
    augmentation="none",
    smoke=("train.batch_size=2", "model.channels=12", "model.hidden=12",
           "model.num_layers=1", "eval.num_examples=2"),
)


def get_config():
    c = base_config()
    c.data.name = "cifar10"

    c.model.name = "pixelcnn"
    c.model.gated = False
    c.model.block = "bottleneck"
    c.model.channels = 256
    c.model.num_layers = 15
    c.model.hidden = 1024

    c.objective.name = "autoregressive"
    c.objective.binarize = ""

    c.optim.name = "rmsprop"
    c.optim.learning_rate = 1e-4
    c.optim.b2 = 0.95
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.grad_clip = 1.0

    c.train.steps = 500_000
    c.train.batch_size = 16
    c.train.ema_decay = 0.0
    c.train.log_every = 1000
    c.train.checkpoint_every = 10_000
    c.train.sample_every = 0  # a grid at the end only: 3072 sequential steps per sample
    c.train.max_to_keep = 2

    c.sample.num = 16
    c.sample.temperature = 1.0
    c.sample.sampler = "auto"

    c.eval.use_ema = False
    c.eval.num_examples = 1000
    c.eval.batch_size = 250
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000"
    return c
