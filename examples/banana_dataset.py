"""A dataset of your own, in one file outside the package: the "banana", a 2-D density with
an exact log-density, so `jaxgen eval` reports the model's NLL beside the data's entropy.

    x1 ~ N(0, 1),   x2 | x1 ~ N(b (x1² − 1), s²)
    log p(x) = log N(x1; 0, 1) + log N(x2; b (x1² − 1), s²)

A config points data.name at this file's `make`; every family that models points then
trains, evaluates and samples on it, with nothing edited inside jaxgen/:

    jaxgen train --config flow_matching/toy2d \
        --config.data.name=examples/banana_dataset.py:make --workdir runs/banana
    jaxgen eval --workdir runs/banana
    jaxgen sample --workdir runs/banana --num 2000 --out banana.png

`make(settings, split)` returns a `jaxgen.Dataset`; its settings are the data.* keys
(declared once, with a default and a doc line, like every other setting: `jaxgen config`
lists them, and an unknown data.* key is an error).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import jaxgen
from jaxgen.data.sources import ArraySource
from jaxgen.kernel.settings import non_negative, positive


@dataclasses.dataclass(frozen=True)
class BananaSettings:
    num_train: int = jaxgen.setting(20_000, "size of the (fixed) training set", check=positive)
    num_eval: int = jaxgen.setting(2_000, "size of the held-out set", check=positive)
    seed: int = jaxgen.setting(0, "which sample is drawn (independent of seed)",
                               check=non_negative)
    bend: float = jaxgen.setting(1.0, "b, how far the banana bends", check=non_negative)
    width: float = jaxgen.setting(0.3, "s, the std of x2 about the curve", check=positive)


@dataclasses.dataclass(frozen=True)
class Banana:
    """The density: `sample(rng, n)` and the exact `log_prob(x)` the metrics compare with."""

    bend: float
    width: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x1 = rng.standard_normal(n)
        x2 = self.bend * (x1 ** 2 - 1) + self.width * rng.standard_normal(n)
        return np.stack([x1, x2], -1).astype(np.float32)

    def log_prob(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        r = (x[:, 1] - self.bend * (x[:, 0] ** 2 - 1)) / self.width
        return (-0.5 * x[:, 0] ** 2 - 0.5 * r ** 2 - math.log(2 * math.pi)
                - math.log(self.width))


@jaxgen.dataset(settings=BananaSettings, kind="points")
def make(settings: BananaSettings, split: str) -> jaxgen.Dataset:
    """the banana: a bent 2-D Gaussian, exact log p"""
    banana = Banana(settings.bend, settings.width)
    train = split == "train"
    rng = np.random.default_rng([settings.seed, 0 if train else 1])
    x = banana.sample(rng, settings.num_train if train else settings.num_eval)
    return jaxgen.Dataset("banana", "points", ArraySource(x), (2,), None, toy=banana)
