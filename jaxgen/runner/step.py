"""The one train step, for every objective: jitted over a data-parallel mesh.

Params, EMA params and optimizer state are replicated (`P()`), the batch is
sharded along the mesh's data axis (`P("data")`), and the loss is written on
the *global* batch: XLA partitions it and inserts the all-reduce that averages
gradients across devices and processes. Randomness is drawn on the global
shape from `fold_in(rng, step)`; with JAX's partitionable threefry (the
default) every example gets the same numbers whatever the device count. The
state buffers are donated.

Per step: preprocess the raw batch (e.g. dequantise images), then update
each player in order, `updates_per_step` times each (on its own part of the
batch if the player splits it), differentiating its loss only w.r.t. its own
params (then projecting them, if the player has a projection); then the objective's
non-gradient state update; then the EMA.

Gradient accumulation (`grad_accum` = a > 1) splits each update's batch into a
strided micro-batches (`microbatch`: every device keeps its share), sums their
gradients in a `lax.scan` and takes one optimizer step on the mean: the update
of the whole batch (up to float rounding, and with the randomness of micro-batch
i drawn from `fold_in(key, i)`) with the activations of one micro-batch alive.
"""

from __future__ import annotations

from typing import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgen.kernel import transforms
from jaxgen.kernel.contract import Objective, microbatch
from jaxgen.kernel.errors import ContractError
from jaxgen.nn import dropout
from jaxgen.runner import augment as augment_lib
from jaxgen.runner.state import TrainState

# Metric names the trainer writes itself for each player.
RESERVED_METRICS = ("loss", "grad_norm")


def _what(x) -> str:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)} ({getattr(x, 'dtype', '?')})"
    return f"a {type(x).__name__}"


def checked_loss_output(out, objective: str, player: str):
    """A loss's `(scalar, metrics)` checked at trace time; a ContractError that names the
    objective, the player and what came back otherwise."""
    where = f"objective {objective}, player {player}"
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ContractError(f"{where}: a loss returns (loss, metrics): a scalar and a dict of "
                            f"scalars; it returned {_what(out)}. End it with "
                            "`return loss, {\"my_term\": term}`.")
    loss, metrics = out
    if getattr(loss, "shape", None) != ():
        hint = (" (per-example values? reduce them, e.g. jnp.mean)"
                if getattr(loss, "ndim", 0) else "")
        raise ContractError(f"{where}: the loss must be a scalar; it is {_what(loss)}{hint}.")
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise ContractError(f"{where}: the loss must be a float scalar; it is {_what(loss)}.")
    if not isinstance(metrics, Mapping):
        raise ContractError(f"{where}: the metrics must be a dict of scalars; they are "
                            f"{_what(metrics)}.")
    for name, v in metrics.items():
        if name in RESERVED_METRICS:
            raise ContractError(f"{where}: metric {name!r} is reserved (the trainer logs the "
                                f"player's {name} under it); rename it.")
        if getattr(v, "shape", ()) != ():
            raise ContractError(f"{where}: metric {name!r} must be a scalar; it is {_what(v)} "
                                "(reduce it, e.g. jnp.mean).")
    return loss, dict(metrics)


# fold_in tags separating the uses of a step's key (and of a loss's key: dropout's).
_TAG_DATA, _TAG_PLAYERS, _TAG_STATE, _TAG_AUGMENT = 0, 1, 2, 3
_TAG_DROPOUT = 0x64726F70  # far from the small tags a loss folds into its own key


def init_state(objective: Objective, txs: dict, seed: int, batch: dict) -> TrainState:
    """Builds the initial state. `batch` is a model-space example batch.

    Initial weights are drawn with the "rbg" PRNG (XLA's RngBitGenerator):
    threefry initialisers of a conv net take tens of seconds to compile on CPU,
    rbg a few. Everything drawn during training uses the threefry base key
    `fold_in(key(seed), 1)`, whose values do not depend on the sharding.
    """
    return state_from_params(objective, txs, seed,
                             objective.init(jax.random.key(seed, impl="rbg"), batch))


def state_from_params(objective: Objective, txs: dict, seed: int, params) -> TrainState:
    """The initial state around the init's params (the optimizer states, the EMA copy, the
    base key). A module's sharding annotations (`nn.with_logical_partitioning`) are read
    from the abstract params by `jaxgen.runner.sharding`; the state holds the values."""
    params = nn.meta.unbox(params)
    opt_state = {p.name: txs[p.name].init(params[p.name]) for p in objective.players}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      ema_params=jax.tree.map(jnp.copy, params), opt_state=opt_state,
                      rng=jax.random.fold_in(jax.random.key(seed), 1))


def ema_decay_at(step, decay: float):
    """EMA decay with the usual warm-up, min(decay, (1+s)/(10+s))."""
    s = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + s) / (10.0 + s))


