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

:func:`mmd2` is the jitted float32 estimate (differentiable, usable inside
other jitted code). :func:`mmd_test` is the kernel two-sample *test*: the same
estimate in float64 NumPy plus a permutation p-value (Gretton et al., 2012,
Sec. 5: under ``H0: P = Q`` the pooled sample is exchangeable, so re-splitting
it at random draws from the null distribution of the statistic).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["mmd2", "mmd_test", "DEFAULT_BANDWIDTH_MULTIPLIERS"]

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
def mmd2(x: jax.Array, y: jax.Array,
         bandwidths: Sequence[float] | jax.Array | None = None) -> jax.Array:
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


# --------------------------------------------------------------------------------------------
# Permutation test (float64 NumPy).


def _sq_dists_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances ``(len(a), len(b))`` in float64, clipped at 0."""
    d = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _permuted_mmd2(k0: np.ndarray, in_x: np.ndarray, n: int) -> np.ndarray:
    """Unbiased MMD^2 of the splits given by the rows of ``in_x``.

    ``k0`` is the pooled ``(N, N)`` kernel matrix with its diagonal set to 0, ``in_x`` a
    ``(P, N)`` 0/1 matrix whose row ``p`` marks the ``n`` points of the pooled sample put in
    the "x" group of split ``p`` (the other ``m = N - n`` form "y"). With ``a`` such a row
    and ``b = 1 - a``, the off-diagonal sums of the estimate are quadratic forms in ``k0``:

        sum_xx = a' K0 a,   sum_xy = a' K0 b = a' K0 1 - sum_xx,
        sum_yy = b' K0 b = 1' K0 1 - 2 a' K0 1 + sum_xx,

    so one ``(P, N) @ (N, N)`` product gives all ``P`` statistics.
    """
    m = k0.shape[0] - n
    k_a = in_x @ k0                          # (P, N): row p is a_p' K0
    row = np.sum(k_a, axis=1)                # a' K0 1
    s_xx = np.sum(k_a * in_x, axis=1)        # a' K0 a
    s_xy = row - s_xx
    s_yy = np.sum(k0) - 2.0 * row + s_xx
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def mmd_test(x, y, *, bandwidths: Sequence[float] | None = None, num_permutations: int = 200,
             seed: int = 0) -> dict:
    """Kernel two-sample permutation test of ``H0: P = Q`` with the unbiased MMD^2.

    The statistic is the *unbiased* estimate ``MMD^2_u`` of the module docstring (the same
    quantity as :func:`mmd2`, here in float64), with the kernel a sum of Gaussian RBF kernels
    over ``bandwidths``. The pooled sample ``z = (x, y)`` of size ``N = n + m`` is split at
    random ``P = num_permutations`` times into groups of sizes ``n`` and ``m``; with
    ``T_0`` the observed statistic and ``T_1..T_P`` the permuted ones,

        p_value = (1 + #{p : T_p >= T_0}) / (1 + P),

    which is a valid p-value for any ``P``: ``Pr(p_value <= alpha) <= alpha`` under
    ``H0`` (Phipson & Smyth, 2010, "Permutation p-values should never be zero"). The
    smallest attainable value is ``1 / (1 + P)``.

    The bandwidths are fixed once from the pooled sample (so they are the same for every
    split, as the test requires), the ``(N, N)`` kernel matrix is computed once, and the
    permuted statistics are quadratic forms in it, evaluated for a chunk of permutations at
    a time by one matrix product (see :func:`_permuted_mmd2`). Cost ``O(N^2 d + P N^2)``
    time and ``O(N^2)`` memory (float64: ~32 MB at ``N = 2000``).

    Args:
      x: ``(n, ...)`` sample from P, ``n >= 2``; trailing axes are flattened.
      y: ``(m, ...)`` sample from Q, ``m >= 2``, same trailing shape as ``x``.
      bandwidths: RBF bandwidths ``s`` (standard deviations), kernel
        ``sum_s exp(-|a - b|^2 / (2 s^2))``. ``None``: the median pairwise distance of the
        pooled sample times :data:`DEFAULT_BANDWIDTH_MULTIPLIERS`, as in :func:`mmd2`
        (1 instead of the median if that is 0).
      num_permutations: ``P``, the number of random splits (``>= 1``).
      seed: seed of the NumPy generator that draws the splits.

    Returns:
      ``{"mmd2": float (unbiased, may be slightly negative), "p_value": float,
      "num_permutations": P, "n_x": n, "n_y": m, "bandwidths": list of floats}``.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same event size, got {x.shape} and {y.shape}.")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"The unbiased estimate needs n, m >= 2, got n={n}, m={m}.")
    if num_permutations < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}.")

    z = np.concatenate([x, y], axis=0)
    big_n = n + m
    d2 = _sq_dists_np(z, z)
    if bandwidths is None:
        rows, cols = np.triu_indices(big_n, k=1)
        med = float(np.median(np.sqrt(d2[rows, cols])))
        med = med if med > 0 else 1.0
        sigmas = [med * c for c in DEFAULT_BANDWIDTH_MULTIPLIERS]
    else:
        sigmas = [float(s) for s in np.asarray(bandwidths, np.float64).reshape(-1)]
    k0 = np.zeros_like(d2)
    for s in sigmas:
        k0 += np.exp(-d2 / (2.0 * s * s))
    del d2
    np.fill_diagonal(k0, 0.0)

    observed_split = np.zeros((1, big_n))
    observed_split[0, :n] = 1.0
    observed = float(_permuted_mmd2(k0, observed_split, n)[0])

    rng = np.random.default_rng(seed)
    # Chunks of permutations keep the (chunk, N) indicator and product at <= ~2^22 floats.
    chunk = max(1, min(num_permutations, (1 << 22) // big_n))
    # A split equal to the observed one must count as ">=": allow float round-off.
    tol = 1e-12 * len(sigmas)
    exceed = 0
    done = 0
    while done < num_permutations:
        c = min(chunk, num_permutations - done)
        perms = rng.permuted(np.broadcast_to(np.arange(big_n), (c, big_n)), axis=1)
        in_x = np.zeros((c, big_n))
        in_x[np.arange(c)[:, None], perms[:, :n]] = 1.0
        exceed += int(np.sum(_permuted_mmd2(k0, in_x, n) >= observed - tol))
        done += c
    return {"mmd2": observed, "p_value": (1.0 + exceed) / (1.0 + num_permutations),
            "num_permutations": int(num_permutations), "n_x": n, "n_y": m,
            "bandwidths": sigmas}
