r"""GRU (h_i = GRU(h_{i−1}, x_{i−1})) over the 784 pixels of Fashion-MNIST in raster
order, a 256-way softmax per pixel.

    jaxgen train  --config configs/autoregressive/rnn_fashion_mnist.py \
                  --workdir runs/rnn_fmnist
    jaxgen eval   --workdir runs/rnn_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/rnn_fmnist --num 64 --out rnn.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler:
'cached': the carried state, O(1) per position.
Everything but the model comes from pixelcnn_fashion_mnist.py.
"""

import ml_collections

from jaxgen.configs.autoregressive.pixelcnn_fashion_mnist import (
    get_config as pixelcnn_fashion_mnist,
)


def get_config():
    c = pixelcnn_fashion_mnist()
    c.model = ml_collections.ConfigDict()
    c.model.name = "ar_rnn"
    c.model.cell = "gru"  # gru | lstm
    c.model.hidden = 128
    c.model.num_layers = 1
    return c
