"""Flow-matching probability paths between noise x0 ~ N(0, I) (t = 0) and data x1 (t = 1).

An affine path is its schedule (α_t, σ_t), with α_0 = 0, σ_0 = 1 and α_1 = 1, σ_1 ≈ 0:

    x_t = α_t x1 + σ_t x0,        d x_t / dt = α'_t x1 + σ'_t x0.

Shipped (`make_path`):

    straight   α = t,            σ = 1 − t              (rectified flow; the lecture's)
    ot         α = t,            σ = 1 − (1 − σ_min) t  (Lipman et al., 2023; σ_min > 0)
    cosine     α = sin(π t / 2), σ = cos(π t / 2)        (variance preserving: α² + σ² = 1)

A network may predict the velocity itself or x1, x0 (= the noise ε, in this time convention)
and the path converts each to the velocity (`velocity`), so sampling and the exact ODE
likelihood work for every prediction type. Given x_t and a prediction of x1,

    x0 = (x_t − α x1) / σ,   v = α' x1 + σ' x0,

and symmetrically for x0. The conversion divides by σ_t (x1) or α_t (x0), which vanish at
t = 1 (resp. 0): there the schedule is read at t = 1 − T_EPS (resp. T_EPS) instead, the
usual ε-truncation of an ODE at its singular end (the velocity's limit there is finite for
the exact prediction, 0/0 numerically).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from jaxgen.processes.settings import FM_PREDICTIONS, PATHS

T_EPS = 1e-3


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

    def velocity(self, prediction: str, xt, out, t):
        """The velocity implied by the network output `out` at (x_t, t); t (B,) or scalar."""
        if prediction == "velocity":
            return out
        te = expand(jnp.broadcast_to(jnp.asarray(t, xt.dtype), xt.shape[:1]), xt)
        if prediction == "x1":
            te = jnp.minimum(te, 1.0 - T_EPS)
            x1, x0 = out, (xt - self.alpha(te) * out) / self.sigma(te)
        elif prediction == "x0":
            te = jnp.maximum(te, T_EPS)
            x0, x1 = out, (xt - self.sigma(te) * out) / self.alpha(te)
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
    """A shipped path by name (`PATHS`)."""
    if name == "straight":
        return StraightPath()
    if name == "ot":
        return OTPath(float(sigma_min))
    if name == "cosine":
        return CosinePath()
    raise ValueError(f"path must be one of {', '.join(PATHS)}, got {name!r}.")