def make_train_step(objective: Objective, txs: dict, data_kind: str, ema_decay: float,
                    dequantize: bool = True, grad_accum: int = 1, augment: str = "none",
                    unroll: bool = False
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Returns `step(state, raw_batch) -> (state, metrics)`, not yet jitted.

    `unroll` writes the step's loops (grad_accum micro-batches, a player's several updates)
    out in the program: the same arithmetic, which XLA's FLOP count then sees whole (it
    counts a loop's body once).

    `augment` (`train.augment`) transforms each raw example first (`jaxgen.runner.augment`).
    Each loss is traced inside `jaxgen.nn.dropout.training` with a key folded from the
    loss's own: networks with dropout drop units there and nowhere else.
    """
    multi = len(objective.players) > 1
    player_names = {p.name for p in objective.players}

    def one_step(state: TrainState, raw_batch: dict):
        key = jax.random.fold_in(state.rng, state.step)
        batch = dict(raw_batch)
        raw_x = augment_lib.augment(augment, raw_batch["x"],
                                    jax.random.fold_in(key, _TAG_AUGMENT))
        batch["x"] = transforms.preprocess(data_kind, raw_x,
                                           jax.random.fold_in(key, _TAG_DATA), dequantize)
        params, opt_state = state.params, dict(state.opt_state)
        metrics, total = {}, 0.0
        player_key = jax.random.fold_in(key, _TAG_PLAYERS)
        for i, player in enumerate(objective.players):
            tx = txs[player.name]

            def update(carry, j, player=player, tx=tx, i=i):
                params, opt = carry
                k = jax.random.fold_in(jax.random.fold_in(player_key, i), j)

                own_batch = (microbatch(batch, j, player.updates_per_step)
                             if player.split_batch else batch)

                def own_loss(p_own, b, k):
                    with dropout.training(jax.random.fold_in(k, _TAG_DROPOUT)):
                        out = player.loss({**params, player.name: p_own}, b, k)
                    return checked_loss_output(out, objective.name, player.name)

                grad_fn = jax.value_and_grad(own_loss, has_aux=True)
                if grad_accum == 1:
                    (loss, m), grads = grad_fn(params[player.name], own_batch, k)
                else:
                    def micro(acc, a):
                        (loss, m), g = grad_fn(params[player.name],
                                               microbatch(own_batch, a, grad_accum),
                                               jax.random.fold_in(k, a))
                        return jax.tree.map(jnp.add, acc, g), (loss, m)

                    zeros = jax.tree.map(jnp.zeros_like, params[player.name])
                    grads, (loss, m) = jax.lax.scan(micro, zeros, jnp.arange(grad_accum),
                                                    unroll=unroll)
                    grads = jax.tree.map(lambda g: g / grad_accum, grads)
                    loss, m = jnp.mean(loss), jax.tree.map(lambda a: jnp.mean(a, axis=0), m)
                updates, opt = tx.update(grads, opt, params[player.name])
                new_own = optax.apply_updates(params[player.name], updates)
                if player.project is not None:
                    new_own = player.project(new_own)
                m = {**m, "loss": loss, "grad_norm": optax.tree.norm(grads)}
                return ({**params, player.name: new_own}, opt), m

            carry = (params, opt_state[player.name])
            if player.updates_per_step == 1:
                carry, m = update(carry, 0)
            else:
                # XLA:CPU runs loop bodies without its usual conv fast paths, so
                # only players that update several times per step use a loop.
                carry, m = jax.lax.scan(update, carry, jnp.arange(player.updates_per_step),
                                        unroll=unroll)
                m = jax.tree.map(lambda v: v[-1], m)
            params, opt_state[player.name] = carry
            total = total + m["loss"]
            if multi:
                metrics.update({f"{player.name}/{k}": v for k, v in m.items()})
            else:
                metrics.update(m)
        if multi:
            metrics["loss"] = total
        if objective.update_state is not None:
            params = objective.update_state(params, batch, jax.random.fold_in(key, _TAG_STATE))
        d = ema_decay_at(state.step, ema_decay)
        # Players' params are averaged; non-gradient state (a VQ codebook kept by EMA,
        # counters) is already what the objective wants and is copied as it is.
        ema = {k: (jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params[k], v)
                   if k in player_names else v) for k, v in params.items()}
        new_state = state.replace(step=state.step + 1, params=params, ema_params=ema,
                                  opt_state=opt_state)
        return new_state, metrics

    return one_step


def make_multi_step(one_step, steps_per_call: int, unroll: bool | None = None):
    """k steps per device call with `lax.scan`; the batch has a leading k axis.

    `unroll` (default: on the CPU backend only) writes the k steps out in the program. On
    XLA:CPU a convolutional step inside a while loop ran about 40x slower than the same step
    called k times (the DDPM U-Net, batch 64: 14.1 s/step rolled vs 0.34 unrolled and 0.37
    for one step a call, k = 2, measured on 2 CPU cores); unrolled costs compile time that grows
    with k. Other backends keep the loop."""
    if steps_per_call == 1:
        return one_step
    if unroll is None:
        unroll = jax.default_backend() == "cpu"

    def multi(state, batches):
        return jax.lax.scan(one_step, state, batches, unroll=bool(unroll))

    return multi

