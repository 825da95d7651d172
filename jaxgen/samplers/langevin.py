"""Langevin dynamics and annealed Langevin sampling for score models.

Song & Ermon (2019), "Generative Modeling by Estimating Gradients of the Data
Distribution" (NCSN), sample with *annealed Langevin dynamics* (their
Algorithm 1). Given a decreasing geometric ladder of noise levels
``σ_1 > σ_2 > … > σ_L`` and a score model ``s(x, i) ≈ ∇_x log p_{σ_i}(x)`` of
the data convolved with ``N(0, σ_i² I)``::

    x ~ initial distribution
    for i = 1 .. L:
        α_i = ε · σ_i² / σ_L²
        repeat T times:
            z ~ N(0, I)
            x ← x + (α_i / 2) · s(x, i) + √α_i · z
    (optional) x ← x + σ_L² · s(x, L)            # denoising step

The step size ``α_i ∝ σ_i²`` keeps the signal-to-noise ratio of each update
the same at every level. The optional last line is Tweedie's formula,
``E[x_0 | x_σ] = x_σ + σ² ∇ log p_σ(x_σ)``: it removes the σ_L-sized noise
that Langevin at level L leaves on the samples (Jolicoeur-Martineau et al.,
2021, "Adversarial score matching and improved sampling for image
generation"; Song & Ermon, 2020, "Improved Techniques for Training
Score-Based Generative Models").

Stability: where ``p_σ`` is locally Gaussian with variance ``V`` a step
contracts ``x − μ`` by ``1 − α / (2V)``. At the large levels ``V ≈ σ_i²``, so
each step contracts by ``1 − ε / (2 σ_L²)`` whatever the level: ``ε`` must be
well below ``σ_L²`` (Song & Ermon use ε = 2e-5 with σ_L = 0.01, a contraction
of 0.1 per step).

Every function here is pure and traceable; the whole ``L × T`` double loop is
one :func:`jax.lax.scan` (the level index is ``k // T`` of the flat step
counter ``k``), so the score network is traced and compiled once.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError
from jaxgen.processes.noise import geometric_sigmas  # the ladder, for callers of the sampler

__all__ = ["geometric_sigmas", "langevin", "annealed_langevin"]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


def langevin(score_fn: Callable[[jax.Array], jax.Array], x: jax.Array, rng: jax.Array,
             step_size: float, num_steps: int, noise_scale: float = 1.0) -> jax.Array:
    """Unadjusted Langevin dynamics at one fixed density, in one ``lax.scan``.

    ``x ← x + (step_size / 2) · score_fn(x) + noise_scale · √step_size · z``,
    ``num_steps`` times (static). ``noise_scale = 1`` targets the density whose
    score is ``score_fn`` (up to the discretisation bias of order step_size).
    """
    step_size = jnp.asarray(step_size, x.dtype)

    def body(x, k):
        z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype)
        x = x + 0.5 * step_size * score_fn(x) + noise_scale * jnp.sqrt(step_size) * z
        return x, None

    x, _ = jax.lax.scan(body, x, jnp.arange(int(num_steps)))
    return x


def annealed_langevin(score_fn: ScoreFn, x_init: jax.Array, rng: jax.Array, sigmas: jax.Array,
                      steps_per_sigma: int, step_lr: float, denoise: bool = True,
                      noise_scale: float = 1.0) -> jax.Array:
    """Annealed Langevin dynamics (Song & Ermon, 2019, Algorithm 1), one ``lax.scan``.

    Args:
      score_fn: ``score_fn(x, i) -> ∇_x log p_{σ_i}(x)`` for the batch ``x``,
        with ``i`` the (0-based) index of the noise level, an int32 scalar.
      x_init: the starting batch, e.g. ``σ_1 · N(0, I)``.
      rng: PRNG key for the injected noise.
      sigmas: ``(L,)`` decreasing noise levels (:func:`geometric_sigmas`).
      steps_per_sigma: ``T`` updates per level (static).
      step_lr: ``ε``; level ``i`` uses ``α_i = ε · σ_i² / σ_L²``.
      denoise: add the Tweedie step ``x ← x + σ_L² · s(x, L−1)`` at the end.
      noise_scale: multiplies the injected noise (1 = the algorithm; a
        temperature τ < 1 samples a sharpened density).

    Returns the final batch, same shape and dtype as ``x_init``.
    """
    sigmas = jnp.asarray(sigmas, x_init.dtype)
    num_levels = sigmas.shape[0]
    steps = int(steps_per_sigma)
    if steps < 1:
        raise UserError(f"steps_per_sigma must be >= 1, got {steps}.")
    last = sigmas[-1]
    alphas = jnp.asarray(step_lr, x_init.dtype) * jnp.square(sigmas / last)

    def body(x, k):
        i = (k // steps).astype(jnp.int32)
        alpha = alphas[i]
        z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype)
        x = x + 0.5 * alpha * score_fn(x, i) + noise_scale * jnp.sqrt(alpha) * z
        return x, None

    x, _ = jax.lax.scan(body, x_init, jnp.arange(num_levels * steps, dtype=jnp.int32))
    if denoise:
        x = x + jnp.square(last) * score_fn(x, jnp.asarray(num_levels - 1, jnp.int32))
    return x
