"""The one train step with several players, update counts and non-gradient state.

A made-up two-player objective whose optimum is known, so the test can fail
if a player's gradient leaks into the other's params, if n_critic is not
honoured, or if the state update or EMA are wrong.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxgen.kernel.contract import Objective, Player
from jaxgen.runner import step as step_lib


def _objective(updates_a=3):
    # Player "a" pulls its w toward b's w + 1; player "b" pulls its w toward 0.
    # Both losses depend on both players' params (no stop_gradient): the
    # trainer alone must keep each update to its own player.
    def loss_a(params, batch, rng):
        d = params["a"]["w"] - params["b"]["w"] - 1.0
        return jnp.sum(d**2), {"gap": jnp.mean(d)}

    def loss_b(params, batch, rng):
        return jnp.sum(params["b"]["w"] ** 2) + jnp.sum(params["a"]["w"]), {}

    def init(rng, batch):
        return {"a": {"w": jnp.full((3,), 5.0)}, "b": {"w": jnp.full((3,), 2.0)},
                "counter": jnp.zeros((), jnp.int32)}

    def update_state(params, batch, rng):
        return {**params, "counter": params["counter"] + batch["x"].shape[0]}

    return Objective("two_player_test", (Player("a", loss_a, updates_per_step=updates_a),
                                         Player("b", loss_b)),
                     init=init, update_state=update_state)


def test_players_move_only_their_own_params_with_their_update_counts():
    obj = _objective(updates_a=3)
    txs = {"a": optax.sgd(0.25), "b": optax.sgd(0.5)}
    state = step_lib.init_state(obj, txs, 0, {"x": jnp.zeros((1, 2))})
    step = jax.jit(step_lib.make_train_step(obj, txs, "points", ema_decay=0.0))
    batch = {"x": jnp.zeros((4, 2))}
    state, metrics = step(state, batch)
    # a: 3 SGD steps on (w - 2 - 1)^2 from 5 with lr 0.25: d <- d * (1 - 0.5) each => 2 * 0.5^3.
    np.testing.assert_allclose(state.params["a"]["w"], 3.0 + 2.0 * 0.5**3, rtol=1e-6)
    # b: one step on w^2 with lr 0.5 from 2 => 0 (and a's params did not feed b's update).
    np.testing.assert_allclose(state.params["b"]["w"], 0.0, atol=1e-6)
    assert int(state.params["counter"]) == 4
    assert set(metrics) == {"a/loss", "a/gap", "a/grad_norm", "b/loss", "b/grad_norm", "loss"}
    # The logged metrics are those of each player's last update.
    np.testing.assert_allclose(metrics["a/gap"], 2.0 * 0.5**2, rtol=1e-6)
    np.testing.assert_allclose(metrics["loss"], metrics["a/loss"] + metrics["b/loss"], rtol=1e-6)
    assert int(state.step) == 1


def test_ema_follows_the_warmup_formula():
    obj = _objective(updates_a=1)
    txs = {"a": optax.sgd(0.25), "b": optax.sgd(0.5)}
    state = step_lib.init_state(obj, txs, 0, {"x": jnp.zeros((1, 2))})
    step = jax.jit(step_lib.make_train_step(obj, txs, "points", ema_decay=0.99))
    batch = {"x": jnp.zeros((2, 2))}
    ema = np.asarray(state.ema_params["b"]["w"])
    for s in range(3):
        state, _ = step(state, batch)
        d = min(0.99, (1 + s) / (10 + s))
        ema = d * ema + (1 - d) * np.asarray(state.params["b"]["w"])
        np.testing.assert_allclose(state.ema_params["b"]["w"], ema, rtol=1e-6)
        # non-gradient state is copied, not averaged (a VQ codebook, a counter)
        assert state.ema_params["counter"].dtype == jnp.int32
        assert int(state.ema_params["counter"]) == int(state.params["counter"]) == 2 * (s + 1)


def test_per_player_optimizer_overrides():
    from jaxgen.kernel.config import base_config
    from jaxgen.runner.optim import make_optimizer, player_config
    cfg = base_config().optim
    cfg.players = ml_collections.ConfigDict({"critic": {"learning_rate": 1e-4, "b1": 0.0,
                                                        "b2": 0.9}})
    c = player_config(cfg, "critic")
    g = player_config(cfg, "generator")
    assert (c["learning_rate"], c["b1"], c["b2"]) == (1e-4, 0.0, 0.9)
    assert (g["learning_rate"], g["b1"]) == (cfg.learning_rate, cfg.b1)
    tx = make_optimizer(cfg, "critic", total_steps=10)
    p = {"w": jnp.ones(2)}
    upd, _ = tx.update({"w": jnp.ones(2)}, tx.init(p), p)
    assert np.all(np.isfinite(upd["w"]))


def test_lr_schedule_warmup_then_cosine():
    from jaxgen.kernel.config import base_config
    from jaxgen.runner.optim import learning_rate_schedule, player_config
    cfg = base_config().optim
    cfg.learning_rate, cfg.warmup_steps = 1.0, 10
    sched = learning_rate_schedule(player_config(cfg, "model"), total_steps=110)
    np.testing.assert_allclose([sched(0), sched(5), sched(10), sched(60), sched(110)],
                               [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)
