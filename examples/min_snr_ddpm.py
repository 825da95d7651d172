"""DDPM with min-SNR-γ loss weighting (Hang et al., 2023), in one file.

Each example's ε-MSE is weighted by min(SNR_t, γ) / SNR_t, SNR_t = ᾱ_t / (1 − ᾱ_t): the x_0-loss
weight min(SNR_t, γ) written for ε-prediction, which caps the weight of the easy, low-noise
steps. The family's sampler, bound and pictures are kept (`ddpm.make(ctx, weight=...)`).
Config: min_snr_ddpm_config.py.
"""

import dataclasses
import functools

import jax.numpy as jnp

import jaxgen
from jaxgen.families.diffusion import ddpm
from jaxgen.families.diffusion.config import DDPMEval, DDPMSample, DDPMSettings


@dataclasses.dataclass(frozen=True)
class Settings(DDPMSettings):
    gamma: float = jaxgen.setting(5.0, "min-SNR: the SNR the weight is capped at")


def min_snr_weight(s, t, prediction, gamma):
    """min(SNR_t, γ) / SNR_t for the ε-MSE of each example (B,)."""
    if prediction != "eps":
        raise ValueError("this example weights the ε-MSE: set objective.prediction=eps")
    snr = s.alpha_bars[t] / (1.0 - s.alpha_bars[t])
    return jnp.minimum(snr, gamma) / snr


@jaxgen.objective(settings=Settings, sample=DDPMSample, eval=DDPMEval)
def make(ctx):
    """DDPM with the min-SNR-γ weighting."""
    return ddpm.make(ctx, weight=functools.partial(min_snr_weight, gamma=ctx.settings.gamma))
