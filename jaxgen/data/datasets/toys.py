"""The 2-D toy densities (`jaxgen.data.toy2d`): a fixed sample of each, with the exact
log-density (and, for the Gaussian mixtures, the modes) that metrics compare with."""

from __future__ import annotations

import dataclasses
import functools

from jaxgen.data.datasets._common import DrawnSettings, draw
from jaxgen.data.sources import ArraySource
from jaxgen.data.toy2d import TOY_DATASETS, get_toy
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import positive, setting


@dataclasses.dataclass(frozen=True)
class ToySettings(DrawnSettings):
    std: float | None = setting(None, "the mixtures' component std (None: the paper's)",
                                check=positive)


def build(s: ToySettings, split: str, *, name: str) -> Dataset:
    toy = get_toy(name, std=s.std)
    return Dataset(name, "points", ArraySource(draw(toy, s, split)), (2,), None, toy)


for _name in TOY_DATASETS:
    if _name != "random_mixture":  # its own settings: `mixtures`
        _exact = get_toy(_name).log_prob is not None
        register_dataset(DatasetSpec(_name, functools.partial(build, name=_name), ToySettings,
                                     "a 2-D toy, " + ("exact log p" if _exact else
                                                      "sampler only"), kind="points"))
