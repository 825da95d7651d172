"""Declared settings of the diffusion family: DDPM (objective.*, sample.*, eval.*) and NCSN."""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, positive, setting, unit_interval
from jaxgen.processes.settings import PREDICTIONS, SCHEDULE_NAMES, VARIANCES
from jaxgen.samplers.settings import AnnealedLangevin, Inversion, ODESolver, PriorTemperature


@dataclasses.dataclass(frozen=True)
class DDPMSettings:
    num_steps: int = setting(1000, "T, the number of diffusion steps", check=positive)
    schedule: str = setting("linear", "the beta schedule", choices=SCHEDULE_NAMES)
    prediction: str = setting("eps", "what the network predicts (eps: the lecture's)",
                              choices=PREDICTIONS)
    variance: str = setting("beta", "sigma_t^2 of p(x_{t-1} | x_t)", choices=VARIANCES)
    weighting: str = setting("none", "the loss's weighting over t: none (the lecture's) or "
                                     "min_snr (Hang et al., 2023)", choices=("none", "min_snr"))
    min_snr_gamma: float = setting(5.0, "weighting=min_snr: gamma, the SNR the weight is "
                                        "capped at", check=positive)
    label_dropout: float | None = setting(
        None, "classifier-free guidance: P(label -> null) in training (None: 0.1 with "
              "model.num_classes, else 0)", check=unit_interval)


@dataclasses.dataclass(frozen=True)
class DDPMSample(ODESolver, PriorTemperature):
    sampler: str = setting("ddpm", "ddpm (ancestral, all T steps), ddim (sample.steps of "
                                   "them), ode (probability flow) or dpm_solver "
                                   "(DPM-Solver++(2M), sample.steps network calls)",
                           choices=("ddpm", "ddim", "ode", "dpm_solver"))
    spacing: str = setting("quadratic", "dpm_solver: its steps, quadratic in t (t_i = T (i/M)^2), "
                                        "uniform in log-SNR, or uniform in t (ddim's)",
                           choices=("quadratic", "logsnr", "time"))  # samplers.ddpm.DPM_SPACINGS
    eta: float = setting(0.0, "ddim: 0 deterministic, 1 = DDPM's beta-tilde variance",
                         check=non_negative)
    guidance: float = setting(0.0, "classifier-free guidance scale w (labelled samples)",
                              check=non_negative)
    clip_x0: float | None = setting(None, "clip the predicted x_0 to [-c, c] (0: off; None: "
                                          "1 for images, off for points)", check=non_negative)
    guidance_grid: tuple = setting((0.0, 1.0, 3.0), "end-of-run class grids: the guidance "
                                                    "scales drawn")

    def nfe(self, objective) -> int:
        """Network evaluations per unguided sample: T (ddpm), sample.steps (ddim,
        dpm_solver), the ODE solver's (ode). Classifier-free guidance of labelled samples
        doubles it."""
        per_pass = {"ddpm": objective.num_steps, "ddim": self.steps,
                    "dpm_solver": self.steps}.get(self.sampler)
        return ODESolver.nfe(self, objective) if per_pass is None else per_pass


@dataclasses.dataclass(frozen=True)
class DDPMEval(Inversion):
    vlb_steps: int = setting(0, "the VLB's sum over t: 0 all T - 1 KL terms, K > 0 an "
                                "unbiased stratified estimate with K of them",
                             check=non_negative)


@dataclasses.dataclass(frozen=True)
class NCSNSettings:
    sigma_max: float = setting(10.0, "sigma_1, about the largest distance between training "
                                     "points", check=positive)
    sigma_min: float = setting(0.01, "sigma_L, small against the data's detail",
                               check=positive)
    num_sigmas: int = setting(10, "L, geometric spacing", check=positive)
    loss: str = setting("dsm", "denoising or sliced score matching", choices=("dsm", "ssm"))
    ssm_probe: str = setting("rademacher", "ssm: the probe vectors v",
                             choices=("rademacher", "gaussian"))


@dataclasses.dataclass(frozen=True)
class NCSNSample(AnnealedLangevin, PriorTemperature):
    """Annealed Langevin from N(0, sigma_1^2 I); temperature also scales the injected noise."""
