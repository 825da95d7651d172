"""Dropout that is on in the train step only, with keys from the step's own PRNG key.

The objectives call their networks as ``model.apply({"params": p}, x, t)`` in the loss, the
samplers and the likelihoods alike. A network with dropout asks `call_key()` for a key once
per call: inside `training(key)` (opened by the generic train step around each loss, with
a key folded from the step's key) it gets a fresh key, and drops units with it; anywhere
else (sampling, likelihoods, held-out statistics, init) it gets ``None`` and is
deterministic. So no objective needs to know that its network has dropout, and a resumed
run draws the same masks as an uninterrupted one (the keys derive from ``fold_in(rng,
step)``).

The context is read while a function is traced (as `jax.default_matmul_precision` is); the
key it holds is a value of that trace. Several calls of the network inside one loss get
different keys (``fold_in(key, i)`` for the i-th call).
"""

from __future__ import annotations

import contextlib
import threading

import jax

__all__ = ["training", "call_key"]

_STATE = threading.local()


@contextlib.contextmanager
def training(key: jax.Array):
    """Networks called inside draw their dropout masks from `key` (see the module doc)."""
    previous = getattr(_STATE, "frame", None)
    _STATE.frame = [key, 0]
    try:
        yield
    finally:
        _STATE.frame = previous


def call_key() -> jax.Array | None:
    """A fresh key for one network call inside `training`; None outside it."""
    frame = getattr(_STATE, "frame", None)
    if frame is None:
        return None
    key, calls = frame
    frame[1] = calls + 1
    return jax.random.fold_in(key, calls)
