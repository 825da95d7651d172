"""`jaxgen check`: the objective contract run on any config, a one-file plugin's included.

    jaxgen check my_loss.py                       # a file with its objective and get_config()
    jaxgen check my_loss.py:make --config flow_matching/toy2d [--config.key=value ...]

Each check prints one line, `ok` or `FAIL` with the reason, and the command exits 1 when
any failed. Everything runs through the trainer and the checkpoint path a real run uses,
on the config's data, in a temporary folder, with 2 steps of a batch of at most 16:

  build            the config resolves and the objective builds (its players, its params)
  train            2 train steps: every logged metric finite, every player's params moved
  save / resume    1 step, saved, resumed to 2: the params equal the 2 uninterrupted steps'
                   bit for bit (the same seed and batches)
  sample           `Objective.sample`: finite samples of the data's shape and dtype
  likelihood NAME  each likelihood: a finite log p per example (ODE ones with 2 steps)
  held-out stats   `held_out_stats`: per-example arrays, reduced on the host
  round trip       `round_trip_of(objective)`: x -> z -> x keeps the data's shape, finite

The optional parts (sample, likelihoods, held-out stats, round trip) are checked where the
objective has them and reported as "none" where it has not.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

CHECK_STEPS = 2
MAX_BATCH = 16


def _finite(tree) -> bool:
    import jax
    return all(np.all(np.isfinite(np.asarray(v, np.float64)))
               for v in jax.tree.leaves(tree) if np.issubdtype(np.asarray(v).dtype, np.number))


def _quiet(fn: Callable, *args, **kwargs):
    """fn(...) with its stdout captured (the trainer's summary tables)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        return fn(*args, **kwargs)


def check_config(cfg, say=print) -> bool:
    """Run the checks (module docstring) on a resolved config; True when all pass."""
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import transforms
    from jaxgen.kernel.contract import round_trip_of
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    from jaxgen.runner.loop import train_and_evaluate

    results = []

    def run(name: str, fn: Callable):
        t0 = time.perf_counter()
        try:
            detail = fn()
        except Exception as e:  # noqa: BLE001 - a check reports what failed and goes on
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            say(f"FAIL  {name}: {type(e).__name__}: {first}")
            results.append(False)
            return None
        say(f"ok    {name}" + (f": {detail}" if detail else "")
            + f" ({time.perf_counter() - t0:.1f} s)")
        results.append(True)
        return True

    batch = min(int(cfg.train.batch_size), MAX_BATCH)
    base = [f"train.batch_size={batch}", "train.log_every=1", "train.sample_every=0",
            "train.pictures=false", "train.progress=false", "train.checkpoint_every=1"]
    cfgs = {n: config_lib.resolve(cfg, [*base, f"train.steps={n}"]) for n in (1, CHECK_STEPS)}
    state: dict = {}

    def build():
        data = get_dataset(cfgs[CHECK_STEPS].data, "train")
        state["data"] = data
        exp = Experiment(cfgs[CHECK_STEPS], DatasetInfo.of(data, stats=True))
        state["exp"] = exp
        players = ", ".join(p.name for p in exp.objective.players)
        shapes = jax.eval_shape(exp._init_fn, exp.example_batch()).params
        n = {p: sum(math.prod(x.shape) for x in jax.tree.leaves(shapes[p]))
             for p in shapes if p in {pl.name for pl in exp.objective.players}}
        return (f"objective {exp.objective.name}, players {players}, params "
                + ", ".join(f"{k} {v:,}" for k, v in n.items()))

    if not run("build", build):
        say("(the other checks need the objective)")
        return False
    exp = state["exp"]
    tmp = Path(tempfile.mkdtemp(prefix="jaxgen_check_"))

    def train():
        _quiet(train_and_evaluate, cfgs[CHECK_STEPS], tmp / "straight")
        import json
        rows = [json.loads(r) for r in (tmp / "straight" / "metrics.jsonl").read_text()
                .splitlines() if r.strip()]
        bad = sorted({k for r in rows for k, v in r.items()
                      if isinstance(v, float) and not math.isfinite(v)})
        if bad:
            raise ValueError(f"non-finite metrics: {', '.join(bad)}")
        start = exp.init_state()
        end, _ = exp.restore(tmp / "straight")
        still = [p.name for p in exp.objective.players
                 if all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(
                     jax.tree.leaves(start.params[p.name]), jax.tree.leaves(end.params[p.name])))]
        if still:
            raise ValueError(f"the params of {', '.join(still)} did not move in "
                             f"{CHECK_STEPS} steps (a loss that ignores them?)")
        state["params"] = end.ema_params
        last = {k: v for k, v in rows[-1].items() if k in ("loss",) or k.endswith("loss")}
        return ", ".join(f"{k} {v:.4g}" for k, v in last.items()) or f"{len(rows)} logged steps"

    if not run("train", train):
        return False

    def resume():
        _quiet(train_and_evaluate, cfgs[1], tmp / "resumed")
        _quiet(train_and_evaluate, cfgs[CHECK_STEPS], tmp / "resumed")
        a, _ = exp.restore(tmp / "straight")
        b, _ = exp.restore(tmp / "resumed")
        diff = [jax.tree_util.keystr(k) for (k, x), y in zip(
            jax.tree_util.tree_leaves_with_path(a.params), jax.tree.leaves(b.params))
            if not np.array_equal(np.asarray(x), np.asarray(y))]
        if diff:
            raise ValueError(f"resumed params differ from the uninterrupted run's at "
                             f"{diff[0]} (and {len(diff) - 1} more)")
        return "bit for bit"

    run("save / resume", resume)
    params, obj, key = state["params"], exp.objective, jax.random.key(0)
    shape = tuple(exp.info.event_shape)

    def sample():
        if obj.sample is None:
            return "none (Objective.sample is None)"
        x = np.asarray(exp.sample(params, key, 4))
        if x.shape != (4, *shape):
            raise ValueError(f"samples of shape {x.shape[1:]}, the data's is {shape}")
        if not _finite(x):
            raise ValueError("non-finite samples")
        return f"4 x {shape} {x.dtype}"

    run("sample", sample)
    raw = state["data"].source.get(np.arange(min(4, len(state["data"].source))))
    for name in obj.likelihoods:
        def lik(name=name):
            logp = np.asarray(exp.log_likelihood(params, raw["x"], key, steps=2, name=name))
            if logp.shape != (len(raw["x"]),) or not _finite(logp):
                raise ValueError(f"log p of shape {logp.shape}: {logp}")
            return f"mean log p {logp.mean():.4g} nats ({obj.likelihoods[name].kind})"
        run(f"likelihood {name}", lik)
    if not obj.likelihoods:
        say("ok    likelihood: none (the objective offers no likelihood)")

    def held_out():
        if obj.held_out_stats is None:
            return "none"
        got = exp.held_out_stats_batch(params, raw["x"], key, raw.get("label"))
        reduced = obj.held_out_stats.reduce({k: np.asarray(v) for k, v in got.items()})
        return ", ".join(sorted(reduced)[:6])

    run("held-out stats", held_out)

    def round_trip():
        rt = round_trip_of(obj)
        if rt is None:
            return "none (no x -> z)"
        x = transforms.preprocess(exp.info.kind, raw["x"], None, dequantize=False)
        back = jax.jit(rt.decode)(params, jax.jit(rt.encode)(params, x, key))
        if back.shape != x.shape or not _finite(back):
            raise ValueError(f"x -> z -> x gave shape {back.shape}, finite {_finite(back)}")
        return f"{rt.how}; RMSE {float(np.sqrt(np.mean((np.asarray(back) - x) ** 2))):.3g}"

    run("round trip", round_trip)
    ok = all(results)
    say(f"{sum(results)} of {len(results)} checks passed" + ("" if ok else "; see FAIL above"))
    return ok
