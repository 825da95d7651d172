"""EDM: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of
Diffusion-Based Generative Models", with its preconditioning, loss, samplers and an exact
likelihood through the probability-flow ODE.

The data are noised as x = y + n, n ~ N(0, σ² I), and a denoiser D(x; σ) ≈ E[y | x] is
learned through a network F with the paper's preconditioning (Table 1, "ours"):

    D(x; σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x, c_noise(σ)),
    c_skip = σ_d² / (σ² + σ_d²),   c_out = σ σ_d / √(σ² + σ_d²),
    c_in   = 1 / √(σ² + σ_d²),     c_noise = ¼ ln σ,

σ_d = objective.sigma_data, the data's standard deviation (0: the training data's, measured
when the run is first built). The loss (eq. 2 with Table 1's λ and p_train):

    L = E_{σ, y, n} λ(σ) ‖D(y + n; σ) − y‖² / D,   ln σ ~ N(P_mean, P_std²),
    λ(σ) = (σ² + σ_d²) / (σ σ_d)²,

averaged over the D dimensions (the paper sums them; a constant factor under Adam) as
jaxgen's other denoising losses are. λ c_out² = 1: the network's own target,
(y − c_skip x) / c_out, has unit variance at every σ, and every σ weighs the same
(`tests/test_edm.py` checks these identities).

Sampling, the probability-flow ODE dx/dσ = (x − D(x; σ)) / σ from x ~ N(0, σ_max² I):

  * "heun": Algorithm 1 (deterministic) on the grid σ_i = (σ_max^{1/ρ} + i/(N−1)
    (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i < N, σ_N = 0: a Heun step from σ_i to σ_{i+1},
    the last one (to σ_N = 0) an Euler step; NFE = 2N − 1 (N = sample.steps = 18: 35).
    With sample.s_churn > 0 it is Algorithm 2 (stochastic): before each step, where
    S_tmin ≤ σ_i ≤ S_tmax, the noise is raised to σ̂ = σ_i (1 + γ),
    γ = min(S_churn / N, √2 − 1), by adding √(σ̂² − σ_i²) S_noise ε.
  * "euler": the same grid with Euler steps only (NFE = N), for the quality-vs-NFE table.

Likelihood ("ode", exact up to solver error): the same ODE in the time u ∈ [0, 1],
σ(u) = σ_max (σ_min / σ_max)^u (u = 0: σ_max, u = 1: σ_min), on z = x / σ_max, so that
the prior at u = 0 is N(0, I) and `jaxgen.samplers.ode.log_likelihood` (the shared path
of flow matching and DDPM) applies:

    dz/du = ln(σ_min / σ_max) · (x − D(x; σ(u))) / σ_max,   x = σ_max z,
    log p(x) = log p_Z(x / σ_max) − D ln σ_max.

It models the data at σ_min (0.002: far below an 8-bit bin) and takes p_{σ_max} as
N(0, σ_max² I), as Song et al. (2021) do. The round trip x -> z -> x is that ODE's
(RK4, eval.inversion_steps each way).

The network is the data's time-conditioned one (the U-Net, the DiT, the 2-D MLP)
called as net(c_in x, c_noise); the models are unconditional (labels raise).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.contract import (
    BuildContext,
    FamilyTools,
    Likelihood,
    Objective,
    Player,
    RoundTrip,
)
from jaxgen.kernel.errors import UserError
from jaxgen.samplers import ode
from jaxgen.samplers.settings import inversion_steps


@dataclasses.dataclass(frozen=True)
class Precond:
    """EDM's preconditioning for data of standard deviation sigma_data (Table 1)."""

    sigma_data: float = 0.5

    def c_skip(self, sigma):
        return self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)

    def c_out(self, sigma):
        return sigma * self.sigma_data / jnp.sqrt(sigma ** 2 + self.sigma_data ** 2)

    def c_in(self, sigma):
        return 1.0 / jnp.sqrt(sigma ** 2 + self.sigma_data ** 2)

    def c_noise(self, sigma):
        return 0.25 * jnp.log(sigma)

    def weight(self, sigma):
        """λ(σ) = (σ² + σ_d²) / (σ σ_d)²."""
        return (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2


@dataclasses.dataclass(frozen=True)
class EDMTools(FamilyTools):
    """An EDM run's denoiser `denoise(params, x, sigma)` = D(x; σ) (σ a scalar or (B,))."""

    denoise: Callable
    provides: ClassVar[str] = "EDM denoiser"
    needed_for: ClassVar[str] = "EDM runs (objective.name=edm)"


def heun_step(denoise: Callable, x, s_from, s_to):
    """One Heun step of the probability-flow ODE dx/dσ = (x − D(x; σ)) / σ from σ = s_from
    to s_to > 0 (Algorithm 1's update); `denoise(x, sigma)` is D; s_from, s_to scalars or
    (B,)."""
    def level(s):  # a scalar stays one; (B,) broadcasts against x
        return s if jnp.ndim(s) == 0 else _per_example(s, x)

    a, b = level(s_from), level(s_to)
    d = (x - denoise(x, s_from)) / a
    x_euler = x + (b - a) * d
    d_next = (x_euler - denoise(x_euler, s_to)) / b
    return x + (b - a) * 0.5 * (d + d_next)


def sigma_grid(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """(N + 1,) float64: Algorithm 1's σ_0 = σ_max > … > σ_{N−1} = σ_min, then σ_N = 0."""
    if num_steps < 1:
        raise UserError(f"sample.steps must be >= 1, got {num_steps}.")
    if not 0 < sigma_min < sigma_max:
        raise UserError(f"EDM needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    i = np.arange(num_steps, dtype=np.float64)
    frac = i / max(num_steps - 1, 1)
    inv = 1.0 / rho
    s = (sigma_max ** inv + frac * (sigma_min ** inv - sigma_max ** inv)) ** rho
    return np.append(s, 0.0)


def _per_example(sigma, x):
    """σ (B,) -> (B, 1, ..., 1), to broadcast against x."""
    return jnp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1))


def denoiser(apply_fn: Callable, pc: Precond, params, x, sigma):
    """D(x; σ) = c_skip x + c_out F(c_in x, c_noise); σ a scalar or (B,)."""
    sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), (x.shape[0],))
    s = _per_example(sigma, x)
    return pc.c_skip(s) * x + pc.c_out(s) * apply_fn(params["model"], pc.c_in(s) * x,
                                                       pc.c_noise(sigma))


