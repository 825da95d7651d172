"""Noise-level ladders for score models trained at several noise levels (NCSN)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError


def geometric_sigmas(sigma_max: float, sigma_min: float, num: int) -> jax.Array:
    """The decreasing geometric ladder ``σ_1 = sigma_max > … > σ_num = sigma_min``.

    Consecutive ratios ``σ_{i} / σ_{i+1}`` are all equal to
    ``(sigma_max / sigma_min) ** (1 / (num − 1))`` (Song & Ermon, 2019).
    ``num = 1`` gives ``[sigma_max]``. Returns float32 ``(num,)``.
    """
    num = int(num)
    if num < 1:
        raise UserError(f"num must be >= 1, got {num}.")
    if not (sigma_max > 0 and sigma_min > 0):
        raise UserError(
            f"sigmas must be positive, got sigma_max={sigma_max}, sigma_min={sigma_min}.")
    if num > 1 and not sigma_max > sigma_min:
        raise UserError(f"sigma_max={sigma_max} must exceed sigma_min={sigma_min}.")
    if num == 1:
        return jnp.asarray([sigma_max], jnp.float32)
    return jnp.exp(jnp.linspace(jnp.log(float(sigma_max)), jnp.log(float(sigma_min)), num)
                   ).astype(jnp.float32)
