"""Flow-matching probability paths between noise x0 ~ N(0, I) (t = 0) and data x1 (t = 1).

The optimal-transport path of Lipman et al. (2023), with σ_min = 0 the lecture's
straight line:

    x_t = t·x1 + (1 − (1 − σ_min)·t)·x0,        d x_t / dt = x1 − (1 − σ_min)·x0.
"""

from __future__ import annotations


def expand(t, x):
    """t (B,) -> (B, 1, ..., 1), broadcastable against x (B, ...)."""
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def ot_path(x0, x1, t, sigma_min: float = 0.0):
    """(x_t, d x_t / dt) of the OT path at times t (B,)."""
    te = expand(t, x1)
    xt = te * x1 + (1.0 - (1.0 - sigma_min) * te) * x0
    return xt, x1 - (1.0 - sigma_min) * x0
