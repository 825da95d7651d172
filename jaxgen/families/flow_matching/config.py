"""Declared settings of conditional flow matching (objective.*, sample.*, eval.*)."""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, positive, setting
from jaxgen.processes.settings import (
    DIVISOR_FLOOR,
    FM_PREDICTIONS,
    MODE_SCALE_MAX,
    PATHS,
    TIME_SAMPLING,
)
from jaxgen.samplers.settings import Inversion, ODESolver, PriorTemperature


def _loc(v):
    return None if -10.0 <= v <= 10.0 else "must lie in [-10, 10]"


def _mode_scale(v):
    return None if -1.0 <= v <= MODE_SCALE_MAX else f"must lie in [-1, {MODE_SCALE_MAX:.4f}]"


def _floor(v):
    return None if 0 < v <= 1 else "must lie in (0, 1] (it bounds a division)"


@dataclasses.dataclass(frozen=True)
class FlowMatchingSettings:
    path: str = setting("straight", "the probability path from noise (t = 0) to data (t = 1): "
                                    "straight (the lecture's), ot (sigma_min) or cosine (VP)",
                        choices=PATHS)
    sigma_min: float = setting(0.0, "straight/ot: the width sigma_min the path ends at, "
                                    "x_t = t x1 + (1 - (1 - sigma_min) t) x0 (0: the lecture's "
                                    "straight line; > 0: Lipman et al.'s OT path)",
                               check=non_negative)
    prediction: str = setting("velocity", "what the network predicts and regresses on; "
                                          "sampling and the likelihood convert it to the "
                                          "velocity", choices=FM_PREDICTIONS)
    time_sampling: str = setting("uniform", "the training times t: uniform on [0, 1] (the "
                                            "lecture's), or skewed: t = 1 / (1 + sigma), log "
                                            "sigma ~ N(-1.2, 1.2^2) (EDM's noise levels, "
                                            "Karras et al. 2022), clipped to [1e-4, 1], as "
                                            "FAIR's flow_matching CIFAR-10 recipe",
                                 choices=TIME_SAMPLING)
    time_loc: float = setting(0.0, "time_sampling=logit_normal: m, the mean of the logit of "
                                   "the noise level (SD3's m)", check=_loc)
    time_scale: float = setting(1.0, "time_sampling=logit_normal: s, its std (SD3's s)",
                                check=positive)
    time_mode_scale: float = setting(1.29, "time_sampling=mode: SD3's s, in [-1, 2/(pi - 2)] "
                                           "(0: uniform)", check=_mode_scale)
    reflow_workdir: str = setting("", "reflow (Liu et al. 2022): a trained flow-matching run "
                                      "whose ODE draws the couplings (x0 = z, x1 = its sample "
                                      "of z) this run regresses on, instead of independent "
                                      "noise and data ('': off)")
    reflow_steps: int = setting(20, "reflow: RK4 steps of that run's ODE per coupling",
                                check=positive)
    divisor_floor: float = setting(DIVISOR_FLOOR, "prediction=x1 (x0): the conversion to the "
                                                  "velocity divides by max(sigma_t, this) "
                                                  "(max(alpha_t, this)), bounding the field "
                                                  "near t = 1 (0); Li & He 2025 use 0.05",
                                   check=_floor)


@dataclasses.dataclass(frozen=True)
class FlowMatchingSample(ODESolver, PriorTemperature):
    """Sampling integrates dx/dt = u(x, t) from t = 0 to 1."""


@dataclasses.dataclass(frozen=True)
class FlowMatchingEval(Inversion):
    """The round trip x -> z -> x integrates the ODE from t = 1 back to 0 and forward again."""
