"""Diffusion and score matching: DDPM (Ho et al., 2020) with its bound, DDIM, the
probability-flow ODE and classifier-free guidance; NCSN (Song & Ermon, 2019) with
denoising / sliced score matching and annealed Langevin sampling; EDM (Karras et al., 2022)
with its preconditioning, Heun samplers and probability-flow likelihood."""

from jaxgen.families.diffusion.config import (
                                              ConsistencySample,
                                              ConsistencySettings,
                                              DDPMEval,
                                              DDPMSample,
                                              DDPMSettings,
                                              EDMEval,
                                              EDMSample,
                                              EDMSettings,
                                              NCSNSample,
                                              NCSNSettings,
)
from jaxgen.kernel.registry import ObjectiveSpec, register_objective

register_objective(ObjectiveSpec(
    "ddpm", "jaxgen.families.diffusion.ddpm:make", settings=DDPMSettings, sample=DDPMSample,
    eval=DDPMEval, summary="a DDPM (VLB bound and probability-flow ODE likelihood)"))
register_objective(ObjectiveSpec(
    "ncsn", "jaxgen.families.diffusion.ncsn:make", settings=NCSNSettings, sample=NCSNSample,
    summary="a noise-conditional score network (no likelihood)"))
register_objective(ObjectiveSpec(
    "edm", "jaxgen.families.diffusion.edm:make", settings=EDMSettings, sample=EDMSample,
    eval=EDMEval, summary="EDM (preconditioned denoiser; probability-flow ODE likelihood)"))
register_objective(ObjectiveSpec(
    "consistency", "jaxgen.families.diffusion.consistency:make",
    settings=ConsistencySettings, sample=ConsistencySample,
    summary="consistency training (CT / improved CT; one- and few-step sampling)"))
