"""Per-device memory of a large U-Net's train step, replicated vs sharded (FSDP).

    XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python benchmarks/sharded_memory.py [--sizes 0.3,1] [--per-device 32]

Compiles the DDPM Fashion-MNIST config's train step with the U-Net widened through config
alone (model.channels, model.num_res_blocks) from shapes only, on whatever devices there
are (8 simulated CPU devices above), once with the state replicated (train.mesh=data) and
once split over every device (train.mesh=fsdp, train.shard_state=true), and prints XLA's
`memory_analysis` per device against an H100's 80 GB and a TPU v5e's 16 GB. The figures
are the compiler's static estimates for this backend (temporaries on XLA:CPU are laid out
differently from a GPU's); nothing of the model's size is allocated. Data of the config's
shape stand in for Fashion-MNIST (the files are not read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

from jaxgen.kernel import config as config_lib  # noqa: E402
from jaxgen.kernel.contract import DatasetInfo  # noqa: E402
from jaxgen.runner.bench import step_memory  # noqa: E402
from jaxgen.runner.logging import format_table  # noqa: E402

CONFIG = ROOT / "configs" / "diffusion" / "ddpm_fashion_mnist.py"
# U-Net widths (model.channels, model.num_res_blocks) giving about 0.3B and 1B params on 28x28x1
SIZES = {"0.3": ("(432, 864, 1296)", 2), "1": ("(736, 1472, 2320)", 2)}
DEVICES_GB = {"H100 (80 GB)": 80e9, "TPU v5e (16 GB)": 16e9}


def run(size: str, per_device: int, sharded: bool) -> dict:
    channels, blocks = SIZES[size]
    n = jax.device_count()
    over = [f"model.channels={channels}", f"model.num_res_blocks={blocks}",
            f"train.batch_size={per_device * n}", "train.grad_accum=1"]
    over += ["train.mesh=fsdp", "train.shard_state=true"] if sharded else ["train.mesh=data"]
    cfg = config_lib.load_config(CONFIG, over)
    info = DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10)
    return step_memory(cfg, info)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.3,1", help="comma list of " + ", ".join(SIZES))
    ap.add_argument("--per-device", type=int, default=32, help="images per device")
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        for sharded in (False, True):
            r = run(size.strip(), args.per_device, sharded)
            r["state"] = "sharded" if sharded else "replicated"
            rows.append(r)
            fits = {k: "yes" if r["total_gib"] * 2 ** 30 <= v else "no"
                    for k, v in DEVICES_GB.items()}
            print(format_table([
                ("params", f"{r['params'] / 1e6:.0f}M"), ("state", r["state"]),
                ("mesh", r["mesh"]), ("state GiB/device", f"{r['state_gib_per_device']:.2f}"),
                ("arguments GiB", f"{r['argument_gib']:.2f}"),
                ("temporaries GiB", f"{r['temp_gib']:.2f}"),
                ("total GiB/device", f"{r['total_gib']:.2f}"),
                *[(f"fits {k}", v) for k, v in fits.items()],
                ("compile s", r["compile_s"])],
                title=f"\nU-Net ~{size}B, {args.per_device} images/device"), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