def edm_loss(params, batch, rng, *, denoise: Callable, precond: Precond, p_mean: float,
             p_std: float):
    """E λ(σ) ‖D(y + n; σ) − y‖² / D with ln σ ~ N(P_mean, P_std²), n ~ N(0, σ² I).
    `denoise(params, x, sigma)` is D; metrics: the loss and the unweighted denoising MSE."""
    y = batch["x"]
    k_sigma, k_noise = jax.random.split(rng)
    sigma = jnp.exp(p_mean + p_std * jax.random.normal(k_sigma, (y.shape[0],), y.dtype))
    n = _per_example(sigma, y) * jax.random.normal(k_noise, y.shape, y.dtype)
    sq = jnp.square(denoise(params, y + n, sigma) - y).reshape(y.shape[0], -1).mean(-1)
    loss = jnp.mean(precond.weight(sigma) * sq)
    return loss, {"edm_loss": loss, "denoise_mse": jnp.mean(sq)}


def heun_sampler(denoise: Callable, x, sigmas, rng=None, *, s_churn: float = 0.0,
                 s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
                 heun: bool = True):
    """Algorithm 1 (s_churn = 0) or 2 from x ~ N(0, σ_0² I) down the grid `sigmas` (N + 1,
    ending in 0); `denoise(x, sigma)` is D. heun=False: Euler steps only. A Python loop over
    the static grid, the last step Euler."""
    sigmas = [float(s) for s in np.asarray(sigmas)]
    n = len(sigmas) - 1
    gamma_max = min(s_churn / n, math.sqrt(2.0) - 1.0) if s_churn > 0 else 0.0
    for i in range(n):
        s_cur, s_next = sigmas[i], sigmas[i + 1]
        gamma = gamma_max if s_tmin <= s_cur <= s_tmax else 0.0
        s_hat = s_cur * (1.0 + gamma)
        if gamma > 0:
            eps = jax.random.normal(jax.random.fold_in(rng, i), x.shape, x.dtype)
            x = x + math.sqrt(s_hat ** 2 - s_cur ** 2) * s_noise * eps
        if heun and s_next > 0:
            x = heun_step(denoise, x, s_hat, s_next)
        else:
            x = x + (s_next - s_hat) * (x - denoise(x, s_hat)) / s_hat
    return x


