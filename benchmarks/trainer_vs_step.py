"""The trainer's overhead: ms/step through `jaxgen train` beside `jaxgen bench`'s pure step.

For each config, in one process: `jaxgen.runner.bench.bench` (the jitted step on one batch,
blocking on every call: the device time of a step), then `train_and_evaluate` for N steps
in a fresh workdir (batches read and placed, metrics fetched every log_every steps, logging,
checkpoints at the end only; `jaxgen.runner.bench.trainer_ms_per_step`) with steps_per_call
1 and K. The trainer's figure is its summary's median ms/step (after the two compiling
calls).

    python benchmarks/trainer_vs_step.py                        # toy MLP and the U-Net
    python benchmarks/trainer_vs_step.py --only mlp --steps 2000 --k 10

Goal: trainer / step <= 1.05, and steps_per_call 1 vs K within 10 %.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CONFIGS = {
    "mlp": ("flow_matching/toy2d", []),
    "unet": ("diffusion/ddpm_fashion_mnist", []),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(CONFIGS))
    p.add_argument("--steps", type=int, default=0,
                   help="trainer steps (default: 1000 for the MLP, 40 for the U-Net)")
    p.add_argument("--k", type=int, default=10, help="steps_per_call of the second run")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import bench, trainer_ms_per_step
    from jaxgen.runner.logging import format_table

    rows, out = [], {}
    for name in args.only.split(","):
        config, extra = CONFIGS[name]
        steps = args.steps or (1000 if name == "mlp" else 40)
        steps -= steps % args.k
        step_ms = bench(config_lib.load_config(config, extra),
                        steps=20 if name == "mlp" else 5, warmup=3, peak=False,
                        )["ms_per_step_median"]
        trainer = {k: trainer_ms_per_step(
            config_lib.load_config(config, [*extra, f"train.steps_per_call={k}"]), steps)
            for k in (1, args.k)}
        out[name] = {"step_ms": step_ms, "trainer_ms": trainer, "steps": steps}
        rows.append((name, steps, step_ms, trainer[1], round(trainer[1] / step_ms, 3),
                     trainer[args.k], round(trainer[args.k] / trainer[1], 3)))
    print(format_table(rows, title="\ntrainer vs step (ms/step, median)", header=(
        "config", "steps", "bench step", "train k=1", "train/step", f"train k={args.k}",
        f"k={args.k} / k=1")))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
