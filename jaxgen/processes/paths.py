"""Flow-matching probability paths between noise x0 ~ N(0, I) (t = 0) and data x1 (t = 1).

An affine path is its schedule (α_t, σ_t), with α_0 = 0, σ_0 = 1 and α_1 = 1, σ_1 ≈ 0:

    x_t = α_t x1 + σ_t x0,        d x_t / dt = α'_t x1 + σ'_t x0.

Shipped (`make_path`):

    straight   α = t,            σ = 1 − t              (rectified flow; the lecture's)
    ot         α = t,            σ = 1 − (1 − σ_min) t  (Lipman et al., 2023; σ_min > 0;
                                                          also "straight" with σ_min > 0)
    cosine     α = sin(π t / 2), σ = cos(π t / 2)        (variance preserving: α² + σ² = 1)

A network may predict the velocity itself or x1, x0 (= the noise ε, in this time convention)
and the path converts each to the velocity (`velocity`), so sampling and the exact ODE
likelihood work for every prediction type. Given x_t and a prediction of x1,

    x0 = (x_t − α x1) / σ,   v = α' x1 + σ' x0,

and symmetrically for x0. The conversion divides by σ_t (x1) or α_t (x0), which vanish at
t = 1 (resp. 0). The divisor is floored: max(σ_t, floor) (resp. max(α_t, floor)), with
floor = DIVISOR_FLOOR = 0.05 by default, as Li & He (2025, "Back to Basics: Let Denoising
Generative Models Denoise", JiT) clip 1 − t at 0.05 in their x-prediction -> velocity
conversion. Unfloored, the x1 -> velocity map multiplies the network's x1 error by
(α' − σ' α / σ) (= (π/2) / σ on the cosine path) and its x_t-Jacobian holds σ' / σ: near
t = 1 both grow without bound (~1000x at t = 1 − 10⁻³), the field is stiff, and a
fixed-step ODE solver does not converge (the likelihood then grows worse with more steps).
With the floor, both are bounded by about |σ'| / floor.

Where the divisor is above the floor, the conversion is exact. Where it is below, the
field is a different one (it moves x_t less in the last few percent of time); sampling
and the ODE likelihood integrate that field, and the likelihood stays the exact density
of the flow actually integrated: the velocity field is whatever function it is.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import ConfigError
from jaxgen.processes.settings import DIVISOR_FLOOR, FM_PREDICTIONS, PATHS, TIME_SAMPLING


def expand(t, x):
    """t (B,) -> (B, 1, ..., 1), broadcastable against x (B, ...)."""
    t = jnp.asarray(t)
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


@dataclasses.dataclass(frozen=True)
class AffinePath:
    """x_t = α_t x1 + σ_t x0: subclasses give α, σ and their time derivatives."""

    def alpha(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def d_alpha(self, t):
        raise NotImplementedError

    def d_sigma(self, t):
        raise NotImplementedError

    def sample(self, x0, x1, t):
        """(x_t, d x_t / dt) at times t (B,)."""
        te = expand(t, x1)
        xt = self.alpha(te) * x1 + self.sigma(te) * x0
        return xt, self.d_alpha(te) * x1 + self.d_sigma(te) * x0

    def target(self, prediction: str, x0, x1, dxt):
        """What a network predicting `prediction` regresses on."""
        return {"velocity": dxt, "x1": x1, "x0": x0}[prediction]

    def velocity(self, prediction: str, xt, out, t, floor: float = DIVISOR_FLOOR):
        """The velocity implied by the network output `out` at (x_t, t); t (B,) or scalar.

        x1 (x0) is converted with its divisor σ_t (α_t) floored at `floor` > 0: exact where
        the divisor is above it, a bounded field where it is not (module docstring)."""
        if prediction == "velocity":
            return out
        if not floor > 0:
            raise ValueError(f"floor must be > 0 (it bounds a division), got {floor!r}.")
        te = expand(jnp.broadcast_to(jnp.asarray(t, xt.dtype), xt.shape[:1]), xt)
        if prediction == "x1":
            x1, x0 = out, (xt - self.alpha(te) * out) / jnp.maximum(self.sigma(te), floor)
        elif prediction == "x0":
            x0, x1 = out, (xt - self.sigma(te) * out) / jnp.maximum(self.alpha(te), floor)
        else:
            raise ValueError(f"prediction must be one of {', '.join(FM_PREDICTIONS)}, "
                             f"got {prediction!r}.")
        return self.d_alpha(te) * x1 + self.d_sigma(te) * x0


@dataclasses.dataclass(frozen=True)
class StraightPath(AffinePath):
    """α = t, σ = 1 − t: the straight line from x0 to x1 (rectified flow)."""

    def alpha(self, t):
        return t

    def sigma(self, t):
        return 1.0 - t

    def d_alpha(self, t):
        return jnp.ones_like(t)

    def d_sigma(self, t):
        return -jnp.ones_like(t)

    def sample(self, x0, x1, t):  # the lecture's form, written as it reads
        te = expand(t, x1)
        return te * x1 + (1.0 - te) * x0, x1 - x0


@dataclasses.dataclass(frozen=True)
class OTPath(AffinePath):
    """α = t, σ = 1 − (1 − σ_min) t (Lipman et al., 2023): ends at N(x1, σ_min² I)."""

    sigma_min: float = 0.0

    def alpha(self, t):
        return t

    def sigma(self, t):
        return 1.0 - (1.0 - self.sigma_min) * t

    def d_alpha(self, t):
        return jnp.ones_like(t)

    def d_sigma(self, t):
        return -(1.0 - self.sigma_min) * jnp.ones_like(t)


@dataclasses.dataclass(frozen=True)
class CosinePath(AffinePath):
    """α = sin(π t / 2), σ = cos(π t / 2): variance preserving (α² + σ² = 1)."""

    def alpha(self, t):
        return jnp.sin(0.5 * math.pi * t)

    def sigma(self, t):
        return jnp.cos(0.5 * math.pi * t)

    def d_alpha(self, t):
        return 0.5 * math.pi * jnp.cos(0.5 * math.pi * t)

    def d_sigma(self, t):
        return -0.5 * math.pi * jnp.sin(0.5 * math.pi * t)


def make_path(name: str, sigma_min: float = 0.0) -> AffinePath:
    """A shipped path by name (`PATHS`). `sigma_min` > 0 widens the straight line into
    Lipman et al.'s OT path: "straight" and "ot" then name the same path (as before paths
    had names, when sigma_min alone chose it); the cosine path has no sigma_min."""
    if name == "straight":
        return OTPath(float(sigma_min)) if sigma_min else StraightPath()
    if name == "ot":
        return OTPath(float(sigma_min))
    if name == "cosine":
        if sigma_min:
            raise ConfigError(
                f"objective.sigma_min={sigma_min} is the width of the straight (ot) path; "
                "path=cosine ends at sigma = 0 and has none: set objective.sigma_min=0, or "
                "objective.path=ot for the sigma_min path.")
        return CosinePath()
    raise ValueError(f"path must be one of {', '.join(PATHS)}, got {name!r}.")


# "skewed" training times: EDM's log-normal noise levels (Karras et al., 2022, P_mean = -1.2,
# P_std = 1.2) read as t = 1 / (1 + sigma), as FAIR's flow_matching image example samples t
SKEWED_LOG_SIGMA = (-1.2, 1.2)
SKEWED_MIN_T = 1e-4


def sample_times(key, n: int, how: str = "uniform", dtype=jnp.float32, *, loc: float = 0.0,
                 scale: float = 1.0, mode_scale: float = 1.29):
    """(n,) training times in [0, 1] (t = 0 noise, t = 1 data):

    * "uniform";
    * "skewed" toward the data: t = 1 / (1 + sigma), log sigma ~ N(-1.2, 1.2^2), clipped to
      [1e-4, 1] (median t = 0.77);
    * "logit_normal" (Esser et al. 2024, SD3, eq. 19): their t' = 1 − t, the noise level,
      is sigmoid(u), u ~ N(loc, scale²), so loc and scale are the paper's m and s
      (m = 0, s = 1: "lognorm(0.00, 1.00)", the best in their Table 1);
    * "mode" (SD3, eq. 20, mode sampling with heavy tails): t' = 1 − u − s (cos²(π u / 2)
      − 1 + u), u uniform, s = mode_scale (monotone for −1 ≤ s ≤ 2 / (π − 2); s = 1.29
      their best, s = 0 uniform)."""
    if how == "uniform":
        return jax.random.uniform(key, (n,), dtype)
    if how == "logit_normal":
        return 1.0 - jax.nn.sigmoid(loc + scale * jax.random.normal(key, (n,), dtype))
    if how == "mode":
        u = jax.random.uniform(key, (n,), dtype)
        return 1.0 - (1.0 - u - mode_scale * (jnp.cos(0.5 * jnp.pi * u) ** 2 - 1.0 + u))
    if how != "skewed":
        raise ValueError(f"time sampling must be one of {', '.join(TIME_SAMPLING)}, got {how!r}.")
    mean, std = SKEWED_LOG_SIGMA
    sigma = jnp.exp(mean + std * jax.random.normal(key, (n,), dtype))
    return jnp.clip(1.0 / (1.0 + sigma), SKEWED_MIN_T, 1.0)
