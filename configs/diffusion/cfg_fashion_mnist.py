"""Class-conditional DDPM on Fashion-MNIST with classifier-free guidance (Ho & Salimans, 2022).

The unconditional DDPM config (ddpm_fashion_mnist.py) plus a class embedding.
Labels are dropped to the null label with probability objective.label_dropout
in training; at sampling time ε̃ = (1 + w)·ε(x, c) − w·ε(x, ∅).

    jaxgen train  --config configs/diffusion/cfg_fashion_mnist.py --workdir runs/cfg_fmnist
    # writes samples/classes_w0.png, classes_w1.png, classes_w3.png (a row per class)
    jaxgen sample --workdir runs/cfg_fmnist --num 80 --out w2.png --classes \
        --config.sample.guidance=2
"""

from jaxgen.configs.diffusion.ddpm_fashion_mnist import get_config as ddpm_fashion_mnist


def get_config():
    c = ddpm_fashion_mnist()
    c.model.num_classes = 10
    c.objective.label_dropout = 0.1
    c.sample.guidance = 0.0  # w; 0 = the plain conditional model
    c.sample.guidance_grid = (0.0, 1.0, 3.0)  # end-of-run class grids
    return c
