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


def _log_sigma(v) -> str | None:
    return None if -20.0 <= v <= 20.0 else "must lie in [-20, 20] (a log noise level)"


@dataclasses.dataclass(frozen=True)
class EDMSettings:
    sigma_data: float = setting(0.5, "sigma_d, the data's standard deviation (0.5 for images "
                                     "in [-1, 1]); 0: the training data's own, measured "
                                     "when the run is first built", check=non_negative)
    p_mean: float = setting(-1.2, "P_mean: training noise levels ln sigma ~ N(P_mean, "
                                  "P_std^2)", check=_log_sigma)
    p_std: float = setting(1.2, "P_std", check=positive)
    sigma_min: float = setting(0.002, "the smallest noise level: the sampler's last nonzero "
                                      "sigma and where the likelihood's ODE ends",
                               check=positive)
    sigma_max: float = setting(80.0, "the largest: the prior N(0, sigma_max^2 I)",
                               check=positive)


@dataclasses.dataclass(frozen=True)
class EDMSample(PriorTemperature):
    sampler: str = setting("heun", "heun: Algorithm 1 (Algorithm 2 with s_churn > 0); "
                                   "euler: the same grid, Euler steps only",
                           choices=("heun", "euler"))
    steps: int = setting(18, "N, the noise levels sigma_0 > ... > sigma_{N-1} (then 0)",
                         check=positive)
    rho: float = setting(7.0, "the grid's exponent (Karras et al.: 7)", check=positive)
    s_churn: float = setting(0.0, "Algorithm 2's S_churn (0: deterministic)",
                             check=non_negative)
    s_tmin: float = setting(0.0, "S_tmin: noise is added only where sigma >= S_tmin",
                            check=non_negative)
    s_tmax: float = setting(1e9, "S_tmax: ... and sigma <= S_tmax (1e9: no bound)",
                            check=non_negative)
    s_noise: float = setting(1.0, "S_noise: the added noise's scale", check=non_negative)

    def nfe(self, objective) -> int:
        """Network evaluations per sample: 2N - 1 (Heun, the last step Euler) or N."""
        return 2 * self.steps - 1 if self.sampler == "heun" else self.steps


@dataclasses.dataclass(frozen=True)
class EDMEval(Inversion):
    pass


@dataclasses.dataclass(frozen=True)
class ConsistencySettings:
    sigma_data: float = setting(0.5, "sigma_d of the boundary-preserving parameterisation; "
                                     "0: the training data's standard deviation, measured "
                                     "when the run is first built", check=non_negative)
    sigma_min: float = setting(0.002, "the boundary: f(x, sigma_min) = x", check=positive)
    sigma_max: float = setting(80.0, "the largest noise level (the prior N(0, "
                                     "sigma_max^2 I))", check=positive)
    rho: float = setting(7.0, "the Karras grid's exponent", check=positive)
    improved: bool = setting(False, "false: CT (Song et al. 2023: L2, uniform levels, EMA "
                                    "target); true: improved CT (Song & Dhariwal 2023: "
                                    "pseudo-Huber, log-normal levels, no EMA, doubling N)")
    s0: int = setting(2, "N(k)'s first number of levels (CT 2, iCT 10)", check=positive)
    s1: int = setting(150, "N(k)'s last (CT 150, iCT 1280)", check=positive)
    schedule_steps: int = setting(10000, "K, the steps N(k) and mu(k) span (not "
                                         "train.steps: a longer resume keeps the schedule)",
                                  check=positive)
    mu0: float = setting(0.9, "CT: the target's EMA decay at N = s0; CD: its constant decay",
                         check=unit_interval)
    teacher_workdir: str = setting("", "consistency distillation: a trained EDM run whose "
                                       "denoiser takes the Heun step between adjacent levels "
                                       "('': consistency training)")
    cd_levels: int = setting(18, "CD: the fixed number of levels N", check=positive)
    p_mean: float = setting(-1.1, "iCT: the level distribution's log-normal mean",
                            check=_log_sigma)
    p_std: float = setting(2.0, "iCT: its std", check=positive)


@dataclasses.dataclass(frozen=True)
class ConsistencySample(PriorTemperature):
    steps: int = setting(1, "network evaluations: 1, or more with sample.sigmas",
                         check=positive)
    sigmas: tuple = setting((0.821,), "the intermediate noise levels of a multi-step sample, "
                                      "descending")

    def nfe(self, objective) -> int:
        return self.steps
