"""The expected time of each paper config to its paper's step count: an ESTIMATE from XLA's
FLOP count of the train step and a device's peak, for docs/launch.md.

    python benchmarks/paper_estimates.py [--mfu 0.4] [--only diffusion/ddpm_cifar10] [--json F]

For every shipped config with a PAPER record (`jaxgen.runner.papers`), at its full size and
global batch, in bfloat16 (train.compute_dtype=bfloat16, as the launch commands run it):

  TFLOP/step   XLA's count of the lowered train step with its loops written out (no
               compile; one optimizer step of the whole global batch;
               `jaxgen.runner.throughput.cost_flops`). The data are
               tiny files made here in the dataset's own format: only their shape matters.
  hours        steps x FLOP/step / (devices x peak x MFU), for one H100, 8 H100s and a
               TPU v5p-32 slice (16 chips), the peaks of `throughput.PEAK_TFLOPS` (bf16
               dense). MFU is an assumption (--mfu), not a measurement: no GPU has run these
               configs here; a real run's MFU is in its logs (perf/mfu). The default, 0.2,
               is what Ho et al. (2020, Appendix B) imply for DDPM on CIFAR-10: 21 steps/s
               at batch 128 on a TPU v3-8 (4 chips x 123 bf16 TFLOP/s), times this
               script's 4.49 TFLOP/step, is 94 TFLOP/s, 0.19 of that peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MACHINES = (("1x H100", "H100", 1), ("8x H100", "H100", 8), ("TPU v5p-32", "TPU v5p", 16))


def _tiny_sources(root: Path) -> dict:
    """data.source of a tiny file per dataset the paper configs use."""
    sys.path.insert(0, str(ROOT / "tests"))
    import tiny_data
    rng = np.random.default_rng(0)
    cifar, _, _ = tiny_data.write_cifar10(root / "cifar10", rng)
    from test_imagenet import official_set
    out = {"cifar10": str(cifar)}
    for size in (32, 64):
        folder = root / f"imagenet{size}"
        official_set(folder, size, rng)
        out[f"imagenet{size}"] = str(folder)
    return out


def estimate(pc, sources: dict, mfu: float) -> dict:
    from jaxgen.data import get_dataset
    from jaxgen.runner import throughput
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    from jaxgen.runner.state import param_count
    cfg = pc.load()
    over = ["train.compute_dtype=bfloat16"]
    if cfg.data.name in sources:
        over.append(f"data.source={sources[cfg.data.name]}")
    cfg = pc.load(over)
    exp = Experiment(cfg, DatasetInfo.of(get_dataset(cfg.data, "train")))
    # every loop written out (a GAN's critic updates): XLA counts a loop's body once
    lowered = exp.train_step(unroll=True).lower(exp.abstract_state(), exp.abstract_batch())
    flops = throughput.cost_flops(lowered) / int(cfg.train.steps_per_call)
    steps = int(cfg.train.steps)
    row = {"config": pc.name, "params": param_count(exp._abstract[0]),
           "global_batch": int(cfg.train.batch_size), "steps": steps,
           "tflop_per_step": flops / 1e12 if flops else None}
    for label, chip, n in MACHINES:
        peak = throughput.PEAK_TFLOPS[chip][0] * 1e12
        row[label] = steps * flops / (n * peak * mfu) / 3600 if flops else None
    return row


def _hours(h) -> str:
    if h is None:
        return "n/a"
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mfu", type=float, default=0.2, help="assumed model FLOPs utilisation")
    p.add_argument("--only", action="append", default=[], help="a paper config's name")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    from jaxgen.runner.papers import paper_configs
    with tempfile.TemporaryDirectory() as tmp:
        sources = _tiny_sources(Path(tmp))
        rows = [estimate(pc, sources, args.mfu) for pc in paper_configs()
                if not args.only or pc.name in args.only]
    head = ["config", "params", "global batch", "steps", "TFLOP/step (XLA)",
            *[m[0] for m in MACHINES]]
    print(f"ESTIMATES at an assumed MFU of {args.mfu:g} (bf16 dense peaks); not measured")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        cells = [r["config"], f"{r['params'] / 1e6:.1f}M", r["global_batch"], f"{r['steps']:,}",
                 f"{r['tflop_per_step']:.3f}" if r["tflop_per_step"] else "n/a",
                 *[_hours(r[m[0]]) for m in MACHINES]]
        print("| " + " | ".join(map(str, cells)) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
