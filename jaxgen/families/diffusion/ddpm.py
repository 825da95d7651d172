"""DDPM (Ho et al., 2020) as in the lecture, with its variational bound, DDIM,
DPM-Solver++(2M), the probability-flow ODE and classifier-free guidance.

Training is the lecture's Algorithm 1: x_0 ~ data, t ~ U{1, …, T}, ε ~ N(0, I),

    L_simple(θ) = E ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖²

(averaged over dimensions as well as examples: the same minimiser, and a
learning rate that does not depend on resolution). `objective.prediction`
switches the target to x_0 or v = √ᾱ ε − √(1 − ᾱ) x_0; every sampler and bound
converts the output to ε first (`diffusion_process.eps_from_output`).

The network sees the step as u = t/T ∈ (0, 1] (the embedding multiplies by
1000, so u·1000 = t for T = 1000), which is also the continuous time of the
probability-flow ODE.

Variational bound (lecture; Ho et al., eq. 5), in nats per example:

    L_VLB = L_T + Σ_{t=2}^T L_{t−1} + L_0,
    L_T     = KL(q(x_T | x_0) ‖ N(0, I))                         ("prior")
    L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))     ("diffusion", summed)
    L_0     = −log p_θ(x_0 | x_1)                                 ("recon")

with p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I), μ_θ Algorithm 2's mean, σ_t² = β_t or
β̃_t (`objective.variance`). For 8-bit images the decoder L_0 is Ho et al.'s
discretised Gaussian over the 256 bins of model space, so −L_VLB bounds
log P(x) of the discrete image itself; images are therefore fed to this
objective as bin centres, without dequantisation noise (`Objective.dequantize`).
For points L_0 is the Gaussian density.

Each training step logs a one-sample unbiased estimate of the bound:
L_T + T·ℓ_t, ℓ_t = L_{t−1} (t ≥ 2) or L_0 (t = 1), at the step's own t, so the
bound is tracked at no extra network cost (`vlb_bpd` / `vlb_nats`), with its
terms `prior_*` (L_T, exact), `recon_*` (L_0) and `diffusion_*` (Σ L_{t−1}),
each also unbiased (the last two are noisy: t = 1 is drawn once in T).
`jaxgen eval` computes it per example: L_T and L_0 exactly and
Σ L_{t−1} over all T − 1 steps, or, with eval.vlb_steps = K, an unbiased
stratified estimate (one random t in each of K equal strata), reporting each
term (vdm-style breakdown).

Class conditioning with classifier-free guidance (Ho & Salimans, 2022): with
`model.num_classes` set, labels are replaced by the null label with
probability `objective.label_dropout` in training; sampling with guidance
w uses ε̃ = (1 + w)·ε_θ(x, c) − w·ε_θ(x, ∅). Without labels a conditional
model samples (and scores) its unconditional, null-label model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.distributions import discretized_gaussian_log_prob, normal_log_prob
from jaxgen.families.diffusion import pictures
from jaxgen.kernel import transforms
from jaxgen.kernel.contract import (
    BuildContext,
    FamilyTools,
    Likelihood,
    Objective,
    Player,
    RoundTrip,
)
from jaxgen.kernel.errors import UserError
from jaxgen.processes import diffusion as dp
from jaxgen.samplers import ddpm as samplers
from jaxgen.samplers import ode
from jaxgen.samplers.settings import inversion_steps


@dataclasses.dataclass(frozen=True)
class DiffusionTools(FamilyTools):
    """A DDPM's schedule and its sampler with the whole path (for the pictures).

    draw(params, rng, num, settings, labels=None, return_path=False): `sample`, which
    with return_path also returns the path x_T ... x_0 (ddpm/ddim/dpm_solver samplers).
    """

    provides: ClassVar[str] = "diffusion schedule"
    needed_for: ClassVar[str] = "diffusion runs (objective.name=ddpm)"
    schedule: dp.Schedule
    num_steps: int
    draw: Callable


def make_net(model, prediction: str, num_classes: int | None):
    """`eps(params, x, u, labels, alpha_bar)`: the network at u = t/T, its output as ε."""
    def raw(params, x, u, labels):
        u = jnp.broadcast_to(jnp.asarray(u, jnp.float32), (x.shape[0],))
        if num_classes is None:
            return model.apply({"params": params}, x, u)
        return model.apply({"params": params}, x, u, labels)

    def eps(params, x, u, labels, alpha_bar):
        return dp.eps_from_output(prediction, x, alpha_bar, raw(params, x, u, labels))

    eps.raw = raw
    return eps


def ddpm_terms(params, batch, rng, *, net, s: dp.Schedule, prediction: str,
               num_classes: int | None, label_dropout: float, model_var, decoder):
    """One training draw of Algorithm 1, as per-example terms (no reduction):

    sq (B, ...) the squared error of the prediction, t (B,) the steps drawn, and the
    one-sample VLB pieces prior (B,) = L_T and ell (B,) = L_{t−1} (t ≥ 2) or L_0 (t = 1).
    """
    x0 = batch["x"]
    b = x0.shape[0]
    T = s.num_steps
    kt, ke, kl = jax.random.split(rng, 3)
    t = jax.random.randint(kt, (b,), 1, T + 1)
    eps = jax.random.normal(ke, x0.shape, x0.dtype)
    xt = dp.q_sample(s, x0, t, eps)
    labels = None
    if num_classes is not None:
        labels = batch.get("label")
        if labels is None:
            labels = jnp.full((b,), num_classes, jnp.int32)
        drop = jax.random.uniform(kl, (b,)) < label_dropout
        labels = jnp.where(drop, num_classes, labels)
    out = net.raw(params["model"], xt, t.astype(jnp.float32) / T, labels)
    sq = jnp.square(out - dp.target(prediction, s, x0, t, eps))

    # One-sample VLB estimate, L_T + T·ℓ_t (no gradient, no extra network call).
    ab = s.at(s.alpha_bars, t, x0)
    eps_hat = jax.lax.stop_gradient(dp.eps_from_output(prediction, xt, ab, out))
    mean = dp.reverse_mean(s, xt, t, eps_hat)
    var = s.at(model_var, t, x0)
    q_mean, q_var = dp.q_posterior(s, x0, xt, t)
    kl_t = dp.sum_event(dp.normal_kl(q_mean, jnp.maximum(q_var, 1e-30), mean, var))
    l0_t = -dp.sum_event(decoder(x0, mean, var))
    return {"sq": sq, "t": t, "prior": prior_term(s, x0), "ell": jnp.where(t == 1, l0_t, kl_t)}


def min_snr_weight(s: dp.Schedule, t, prediction: str, gamma: float = 5.0):
    """Min-SNR-γ (Hang et al., 2023): the x_0-loss weight min(SNR_t, γ), SNR_t = ᾱ_t/(1 − ᾱ_t),
    expressed for the loss of `prediction`: ÷ SNR_t for ε, ÷ (SNR_t + 1) for v. (B,)"""
    ab = s.alpha_bars[t]
    snr = ab / (1.0 - ab)
    w = jnp.minimum(snr, gamma)
    if prediction == "eps":
        return w / snr
    if prediction == "v":
        return w / (snr + 1.0)
    return w


def ddpm_loss(params, batch, rng, *, net, s: dp.Schedule, prediction: str,
              num_classes: int | None, label_dropout: float, model_var, decoder,
              event_dim: int, image: bool, weight=None):
    """Algorithm 1, plus the one-sample VLB estimate as metrics.

    `weight`: an optional `(s, t, prediction) -> (B,)` weighting of the per-example squared
    error (e.g. `min_snr_weight`); None: the lecture's plain mean. The VLB metrics do not
    depend on it.
    """
    T = s.num_steps
    terms = ddpm_terms(params, batch, rng, net=net, s=s, prediction=prediction,
                       num_classes=num_classes, label_dropout=label_dropout,
                       model_var=model_var, decoder=decoder)
    sq, t, prior, ell = terms["sq"], terms["t"], terms["prior"], terms["ell"]
    mse = jnp.mean(sq)
    loss = mse
    if weight is not None:
        per_example = jnp.mean(sq.reshape(sq.shape[0], -1), -1)
        loss = jnp.mean(weight(s, t, prediction) * per_example)
    vlb = prior + T * ell
    unit, scale = ("bpd", 1.0 / (event_dim * math.log(2.0))) if image else ("nats", 1.0)
    # L_0 and Σ L_{t-1} separately: T·ℓ_t where t = 1 (resp. t ≥ 2), else 0 — each unbiased.
    metrics = {"mse": mse, f"vlb_{unit}": jnp.mean(vlb) * scale,
               f"prior_{unit}": jnp.mean(prior) * scale,
               f"recon_{unit}": T * jnp.mean(jnp.where(t == 1, ell, 0.0)) * scale,
               f"diffusion_{unit}": T * jnp.mean(jnp.where(t == 1, 0.0, ell)) * scale}
    if weight is not None:
        metrics["weighted_mse"] = loss
    return loss, metrics


def prior_term(s: dp.Schedule, x0):
    """L_T = KL(q(x_T | x_0) ‖ N(0, I)) per example (nats)."""
    T = s.num_steps
    ab = s.alpha_bars[T]
    return dp.sum_event(dp.normal_kl(jnp.sqrt(ab) * x0, 1.0 - ab, 0.0, 1.0))


def make_decoder(kind: str):
    """log p_θ(x_0 | x_1) elementwise: discretised Gaussian (8-bit images) or Gaussian."""
    if kind == "images":
        bw = transforms.IMAGE_SCALE / 256.0
        return functools.partial(discretized_gaussian_log_prob, bin_width=bw,
                                 lo=transforms.IMAGE_SHIFT,
                                 hi=transforms.IMAGE_SHIFT + transforms.IMAGE_SCALE)
    return normal_log_prob


def vlb_terms(params_model, x0, rng, *, net, s: dp.Schedule, model_var, decoder,
              num_classes: int | None, num_strata: int = 0):
    """Per-example (L_T, L_0, Σ_{t=2}^T L_{t−1}) in nats.

    `num_strata` = 0 sums all T − 1 KL terms; K > 0 draws one t per stratum of
    K equal strata of {2, …, T} and weights it by the stratum size (unbiased).
    """
    b = x0.shape[0]
    T = s.num_steps
    labels = None if num_classes is None else jnp.full((b,), num_classes, jnp.int32)

    def eps_at(x, t):
        tt = jnp.broadcast_to(jnp.asarray(t, jnp.int32), (b,))
        return net(params_model, x, tt.astype(jnp.float32) / T, labels,
                   s.at(s.alpha_bars, tt, x))

    k0, kd = jax.random.split(rng)
    x1 = dp.q_sample(s, x0, 1, jax.random.normal(k0, x0.shape, x0.dtype))
    mean1 = dp.reverse_mean(s, x1, 1, eps_at(x1, 1))
    recon = -dp.sum_event(decoder(x0, mean1, model_var[1]))

    K = T - 1 if num_strata <= 0 else min(int(num_strata), T - 1)
    edges = np.floor(np.linspace(2, T + 1, K + 1)).astype(np.int32)
    lo, size = jnp.asarray(edges[:-1]), jnp.asarray(np.diff(edges))

    def body(acc, k):
        kk = jax.random.fold_in(kd, k)
        ku, ke = jax.random.split(kk)
        if K == T - 1:
            t = jnp.full((b,), lo[k])
        else:  # one t per example in stratum k
            t = lo[k] + jnp.floor(jax.random.uniform(ku, (b,)) * size[k]).astype(jnp.int32)
        xt = dp.q_sample(s, x0, t, jax.random.normal(ke, x0.shape, x0.dtype))
        mean = dp.reverse_mean(s, xt, t, eps_at(xt, t))
        q_mean, q_var = dp.q_posterior(s, x0, xt, t)
        kl = dp.sum_event(dp.normal_kl(q_mean, q_var, mean, s.at(model_var, t, x0)))
        return acc + size[k].astype(jnp.float32) * kl, None

    diffusion, _ = jax.lax.scan(body, jnp.zeros((b,), jnp.float32), jnp.arange(K))
    return prior_term(s, x0), recon, diffusion


def guided_eps(params, labels, guidance, *, net, s: dp.Schedule, num_classes):
    """ε(x, t) for the samplers: integer t (discrete) or float u (ODE, `continuous`), with
    classifier-free guidance ε̃ = (1 + w) ε(x, c) − w ε(x, ∅) for labelled samples."""
    T = s.num_steps

    def eps(x, t, continuous=False):
        b = x.shape[0]
        if continuous:
            u = t
            ab = jnp.exp(dp.log_alpha_bar_continuous(s, u))
        else:
            u = t.astype(jnp.float32) / T
            ab = s.alpha_bars[t]
        if num_classes is None:
            return net(params["model"], x, u, None, ab)
        null = jnp.full((b,), num_classes, jnp.int32)
        lab = null if labels is None else labels
        if labels is None or guidance == 0.0:
            return net(params["model"], x, u, lab, ab)
        both = net(params["model"], jnp.concatenate([x, x]), u,
                   jnp.concatenate([lab, null]), ab)
        e_c, e_u = both[:b], both[b:]
        return (1.0 + guidance) * e_c - guidance * e_u
    return eps


def draw(params, rng, num, settings, labels=None, return_path=False, *, net, s: dp.Schedule,
         num_classes, variance: str, event_shape, image: bool):
    """Samples by settings.sampler: "ddpm" (Algorithm 2), "ddim", "dpm_solver"
    (DPM-Solver++(2M) on settings.spacing's steps) or "ode" (probability flow)."""
    if labels is not None and num_classes is None:
        raise UserError("This model is unconditional (model.num_classes is unset); "
                         "drop the labels.")
    T = s.num_steps
    clip_x0 = settings.clip_x0
    clip = float((1.0 if image else 0.0) if clip_x0 is None else clip_x0) or None
    kz, kr = jax.random.split(rng)
    x_T = settings.temperature * jax.random.normal(kz, (num, *event_shape), jnp.float32)
    eps = guided_eps(params, labels, float(settings.guidance), net=net, s=s,
                     num_classes=num_classes)
    if settings.sampler == "ddpm":
        return samplers.ancestral(eps, s, x_T, kr, variance=variance, clip=clip,
                                  return_path=return_path)
    if settings.sampler == "ddim":
        return samplers.ddim(eps, s, x_T, kr,
                             timesteps=samplers.ddim_timesteps(settings.steps, T),
                             eta=float(settings.eta), clip=clip, return_path=return_path)
    if settings.sampler == "dpm_solver":
        return samplers.dpm_solver_pp(eps, s, x_T,
                                      timesteps=samplers.dpm_solver_timesteps(
                                          settings.steps, s, settings.spacing),
                                      clip=clip, return_path=return_path)
    v = samplers.probability_flow_velocity(lambda x, u: eps(x, u, True), s, 1.0 / T)
    return ode.odeint(v, x_T, 0.0, 1.0, settings.steps, settings.method)


def vlb_loglik(params, x, rng, *, net, s, model_var, decoder, num_classes, num_strata):
    """−L_VLB per example, and its terms (L_T, Σ L_{t−1}, L_0)."""
    prior, recon, diffusion = vlb_terms(
        params["model"], x, rng, net=net, s=s, model_var=model_var, decoder=decoder,
        num_classes=num_classes, num_strata=num_strata)
    return -(prior + recon + diffusion), {"prior": prior, "diffusion": diffusion,
                                          "recon": recon}


def ode_loglik(params, x, rng, *, net, s, num_classes, steps=100, method="rk4",
               divergence="exact"):
    """The exact log-likelihood of the probability-flow ODE model (unconditional)."""
    eps = guided_eps(params, None, 0.0, net=net, s=s, num_classes=num_classes)
    v = samplers.probability_flow_velocity(lambda y, u: eps(y, u, True), s, 1.0 / s.num_steps)
    logp, _ = ode.log_likelihood(v, x, num_steps=steps, method=method,
                                 divergence=divergence, rng=rng)
    return logp


def round_trip(net, s: dp.Schedule, num_classes, steps: int) -> RoundTrip:
    """DDIM inversion x -> x_T and DDIM (η = 0) back, on the same `steps` timesteps (at most
    T), without clipping (an unconditional ε)."""
    taus = samplers.ddim_timesteps(min(steps, s.num_steps), s.num_steps)

    def eps_of(params):
        return guided_eps(params, None, 0.0, net=net, s=s, num_classes=num_classes)

    def encode(params, x, rng):
        return samplers.ddim_invert(eps_of(params), s, x, timesteps=taus[::-1])

    def decode(params, z):
        return samplers.ddim(eps_of(params), s, z, jax.random.key(0), timesteps=taus)

    return RoundTrip(encode, decode, f"DDIM inversion to x_T and DDIM back, {len(taus)} steps "
                                     "each way")


def make(ctx: BuildContext, loss=None, weight=None) -> Objective:
    """The DDPM objective. `weight`: a `(s, t, prediction) -> (B,)` weighting of the loss
    (objective.weighting=min_snr gives `min_snr_weight`); `loss`: a replacement for
    `ddpm_loss`, called with the same keyword arguments. Either way the samplers, bounds and
    pictures stay the family's."""
    o, model, data = ctx.settings, ctx.model, ctx.data
    if o.weighting == "min_snr":
        if weight is not None:
            raise ValueError("objective.weighting=min_snr and a weight hook: give one.")
        weight = functools.partial(min_snr_weight, gamma=o.min_snr_gamma)
    T = o.num_steps
    s = dp.make_schedule(o.schedule, T)
    model_var = dp.model_variance(s, o.variance)
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and num_classes != data.num_classes:
        raise UserError(f"model.num_classes={num_classes} but {data.name} has "
                         f"{data.num_classes or 'no'} classes.")
    label_dropout = o.label_dropout
    if label_dropout is None:
        label_dropout = 0.1 if num_classes else 0.0
    image = data.kind == "images"
    decoder = make_decoder(data.kind)
    net = make_net(model, o.prediction, num_classes)

    def init(rng, batch):
        x = batch["x"]
        u = jnp.ones((x.shape[0],), jnp.float32)
        args = (x, u) if num_classes is None else (x, u, jnp.full((x.shape[0],), num_classes))
        return {"model": model.init(rng, *args)["params"]}

    drawer = functools.partial(draw, net=net, s=s, num_classes=num_classes,
                               variance=o.variance, event_shape=tuple(data.event_shape),
                               image=image)
    loss = functools.partial(loss or ddpm_loss, net=net, s=s, prediction=o.prediction,
                             num_classes=num_classes, label_dropout=float(label_dropout),
                             model_var=model_var, decoder=decoder,
                             event_dim=math.prod(data.event_shape), image=image, weight=weight)
    return Objective(
        name="ddpm",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(drawer, return_path=False),
        likelihoods={
            "vlb": Likelihood(functools.partial(
                vlb_loglik, net=net, s=s, model_var=model_var, decoder=decoder,
                num_classes=num_classes, num_strata=int(ctx.eval.vlb_steps)),
                "bound", discrete=True),
            "ode": Likelihood(functools.partial(ode_loglik, net=net, s=s,
                                                num_classes=num_classes), "exact", ode=True),
        },
        dequantize=False,
        pictures=pictures.write_all,
        representation=ode.ODE_REPRESENTATION,
        round_trip=round_trip(net, s, num_classes, inversion_steps(ctx.eval)),
        tools=DiffusionTools(schedule=s, num_steps=T, draw=drawer),
    )
