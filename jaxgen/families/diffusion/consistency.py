"""Consistency training (Song, Dhariwal, Chen & Sutskever, 2023, "Consistency Models",
Algorithm 3), and its improved variant (Song & Dhariwal, 2023, "Improved Techniques for
Training Consistency Models"), with one- and few-step sampling.

A consistency function maps any point of a probability-flow trajectory to its origin,
f(x_σ, σ) = x_{σ_min}. It is parameterised so that the boundary condition holds exactly
for any parameters:

    f_θ(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, c_noise(σ)),
    c_skip = σ_d² / ((σ − σ_min)² + σ_d²),   c_out = σ_d (σ − σ_min) / √(σ² + σ_d²),
    c_in = 1 / √(σ² + σ_d²),                 c_noise = ¼ ln σ,

so c_skip(σ_min) = 1 and c_out(σ_min) = 0: f_θ(x, σ_min) = x.

Training at step k, on the Karras grid of N(k) levels σ_1 = σ_min < … < σ_N = σ_max
(ρ = 7), for data x, z ~ N(0, I) and a level index n:

    L = λ(σ_n) d(f_θ(x + σ_{n+1} z, σ_{n+1}), f_θ⁻(x + σ_n z, σ_n)).

* CT (objective.improved = false): n uniform on {1, …, N − 1}, λ = 1, d the squared L2
  (mean over dimensions), N(k) = ⌈√(k/K ((s1 + 1)² − s0²) + s0²) − 1⌉ + 1 and the target
  θ⁻ an EMA of θ with decay μ(k) = exp(s0 ln μ0 / N(k)) (the paper's eqs. for CT, with
  K = objective.schedule_steps).
* iCT (objective.improved = true): no EMA (θ⁻ = stop-gradient θ), the pseudo-Huber
  d(a, b) = √(‖a − b‖² + c²) − c with c = 0.00054 √D, λ(σ_n) = 1 / (σ_{n+1} − σ_n), n drawn
  with probability ∝ erf((ln σ_{n+1} − P_mean) / (√2 P_std)) − erf((ln σ_n − P_mean) /
  (√2 P_std)) (P_mean = −1.1, P_std = 2), and N(k) = min(s0 · 2^⌊k / K'⌋, s1) + 1,
  K' = ⌊K / (⌊log2(s1 / s0)⌋ + 1)⌋ (iCT uses s0 = 10, s1 = 1280).

The step k and the target θ⁻ are state beside the player's params (`params["step"]`,
`params["target"]`, kept by `jaxgen.kernel.state`), updated after each gradient step: the
trainer neither differentiates nor optimises them, a checkpoint holds them, and a resumed
run continues the same schedule. K is a setting, not train.steps, so training on past K
(a longer resume) keeps the schedule at its end.

Sampling (sample.steps = 1 or more): x = f(σ_max z); then for each level of
sample.sigmas (descending), x = f(x + √(σ² − σ_min²) z', σ).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from jaxgen.families.diffusion.edm import _per_example, heun_step, sigma_data
from jaxgen.kernel import state
from jaxgen.kernel.contract import BuildContext, Objective, Player
from jaxgen.kernel.errors import UserError


def n_levels(k, schedule_steps: int, s0: int, s1: int, improved: bool):
    """N(k), the number of noise levels at step k (module docstring); k may be traced."""
    k = jnp.asarray(k, jnp.float32)
    if improved:
        kp = math.floor(schedule_steps / (math.floor(math.log2(s1 / s0)) + 1))
        return jnp.minimum(s0 * 2.0 ** jnp.floor(k / max(kp, 1)), s1) + 1
    frac = jnp.minimum(k / schedule_steps, 1.0)
    return jnp.ceil(jnp.sqrt(frac * ((s1 + 1) ** 2 - s0 ** 2) + s0 ** 2) - 1) + 1


def ema_rate(n, s0: int, mu0: float):
    """CT's target decay μ(k) = exp(s0 ln μ0 / N(k))."""
    return jnp.exp(s0 * math.log(mu0) / n)


def level(i, n, sigma_min: float, sigma_max: float, rho: float):
    """σ_i of an N-level Karras grid, i = 1 … N ascending (i, N may be traced)."""
    frac = (i - 1.0) / (n - 1.0)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + frac * (hi - lo)) ** rho


class Parameterisation:
    """f_θ(x, σ) with the boundary condition built in (module docstring)."""

    def __init__(self, apply_fn, sigma_data: float, sigma_min: float):
        self.apply_fn, self.sd, self.smin = apply_fn, float(sigma_data), float(sigma_min)

    def __call__(self, net_params, x, sigma):
        sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), (x.shape[0],))
        s = _per_example(sigma, x)
        sd, smin = self.sd, self.smin
        c_skip = sd ** 2 / ((s - smin) ** 2 + sd ** 2)
        c_out = sd * (s - smin) / jnp.sqrt(s ** 2 + sd ** 2)
        c_in = 1.0 / jnp.sqrt(s ** 2 + sd ** 2)
        return c_skip * x + c_out * self.apply_fn(net_params, c_in * x, 0.25 * jnp.log(sigma))


