"""Conditional GAN (Mirza & Osindero, 2014) on Fashion-MNIST: the DCGAN config with
the class label fed to both networks (G: an embedding concatenated to z; D: one-hot
channels concatenated to the image).

    jaxgen train  --config configs/gan/cgan_fashion_mnist.py --workdir runs/cgan_fmnist
    jaxgen sample --workdir runs/cgan_fmnist --num 100 --classes --out cgan.png

The end of the run writes samples/classes.png (a row per class).
"""

from jaxgen.configs.gan.dcgan_fashion_mnist import get_config as dcgan_fashion_mnist


def get_config():
    c = dcgan_fashion_mnist()
    c.model.num_classes = 10
    return c
