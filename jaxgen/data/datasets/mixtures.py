"""random_mixture: random anisotropic 2-D Gaussian mixtures (`toy2d.random_mixture`), drawn
from data.mixture_seed, with their exact log-density and components."""

from __future__ import annotations

import dataclasses

from jaxgen.data.datasets._common import DrawnSettings, draw
from jaxgen.data.sources import ArraySource
from jaxgen.data.toy2d import RANDOM_MIXTURE_COMPONENTS, RANDOM_MIXTURE_SEED, get_toy
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import non_negative, setting


def _components(v):
    return None if 1 <= v <= 8 else "must lie in [1, 8]"


@dataclasses.dataclass(frozen=True)
class MixtureSettings(DrawnSettings):
    mixture_seed: int = setting(RANDOM_MIXTURE_SEED, "random_mixture: which mixture (means, "
                                "covariances, weights) is drawn", check=non_negative)
    components: int = setting(RANDOM_MIXTURE_COMPONENTS, "random_mixture: the number of "
                              "Gaussians (1 to 8)", check=_components)


def build(s: MixtureSettings, split: str) -> Dataset:
    toy = get_toy("random_mixture", mixture_seed=s.mixture_seed, components=s.components)
    return Dataset("random_mixture", "points", ArraySource(draw(toy, s, split)), (2,), None,
                   toy)


register_dataset(DatasetSpec("random_mixture", build, MixtureSettings,
                             "random anisotropic 2-D Gaussians, exact log p", kind="points"))
