r"""Causal transformer (pre-LN, the lecture's mask M_ij = −∞ for j > i) over the
784 pixels of Fashion-MNIST in raster order, a 256-way softmax per pixel.

    jaxgen train  --config configs/autoregressive/transformer_fashion_mnist.py \
                  --workdir runs/transformer_fmnist
    jaxgen eval   --workdir runs/transformer_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/transformer_fmnist --num 64 --out transformer.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler:
'cached': the KV cache, one query against the cache per position.

Attention over L = 784 positions is O(L²): the attention weights are
batch x heads x 784² per layer, hence the small batch (16) on a CPU.
"""

from jaxgen.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"

    c.model.name = "ar_transformer"
    c.model.d_model = 64
    c.model.num_heads = 2
    c.model.num_layers = 2
    c.model.mlp_ratio = 4
    c.model.positions = "learned"  # learned | sinusoidal

    c.objective.name = "autoregressive"
    c.objective.binarize = ""  # "": 256-way 8-bit pixels; "threshold": x > 127, 2-way

    c.optim.learning_rate = 5e-4
    c.optim.warmup_steps = 200

    c.train.steps = 5000
    c.train.batch_size = 16
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 0  # a grid at the end only: sampling is D = 784 sequential steps
    c.train.ema_decay = 0.999

    c.sample.num = 64
    c.sample.temperature = 1.0  # divides the logits
    c.sample.sampler = "auto"  # auto | cached | recompute

    c.eval.num_examples = 10000  # the whole test set: one forward pass per batch
    c.eval.batch_size = 50
    c.eval.mmd_num = 0
    return c