def ct_loss(params, batch, rng, *, f: Parameterisation, o, teacher=None):
    """The consistency-training loss at the step in params["step"] (module docstring);
    with `teacher(x, sigma)` (an EDM run's denoiser), consistency distillation: N fixed at
    objective.cd_levels and the target's input the teacher's Heun step from σ_{n+1}."""
    x = batch["x"]
    b = x.shape[0]
    n = (jnp.asarray(float(o.cd_levels)) if teacher is not None
         else n_levels(state.step(params), o.schedule_steps, o.s0, o.s1, o.improved))
    k_idx, k_z = jax.random.split(rng)
    if o.improved:
        i = jnp.arange(1, o.s1 + 1, dtype=jnp.float32)  # candidate indices, masked past N - 1
        lo = jnp.log(level(i, n, o.sigma_min, o.sigma_max, o.rho))
        hi = jnp.log(level(i + 1, n, o.sigma_min, o.sigma_max, o.rho))
        scale = math.sqrt(2.0) * o.p_std
        w = erf((hi - o.p_mean) / scale) - erf((lo - o.p_mean) / scale)
        logits = jnp.where(i <= n - 1, jnp.log(jnp.maximum(w, 1e-30)), -jnp.inf)
        idx = jax.random.categorical(k_idx, logits, shape=(b,)).astype(jnp.float32) + 1.0
    else:
        idx = jnp.floor(jax.random.uniform(k_idx, (b,)) * (n - 1.0)) + 1.0
    s_n = level(idx, n, o.sigma_min, o.sigma_max, o.rho)
    s_next = level(idx + 1.0, n, o.sigma_min, o.sigma_max, o.rho)
    z = jax.random.normal(k_z, x.shape, x.dtype)
    x_next = x + _per_example(s_next, x) * z
    online = f(params["model"], x_next, s_next)
    target_params = params["model"] if o.improved else params[state.TARGET]
    x_n = (x + _per_example(s_n, x) * z if teacher is None
           else heun_step(teacher, x_next, s_next, s_n))
    target = jax.lax.stop_gradient(f(jax.lax.stop_gradient(target_params), x_n, s_n))
    sq = jnp.sum(jnp.square(online - target).reshape(b, -1), axis=-1)
    dim = math.prod(x.shape[1:])
    if o.improved:
        c = 0.00054 * math.sqrt(dim)
        per = (jnp.sqrt(sq + c ** 2) - c) / (s_next - s_n)
    else:
        per = sq / dim
    loss = jnp.mean(per)
    return loss, {"ct_loss": loss, "num_levels": n}


def target_decay(o):
    """The target's EMA rate after each gradient step: CT's μ(N(k)), CD's objective.mu0,
    None for iCT (no EMA target)."""
    if o.improved:
        return None
    if o.teacher_workdir:
        return float(o.mu0)
    return lambda k: ema_rate(n_levels(k, o.schedule_steps, o.s0, o.s1, False), o.s0, o.mu0)


def sample(params, rng, num, settings, labels=None, *, f: Parameterisation, event_shape,
           sigma_min: float, sigma_max: float):
    """x = f(σ_max z), then re-noised to each of sample.sigmas and mapped back."""
    if labels is not None:
        raise UserError("consistency models here are unconditional; drop the labels.")
    mids = tuple(float(s) for s in settings.sigmas)[:settings.steps - 1]
    if len(mids) < settings.steps - 1:
        raise UserError(f"sample.steps={settings.steps} needs {settings.steps - 1} "
                        f"intermediate levels in sample.sigmas, got {len(mids)}.")
    keys = jax.random.split(rng, settings.steps)
    x = f(params["model"], sigma_max * settings.temperature
          * jax.random.normal(keys[0], (num, *event_shape), jnp.float32), sigma_max)
    for key, s in zip(keys[1:], mids):
        noise = math.sqrt(max(s ** 2 - sigma_min ** 2, 0.0))
        x = f(params["model"], x + noise * jax.random.normal(key, x.shape, x.dtype), s)
    return x


def distillation_teacher(workdir: str):
    """The EDM run in `workdir`, restored now (before any tracing): its denoiser
    `(x, sigma) -> D(x; σ)` with its EMA params as constants."""
    from jaxgen.composed import references
    from jaxgen.families.diffusion.edm import EDMTools
    exp, params = references.restore_with_tools(
        workdir, "objective.teacher_workdir", EDMTools,
        "an EDM run (consistency distillation takes an EDM run's denoiser)")
    return functools.partial(exp.objective.tools.denoise, params)


def make(ctx: BuildContext, loss=None) -> Objective:
    """Consistency training for a Flax `model(x, t)`. `loss`: a replacement for `ct_loss`
    (called with f and the settings o); the schedule state and the sampler stay."""
    o, model = ctx.settings, ctx.model
    if not 0 < o.sigma_min < o.sigma_max:
        raise UserError(f"objective.sigma_min={o.sigma_min} must lie in (0, objective."
                        f"sigma_max={o.sigma_max}).")
    if o.s1 <= o.s0:
        raise UserError(f"objective.s1={o.s1} must exceed objective.s0={o.s0}.")
    f = Parameterisation(lambda p, x, c: model.apply({"params": p}, x, c), sigma_data(ctx),
                         o.sigma_min)

    def init(rng, batch):
        x = batch["x"]
        net = model.init(rng, x, jnp.zeros((x.shape[0],), x.dtype))["params"]
        return {"model": net, **state.initial(net, target=True)}

    extra = {}
    if o.teacher_workdir:
        if o.improved:
            raise UserError("objective.teacher_workdir distils with CT's EMA target; "
                            "objective.improved=true is consistency training's.")
        extra["teacher"] = distillation_teacher(o.teacher_workdir)
    return Objective(
        name="consistency",
        players=(Player("model", functools.partial(loss or ct_loss, f=f, o=o, **extra)),),
        init=init,
        update_state=state.updater(decay=target_decay(o)),
        sample=functools.partial(sample, f=f, event_shape=tuple(ctx.data.event_shape),
                                 sigma_min=float(o.sigma_min), sigma_max=float(o.sigma_max)),
        representation="no encoder; one network pass maps noise to data",
    )
