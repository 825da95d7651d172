"""Declared settings of conditional flow matching (objective.*, sample.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.core.settings import non_negative, setting
from jaxgen.samplers.settings import ODESolver, PriorTemperature


@dataclasses.dataclass(frozen=True)
class FlowMatchingSettings:
    sigma_min: float = setting(0.0, "sigma_min of the OT path (0: the lecture's straight "
                                    "path x_t = t x1 + (1 - t) x0)", check=non_negative)


@dataclasses.dataclass(frozen=True)
class FlowMatchingSample(ODESolver, PriorTemperature):
    """Sampling integrates dx/dt = u(x, t) from t = 0 to 1."""
