"""Maximum mean discrepancy (Gretton et al., 2012, "A Kernel Two-Sample Test").

For a kernel ``k`` and samples ``x_1..x_n ~ P``, ``y_1..y_m ~ Q``, the unbiased
estimate of ``MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y)`` is

    MMD^2_u = 1/(n(n-1)) sum_{i != j} k(x_i, x_j)
            + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
            - 2/(nm)     sum_{i, j}   k(x_i, y_j).

Being unbiased, it is centred on 0 when ``P = Q`` and can then be slightly
negative. The kernel here is a sum of Gaussian RBF kernels
``exp(-|a - b|^2 / (2 s^2))`` over several bandwidths ``s``, which is
characteristic and less sensitive to the bandwidth choice than a single one.
By default the bandwidths are the median pairwise distance of the pooled
sample (the "median heuristic") times ``(0.25, 0.5, 1, 2, 4)``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["mmd2", "DEFAULT_BANDWIDTH_MULTIPLIERS"]

#: Multipliers of the median pairwise distance used when ``bandwidths=None``.
DEFAULT_BANDWIDTH_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise squared Euclidean distances ``(len(a), len(b))``, clipped at 0."""
    d = (
        jnp.sum(a * a, axis=1)[:, None]
        + jnp.sum(b * b, axis=1)[None, :]
        - 2.0 * jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
    )
    return jnp.maximum(d, 0.0)


def _median_distance(z: jax.Array) -> jax.Array:
    """Median of the pairwise distances ``|z_i - z_j|``, ``i < j``."""
    n = z.shape[0]
    rows, cols = jnp.triu_indices(n, k=1)
    return jnp.median(jnp.sqrt(_sq_dists(z, z)[rows, cols]))


@jax.jit
def mmd2(x: jax.Array, y: jax.Array, bandwidths: Sequence[float] | jax.Array | None = None) -> jax.Array:
    """Unbiased squared MMD between samples ``x`` (n, d) and ``y`` (m, d).

    Args:
      x: ``(n, d)`` sample from P, ``n >= 2``.
      y: ``(m, d)`` sample from Q, ``m >= 2``; ``m`` may differ from ``n``.
      bandwidths: RBF bandwidths ``s`` (standard deviations, not variances);
        the kernel is the sum over them. ``None``: median pairwise distance of
        the pooled sample times :data:`DEFAULT_BANDWIDTH_MULTIPLIERS`, the
        median held constant under differentiation (``stop_gradient``).

    Returns:
      A scalar float32 array (``float(mmd2(x, y))`` works). Symmetric in
      ``x`` and ``y`` up to float round-off. The function is jitted (one
      compile per pair of shapes; ``bandwidths`` values are traced, so new
      values do not recompile) and can be used inside other jitted code.
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) and (m, d), got {x.shape} and {y.shape}.")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"The unbiased estimate needs n, m >= 2, got n={n}, m={m}.")

    if bandwidths is None:
        med = jax.lax.stop_gradient(_median_distance(jnp.concatenate([x, y], axis=0)))
        # A degenerate pooled sample (all points equal) would give 0: fall back to 1.
        med = jnp.where(med > 0, med, 1.0)
        sigmas = med * jnp.asarray(DEFAULT_BANDWIDTH_MULTIPLIERS, jnp.float32)
    else:
        sigmas = jnp.asarray(bandwidths, jnp.float32).reshape(-1)

    gammas = 1.0 / (2.0 * jnp.square(sigmas))

    def kernel(sq: jax.Array) -> jax.Array:
        # A loop over the (static number of) bandwidths keeps memory at n*m.
        return sum(jnp.exp(-sq * gammas[i]) for i in range(gammas.shape[0]))

    kxx = kernel(_sq_dists(x, x))
    kyy = kernel(_sq_dists(y, y))
    kxy = kernel(_sq_dists(x, y))
    # Off-diagonal sums: remove the diagonal (k(a, a) = number of bandwidths
    # exactly; subtracting the trace keeps it exact whatever round-off did).
    sum_xx = jnp.sum(kxx) - jnp.trace(kxx)
    sum_yy = jnp.sum(kyy) - jnp.trace(kyy)
    return sum_xx / (n * (n - 1)) + sum_yy / (m * (m - 1)) - 2.0 * jnp.mean(kxy)
