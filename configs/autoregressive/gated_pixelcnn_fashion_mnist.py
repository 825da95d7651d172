r"""Gated PixelCNN (van den Oord et al., 2016c) on Fashion-MNIST: vertical and
horizontal stacks with tanh·sigmoid gates (no blind spot), a 256-way softmax per pixel.

    jaxgen train  --config configs/autoregressive/gated_pixelcnn_fashion_mnist.py \
                  --workdir runs/gated_pixelcnn_fmnist
    jaxgen eval   --workdir runs/gated_pixelcnn_fmnist    # exact bits/dim of the test set
    jaxgen sample --workdir runs/gated_pixelcnn_fmnist --num 64 --out gated_pixelcnn.png --time

The likelihood is exact and discrete (log P(x) of the 8-bit image; images are
fed as bin centres), so bits/dim compares directly with every family's;
uniform logits score 8.0. Binarised variant: --config.objective.binarize=threshold
(2-way; the number is then per binary pixel, not comparable with 8-bit bits/dim).
`--time` prints samples/s. Sampler: 'auto' = 'cached', the fast incremental
step (a row of the vertical stack at each row start, then each pixel of the
horizontal stack from per-layer caches); 'recompute' (784 full passes of the
conv net) is the reference: --config.sample.sampler=recompute.
Everything but the model comes from pixelcnn_fashion_mnist.py.
"""

from jaxgen.configs.autoregressive.pixelcnn_fashion_mnist import (
    get_config as pixelcnn_fashion_mnist,
)


def get_config():
    c = pixelcnn_fashion_mnist()
    c.model.gated = True
    return c
