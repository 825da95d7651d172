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
Everything but the model comes from pixelcnn_fashion_mnist.py.
"""

import ml_collections

from jaxgen.configs.autoregressive.pixelcnn_fashion_mnist import (
    get_config as pixelcnn_fashion_mnist,
)


def get_config():
    c = pixelcnn_fashion_mnist()
    c.model = ml_collections.ConfigDict()
    c.model.name = "ar_transformer"
    c.model.d_model = 64
    c.model.num_heads = 2
    c.model.num_layers = 2
    c.model.mlp_ratio = 4
    c.model.positions = "learned"  # learned | sinusoidal
    c.optim.learning_rate = 5e-4
    c.train.batch_size = 16
    # quick: 2000 test images (about a minute on 2 CPU cores; attention over 784 positions);
    # --full: the whole test set
    c.eval.num_examples = 2000
    c.eval.batch_size = 50
    c.eval.full = "eval.num_examples=10000"
    return c
