"""The MMD-VAE (InfoVAE with α = 1, Zhao, Song & Ermon 2019), in one file with its config.

The KL term of the ELBO is replaced by λ · MMD²(q(z), p(z)): the squared maximum mean
discrepancy between the batch's codes z ~ q(z|x) and as many draws of the prior N(0, I),
an RBF kernel at the median-heuristic bandwidths (`jaxgen.eval.mmd.mmd2`, unbiased). The
VAE family keeps its encoder/decoder, sampler, IWAE and ELBO bounds and pictures; only the
regulariser is this file's (`vae.make(ctx, regularizer=...)`).

    jaxgen check examples/mmd_vae.py
    jaxgen train --config examples/mmd_vae.py --workdir runs/mmd_vae
"""

import dataclasses
import functools

import jax

import jaxgen
from jaxgen.eval.mmd import mmd2

vae = jaxgen.family("vae")


@dataclasses.dataclass(frozen=True)
class Settings(vae.settings):
    mmd_weight: float = jaxgen.setting(100.0, "λ, the weight of MMD²(q(z), p(z)) in nats "
                                              "per example", check=lambda v: None if v > 0
                                       else "must be > 0")


def mmd_regularizer(z, mean, log_var, rng, *, weight):
    """λ · MMD²(z, ε), ε ~ N(0, I) as many as z: the aggregate posterior against the prior."""
    del mean, log_var
    prior = jax.random.normal(rng, z.shape, z.dtype)
    m = mmd2(z, prior)
    return weight * m, {"mmd2": m}


@jaxgen.objective(settings=Settings, sample=vae.sample, eval=vae.eval)
def make(ctx):
    """The VAE with the MMD regulariser in place of the KL term."""
    return vae.make(ctx, regularizer=functools.partial(mmd_regularizer,
                                                       weight=ctx.settings.mmd_weight))


def get_config():
    from jaxgen.configs.vae.vae_toy2d import get_config as vae_toy2d
    c = vae_toy2d()
    c.objective.name = __file__ + ":make"
    c.objective.mmd_weight = 100.0
    return c
