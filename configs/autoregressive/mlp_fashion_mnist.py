r"""The lecture's finite-memory model p(x_i | x_{i−k}, …, x_{i−1}) on Fashion-MNIST:
an MLP over the last k = 56 pixels (two rows) plus a learned position embedding.

    jaxgen train  --config configs/autoregressive/mlp_fashion_mnist.py \
                  --workdir runs/mlp_fmnist
    jaxgen eval   --workdir runs/mlp_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/mlp_fmnist --num 64 --out mlp.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler:
'cached': the window of the last k pixels, O(1) per position.
Everything but the model comes from pixelcnn_fashion_mnist.py.
"""

import ml_collections

from jaxgen.configs.autoregressive.pixelcnn_fashion_mnist import (
    get_config as pixelcnn_fashion_mnist,
)


def get_config():
    c = pixelcnn_fashion_mnist()
    c.model = ml_collections.ConfigDict()
    c.model.name = "ar_mlp"
    c.model.context = 56  # k
    c.model.features = (128, 128)
    c.model.positional = True
    return c
