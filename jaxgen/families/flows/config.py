"""Declared settings of exact-likelihood normalizing flows (sample.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.samplers.settings import PriorTemperature


@dataclasses.dataclass(frozen=True)
class FlowSample(PriorTemperature):
    """Sampling inverts the flow at a prior draw T·ε."""