def ode_field(denoise: Callable, sigma_min: float, sigma_max: float):
    """The probability-flow ODE on z = x / σ_max in u ∈ [0, 1] (module docstring);
    `denoise(x, sigma)` is D."""
    log_ratio = math.log(sigma_min / sigma_max)

    def u(z, t):
        sigma = sigma_max * jnp.exp(jnp.asarray(t, z.dtype) * log_ratio)
        x = sigma_max * z
        return log_ratio * (x - denoise(x, sigma)) / sigma_max
    return u


def log_likelihood(params, x, rng, *, denoise: Callable, sigma_min: float, sigma_max: float,
                   steps=100, method="rk4", divergence="exact"):
    """log p(x) through the probability-flow ODE (module docstring)."""
    field = ode_field(functools.partial(denoise, params), sigma_min, sigma_max)
    logp_z, _ = ode.log_likelihood(field, x / sigma_max, num_steps=steps, method=method,
                                   divergence=divergence, rng=rng)
    return logp_z - math.prod(x.shape[1:]) * math.log(sigma_max)


def sample(params, rng, num, settings, labels=None, *, denoise: Callable, event_shape,
           sigma_min: float, sigma_max: float):
    """Algorithm 1 / 2 (sample.sampler, steps, rho, s_churn, ...) from σ_max · T · z."""
    if labels is not None:
        raise UserError("EDM models here are unconditional; drop the labels.")
    k_init, k_churn = jax.random.split(rng)
    sigmas = sigma_grid(settings.steps, sigma_min, sigma_max, settings.rho)
    x = sigmas[0] * settings.temperature * jax.random.normal(k_init, (num, *event_shape),
                                                             jnp.float32)
    return heun_sampler(functools.partial(denoise, params), x, sigmas, k_churn,
                        s_churn=settings.s_churn, s_tmin=settings.s_tmin,
                        s_tmax=settings.s_tmax, s_noise=settings.s_noise,
                        heun=settings.sampler == "heun")


def round_trip(denoise: Callable, sigma_min: float, sigma_max: float, steps: int) -> RoundTrip:
    def field(params):
        return ode_field(functools.partial(denoise, params), sigma_min, sigma_max)
    return RoundTrip(
        lambda params, x, rng: ode.odeint(field(params), x / sigma_max, 1.0, 0.0, steps, "rk4"),
        lambda params, z: sigma_max * ode.odeint(field(params), z, 0.0, 1.0, steps, "rk4"),
        f"the probability-flow ODE's noise z = x(σ_max) / σ_max, {steps} RK4 steps each way")


def apply_model(model, p, x, c_noise):
    return model.apply({"params": p}, x, c_noise)


def sigma_data(ctx: BuildContext) -> float:
    """objective.sigma_data, or where it is 0 the training data's measured standard
    deviation (`ctx.data.stats`)."""
    if ctx.settings.sigma_data > 0:
        return float(ctx.settings.sigma_data)
    return ctx.data.require_stats("objective.sigma_data=0 (sigma_d from the data)").std


def make(ctx: BuildContext, loss=None) -> Objective:
    """The EDM objective for a Flax `model(x, t)`. `loss`: a replacement for `edm_loss`,
    called with the same keyword arguments (denoise, precond, p_mean, p_std); the samplers
    and the likelihood stay the family's."""
    o, model = ctx.settings, ctx.model
    if not 0 < o.sigma_min < o.sigma_max:
        raise UserError(f"objective.sigma_min={o.sigma_min} must lie in (0, objective."
                        f"sigma_max={o.sigma_max}).")
    pc = Precond(sigma_data(ctx))
    denoise = functools.partial(denoiser, functools.partial(apply_model, model), pc)
    bounds = {"sigma_min": float(o.sigma_min), "sigma_max": float(o.sigma_max)}

    def init(rng, batch):
        x = batch["x"]
        return {"model": model.init(rng, x, jnp.zeros((x.shape[0],), x.dtype))["params"]}

    loss = functools.partial(loss or edm_loss, denoise=denoise, precond=pc,
                             p_mean=float(o.p_mean), p_std=float(o.p_std))
    return Objective(
        name="edm",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(sample, denoise=denoise, event_shape=tuple(ctx.data.event_shape),
                                 **bounds),
        likelihoods={"ode": Likelihood(functools.partial(log_likelihood, denoise=denoise,
                                                         **bounds), "exact", ode=True)},
        representation=ode.ODE_REPRESENTATION,
        round_trip=round_trip(denoise, bounds["sigma_min"], bounds["sigma_max"],
                              inversion_steps(ctx.eval)),
        tools=EDMTools(denoise),
    )
