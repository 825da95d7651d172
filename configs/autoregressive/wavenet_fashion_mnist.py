r"""WaveNet (van den Oord et al., 2016a): dilated causal 1-D convolutions with gated
units over the 784 pixels of Fashion-MNIST in raster order, a 256-way softmax per pixel.

    jaxgen train  --config configs/autoregressive/wavenet_fashion_mnist.py \
                  --workdir runs/wavenet_fmnist
    jaxgen eval   --workdir runs/wavenet_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/wavenet_fmnist --num 64 --out wavenet.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler:
'cached': one queue per dilated layer (fast WaveNet), O(1) per position.
Everything but the model comes from pixelcnn_fashion_mnist.py.
"""

import ml_collections

from jaxgen.configs.autoregressive.pixelcnn_fashion_mnist import (
    get_config as pixelcnn_fashion_mnist,
)


def get_config():
    c = pixelcnn_fashion_mnist()
    c.model = ml_collections.ConfigDict()
    c.model.name = "wavenet"
    c.model.channels = 32
    c.model.skip_channels = 64
    c.model.kernel_size = 2
    # receptive field: the last 1 + (1 + Σ d) = 513 pixels (18 rows)
    c.model.dilations = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    return c
