"""1-D toy sequences with an exact log-density, for autoregressive models.

=============  ===========================================================  ===========
name           what                                                         exact log p
=============  ===========================================================  ===========
gaussian_ar2   a stationary Gaussian AR(2) process of length T              yes
=============  ===========================================================  ===========

The Gaussian AR(2) process

    x_t = a1·x_{t−1} + a2·x_{t−2} + σ·ε_t,   ε_t ~ N(0, 1),

started from its stationary law, so that every window has the same
distribution: (x_1, x_2) ~ N(0, Γ₂), Γ₂ = [[γ0, γ1], [γ1, γ0]] with the
autocovariances

    γ0 = σ²(1 − a2) / ((1 + a2)((1 − a2)² − a1²)),   γ1 = a1·γ0 / (1 − a2),
    γk = a1·γ_{k−1} + a2·γ_{k−2}   (k ≥ 2),

so x ~ N(0, Toeplitz(γ0, …, γ_{T−1})). Its exact log-density is

    log p(x) = log N((x_1, x_2); 0, Γ₂) + Σ_{t=3}^{T} log N(x_t; a1·x_{t−1} + a2·x_{t−2}, σ²).

The best possible next-step model (the truth) has conditional entropy
H(x_t | x_<t) = ½·log(2πe·σ²) nats for every t ≥ 3 (0.7258 nats at the default
σ = 0.5), the floor an autoregressive model's per-step NLL approaches; the
first two steps cost H(x_1, x_2) = log(2πe) + ½·log det Γ₂ together.
Stationary only if |a2| < 1, a1 + a2 < 1 and a2 − a1 < 1 (checked).
Defaults: a1 = 1.0, a2 = −0.5 (complex roots: damped oscillations), σ = 0.5,
T = 32; stationary std √γ0 ≈ 0.77.

`ToySequence` has the fields `jaxgen eval` reads from a `Toy2D` (name, sample,
log_prob, modes = None, std = None), so eval reports `true_nll_nats` and
`nll_gap_nats` for these too. Host-side numpy only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from jaxgen.kernel.errors import UserError

SEQUENCE_TOYS = ("gaussian_ar2",)
DEFAULT_COEFFS = (1.0, -0.5)
DEFAULT_SIGMA = 0.5
DEFAULT_LENGTH = 32


@dataclasses.dataclass(frozen=True, eq=False)
class ToySequence:
    """A toy distribution over sequences of length `length` (a sibling of `Toy2D`).

    sample: `(rng: np.random.Generator, n) -> float32 (n, length)`.
    log_prob: `(x: (n, length)) -> float64 (n,)` exact log-density in nats.
    modes, std: None (eval's mode metrics do not apply).
    coeffs, sigma: the AR coefficients (a1, a2) and the innovation std σ.
    conditional_entropy: ½·log(2πe·σ²), H(x_t | x_<t) for t ≥ 3 (nats).
    """

    name: str
    sample: Callable[[np.random.Generator, int], np.ndarray]
    log_prob: Callable[[np.ndarray], np.ndarray]
    length: int
    coeffs: tuple
    sigma: float
    conditional_entropy: float
    modes: None = None
    std: None = None


def check_stationary(a1: float, a2: float) -> None:
    if not (abs(a2) < 1 and a1 + a2 < 1 and a2 - a1 < 1):
        raise UserError(f"AR(2) coefficients ({a1}, {a2}) are not stationary: need |a2| < 1, "
                         "a1 + a2 < 1 and a2 − a1 < 1.")


def ar2_autocovariance(a1: float, a2: float, sigma: float, n: int) -> np.ndarray:
    """(γ0, …, γ_{n−1}) of the stationary AR(2) process (float64)."""
    check_stationary(a1, a2)
    g = np.zeros(max(n, 2))
    g[0] = sigma ** 2 * (1 - a2) / ((1 + a2) * ((1 - a2) ** 2 - a1 ** 2))
    g[1] = a1 * g[0] / (1 - a2)
    for k in range(2, n):
        g[k] = a1 * g[k - 1] + a2 * g[k - 2]
    return g[:n]


def ar2_log_prob(x, a1: float, a2: float, sigma: float) -> np.ndarray:
    """Exact log p(x) (nats) of sequences x (n, T), T ≥ 2, under the stationary AR(2)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise UserError(f"expected sequences of shape (n, T) with T >= 2, got {x.shape}")
    g0, g1 = ar2_autocovariance(a1, a2, sigma, 2)
    det = g0 * g0 - g1 * g1
    x1, x2 = x[:, 0], x[:, 1]
    quad = (g0 * x1 * x1 - 2 * g1 * x1 * x2 + g0 * x2 * x2) / det
    lp = -math.log(2 * math.pi) - 0.5 * math.log(det) - 0.5 * quad
    e = x[:, 2:] - a1 * x[:, 1:-1] - a2 * x[:, :-2]
    lp += np.sum(-0.5 * (e / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi), 1)
    return lp


def ar2_sample(rng: np.random.Generator, n: int, length: int, a1: float, a2: float,
               sigma: float) -> np.ndarray:
    """n stationary AR(2) sequences (n, length), float32."""
    if length < 2:
        raise UserError(f"length must be >= 2, got {length}")
    g0, g1 = ar2_autocovariance(a1, a2, sigma, 2)
    chol = np.linalg.cholesky(np.array([[g0, g1], [g1, g0]]))
    x = np.zeros((int(n), int(length)))
    x[:, :2] = rng.standard_normal((int(n), 2)) @ chol.T
    eps = rng.standard_normal((int(n), int(length)))
    for t in range(2, length):
        x[:, t] = a1 * x[:, t - 1] + a2 * x[:, t - 2] + sigma * eps[:, t]
    return x.astype(np.float32)


def get_sequence_toy(name: str, length: int | None = None, coeffs=None,
                     std: float | None = None) -> ToySequence:
    """The toy `name` (one of `SEQUENCE_TOYS`); None picks the defaults (std is σ)."""
    if name not in SEQUENCE_TOYS:
        raise UserError(f"unknown toy sequence {name!r}; valid: {', '.join(SEQUENCE_TOYS)}")
    length = DEFAULT_LENGTH if length is None else int(length)
    a1, a2 = (float(c) for c in (DEFAULT_COEFFS if coeffs is None or len(coeffs) == 0
                                 else coeffs))
    sigma = DEFAULT_SIGMA if std is None else float(std)
    if not sigma > 0:
        raise UserError(f"the innovation std must be > 0, got {sigma}")
    if length < 2:
        raise UserError(f"data.length must be >= 2, got {length}")
    check_stationary(a1, a2)
    return ToySequence(
        name=name,
        sample=lambda rng, n: ar2_sample(rng, n, length, a1, a2, sigma),
        log_prob=lambda x: ar2_log_prob(x, a1, a2, sigma),
        length=length, coeffs=(a1, a2), sigma=sigma,
        conditional_entropy=0.5 * math.log(2 * math.pi * math.e * sigma ** 2))
