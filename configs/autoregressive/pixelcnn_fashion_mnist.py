r"""PixelCNN (van den Oord et al., 2016b) on Fashion-MNIST: masked convolutions
(7x7 mask A, then 3x3 mask B residual blocks), a 256-way softmax per pixel.

    jaxgen train  --config configs/autoregressive/pixelcnn_fashion_mnist.py \
                  --workdir runs/pixelcnn_fmnist
    jaxgen eval   --workdir runs/pixelcnn_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/pixelcnn_fmnist --num 64 --out pixelcnn.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler: 'auto' = 'cached', the fast incremental
step (each layer's activation at pixel i alone, from a small patch of per-layer
caches of the last rows); 'recompute' (784 full passes of the conv net) is the
reference: --config.sample.sampler=recompute. `jaxgen compress` uses the same step.
"""

from jaxgen.kernel.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "pixelcnn"
    c.model.gated = False
    c.model.channels = 32
    c.model.num_layers = 5
    c.model.hidden = 64

    c.objective.name = "autoregressive"
    c.objective.binarize = ""  # "": 256-way 8-bit pixels; "threshold": x > 127, 2-way

    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 200

    c.train.steps = 5000
    c.train.batch_size = 32
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 0  # a grid at the end only: sampling is D = 784 sequential steps
    c.train.ema_decay = 0.999

    c.sample.num = 64
    c.sample.temperature = 1.0  # divides the logits
    c.sample.sampler = "auto"  # auto | cached | recompute

    c.eval.num_examples = 10000  # the whole test set: one forward pass per batch
    c.eval.batch_size = 250
    c.eval.mmd_num = 0
    c.eval.full = "eval.num_examples=10000"  # --full: the default already is
    return c
