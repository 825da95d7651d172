"""Step state and an EMA target: the non-gradient state a step-dependent objective keeps
beside its players' params (`Objective.update_state`).

An objective whose loss depends on the step (a schedule, a warm-up) or on a slowly moving
copy of a network (consistency training's target θ⁻, BYOL-style targets) keeps both in its
params under keys that belong to no player. The trainer then neither differentiates nor
optimises them; a checkpoint holds them, so a resumed run continues the same schedule; and
the run summary does not count them as trained parameters.

    from jaxgen.kernel import state

    def init(rng, batch):
        net = model.init(rng, batch["x"])["params"]
        return {"model": net, **state.initial(net, target=True)}

    def loss(params, batch, rng):
        k = state.step(params)                       # updates done before this one
        target = params[state.TARGET]                # θ⁻, no gradient reaches it
        ...

    Objective(..., init=init, update_state=state.updater(decay=0.999))

`decay` may also be a function of the step (before the update), for a scheduled EMA rate.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

STEP = "step"
TARGET = "target"


def initial(player_params=None, *, target: bool = False) -> dict:
    """The state to merge into `init`'s params: the step counter at 0 and, with `target`, a
    copy of `player_params` as the EMA target."""
    out = {STEP: jnp.zeros((), jnp.float32)}
    if target:
        if player_params is None:
            raise ValueError("state.initial(target=True) needs the player's params to copy.")
        out[TARGET] = jax.tree.map(jnp.copy, player_params)
    return out


def step(params) -> jax.Array:
    """The number of updates finished before this one (a float32 scalar; traced)."""
    return params[STEP]


def ema(target, online, decay):
    """decay · target + (1 − decay) · online, leaf by leaf."""
    return jax.tree.map(lambda t, p: decay * t + (1.0 - decay) * p, target, online)


def advance(params, *, player: str = "model", decay=None) -> dict:
    """params with the step counter one higher and, when `decay` is given (a number, or a
    function of the step before the update), the target moved towards params[player]."""
    k = params[STEP]
    out = {**params, STEP: k + 1}
    if decay is not None:
        mu = decay(k) if callable(decay) else decay
        out[TARGET] = ema(params[TARGET], params[player], jnp.asarray(mu, jnp.float32))
    return out


def updater(*, player: str = "model", decay=None) -> Callable:
    """An `Objective.update_state` that runs `advance` after each step's gradient updates."""
    def update_state(params, batch, rng):
        del batch, rng
        return advance(params, player=player, decay=decay)
    return update_state
