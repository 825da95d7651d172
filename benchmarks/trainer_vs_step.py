"""The trainer's overhead: ms/step through `jaxgen train` beside `jaxgen bench`'s pure step.

For each config, in one process: `jaxgen.core.bench.bench` (the jitted step on one batch,
blocking on every call: the device time of a step), then `train_and_evaluate` for N steps
in a fresh workdir (batches read and placed, metrics fetched one call late, logging,
checkpoints at the start and end only) with steps_per_call 1 and K. The trainer's figure
is its summary's median ms/step (after the two compiling calls).

    python benchmarks/trainer_vs_step.py                        # toy MLP and the U-Net
    python benchmarks/trainer_vs_step.py --only mlp --steps 2000 --k 10

Goal (issue 19): trainer / step <= 1.05, and steps_per_call 1 vs K within 10 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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

    from jaxgen.core import config as config_lib
    from jaxgen.core.bench import bench
    from jaxgen.core.logging import format_table
    from jaxgen.core.loop import train_and_evaluate

    rows, out = [], {}
    for name in args.only.split(","):
        config, extra = CONFIGS[name]
        steps = args.steps or (1000 if name == "mlp" else 40)
        steps -= steps % args.k
        common = [*extra, f"train.steps={steps}", f"train.checkpoint_every={steps}",
                  "train.sample_every=0", "train.pictures=false", "train.progress=false",
                  f"train.log_every={args.k}"]
        step_ms = bench(config_lib.load_config(config, common),
                        steps=20 if name == "mlp" else 5, warmup=3, peak=False,
                        )["ms_per_step_median"]
        trainer = {}
        for k in (1, args.k):
            cfg = config_lib.load_config(config, [*common, f"train.steps_per_call={k}"])
            with tempfile.TemporaryDirectory() as tmp:
                summary = train_and_evaluate(cfg, Path(tmp) / "run")
            trainer[k] = summary["ms/step (median, after 2 calls)"]
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
