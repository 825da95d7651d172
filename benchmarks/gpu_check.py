"""One table of what an accelerator does with jaxgen's architectures.

Per architecture (the config named beside it), in one process:

* fp32 and bf16 (`train.compute_dtype`) ms/step of the real jitted train step
  (`jaxgen.runner.bench.bench`: one batch of the config's data, repeated, blocking on
  every call) and the compile seconds of the fp32 step;
* the step's achieved FLOP rate (XLA's cost analysis / time) as a fraction of the
  matmul peak measured in the same run in the same dtype (an n x n x n product);
* the trainer's own ms/step (`jaxgen.runner.bench.trainer_ms_per_step`: `jaxgen train`
  for `--train-steps` steps) and its ratio to the pure step (goal <= 1.05);
* the config's sampler: samples/s for `--sample-num` samples in one call.

    bash benchmarks/gpu_check.sh                     # all, under 8 minutes on one GPU
    python benchmarks/gpu_check.py --only mlp,unet --json gpu.json

It runs on any backend and says which; on a CPU it is slow (use --only and fewer steps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ARCHS = {  # name -> config
    "mlp": "flow_matching/toy2d",
    "unet": "diffusion/ddpm_fashion_mnist",
    "dcgan": "gan/dcgan_fashion_mnist",
    "pixelcnn": "autoregressive/pixelcnn_fashion_mnist",
    "transformer": "autoregressive/transformer_fashion_mnist",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(ARCHS), help="comma list of " + ", ".join(ARCHS))
    p.add_argument("--steps", type=int, default=20, help="timed steps per dtype")
    p.add_argument("--train-steps", type=int, default=300, help="trainer steps (0: skip)")
    p.add_argument("--sample-num", type=int, default=64, help="samples in one call (0: skip)")
    p.add_argument("--peak-n", type=int, default=4096, help="n of the peak's matmul")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    unknown = sorted(set(args.only.split(",")) - set(ARCHS))
    if unknown:
        p.error(f"unknown architecture(s) {unknown}; choose from {', '.join(ARCHS)}")

    import jax
    import jax.numpy as jnp

    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import (
        bench,
        matmul_peak,
        sample_throughput,
        setup,
        trainer_ms_per_step,
    )
    from jaxgen.runner.logging import format_table

    t_all = time.perf_counter()
    dev = jax.devices()[0]
    print(f"backend {jax.default_backend()}, {jax.device_count()} x {dev.device_kind}",
          flush=True)
    peak = {dt: matmul_peak(args.peak_n, dtype=getattr(jnp, dt))
            for dt in ("float32", "bfloat16")}
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()),
          flush=True)
    rows, out = [], {"device": dev.device_kind, "backend": jax.default_backend(),
                     "matmul_peak_gflop_s": peak, "archs": {}}
    for name in args.only.split(","):
        config = ARCHS[name]
        r = {"config": config}
        for dt in ("float32", "bfloat16"):
            b = bench(config_lib.load_config(config, [f"train.compute_dtype={dt}"]),
                      steps=args.steps, warmup=3, peak=False)
            r[dt] = {"ms": b["ms_per_step_median"], "compile_s": b["compile_s"],
                     "peak_fraction": (round(b["achieved_gflop_s"] / peak[dt], 4)
                                       if "achieved_gflop_s" in b else None)}
            r["params"] = b["params"]
        if args.train_steps:
            r["trainer_ms"] = trainer_ms_per_step(config_lib.load_config(config),
                                                  args.train_steps)
            r["trainer_ratio"] = round(r["trainer_ms"] / r["float32"]["ms"], 3)
        if args.sample_num:
            exp, state, _ = setup(config_lib.load_config(config))
            r["sampler"] = sample_throughput(exp, state.ema_params, args.sample_num)
        out["archs"][name] = r
        f32, b16 = r["float32"], r["bfloat16"]
        rows.append((name, f"{r['params']:,}", f32["ms"], b16["ms"], f32["compile_s"],
                     f32["peak_fraction"], b16["peak_fraction"], r.get("trainer_ms", "-"),
                     r.get("trainer_ratio", "-"),
                     r["sampler"]["samples_per_s"] if "sampler" in r else "-"))
        print(f"{name}: done ({time.perf_counter() - t_all:.0f} s so far)", flush=True)
    print(format_table(rows, header=(
        "arch", "params", "fp32 ms/step", "bf16 ms/step", "compile s (fp32)",
        "fp32 peak frac", "bf16 peak frac", "trainer ms/step", "trainer/step",
        f"samples/s ({args.sample_num})"), title=(
        f"\njaxgen GPU check: {jax.device_count()} x {dev.device_kind} "
        f"({jax.default_backend()}), matmul peak fp32 {peak['float32']:.0f} / bf16 "
        f"{peak['bfloat16']:.0f} GFLOP/s, {time.perf_counter() - t_all:.0f} s")))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
