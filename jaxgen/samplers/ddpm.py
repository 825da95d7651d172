"""Samplers for ε-prediction diffusion models: DDPM ancestral, DDIM, probability-flow ODE.

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

from jaxgen.core.errors import UserError
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
