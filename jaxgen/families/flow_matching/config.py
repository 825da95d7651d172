"""Declared settings of conditional flow matching (objective.*, sample.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.core.settings import non_negative, setting
from jaxgen.processes.settings import FM_PREDICTIONS, PATHS
from jaxgen.samplers.settings import ODESolver, PriorTemperature


@dataclasses.dataclass(frozen=True)
class FlowMatchingSettings:
    path: str = setting("straight", "the probability path from noise (t = 0) to data (t = 1): "
                                    "straight (the lecture's), ot (sigma_min) or cosine (VP)",
                        choices=PATHS)
    sigma_min: float = setting(0.0, "path=ot: the width sigma_min the path ends at (0: the "
                                    "straight path)", check=non_negative)
    prediction: str = setting("velocity", "what the network predicts and regresses on; "
                                          "sampling and the likelihood convert it to the "
                                          "velocity", choices=FM_PREDICTIONS)


@dataclasses.dataclass(frozen=True)
class FlowMatchingSample(ODESolver, PriorTemperature):
    """Sampling integrates dx/dt = u(x, t) from t = 0 to 1."""
