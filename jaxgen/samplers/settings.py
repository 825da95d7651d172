"""The samplers' declared settings (`jaxgen.kernel.settings`), which a family's sample
settings combine by inheritance:

    @dataclasses.dataclass(frozen=True)
    class FlowMatchingSample(ODESolver, PriorTemperature): ...

Light on purpose (no jax): families import it to register their schemas.
"""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, positive, setting

ODE_METHODS = ("euler", "heun", "rk4")


@dataclasses.dataclass(frozen=True)
class ODESolver:
    steps: int = setting(100, "fixed ODE solver steps from noise to data", check=positive)
    method: str = setting("heun", "the fixed-step ODE solver", choices=ODE_METHODS)


@dataclasses.dataclass(frozen=True)
class PriorTemperature:
    temperature: float = setting(1.0, "scales the prior noise (T < 1 trades diversity for "
                                      "fidelity)", check=non_negative)


@dataclasses.dataclass(frozen=True)
class AnnealedLangevin:
    langevin_steps: int = setting(100, "annealed Langevin: updates per noise level",
                                  check=positive)
    step_lr: float | None = setting(None, "annealed Langevin: epsilon, level i steps "
                                          "eps sigma_i^2 / sigma_L^2 (None: 0.2 sigma_L^2)",
                                    check=positive)
    denoise: bool = setting(True, "annealed Langevin: a final Tweedie step "
                                  "x + sigma_L^2 s(x, sigma_L)")
