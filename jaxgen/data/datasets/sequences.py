"""gaussian_ar2: stationary Gaussian AR(2) sequences (`jaxgen.data.toy_sequences`), with
their exact log-density."""

from __future__ import annotations

import dataclasses
import functools

from jaxgen.data.datasets._common import DrawnSettings, draw, positive_int
from jaxgen.data.sources import ArraySource
from jaxgen.data.toy_sequences import SEQUENCE_TOYS, get_sequence_toy
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import positive, setting


@dataclasses.dataclass(frozen=True)
class SequenceSettings(DrawnSettings):
    std: float | None = setting(None, "gaussian_ar2: the innovation std (None: 0.5)",
                                check=positive)
    length: int | None = setting(None, "gaussian_ar2: the sequence length T (None: 32)",
                                 check=positive_int)
    ar_coeffs: tuple | None = setting(None, "gaussian_ar2: (a1, a2) (None: (1.0, -0.5))")


def build(s: SequenceSettings, split: str, *, name: str) -> Dataset:
    toy = get_sequence_toy(name, length=s.length, coeffs=s.ar_coeffs, std=s.std)
    return Dataset(name, "points", ArraySource(draw(toy, s, split)), (toy.length,), None, toy)


for _name in SEQUENCE_TOYS:
    register_dataset(DatasetSpec(_name, functools.partial(build, name=_name),
                                 SequenceSettings, "Gaussian AR(2) sequences (T,), exact log p",
                                 kind="points"))
