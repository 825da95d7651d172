"""Declared settings of the autoregressive family (objective.*, sample.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.core.settings import non_negative, setting


@dataclasses.dataclass(frozen=True)
class ARSettings:
    binarize: str = setting("", "'' (or none): 256-way 8-bit pixels; threshold: b = [x > 127], "
                                "2-way", choices=("", "none", "threshold"))


@dataclasses.dataclass(frozen=True)
class ARSample:
    sampler: str = setting("auto", "cached (incremental: KV cache, RNN state, WaveNet "
                                   "queues, PixelCNN layer caches), recompute (a full pass "
                                   "per position), or auto",
                           choices=("auto", "cached", "recompute"))
    temperature: float = setting(1.0, "divides the logits (0: argmax); multiplies a "
                                      "Gaussian's scale", check=non_negative)
