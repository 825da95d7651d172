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
import jax.numpy as jnp

Params = dict
Batch = Mapping[str, jax.Array]
LossFn = Callable[[Params, Batch, jax.Array], tuple[jax.Array, dict]]


@dataclasses.dataclass(frozen=True)
class Player:
    """One set of parameters with its own loss, optimizer and update count.

    `updates_per_step` is e.g. n_critic for a WGAN critic: the trainer runs
    that many updates of this player, each with fresh randomness, per step.
    `split_batch`: update j sees only the j-th of `updates_per_step` equal,
    strided parts of the batch (`microbatch`), so every update has its own real
    examples, as in WGAN-GP's Algorithm 1 (the global batch size must then be
    a multiple of `updates_per_step`).
    `project`: an optional `params -> params` applied after every update of
    this player (projected gradient descent), e.g. WGAN's weight clipping.
    """

    name: str
    loss: LossFn
    updates_per_step: int = 1
    split_batch: bool = False
    project: Callable[[Params], Params] | None = None


def microbatch(batch: Mapping, j, n: int) -> dict:
    """The j-th of n strided parts of every array of `batch`: rows j, j + n, j + 2n, ...

    Strided (reshape (B, ...) -> (B/n, n, ...), take [:, j]) rather than
    contiguous, so a batch sharded along its first axis stays where it is.
    `j` may be traced (a `lax.scan` counter).
    """
    def part(v):
        v = jnp.asarray(v)
        if v.shape[0] % n:
            raise ValueError(f"a batch of {v.shape[0]} cannot be split into {n} equal parts; "
                             f"make train.batch_size a multiple of {n}.")
        return jnp.take(v.reshape(v.shape[0] // n, n, *v.shape[1:]), j, axis=1)
    return {k: part(v) for k, v in batch.items()}


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One way an objective scores held-out data.

    `fn(params, x, rng, **options)` returns per-example log-likelihoods (nats)
    of model-space `x`, or `(logp, terms)` with `terms` a dict of per-example
    parts of the bound (e.g. diffusion's L_T, L_0, Σ L_{t-1}), which eval
    reports in bits/dim beside the total.

    kind: "exact" (log p itself, up to solver error) or "bound" (a lower bound).
    discrete: for 8-bit images, True means `fn` is given the bin centres
      (no dequantisation noise) and returns log P(x) of the discrete image
      itself (e.g. a discretised Gaussian decoder); False means `fn` is a
      density on dequantised model space and the shared convention of
      `jaxgen.eval.likelihood` turns it into a bound on log P(x).
    ode: the estimator integrates an ODE (eval.ode_steps / ode_method /
      divergence apply).
    """

    fn: Callable[..., Any]
    kind: str = "exact"
    discrete: bool = False
    ode: bool = False

    def __post_init__(self):
        if self.kind not in ("exact", "bound"):
            raise ValueError(f"Likelihood.kind must be 'exact' or 'bound', got {self.kind!r}.")


@dataclasses.dataclass(frozen=True)
class HeldOutStats:
    """Statistics of a trained model over held-out data, reported by `jaxgen eval`.

    batch: `(params, x, rng) -> {name: array with a leading batch axis}`, run
      (jitted) on each eval batch of model-space x; padding rows are dropped.
      With `uses_labels`, it is called as `batch(params, x, rng, label=label)`
      with the batch's labels (None when the data have none).
    reduce: `{name: the arrays of all batches, concatenated} -> {metric: float
      or list}`, on the host.
    E.g. the VAE's active units (posterior means over the whole set) or the
    VQ-VAE's held-out reconstruction error and code perplexity.
    """

    batch: Callable[..., Any]
    reduce: Callable[[dict], dict]
    uses_labels: bool = False


@dataclasses.dataclass(frozen=True)
class Objective:
    """An objective family instantiated for one model and dataset.

    Attributes:
      name: registry name (e.g. "flow_matching").
      players: updated in this order every step.
      init: `(rng, batch) -> params` with one entry per player (+ state).
      update_state: optional `(params, batch, rng) -> params` for
        non-gradient state; must leave the players' entries unchanged.
      sample: optional `(params, rng, num, *, steps, method, temperature,
        labels=None, **options) -> x` in model space. `labels` (num,) ints
        for class-conditional models; other options are the family's own
        (e.g. sampler="ddim", eta, guidance), with defaults from the config.
      likelihoods: name -> `Likelihood`, the first being the default (what
        `nll_nats` / `bits_per_dim` report). Empty: the family has none.
      info: flags the trainer and pictures read, e.g. "temperature" (draw
        temperature rows), "dequantize" (False: images are fed as bin
        centres, for families with a discrete decoder), "pictures" (an
        end-of-run `(exp, params, rng, dataset, folder, main) -> [paths]`),
        "held_out_stats" (a `HeldOutStats` for `jaxgen eval`).
    """

    name: str
    players: tuple[Player, ...]
    init: Callable[[jax.Array, Batch], Params]
    update_state: Callable[[Params, Batch, jax.Array], Params] | None = None
    sample: Callable[..., jax.Array] | None = None
    likelihoods: Mapping[str, Likelihood] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = [p.name for p in self.players]
        if len(set(names)) != len(names):
            raise ValueError(f"Objective {self.name}: player names must be unique, got {names}.")
        if not names:
            raise ValueError(f"Objective {self.name} has no players.")

    @property
    def likelihood_kind(self) -> str:
        """"exact", "bound" or "none": how the default likelihood relates to log p(x)."""
        return next(iter(self.likelihoods.values())).kind if self.likelihoods else "none"

    @property
    def default_likelihood(self) -> str | None:
        return next(iter(self.likelihoods), None)
