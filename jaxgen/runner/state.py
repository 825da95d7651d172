"""The train state: one pytree, checkpointed whole."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    """step, params, EMA params, per-player optimizer state and the base PRNG key.

    `rng` is the run's base key (typed, `jax.random.key`); it never changes.
    The randomness of step s is `fold_in(rng, s)`, so a resumed run draws
    exactly what an uninterrupted one would.
    """

    step: jax.Array
    params: Any
    ema_params: Any
    opt_state: Any
    rng: jax.Array


def param_count(params, players=None) -> int:
    """Parameters in `params`; with `players` (the objective's), only the trained ones: the
    players' subtrees, not state kept beside them (running means, an EMA target network)."""
    if players is not None and isinstance(params, dict):
        params = {p.name: params[p.name] for p in players if p.name in params}
    return int(sum(x.size for x in jax.tree.leaves(params)))
