"""Conditional GAN (Mirza & Osindero, 2014) on Fashion-MNIST: the DCGAN config with
the class label fed to both networks (G: an embedding concatenated to z; D: one-hot
channels concatenated to the image).

    jaxgen train  --config configs/gan/cgan_fashion_mnist.py --workdir runs/cgan_fmnist
    jaxgen sample --workdir runs/cgan_fmnist --num 100 --classes --out cgan.png

The end of the run writes samples/classes.png (a row per class).
"""

from pathlib import Path

from jaxgen.config import load_config_file


def get_config():
    c = load_config_file(Path(__file__).with_name("dcgan_fashion_mnist.py"))
    c.model.num_classes = 10
    return c
