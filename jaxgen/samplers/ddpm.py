"""Samplers for ε-prediction diffusion models: DDPM ancestral, DDIM, DPM-Solver++(2M) and the
probability-flow ODE.

`eps_fn(x, t)` is the (possibly guided) ε prediction at integer step t (a
scalar int array) for ancestral/DDIM sampling, and at continuous u ∈ (0, 1]
(`u = t/T` on the grid) for the ODE. Every sampler is one compiled loop
(`lax.scan` over the steps), so the network is traced once whatever T.

* `ancestral`: the lecture's Algorithm 2 (Ho et al., 2020),
      x_{t−1} = (x_t − (1 − α_t)/√(1 − ᾱ_t) · ε_θ(x_t, t)) / √α_t + σ_t z,
  z = 0 at t = 1, with σ_t² = β_t or β̃_t.
* `ddim`: Song, Meng & Ermon (2021), eq. 12, on any decreasing subset of steps
  τ_S > … > τ_1 (then 0):
      x_{τ_{i−1}} = √ᾱ_{i−1} x̂_0 + √(1 − ᾱ_{i−1} − σ_i²) ε_θ + σ_i z,
      σ_i = η √((1 − ᾱ_{i−1})/(1 − ᾱ_i)) √(1 − ᾱ_i/ᾱ_{i−1}).
  η = 0 is deterministic; η = 1 with all T steps is DDPM with σ_t² = β̃_t.
* `dpm_solver_pp`: DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2), the multistep
  second-order solver of the same ODE in its data-prediction form, on decreasing
  steps t_0 = τ_M > … > t_{M−1} = τ_1 (then t_M = 0), one network call per step:
  with α = √ᾱ, σ = √(1 − ᾱ), λ = log(α/σ), h_i = λ_{t_i} − λ_{t_{i−1}} and
  x̂0_i = (x_{t_i} − σ_{t_i} ε_θ(x_{t_i}, t_i))/α_{t_i},
      x_{t_i} = (σ_{t_i}/σ_{t_{i−1}}) x_{t_{i−1}} − α_{t_i} (e^{−h_i} − 1) D_i,
      D_i = (1 + 1/(2 r_i)) x̂0_{i−1} − 1/(2 r_i) x̂0_{i−2},   r_i = h_{i−1}/h_i,
  and D_i = x̂0_{i−1} (first order, a DDIM η = 0 step) at the first step and at the last,
  t_M = 0. `dpm_solver_timesteps` spaces the steps quadratically in t by default.
* `probability_flow_velocity`: the ODE dx/du = ½ (d log ᾱ/du)(x − ε_θ/√(1 − ᾱ(u)))
  (Song et al., 2021, for the VP SDE with β(u) = −d log ᾱ/du), written in the
  core's time convention (0 = noise, 1 = data) so `jaxgen.samplers.ode`
  integrates it and computes its exact likelihood.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.errors import UserError
from jaxgen.processes import diffusion as dp

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def _clip_eps(s, x, t, eps, clip):
    """Clips the implied x̂_0 to [−clip, clip] and returns the matching ε (clip=None: no-op)."""
    if clip is None:
        return eps
    x0 = jnp.clip(dp.x0_from_eps(s, x, t, eps), -clip, clip)
    return dp.eps_from_x0(s, x, t, x0)


def ancestral(eps_fn: EpsFn, s: dp.Schedule, x_T, rng, *, variance: str = "beta",
              clip: float | None = None, return_path: bool = False):
    """Algorithm 2, t = T … 1. Returns x_0, or (x_0, path) with path[i] = x_{T−i}, i = 0 … T."""
    var = dp.model_variance(s, variance)
    T = s.num_steps

    def body(x, t):
        eps = _clip_eps(s, x, t, eps_fn(x, t), clip)
        z = jax.random.normal(jax.random.fold_in(rng, t), x.shape, x.dtype)
        sigma = jnp.where(t > 1, jnp.sqrt(var[t]), 0.0)
        x = dp.reverse_mean(s, x, t, eps) + sigma * z
        return x, (x if return_path else None)

    x0, path = jax.lax.scan(body, x_T, jnp.arange(T, 0, -1))
    return (x0, jnp.concatenate([x_T[None], path])) if return_path else x0


def ddim_timesteps(num_steps: int, T: int) -> np.ndarray:
    """S evenly spaced steps τ_S = T > … > τ_1 ≥ 1 (Song et al.'s "uniform" subset)."""
    if not 1 <= num_steps <= T:
        raise UserError(f"DDIM steps must be in 1..{T}, got {num_steps}.")
    taus = np.unique(np.round(np.linspace(0, T, num_steps + 1)[1:]).astype(np.int32))
    return taus[::-1]


def ddim(eps_fn: EpsFn, s: dp.Schedule, x_T, rng, *, timesteps, eta: float = 0.0,
         clip: float | None = None, return_path: bool = False):
    """DDIM on the decreasing `timesteps` (ints in 1..T), ending at the clean x_0.

    With `return_path`, also the states x_T, x_{τ_{S−1}}, …, x_0 (S + 1 of them).
    """
    taus = jnp.asarray(np.asarray(timesteps), jnp.int32)
    prevs = jnp.concatenate([taus[1:], jnp.zeros((1,), jnp.int32)])

    def body(x, tp):
        t, prev = tp
        eps = _clip_eps(s, x, t, eps_fn(x, t), clip)
        x0 = dp.x0_from_eps(s, x, t, eps)
        ab, ab_prev = s.alpha_bars[t], s.alpha_bars[prev]
        sigma = eta * jnp.sqrt((1.0 - ab_prev) / (1.0 - ab)) * jnp.sqrt(1.0 - ab / ab_prev)
        z = jax.random.normal(jax.random.fold_in(rng, t), x.shape, x.dtype)
        dir_xt = jnp.sqrt(jnp.maximum(1.0 - ab_prev - sigma**2, 0.0)) * eps
        x = jnp.sqrt(ab_prev) * x0 + dir_xt + sigma * z
        return x, (x if return_path else None)

    x0, path = jax.lax.scan(body, x_T, (taus, prevs))
    return (x0, jnp.concatenate([x_T[None], path])) if return_path else x0


def ddim_invert(eps_fn: EpsFn, s: dp.Schedule, x_0, *, timesteps):
    """DDIM inversion: x_0 -> x_T by deterministic DDIM (η = 0) steps taken upwards through
    the increasing `timesteps` (ints in 1..T), the inverse of `ddim(..., eta=0)` on the same
    steps reversed.

    Each step from τ_{i−1} (τ_0 = 0, ᾱ_0 = 1) to τ_i reads ε at the state it starts from,
    ε(x_{τ_{i−1}}, τ_i), where the sampler's step back reads ε(x_{τ_i}, τ_i) (Song et al.
    2021, Sec. 4.3; Mokady et al. 2023): x0 = (x − √(1 − ᾱ_{i−1}) ε) / √ᾱ_{i−1}, then
    x_{τ_i} = √ᾱ_i x0 + √(1 − ᾱ_i) ε. When ε does not depend on x the two agree and the round
    trip is exact; for a trained model its error falls as the steps shrink.
    """
    taus = jnp.asarray(np.asarray(timesteps), jnp.int32)
    prevs = jnp.concatenate([jnp.zeros((1,), jnp.int32), taus[:-1]])

    def body(x, tp):
        t, prev = tp
        eps = eps_fn(x, t)
        ab, ab_prev = s.alpha_bars[t], s.alpha_bars[prev]
        x0 = (x - jnp.sqrt(1.0 - ab_prev) * eps) / jnp.sqrt(ab_prev)
        return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * eps, None

    x_T, _ = jax.lax.scan(body, x_0, (taus, prevs))
    return x_T


DPM_SPACINGS = ("quadratic", "logsnr", "time")


def dpm_solver_timesteps(num_steps: int, s: dp.Schedule,
                         spacing: str = "quadratic") -> np.ndarray:
    """M = `num_steps` decreasing integer steps τ_M = T > … > τ_1 ≥ 1 for `dpm_solver_pp`.

    "quadratic" (the default): τ_i = T (i/M)², DDIM's "quadratic" subset (Song et al., 2021)
    and DPM-Solver's `time_quadratic`; "logsnr": uniform in λ_t = ½ log(ᾱ_t/(1 − ᾱ_t)) from
    λ_T to λ_1 (τ_1 = 1; Lu et al.'s choice for small images); "time": DDIM's evenly
    spaced subset (`ddim_timesteps`, τ_1 = T/M). Rounded to the grid and kept distinct, so
    M ≤ T always gives M steps. Why quadratic: with the 2-D DDPM of configs/diffusion/
    ddpm_toy2d.py, at 10 and 20 steps its samples were 1.4–3.8x closer to the converged
    ODE solution than with the other two (benchmarks/solver_quality.py): "time" ends with
    a long first-order jump x_0 = x̂_0(x_{T/M}), "logsnr" spends its steps at low noise
    and takes long ones at high noise.
    """
    T = s.num_steps
    if spacing not in DPM_SPACINGS:
        raise UserError(f"DPM-Solver spacing must be one of {', '.join(DPM_SPACINGS)}, got "
                        f"{spacing!r}.")
    if not 1 <= num_steps <= T:
        raise UserError(f"DPM-Solver steps must be in 1..{T}, got {num_steps}.")
    if spacing == "time":
        return ddim_timesteps(num_steps, T)
    if spacing == "quadratic":
        t = np.rint(T * np.linspace(1.0, 0.0, num_steps, endpoint=False) ** 2)
    else:
        log_ab = np.asarray(s.log_alpha_bar, np.float64)[1:]  # t = 1 … T
        lam = 0.5 * (log_ab - np.log(-np.expm1(log_ab)))  # decreasing in t
        t = np.rint(np.interp(np.linspace(lam[-1], lam[0], num_steps), lam[::-1],
                              np.arange(T, 0, -1.0)))
    t = t.astype(np.int64)
    t[-1] = max(t[-1], 1)
    for i in range(num_steps - 2, -1, -1):  # distinct: at least 1 apart, τ_1 ≥ 1 ...
        t[i] = max(t[i], t[i + 1] + 1)
    t[0] = T
    for i in range(1, num_steps):  # ... and τ_M = T
        t[i] = min(t[i], t[i - 1] - 1)
    return t.astype(np.int32)


def dpm_solver_pp(eps_fn: EpsFn, s: dp.Schedule, x_T, *, timesteps,
                  clip: float | None = None, return_path: bool = False):
    """DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2) on the decreasing `timesteps` (ints
    in 1..T), ending at the clean x_0: one ε_θ call per step (NFE = len(timesteps)).

    The first step is first order (no earlier x̂_0 yet); so is the last, to t = 0: there
    σ = 0, λ = ∞, h is infinite and r = 0, so the second-order D would diverge, and the
    first-order step is x_0 = x̂_0(x_{τ_1}, τ_1) (diffusers' `final_sigmas_type="zero"`;
    Algorithm 2 itself stops at a t_M > 0). With 1 or 2 steps this is DDIM with η = 0 on
    the same steps. `clip` clips x̂_0 to [−clip, clip] before it is used (and remembered).
    With `return_path`, also the states x_T, x_{τ_{M−1}}, …, x_0 (M + 1 of them).
    """
    taus = jnp.asarray(np.asarray(timesteps), jnp.int32)
    prevs = jnp.concatenate([taus[1:], jnp.zeros((1,), jnp.int32)])
    ab, ab_next = s.alpha_bars[taus], s.alpha_bars[prevs]
    a, sig, a_next, sig_next = (jnp.sqrt(ab), jnp.sqrt(1.0 - ab), jnp.sqrt(ab_next),
                                jnp.sqrt(1.0 - ab_next))
    exp_neg_h = (sig_next * a) / (a_next * sig)  # e^{−h_i}: exactly 0 at the final t = 0
    lam = jnp.log(a) - jnp.log(sig)
    h = jnp.concatenate([lam[1:] - lam[:-1], jnp.full((1,), jnp.inf)])
    h_before = jnp.concatenate([jnp.ones((1,)), h[:-1]])
    second = (jnp.arange(taus.shape[0]) > 0) & (prevs > 0)  # neither first nor last
    w = jnp.where(second, h / (2.0 * jnp.where(second, h_before, 1.0)), 0.0)  # 1/(2 r_i)
    coefs = (sig_next / sig, a_next * (1.0 - exp_neg_h), w)

    def body(carry, step):
        x, x0_before = carry
        t, (c_x, c_d, wi) = step
        x0 = dp.x0_from_eps(s, x, t, eps_fn(x, t))
        if clip is not None:
            x0 = jnp.clip(x0, -clip, clip)
        x = c_x * x + c_d * ((1.0 + wi) * x0 - wi * x0_before)
        return (x, x0), (x if return_path else None)

    (x0, _), path = jax.lax.scan(body, (x_T, jnp.zeros_like(x_T)), (taus, coefs))
    return (x0, jnp.concatenate([x_T[None], path])) if return_path else x0


def probability_flow_velocity(eps_fn: EpsFn, s: dp.Schedule, u_min: float):
    """The PF-ODE as a velocity `v(x, τ)` for τ ∈ [0, 1]: τ = 0 is u = 1 (noise),
    τ = 1 is u = u_min (data side; the ODE stops there since ᾱ(0) = 1 is singular)."""
    span = 1.0 - u_min

    def v(x, tau):
        u = 1.0 - tau * span
        eps = eps_fn(x, u)
        abar = jnp.exp(dp.log_alpha_bar_continuous(s, u))
        dx_du = 0.5 * dp.dlog_alpha_bar_du(s, u) * (x - eps / jnp.sqrt(1.0 - abar))
        return -span * dx_du

    return v
