"""What a launcher watches: step time, examples/s, FLOPs per step, MFU.

FLOPs are XLA's count of the compiled train step (`cost_analysis`), per device: the
arithmetic the program does, rematerialised forward passes included; a step with loops
(grad_accum, steps_per_call, a GAN critic's several updates) is counted on its twin with
the loops written out (`step_flops`). The train
loop and `jaxgen bench` report the same count.

MFU = FLOPs per device per step / step time / the device's peak. The peaks are the vendors'
dense figures for the step's arithmetic: bfloat16 with `train.compute_dtype=bfloat16`, else
what a float32 matmul runs as at `train.matmul_precision` (TF32 on NVIDIA GPUs and one
bfloat16 pass on a TPU by default; full float32 at "highest"). On a CPU the peak is measured:
a float32 matmul timed in the same process (`matmul_peak`). `train.peak_tflops` overrides
the table for a device it lacks.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

# Dense TFLOP/s per chip: (bfloat16, float32 as TF32 / "default", float32 at "highest").
# NVIDIA H100 SXM and A100 SXM datasheets; Google Cloud TPU v5e and v5p system
# architecture pages (bf16 peak; float32 "highest" on a TPU is about 6 bf16 passes).
PEAK_TFLOPS = {
    "H100": (989.0, 494.5, 67.0),
    "A100": (312.0, 156.0, 19.5),
    "TPU v5 lite": (197.0, 197.0, 197.0 / 6),  # v5e reports its kind as "TPU v5 lite"
    "TPU v5e": (197.0, 197.0, 197.0 / 6),
    "TPU v5p": (459.0, 459.0, 459.0 / 6),
    "TPU v5": (459.0, 459.0, 459.0 / 6),
}


def matmul_peak(n: int = 2048, reps: int = 5, dtype=jnp.float32) -> float:
    """GFLOP/s of a jitted n x n @ n x n product (median of `reps` after a warm-up)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(jnp.dot).lower(a, b).compile()
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


_MEASURED: dict = {}


def device_peak(train) -> tuple[float | None, str]:
    """(peak TFLOP/s of one device for this config, where the figure comes from)."""
    if float(train.peak_tflops) > 0:
        return float(train.peak_tflops), "train.peak_tflops"
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", "") or ""
    if device.platform == "cpu":
        if "cpu" not in _MEASURED:
            _MEASURED["cpu"] = matmul_peak(1024, reps=3) / 1e3
        return _MEASURED["cpu"], "measured: a float32 1024^3 matmul on this CPU"
    column = 0 if train.compute_dtype == "bfloat16" else (
        2 if train.matmul_precision == "highest" else 1)
    for name, peaks in PEAK_TFLOPS.items():
        if name.lower() in kind.lower():
            return peaks[column], f"jaxgen's table: {name}"
    return None, f"no peak known for {kind!r}: set train.peak_tflops"


def cost_flops(compiled) -> float | None:
    """XLA's FLOP count of a compiled program (per device), or None where not reported."""
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops", 0.0)) or None
    except Exception:  # cost analysis is best-effort on some backends
        return None


def step_flops(exp, config, lowered, compiled) -> float | None:
    """FLOPs per device of one optimizer step of the config's train call (`lowered`, and
    `compiled` from it; a call of train.steps_per_call = k steps is divided by k).

    XLA counts a loop's body once, whatever its trip count, so a step with loops
    (train.grad_accum = g micro-batches, train.steps_per_call = k steps where not unrolled,
    a player updated n times per step such as a GAN's critic) would be counted too low. For
    those, the compiled count is scaled by the ratio of two counts of the programs before
    compilation (cheap: no second compile): the same step with every loop written out
    (`Experiment.train_step(unroll=True)`: the same arithmetic) over the step as lowered."""
    t = config.train
    flops = cost_flops(compiled)
    loops = (int(t.grad_accum) > 1 or int(t.steps_per_call) > 1
             or any(p.updates_per_step > 1 for p in exp.objective.players))
    if flops is None or not loops:
        return flops
    whole = cost_flops(exp.train_step(unroll=True).lower(exp.abstract_state(),
                                                         exp.abstract_batch()))
    looped = cost_flops(lowered)
    return flops * whole / looped / int(t.steps_per_call) if whole and looped else None


class Window:
    """The figures of the steps since the last log line: wall time per step (the host waits
    for the device every call but two, so this is the device's pace, data waits included;
    checkpoint and picture pauses are not counted), examples/s and MFU."""

    def __init__(self, batch_size: int, flops_per_device: float | None, devices: int,
                 peak_tflops: float | None):
        self.batch_size = batch_size
        self.flops = flops_per_device
        self.devices = devices
        self.peak = peak_tflops
        self.seconds, self.steps = 0.0, 0

    def add(self, seconds: float, steps: int) -> None:
        self.seconds += seconds
        self.steps += steps

    def at(self, step_s: float) -> dict:
        """The figures of a step that took `step_s` seconds."""
        out = {"perf/step_time_ms": 1e3 * step_s,
               "perf/examples_per_s": self.batch_size / step_s}
        if self.flops:
            out["perf/tflop_per_step"] = self.flops * self.devices / 1e12
            if self.peak:
                out["perf/mfu"] = self.flops / step_s / (self.peak * 1e12)
        return out

    def figures(self) -> dict:
        """The window's figures (and a new window), or {} if it holds no timed step."""
        if not self.steps:
            return {}
        out = self.at(self.seconds / self.steps)
        self.seconds, self.steps = 0.0, 0
        return out
