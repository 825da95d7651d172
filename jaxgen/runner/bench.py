"""`jaxgen bench`: compile time and median ms/step of a config's real train step.

The step, state, shardings and batch are exactly the trainer's (one batch of
the config's data, repeated). Timing blocks on the result of every call.

Beside the time: the step's FLOPs from XLA's cost analysis of the compiled
program, the GFLOP/s they imply, and that rate as a fraction of a matmul peak
measured in the same process (an n x n x n float32 product, the best a dense
kernel reaches here: a fair ceiling for what a step can achieve); the compiled
step's memory (arguments + outputs + temporaries - donated aliases, XLA's
static estimate) and, where the backend keeps it (GPU, TPU), the device's
peak bytes in use.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen.data import get_dataset
from jaxgen.data.pipeline import BatchPipeline
from jaxgen.runner import distributed
from jaxgen.runner.experiment import DatasetInfo, Experiment
from jaxgen.runner.logging import format_table
from jaxgen.runner.state import param_count
from jaxgen.runner.throughput import matmul_peak, step_flops


def _memory(compiled) -> dict:
    out = {}
    try:
        m = compiled.memory_analysis()
        total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                 - m.alias_size_in_bytes)
        out["step_memory_mb"] = round(total / 2 ** 20, 2)
        out["step_temp_mb"] = round(m.temp_size_in_bytes / 2 ** 20, 2)
    except Exception:  # not every backend reports it
        pass
    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_mb"] = round(stats["peak_bytes_in_use"] / 2 ** 20, 2)
    return out


def sample_throughput(exp, params, num: int, reps: int = 3) -> dict:
    """The objective's sampler for `num` samples in one call: compile seconds (ahead of
    time, once) and samples/s (median of up to `reps` calls; one if a call takes > 20 s)."""
    compile_s = exp.compile_sample(params, num, chunk=num)
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        exp.sample(params, jax.random.key(r), num, chunk=num)
        times.append(time.perf_counter() - t0)
        if times[-1] > 20:
            break
    return {"sample_batch": num, "sample_compile_s": round(compile_s, 2),
            "samples_per_s": round(num / float(np.median(times)), 2), "sample_calls": len(times)}


def trainer_ms_per_step(config, steps: int) -> float:
    """The trainer's own figure: `train_and_evaluate` for `steps` steps in a fresh temporary
    workdir (batches read and placed, metrics fetched every log_every steps, the config's
    own rounded down to a multiple of steps_per_call; a checkpoint at the end only, no
    pictures); its summary's median ms/step after the two compiling calls."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.loop import train_and_evaluate

    k = int(config.train.steps_per_call)
    steps -= steps % k
    log = max(k, config.train.log_every - config.train.log_every % k)
    cfg = config_lib.apply_overrides(copy.deepcopy(config), [
        f"train.steps={steps}", f"train.checkpoint_every={steps}", "train.sample_every=0",
        "train.pictures=false", "train.progress=false", f"train.log_every={log}"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_and_evaluate(cfg, Path(tmp) / "run")
    return float(summary["ms/step (median, after 2 calls)"])


def setup(config):
    """(Experiment, initial state, first global batch) exactly as the trainer makes them."""
    dataset = get_dataset(config.data, "train")
    exp = Experiment(config, DatasetInfo.of(dataset, stats=True))
    t = config.train
    pipe = BatchPipeline(dataset.source, t.batch_size, config.seed,
                         process_index=jax.process_index(), process_count=jax.process_count(),
                         steps_per_call=t.steps_per_call)
    local = pipe.local_batch(0)
    batch = distributed.to_global(local, exp.mesh, t.batch_size, t.steps_per_call)
    first = local if t.steps_per_call == 1 else {k: v[0] for k, v in local.items()}
    return exp, exp.init_state(distributed.to_global(first, exp.mesh, t.batch_size)), batch


def step_memory(config, info: DatasetInfo) -> dict:
    """Per-device memory of the config's train step on this mesh, from shapes alone: the
    state's bytes per device (its shardings) and XLA's `memory_analysis` of the step compiled
    from the abstract state and batch (arguments, outputs, temporaries; an estimate made by
    the compiler, nothing is allocated). Works for a model far larger than this machine."""
    from jaxgen.runner import sharding

    exp = Experiment(config, info)
    state = exp.abstract_state()
    batch = exp.abstract_batch()
    t0 = time.perf_counter()
    compiled = exp.train_step().lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    nparams = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
    out = {"params": nparams, "devices": exp.mesh.size,
           "mesh": sharding.describe(exp.mesh),
           "state_gib_per_device": sharding.abstract_bytes_per_device(state) / 2 ** 30,
           "compile_s": round(compile_s, 1)}
    m = compiled.memory_analysis()
    if m is not None:
        out.update({"argument_gib": m.argument_size_in_bytes / 2 ** 30,
                    "output_gib": m.output_size_in_bytes / 2 ** 30,
                    "temp_gib": m.temp_size_in_bytes / 2 ** 30,
                    "alias_gib": m.alias_size_in_bytes / 2 ** 30})
        out["total_gib"] = (out["argument_gib"] + out["output_gib"] + out["temp_gib"]
                            - out["alias_gib"])
    return out


def bench(config, steps: int = 20, warmup: int = 3, out: str | Path | None = None,
          peak: bool = True, sample_num: int = 0) -> dict:
    exp, state, batch = setup(config)
    info, t = exp.info, config.train
    step_fn = exp.train_step()

    t0 = time.perf_counter()
    lowered = step_fn.lower(state, batch)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    flops = step_flops(exp, config, lowered, compiled)

    for _ in range(warmup):
        state, m = compiled(state, batch)
    jax.block_until_ready(m)
    times = []
    for _ in range(steps):
        t1 = time.perf_counter()
        state, m = compiled(state, batch)
        jax.block_until_ready((state, m))
        times.append(time.perf_counter() - t1)
    k = t.steps_per_call
    ms = 1000 * float(np.median(times)) / k
    result = {
        "objective": exp.objective.name,
        "model": config.model.name,
        "params": param_count(state.params),
        "data": info.name,
        "global_batch": t.batch_size,
        "devices": jax.device_count(),
        "backend": jax.default_backend(),
        "compile_s": round(compile_s, 2),
        "ms_per_step_median": round(ms, 2),
        "ms_per_step_p10_p90": [round(1000 * float(np.percentile(times, q)) / k, 2)
                                for q in (10, 90)],
        "examples_per_s": round(t.batch_size / (ms / 1000), 1),
        "timed_steps": steps * k,
    }
    if flops:
        result["gflop_per_step"] = round(flops / 1e9, 3)
        result["achieved_gflop_s"] = round(flops / 1e9 / (ms / 1000), 2)
    if peak:
        result["matmul_peak_gflop_s"] = round(matmul_peak(), 1)
        if flops:
            result["fraction_of_peak"] = round(
                result["achieved_gflop_s"] / result["matmul_peak_gflop_s"], 4)
    result.update(_memory(compiled))
    if sample_num:
        result.update(sample_throughput(exp, state.ema_params, sample_num))
    if distributed.is_main():
        print(format_table(list(result.items()), title="jaxgen bench"), flush=True)
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(result, indent=2))
    return result
