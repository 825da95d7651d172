"""The bound on log p(x) of a VAE whose N(0, I) prior is replaced by a learned prior p_θ(z):
a prior run trained on `data.name=latents` of a VAE run.

    log p(x) ≥ E_q[log p(x|z)] − KL(q(z|x) ‖ p_θ(z))
             = E_q[log p(x|z) + log p_θ(z) − log q(z|x)],

with log p_θ(z) the prior run's likelihood of latent vectors (the experiment's own
`log_likelihood` path, the first estimator eval reports: `eval.likelihood`'s first, else
the objective's default): exact for a flow or the flow-matching ODE; a lower bound for
diffusion's VLB, and then the whole is still a lower bound; `eval.likelihood=ode` scores a
DDPM prior by its probability-flow ODE instead. The prior's data are the
posterior *means*, but the bound needs draws z ~ q(z|x): the VAE offers them through
`Autoencoder.posterior_draw`. One draw per test image (Monte Carlo over the test set);
beside it, on the same images and the same draws, the VAE's own N(0, I)-prior ELBO
log p(x|z) + log N(z; 0, I) − log q(z|x) (the same MC form, so with p_θ = N(0, I) the
two are equal exactly).

Images are the VAE run's own test (or train) split, in the order the latents were
encoded; a VAE with a continuous decoder sees them dequantised and its log p(x|z) gets
the shared Jacobian term (`jaxgen.eval.likelihood`), so both numbers are bounds on the
8-bit image's log P(x), reported in bits/dim.

Record keys (`jaxgen eval` of the prior run): `composed/bits_per_dim`,
`composed/nll_nats` (+ `_stderr`), `vae/elbo_bits_per_dim`, `vae/elbo_nll_nats`, and the
terms, means in nats per image: `composed/recon_nats` (−log p(x|z), data units),
`composed/log_prior_nats` (log p_θ(z)), `vae/log_prior_nats` (log N(z; 0, I)),
`composed/entropy_nats` (−log q(z|x)), `composed/kl_nats` and `vae/kl_nats` (the MC KL
to each prior); `composed/prior` names the prior's estimator and its kind.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.composed import references
from jaxgen.distributions import standard_normal_log_prob, sum_event
from jaxgen.kernel import registry, transforms
from jaxgen.kernel.registry import Metric, register_metric


def draw_terms(ae, params, kind: str, event_shape, x_raw, rng) -> dict:
    """Per example of raw images `x_raw`: one z ~ q(z|x) (B, d) flattened, `log_q`, and
    `log_px` = log p(x|z) in data units (nats); `ae` an `Autoencoder` with
    `posterior_draw`. Pure up to the host transfer."""
    kd, kz = jax.random.split(rng)
    x = transforms.preprocess(kind, x_raw, kd, dequantize=not ae.discrete)
    z, log_q, log_px = ae.posterior_draw(params, x, kz)
    shift = 0.0 if ae.discrete else transforms.log_det_to_discrete(kind, event_shape)
    return {"z": z.reshape(z.shape[0], -1), "log_q": log_q, "log_px": log_px + shift}


def summarize(log_px, log_q, log_prior, z, dim: int) -> dict:
    """The record of the composed bound and the VAE's own ELBO from per-example arrays
    (nats; `z` (N, d) the draws, `dim` the image's number of dimensions)."""
    log_px, log_q, log_prior = (np.asarray(a, np.float64) for a in (log_px, log_q, log_prior))
    log_normal = np.asarray(sum_event(standard_normal_log_prob(jnp.asarray(z))), np.float64)
    composed = log_px + log_prior - log_q
    vae = log_px + log_normal - log_q
    bpd = dim * math.log(2.0)
    return {"composed/bits_per_dim": float(-composed.mean() / bpd),
            "composed/nll_nats": float(-composed.mean()),
            "composed/nll_nats_stderr": float(composed.std() / math.sqrt(len(composed))),
            "vae/elbo_bits_per_dim": float(-vae.mean() / bpd),
            "vae/elbo_nll_nats": float(-vae.mean()),
            "composed/recon_nats": float(-log_px.mean()),
            "composed/log_prior_nats": float(log_prior.mean()),
            "vae/log_prior_nats": float(log_normal.mean()),
            "composed/entropy_nats": float(-log_q.mean()),
            "composed/kl_nats": float((log_q - log_prior).mean()),
            "vae/kl_nats": float((log_q - log_normal).mean())}


def composed_bound(prior_exp, prior_params, split: str, num: int, batch_size: int, rng,
                   batches=None) -> dict:
    """The record (`summarize`) of the prior run `prior_exp` (data.name=latents) on the
    first `num` images of its VAE run's `split`, `batch_size` at a time (padded to one
    shape); `batches(n, bs, desc)` yields (i, indices) (evaluate's progress bar)."""
    from jaxgen.composed.latents import check_autoencoder, latent_view
    from jaxgen.data import get_dataset

    workdir = str(prior_exp.config.data.workdir)
    latent = str(prior_exp.config.data.get("latent", "mean") or "mean")
    vae_exp, vae_params = references.restore(workdir,
                                               check=check_autoencoder(workdir, latent))
    ae = latent_view(vae_exp.objective.autoencoder, latent, workdir)
    if ae.posterior_draw is None:
        return {"composed/bits_per_dim": f"skipped: {vae_exp.objective.name} offers no "
                                         "posterior draws z ~ q(z|x)"}
    names = prior_exp.likelihood_names()
    if not names:
        return {"composed/bits_per_dim": f"skipped: the prior ({prior_exp.objective.name}) "
                                         "has no likelihood"}
    info = vae_exp.info
    src = get_dataset(vae_exp.config.data, split).source
    draw = jax.jit(functools.partial(draw_terms, ae, kind=info.kind,
                                     event_shape=info.event_shape))
    batches = batches or (lambda n, bs, desc: enumerate(
        np.arange(lo, min(lo + bs, n)) for lo in range(0, n, bs)))
    got = {"z": [], "log_q": [], "log_px": [], "log_prior": []}
    for i, idx in batches(num, batch_size, "composed bound"):
        x = src.get(idx)["x"]
        pad = batch_size - len(idx)
        if pad:
            x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
        kd, kp = jax.random.split(jax.random.fold_in(rng, i))
        t = jax.device_get(draw(vae_params, x_raw=x, rng=kd))
        z = np.asarray(t["z"], np.float32).reshape(len(x), *prior_exp.info.event_shape)
        t["log_prior"] = prior_exp.log_likelihood(prior_params, z, kp, name=names[0])
        for k in got:
            got[k].append(np.asarray(t[k])[:len(idx)])
    got = {k: np.concatenate(v) for k, v in got.items()}
    lik = names[0]
    return {**summarize(got["log_px"], got["log_q"], got["log_prior"], got["z"], info.dim),
            "composed/prior": f"{lik} ({prior_exp.objective.likelihoods[lik].kind})"}


def _applies(ctx) -> bool:
    from jaxgen.composed.latents import LatentSettings
    return registry.dataset_spec(ctx.exp.config.data.name).settings is LatentSettings


def _compute(ctx) -> dict:
    """The bound with the learned prior beside the VAE's own N(0, I) ELBO."""
    return composed_bound(ctx.exp, ctx.params, ctx.split, ctx.n, ctx.bs,
                          jax.random.fold_in(ctx.rng, 13), ctx.batches)


register_metric(Metric("composed_bound", _applies, _compute, order=30))
