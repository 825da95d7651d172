"""Where a train step's time goes, jaxgen beside its PyTorch twin, by kind of operation.

    python benchmarks/profile_step.py [--arch unet|pixelcnn|dcgan|mlp] [--steps 5] [--top 12]

jaxgen: the trainer's compiled step (`jaxgen.runner.bench.setup`), warmed up, then `--steps`
steps under `jax.profiler` (a Perfetto trace); every XLA:CPU thunk's duration is summed by
its HLO name and sorted into a kind. Eigen's convolutions run as tasks the profiler does
not trace (a convolution thunk's own span is its launch), so the profiled steps' wall time
less every traced op is its own row, "untraced".
PyTorch: the twin's `step_fn()` (`torch_models.BUILDERS`) under `torch.profiler`, each
aten op's self CPU time, sorted the same way.

Kinds: convolution (forward, input and kernel gradients); layout copies (transposes and
copies XLA inserts around its convolutions; aten copies); reductions (normalisation
statistics, bias gradients, norms; XLA's YNNPACK fusions, which also hold single dots);
matmul; elementwise (the rest of XLA's fusions;
pointwise aten ops); optimizer (aten's _foreach_* / Adam ops; in jaxgen they are fused
into the elementwise kind). Per step, in ms; the kinds of each column add up to its
profiled total (jaxgen's: the profiled steps' wall time), which can differ from an
unprofiled step.
Needs PyTorch for its column (pip install torch); jaxgen never imports it.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import ARCHS, jaxgen_batch, twin_kwargs  # noqa: E402

KINDS = ("convolution", "untraced (Eigen convolution tasks)", "layout copies", "reductions",
         "matmul", "elementwise", "optimizer")


def xla_kind(name: str) -> str | None:
    """The kind of an XLA:CPU thunk by its HLO name (None: not an op, e.g. the executor)."""
    if name.startswith("$") or "Thunk" in name or "Execute" in name or "Pjit" in name:
        return None
    if "conv" in name:
        return "convolution"
    if name.startswith(("transpose", "copy")) or "transpose" in name.split("_fusion")[0]:
        return "layout copies"
    if "reduce" in name or name.startswith("ynn_fusion"):  # YNNPACK: reductions and dots
        return "reductions"
    if name.startswith(("dot", "custom-call")):
        return "matmul"
    return "elementwise"


def torch_kind(name: str) -> str:
    n = name.lower()
    if "conv" in n:
        return "convolution"
    if any(k in n for k in ("copy", "contiguous", "clone", "permute", "transpose")):
        return "layout copies"
    if "foreach" in n or "adam" in n or "lerp" in n:
        return "optimizer"
    if any(k in n for k in ("norm", "sum", "mean", "var", "std", "max", "min", "reduce")):
        return "reductions"
    if any(k in n for k in ("mm", "matmul", "linear", "addmm", "bmm")):
        return "matmul"
    return "elementwise"


def profile_jaxgen(config, steps: int) -> tuple[dict, dict, float]:
    import jax

    from jaxgen.runner.bench import setup
    exp, state, batch = setup(config)
    step = exp.train_step().lower(state, batch).compile()
    for _ in range(3):
        state, m = step(state, batch)
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch)
        jax.block_until_ready(m)
    wall = (time.perf_counter() - t0) / steps * 1000
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp, create_perfetto_trace=True)
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = step(state, batch)
            jax.block_until_ready(m)
        profiled = (time.perf_counter() - t0) / steps * 1000
        jax.profiler.stop_trace()
        trace = sorted(glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True))[-1]
        events = json.load(gzip.open(trace))["traceEvents"]
    by_kind, by_op = collections.Counter(), collections.Counter()
    for e in events:
        kind = xla_kind(e.get("name", "")) if e.get("ph") == "X" else None
        if kind:
            by_kind[kind] += e["dur"] / 1000 / steps
            by_op[re.sub(r"\.\d+$", "", e["name"])] += e["dur"] / 1000 / steps
    # Eigen's convolutions run as tasks the profiler does not trace (a convolution thunk's
    # own span is its launch): the profiled steps' wall time less the traced ops.
    by_kind["untraced (Eigen convolution tasks)"] = max(profiled - sum(by_kind.values()), 0.0)
    return by_kind, by_op, wall


def profile_torch(arch: str, config, steps: int, tm, torch) -> tuple[dict, dict, float]:
    twin = tm.BUILDERS[arch](jaxgen_batch(config), **twin_kwargs(tm, arch, config))
    for _ in range(3):
        twin.step_fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        twin.step_fn()
    wall = (time.perf_counter() - t0) / steps * 1000
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            twin.step_fn()
    by_kind, by_op = collections.Counter(), collections.Counter()
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1000 / steps
        by_kind[torch_kind(ev.key)] += ms
        by_op[ev.key] += ms
    return by_kind, by_op, wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="unet", choices=sorted(ARCHS))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=12, help="also list the N costliest ops of each")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from jaxgen.kernel.config import load_config
    from jaxgen.runner.logging import format_table
    config = load_config(HERE.parent / ARCHS[args.arch])
    jx_kind, jx_ops, jx_wall = profile_jaxgen(config, args.steps)
    try:
        import torch
        import torch_models as tm
        torch.set_num_threads(args.threads)
        pt_kind, pt_ops, pt_wall = profile_torch(args.arch, config, args.steps, tm, torch)
    except ImportError:
        print("(PyTorch not installed: jaxgen's column only)", file=sys.stderr)
        pt_kind, pt_ops, pt_wall = collections.Counter(), collections.Counter(), float("nan")

    rows = [(k, f"{jx_kind[k]:.1f}", f"{pt_kind[k]:.1f}") for k in KINDS]
    rows += [("profiled total", f"{sum(jx_kind.values()):.1f}", f"{sum(pt_kind.values()):.1f}"),
             ("step, unprofiled (wall)", f"{jx_wall:.1f}", f"{pt_wall:.1f}")]
    print(format_table(rows, header=("kind", "jaxgen ms/step", "PyTorch ms/step"), title=(
        f"\n{ARCHS[args.arch]}: train step time by kind of operation "
        f"(mean of {args.steps} profiled steps)")))
    for name, ops in (("jaxgen (XLA:CPU thunks)", jx_ops), ("PyTorch (aten, self CPU)", pt_ops)):
        if ops:
            print(format_table([(op, f"{ms:.1f}") for op, ms in ops.most_common(args.top)],
                               header=("op", "ms/step"), title=f"\n{name}: top {args.top}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"jaxgen": jx_kind, "torch": pt_kind,
                                               "jaxgen_wall_ms": jx_wall,
                                               "torch_wall_ms": pt_wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
