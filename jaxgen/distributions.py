"""Log-probabilities every family shares, elementwise, and `sum_event` to reduce them.

All are pure jnp functions of arrays (broadcasting as usual) and return nats:

    gaussian_log_prob(x, mean, log_std)     log N(x; mean, exp(log_std)²)
    normal_log_prob(x, mean, var)           the same in the variance parametrisation
    standard_normal_log_prob(z)             log N(z; 0, 1)
    bernoulli_log_prob(b, logits)           log Bernoulli(b; σ(logits))
    categorical_log_prob(logits, k)         log softmax(logits)[k]
    discretized_gaussian_log_prob(...)      log P(8-bit bin) under a Gaussian (Ho et al.)
    discretized_logistic_log_prob(...)      log P(8-bit bin) under a logistic (Salimans et al.)
    normal_kl(m1, v1, m2, v2)               KL(N(m1, v1) ‖ N(m2, v2))
    kl_standard_normal(mean, log_var)       KL(N(mean, exp(log_var)) ‖ N(0, 1))
    sum_event(x)                            (B, ...) -> (B,)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

LOG_2PI = math.log(2.0 * math.pi)


def sum_event(x):
    """Sum over every axis but the first: (B, ...) -> (B,)."""
    return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def gaussian_log_prob(x, mean, log_std):
    """log N(x; mean, exp(log_std)²), elementwise."""
    return -0.5 * (jnp.square((x - mean) * jnp.exp(-log_std)) + LOG_2PI) - log_std


def normal_log_prob(x, mean, var):
    """log N(x; mean, var), elementwise."""
    return -0.5 * (jnp.log(2 * math.pi * var) + jnp.square(x - mean) / var)


def standard_normal_log_prob(z):
    """log N(z; 0, 1), elementwise."""
    return -0.5 * (jnp.square(z) + LOG_2PI)


def bernoulli_log_prob(b, logits):
    """log Bernoulli(b; sigmoid(logits)), elementwise, stable for any logit."""
    return b * jax.nn.log_sigmoid(logits) + (1.0 - b) * jax.nn.log_sigmoid(-logits)


def categorical_log_prob(logits, k):
    """log softmax(logits)[k] per position: logits (..., K), k (...) ints."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, k[..., None], axis=-1)[..., 0]


def discretized_gaussian_log_prob(x, mean, var, bin_width: float, lo: float = -1.0,
                                  hi: float = 1.0):
    """log P(bin of x) under N(mean, var), elementwise (Ho et al., 2020, eq. 13).

    `x` are bin centres of width `bin_width` covering [lo, hi]; the first and
    last bins extend to −∞ and +∞, so the probabilities of all bins sum to 1.
    """
    std = jnp.sqrt(var)
    a = (x - bin_width / 2 - mean) / std
    b = (x + bin_width / 2 - mean) / std
    # Φ(b) − Φ(a), computed on the side of the tail it lies in (accurate far out).
    mid = jnp.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
    log_mid = jnp.log(jnp.maximum(mid, 1e-30))
    first = x - bin_width < lo
    last = x + bin_width > hi
    return jnp.where(first, log_ndtr(b), jnp.where(last, log_ndtr(-a), log_mid))


def discretized_logistic_log_prob(x, mean, log_scale, bin_width: float = 2.0 / 256,
                                  lo: float = -1.0, hi: float = 1.0):
    """log P(bin of x) under a logistic(mean, exp(log_scale)), elementwise.

    `x` are bin centres of width `bin_width` covering [lo, hi]; the first bin
    extends to −∞ and the last to +∞, so the bins' probabilities sum to 1.
    With a = (x − w/2 − μ)/s, b = (x + w/2 − μ)/s, the middle bins use the
    exact, overflow-free identity σ(b) − σ(a) = σ(b)·σ(−a)·(1 − e^{a−b}).
    """
    inv_s = jnp.exp(-log_scale)
    a = (x - bin_width / 2 - mean) * inv_s
    b = (x + bin_width / 2 - mean) * inv_s
    log_mid = (jax.nn.log_sigmoid(b) + jax.nn.log_sigmoid(-a)
               + jnp.log(-jnp.expm1(-bin_width * inv_s)))
    first = x - bin_width < lo
    last = x + bin_width > hi
    return jnp.where(first, jax.nn.log_sigmoid(b),
                     jnp.where(last, jax.nn.log_sigmoid(-a), log_mid))


def normal_kl(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) ‖ N(mean2, var2)) elementwise (nats)."""
    return 0.5 * (jnp.log(var2) - jnp.log(var1) + (var1 + jnp.square(mean1 - mean2)) / var2 - 1.0)


def kl_standard_normal(mean, log_var):
    """KL(N(mean, exp(log_var)) ‖ N(0, 1)), elementwise (nats)."""
    return 0.5 * (jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var)
