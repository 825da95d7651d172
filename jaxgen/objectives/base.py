"""The objective protocol: what every family hands to the one trainer.

A *loss* is a pure function `loss(params, batch, rng) -> (scalar, metrics)`.
`params` is a dict keyed by player name (`{"model": ...}` for single-player
objectives, `{"critic": ..., "generator": ...}` for a GAN); it may also hold
non-gradient state under keys that belong to no player (e.g. a VQ codebook
kept by EMA). Each player's loss sees the whole dict but the trainer
differentiates it only with respect to `params[player.name]`, and only that
player's optimizer moves it. Non-gradient state changes only through
`update_state`, a pure function run after the gradient updates of a step.

`metrics` is a flat dict of scalars: the terms of the bound (reconstruction,
KL, VLB terms, D and G losses), which are what gets logged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax

Params = dict
Batch = Mapping[str, jax.Array]
LossFn = Callable[[Params, Batch, jax.Array], tuple[jax.Array, dict]]


@dataclasses.dataclass(frozen=True)
class Player:
    """One set of parameters with its own loss, optimizer and update count.

    `updates_per_step` is e.g. n_critic for a WGAN critic: the trainer runs
    that many updates of this player, each with fresh randomness, per step.
    """

    name: str
    loss: LossFn
    updates_per_step: int = 1


@dataclasses.dataclass(frozen=True)
class Objective:
    """An objective family instantiated for one model and dataset.

    Attributes:
      name: registry name (e.g. "flow_matching").
      players: updated in this order every step.
      init: `(rng, batch) -> params` with one entry per player (+ state).
      update_state: optional `(params, batch, rng) -> params` for
        non-gradient state; must leave the players' entries unchanged.
      sample: optional `(params, rng, num, **options) -> x` in model space.
      log_likelihood: optional `(params, x, rng, **options) -> (B,)` exact
        log-density (nats) of model-space x.
      likelihood_kind: "exact", "bound" or "none": how `log_likelihood` relates
        to log p(x). Reported next to every NLL.
    """

    name: str
    players: tuple[Player, ...]
    init: Callable[[jax.Array, Batch], Params]
    update_state: Callable[[Params, Batch, jax.Array], Params] | None = None
    sample: Callable[..., jax.Array] | None = None
    log_likelihood: Callable[..., jax.Array] | None = None
    likelihood_kind: str = "none"
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [p.name for p in self.players]
        if len(set(names)) != len(names):
            raise ValueError(f"Objective {self.name}: player names must be unique, got {names}.")
        if not names:
            raise ValueError(f"Objective {self.name} has no players.")
