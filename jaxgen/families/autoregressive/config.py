"""Declared settings of the autoregressive family (objective.*, sample.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, setting


@dataclasses.dataclass(frozen=True)
class ARSettings:
    binarize: str = setting("", "'' (or none): 256-way 8-bit pixels; threshold: b = [x > 127], "
                                "2-way", choices=("", "none", "threshold"))
    condition_prefix: int = setting(0, "P > 0: the first P positions are given, not modelled "
                                       "(VQ-VAE-2's top codes before the bottom's): loss, "
                                       "likelihood and coding are of p(x_{≥P} | x_{<P})",
                                    check=non_negative)
    order: str = setting("raster", "the order the chain rule runs over the positions: raster "
                                   "(row by row) or random (one fixed permutation drawn "
                                   "from objective.order_seed, the same for every example)",
                         choices=("raster", "random"))
    order_seed: int = setting(0, "objective.order=random: the seed of the permutation",
                              check=non_negative)


@dataclasses.dataclass(frozen=True)
class ARSample:
    sampler: str = setting("auto", "cached (incremental: KV cache, RNN state, WaveNet "
                                   "queues, PixelCNN layer caches), recompute (a full pass "
                                   "per position), or auto",
                           choices=("auto", "cached", "recompute"))
    temperature: float = setting(1.0, "divides the logits (0: argmax); multiplies a "
                                      "Gaussian's scale", check=non_negative)
    prefix_workdir: str = setting("", "objective.condition_prefix > 0: the run (a prior over "
                                      "the prefix, e.g. the top codes) whose samples are "
                                      "the given prefix")
