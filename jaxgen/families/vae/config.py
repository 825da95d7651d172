"""Declared settings of the VAE family: VAE / beta-VAE / IWAE and VQ-VAE."""

from __future__ import annotations

import dataclasses

from jaxgen.kernel.settings import non_negative, positive, setting, unit_interval
from jaxgen.samplers.settings import PriorTemperature

DECODERS = ("bernoulli", "gaussian", "gaussian_learned", "logistic")


@dataclasses.dataclass(frozen=True)
class VAESettings:
    encoder: str = setting("gaussian", "q(z|x): N(mu(x), sigma(x)^2) with the KL term (the VAE), "
                                       "or deterministic z = mu(x), no noise, no KL (a plain "
                                       "autoencoder; beta and kl_warmup_steps unused)",
                           choices=("gaussian", "deterministic"))
    decoder: str | None = setting(None, "p(x|z) (None: logistic for images, gaussian_learned "
                                        "for points)", choices=DECODERS)
    learned_std: str = setting("pixel", "gaussian_learned: a log-scale per dimension or one "
                                        "per example", choices=("pixel", "example"))
    binarize: str = setting("threshold", "bernoulli: b = [x > 127], or b ~ Bernoulli(x / 255) "
                                         "redrawn each step", choices=("threshold", "stochastic"))
    decoder_std: float = setting(0.1, "gaussian: the fixed decoder scale s", check=positive)
    beta: float = setting(1.0, "weight of the KL (1: the VAE, > 1: the beta-VAE)",
                          check=non_negative)
    kl_warmup_steps: int = setting(0, "linear KL warm-up over this many steps (0: none)",
                                   check=non_negative)


@dataclasses.dataclass(frozen=True)
class VAESample(PriorTemperature):
    mode: str = setting("mean", "decode z to the decoder's mean image, or draw x ~ p(x|z)",
                        choices=("mean", "draw"))


@dataclasses.dataclass(frozen=True)
class VAEEval:
    iwae_k: int = setting(100, "IWAE bound: importance samples k", check=positive)
    iwae_chunk: int = setting(100, "IWAE bound: samples per chunk (memory)", check=positive)
    elbo_samples: int = setting(1, "ELBO estimate: posterior draws", check=positive)


@dataclasses.dataclass(frozen=True)
class VQVAESettings:
    num_codes: int = setting(512, "K, the codebook size (vqvae2: of each level's)",
                             check=positive)
    beta: float = setting(0.25, "weight of the commitment term", check=non_negative)
    ema: bool = setting(False, "keep the codebook by EMA (non-gradient state) instead of its "
                               "loss term")
    ema_decay: float = setting(0.99, "ema: decay gamma", check=unit_interval)
    ema_epsilon: float = setting(1e-5, "ema: Laplace smoothing epsilon", check=positive)
    restart_after: int = setting(0, "reset a code idle this many steps to an encoder output "
                                    "(0: never)", check=non_negative)
    decoder_std: float = setting(0.1, "eval's bound only: the Gaussian decoder scale s",
                                 check=positive)
