"""Noise-conditional score networks (NCSN; Song & Ermon, 2019) with annealed Langevin sampling.

Song & Ermon (2019), "Generative Modeling by Estimating Gradients of the Data
Distribution", learn the score ``∇_x log p_σ(x)`` of the data convolved with
``N(0, σ² I)`` at every level of a decreasing geometric ladder
``σ_1 > … > σ_L`` with one network, then sample by annealed Langevin dynamics
down the ladder (`jaxgen.samplers.langevin.annealed_langevin`).

Noise levels (``config.objective``):

* ``sigma_max`` (default 10): ``σ_1``. Song & Ermon (2020, "Improved
  Techniques for Training Score-Based Generative Models", technique 1) take
  it about the largest pairwise distance between training points, so that
  ``p_{σ_1}`` is close to ``N(0, σ_1² I)`` and Langevin can move between all
  modes. 8gaussians: about 6.
* ``sigma_min`` (default 0.01): ``σ_L``, small against the data's own
  detail (the final Tweedie step removes most of what it leaves).
* ``num_sigmas`` (default 10): ``L``, geometric spacing.

Network: the dataset's time-conditioned model (``TimeMLP`` for points, the
``UNet`` for images) called as ``net(x, t_i)`` with ``t_i = i / (L − 1)`` in
[0, 1] the scaled level index; the score is ``s_θ(x, σ_i) = net(x, t_i) / σ_i``
(Song & Ermon 2020, technique 3), so ``net`` outputs ``σ · score``, an O(1)
quantity at every level.

Losses (``config.objective.loss``), both weighted by ``λ(σ) = σ²`` so every
level contributes O(1), with ``σ = σ_i``, ``i`` uniform per example and
``x̃ = x + σ z``, ``z ~ N(0, I)``:

* ``"dsm"`` (default), denoising score matching (Vincent, 2011)::

      ℓ = ½ ‖σ s_θ(x̃, σ) + z‖²  =  ½ ‖net(x̃, t) + z‖²

  i.e. ``net`` predicts ``−z``. Its minimiser is the score of ``p_σ``; for
  Gaussian data ``N(μ, s² I)`` its minimum is ``½ D s² / (s² + σ²)``.
* ``"ssm"``, sliced score matching in its variance-reduced form (SSM-VR;
  Song, Garg, Shi & Ermon, 2019) applied to ``x̃`` at each level::

      ℓ = σ² · ( vᵀ (∂s_θ/∂x̃) v + ½ ‖s_θ(x̃, σ)‖² )
        = σ · vᵀ (∂net/∂x̃) v + ½ ‖net(x̃, t)‖²

  ``v`` Rademacher (``objective.ssm_probe="rademacher"``, default) or
  Gaussian; ``(∂net/∂x̃) v`` is one ``jax.jvp``, never a Jacobian. In
  expectation it equals explicit score matching ``½ σ² E‖s_θ − ∇ log p_σ‖²``
  minus a constant that does not depend on θ (so it can be negative).

Both are averaged over dimensions as well as examples (``‖·‖² / D``, as in
flow matching): the same minimiser, and a learning rate that does not depend
on resolution. Metrics: the loss under its name (``dsm`` / ``ssm``) and the
same average over the examples drawn at the larger half of the levels
(``*_large_sigma``, indices ``i < L/2``) and at the smaller half
(``*_small_sigma``).

Sampling (``config.sample``; each can be overridden per call):
annealed Langevin from ``x ~ N(0, σ_1² I)`` (≈ ``p_{σ_1}`` when σ_1 is about
the data's diameter), ``langevin_steps`` (T, default 100) updates per level,
``step_lr`` (ε, default ``0.2 σ_L²``, i.e. Song & Ermon's 2e-5 at σ_L = 0.01,
a contraction of 0.1 per step at the large levels) and ``denoise`` (the final
Tweedie step, default True). ``sample.steps`` / ``sample.method`` (ODE
settings of other families) are ignored. ``temperature`` τ scales the
initial noise and the injected Langevin noise (τ < 1 sharpens).

Score models give no likelihood: ``likelihoods`` is empty, so ``jaxgen eval``
reports sample metrics only (MMD² for 2-D data).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxgen.kernel.contract import BuildContext, Objective, Player
from jaxgen.kernel.errors import UserError
from jaxgen.processes.noise import geometric_sigmas
from jaxgen.samplers.langevin import annealed_langevin

PROBES = ("rademacher", "gaussian")


def _expand(a, x):
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


def _perturb(x, rng, sigmas):
    """``i ~ U{0..L−1}`` per example, ``z ~ N(0, I)``, ``x̃ = x + σ_i z``."""
    ki, kz = jax.random.split(rng)
    idx = jax.random.randint(ki, (x.shape[0],), 0, sigmas.shape[0])
    sigma = sigmas[idx].astype(x.dtype)
    z = jax.random.normal(kz, x.shape, x.dtype)
    return idx, sigma, z, x + _expand(sigma, x) * z


def _metrics(name, per_example, idx, num_levels):
    loss = jnp.mean(per_example)
    large = (idx < num_levels // 2) if num_levels > 1 else jnp.ones_like(idx, bool)

    def masked_mean(m):
        m = m.astype(per_example.dtype)
        return jnp.sum(per_example * m) / jnp.maximum(jnp.sum(m), 1.0)

    return loss, {name: loss, f"{name}_large_sigma": masked_mean(large),
                  f"{name}_small_sigma": masked_mean(~large)}


def dsm_loss(params, batch, rng, *, net_fn, sigmas):
    """Denoising score matching with λ(σ) = σ², averaged over dims and examples.

    ``net_fn(model_params, x, idx) -> σ_idx · s_θ(x, σ_idx)`` with ``idx``
    (B,) int level indices into ``sigmas``.
    """
    x = batch["x"]
    sigmas = jnp.asarray(sigmas)
    idx, _, z, xt = _perturb(x, rng, sigmas)
    out = net_fn(params["model"], xt, idx)
    per_example = 0.5 * jnp.mean(jnp.square(out + z).reshape(x.shape[0], -1), axis=-1)
    return _metrics("dsm", per_example, idx, sigmas.shape[0])


def ssm_loss(params, batch, rng, *, net_fn, sigmas, probe: str = "rademacher"):
    """Sliced score matching (SSM-VR) on the perturbed data, λ(σ) = σ², per-dim average.

    Per example ``σ · vᵀ (∂net/∂x̃) v + ½ ‖net‖²`` (= ``σ² (vᵀ ∂s v + ½‖s‖²)``)
    over ``D``, with one ``jax.jvp`` of the (per-example) network along ``v``.
    """
    if probe not in PROBES:
        raise UserError(f"ssm probe must be one of {PROBES}, got {probe!r}.")
    x = batch["x"]
    sigmas = jnp.asarray(sigmas)
    kp, kv = jax.random.split(rng)
    idx, sigma, _, xt = _perturb(x, kp, sigmas)
    if probe == "rademacher":
        v = jax.random.rademacher(kv, x.shape, x.dtype)
    else:
        v = jax.random.normal(kv, x.shape, x.dtype)
    out, jv = jax.jvp(lambda y: net_fn(params["model"], y, idx), (xt,), (v,))
    b = x.shape[0]
    vjv = jnp.sum((v * jv).reshape(b, -1), axis=-1)
    sq = jnp.sum(jnp.square(out).reshape(b, -1), axis=-1)
    per_example = (sigma * vjv + 0.5 * sq) / (x.size // b)
    return _metrics("ssm", per_example, idx, sigmas.shape[0])


def apply_net(model, num_sigmas, p, x, idx):
    """σ_idx · s_θ(x, σ_idx): the network at t_i = i / (L − 1)."""
    t = jnp.asarray(idx).astype(jnp.float32) * (1.0 / max(num_sigmas - 1, 1))
    return model.apply({"params": p}, x, t)


def sample(params, rng, num, settings, labels=None, *, net_fn, sigmas, sigma_max: float,
           sigma_min: float, event_shape):
    """Annealed Langevin from x ~ N(0, (T σ_1)² I) (see the module doc)."""
    if labels is not None:
        raise UserError("ncsn models are unconditional; drop the labels.")
    step_lr = 0.2 * sigma_min**2 if settings.step_lr is None else float(settings.step_lr)
    t = settings.temperature

    def score(x, i):
        return net_fn(params["model"], x, i) / sigmas[i].astype(x.dtype)

    k0, kl = jax.random.split(rng)
    x = t * sigma_max * jax.random.normal(k0, (num, *event_shape), jnp.float32)
    return annealed_langevin(score, x, kl, sigmas, settings.langevin_steps, step_lr,
                             denoise=settings.denoise, noise_scale=t)


def make(ctx: BuildContext, loss=None) -> Objective:
    """The NCSN objective for a Flax `model(x, t)` (see the module docstring). `loss`: a
    replacement for `dsm_loss` / `ssm_loss` (called with net_fn, sigmas); the sampler stays."""
    o, model = ctx.settings, ctx.model
    sigmas = geometric_sigmas(o.sigma_max, o.sigma_min, o.num_sigmas)
    net_fn = functools.partial(apply_net, model, o.num_sigmas)

    def init(rng, batch):
        x = batch["x"]
        return {"model": model.init(rng, x, jnp.zeros((x.shape[0],), x.dtype))["params"]}

    if loss is not None:
        loss = functools.partial(loss, net_fn=net_fn, sigmas=sigmas)
    elif o.loss == "dsm":
        loss = functools.partial(dsm_loss, net_fn=net_fn, sigmas=sigmas)
    else:
        loss = functools.partial(ssm_loss, net_fn=net_fn, sigmas=sigmas, probe=o.ssm_probe)
    return Objective(
        name="ncsn",
        players=(Player("model", loss),),
        init=init,
        sample=functools.partial(sample, net_fn=net_fn, sigmas=sigmas,
                                 sigma_max=o.sigma_max, sigma_min=o.sigma_min,
                                 event_shape=tuple(ctx.data.event_shape)),
    )
