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
# network evaluations per fixed step of each solver
ODE_EVALS_PER_STEP = {"euler": 1, "heun": 2, "rk4": 4}

# Each sampler's settings say how many network evaluations one sample costs (the NFE that
# papers quote next to a FID): `nfe(objective_settings) -> int`. Generic code (the FID
# record) asks the run's sample settings; a schema that declares none is recorded as such.


@dataclasses.dataclass(frozen=True)
class ODESolver:
    steps: int = setting(100, "fixed ODE solver steps from noise to data", check=positive)
    method: str = setting("heun", "the fixed-step ODE solver", choices=ODE_METHODS)

    def nfe(self, objective) -> int:
        return self.steps * ODE_EVALS_PER_STEP[self.method]


@dataclasses.dataclass(frozen=True)
class Inversion:
    inversion_steps: int = setting(50, "the deterministic round trip x -> z -> x "
                                       "(`jaxgen.kernel.contract.RoundTrip`): DDIM steps each "
                                       "way for a diffusion (at most T), RK4 steps each way "
                                       "for a flow-matching ODE",
                                   check=positive)


def inversion_steps(eval_settings) -> int:
    """A run's eval.inversion_steps, or its declared default where the objective's eval
    settings do not include `Inversion` (a plugin built on a family's builder that declares
    its own eval settings, or none)."""
    return int(getattr(eval_settings, "inversion_steps", Inversion().inversion_steps))


@dataclasses.dataclass(frozen=True)
class PriorTemperature:
    temperature: float = setting(1.0, "scales the prior noise (T < 1 trades diversity for "
                                      "fidelity)", check=non_negative)

    def nfe(self, objective) -> int:
        return 1  # one pass from a prior draw (a generator, a flow's inverse, a decoder)


@dataclasses.dataclass(frozen=True)
class AnnealedLangevin:
    langevin_steps: int = setting(100, "annealed Langevin: updates per noise level",
                                  check=positive)
    step_lr: float | None = setting(None, "annealed Langevin: epsilon, level i steps "
                                          "eps sigma_i^2 / sigma_L^2 (None: 0.2 sigma_L^2)",
                                    check=positive)
    denoise: bool = setting(True, "annealed Langevin: a final Tweedie step "
                                  "x + sigma_L^2 s(x, sigma_L)")

    def nfe(self, objective) -> int:
        return objective.num_sigmas * self.langevin_steps + int(self.denoise)
