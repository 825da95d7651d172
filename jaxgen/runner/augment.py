"""Data augmentation of the training images, in the train step (`train.augment`).

Applied per example to the raw uint8 batch before it is preprocessed, with a key folded
from the step's key: the flips of step s are the same in a resumed run, on any number of
devices, and with any data pipeline. Held-out data (eval) and the init batch are never
augmented.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError

__all__ = ["augment", "check"]


def check(name: str, kind: str) -> None:
    """A UserError unless augmentation `name` (a declared choice of train.augment) applies
    to data of this kind."""
    if name != "none" and kind != "images":
        raise UserError(f"train.augment={name} flips images; the data are {kind}. "
                        "Use --config.train.augment=none.")


def augment(name: str, x: jax.Array, key: jax.Array) -> jax.Array:
    """`x` (B, H, W, C) with augmentation `name` applied to each example: "none" leaves
    it, "hflip" mirrors each image left-right with probability 1/2 (Ho et al.'s randflip,
    torchvision's RandomHorizontalFlip)."""
    if name == "none":
        return x
    if name != "hflip":
        raise UserError(f"train.augment={name!r} is not an augmentation of jaxgen's.")
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
