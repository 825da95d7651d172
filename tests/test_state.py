"""The public step-state and EMA-target helper (jaxgen.kernel.state) against its formulas.
Consistency training keeps its schedule and target with it (test_consistency, and its
golden trace in test_golden, which this refactoring left unchanged)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.kernel import state


def _tree(seed):
    r = np.random.default_rng(seed)
    return {"a": jnp.asarray(r.normal(size=(3, 2)), jnp.float32),
            "b": {"c": jnp.asarray(r.normal(size=(4,)), jnp.float32)}}


def test_initial_is_step_zero_and_a_copy_of_the_player():
    net = _tree(0)
    s = state.initial(net, target=True)
    assert float(s[state.STEP]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, s[state.TARGET], net)
    assert state.initial() == {state.STEP: 0.0}
    with pytest.raises(ValueError, match="copy"):
        state.initial(target=True)


@pytest.mark.parametrize("seed", range(4))
def test_advance_is_the_ema_formula_with_a_constant_or_scheduled_decay(seed):
    r = np.random.default_rng(seed)
    net, target = _tree(seed), _tree(seed + 100)
    k = float(r.integers(0, 1000))
    params = {"model": net, state.TARGET: target, state.STEP: jnp.asarray(k, jnp.float32)}
    mu = float(r.uniform(0.5, 0.999))
    seen = []

    def schedule(step):
        seen.append(float(step))
        return mu

    for decay in (mu, schedule):
        out = state.advance(params, decay=decay)
        assert float(out[state.STEP]) == k + 1
        for t, p, o in zip(*(jax.tree.leaves(v) for v in (target, net, out[state.TARGET]))):
            want = mu * np.asarray(t, np.float64) + (1 - mu) * np.asarray(p, np.float64)
            np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-6)
        assert out["model"] is net  # the player's params pass through untouched
    assert seen == [k]  # the schedule sees the step before the update
    out = state.advance(params)  # no decay: the target stays
    assert out[state.TARGET] is target and float(out[state.STEP]) == k + 1


def test_updater_is_an_update_state_and_jits():
    net = _tree(1)
    params = {"model": net, **state.initial(net, target=True)}
    params = {**params, "model": jax.tree.map(lambda v: v + 1.0, net)}
    upd = jax.jit(state.updater(decay=lambda k: 0.5 + 0.0 * k))
    out = upd(params, {"x": jnp.zeros((2, 2))}, jax.random.key(0))
    assert float(out[state.STEP]) == 1.0
    jax.tree.map(lambda o, p: np.testing.assert_allclose(o, p + 0.5, rtol=1e-6),
                 out[state.TARGET], net)
