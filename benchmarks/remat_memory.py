"""What remat does to a U-Net gradient step's memory, as XLA's compiler reports it.

    python benchmarks/remat_memory.py                    # the Fashion-MNIST U-Net, batch 64
    python benchmarks/remat_memory.py --channels 128,256,256 --num-res-blocks 2 --batch 128
    python benchmarks/remat_memory.py --json remat.json --steps 10
    python benchmarks/remat_memory.py --dense-chain      # the textbook case only

The U-Net of `--config` (its model.* settings; default the flow-matching Fashion-MNIST
config) on a batch of random 28x28x1 images: the flow-matching loss
``|u(x_t, t) - (x_1 - x_0)|^2`` and its gradient with respect to the params, jitted and
compiled once per remat policy (`jaxgen.nn.remat.POLICIES`, "none" first). For each, the
compiled program's `memory_analysis()`: temp bytes (the buffers XLA allocates for the
step: the activations kept for the backward pass live here), argument bytes (params and
batch), output bytes (loss and gradients), the convolutions in the optimised program
(remat's recomputation adds some), and the seconds to compile; with `--steps N`,
also the median ms of N steps after one warm-up. The figures are the compiler's buffer
assignment on this backend, not a measured peak.

`--dense-chain`: instead, the textbook case, whether this backend's figures show remat at
all: 16 layers ``x -> sin(2 sin(x W))`` on a (2048, 512) float32 batch, each layer under
`jax.checkpoint` with `nothing_saveable` or not; the temp bytes of the gradient, both ways
(without remat the backward pass keeps two 4 MiB tensors per layer, with it one).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "flow_matching" / "fashion_mnist.py"


def model_settings(config_path: Path) -> dict:
    """The config's model.* settings (without name) as UNet keyword arguments."""
    spec = importlib.util.spec_from_file_location("remat_bench_config", config_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.get_config().model.to_dict()
    if model.get("name") != "unet":
        raise SystemExit(f"{config_path}: model.name is {model.get('name')!r}, not unet")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in model.items() if k != "name"}


def measure(settings: dict, policy: str, batch: int, image: tuple, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxgen.nn.unet import UNet

    model = UNet(**settings, remat=policy)
    k0, k1, k2, k3 = jax.random.split(jax.random.key(0), 4)
    x1 = jax.random.uniform(k0, (batch, *image), minval=-1.0, maxval=1.0)
    x0 = jax.random.normal(k1, x1.shape)
    t = jax.random.uniform(k2, (batch,))
    params = jax.jit(model.init)(k3, x1, t)

    def loss(p, x0, x1, t):
        tt = t[:, None, None, None]
        u = model.apply(p, (1 - tt) * x0 + tt * x1, t)
        return jnp.mean(jnp.square(u - (x1 - x0)))

    step = jax.jit(jax.value_and_grad(loss))
    start = time.perf_counter()
    compiled = step.lower(params, x0, x1, t).compile()
    compile_s = time.perf_counter() - start
    mem = compiled.memory_analysis()
    hlo = compiled.as_text()
    row = {"policy": policy, "temp_bytes": mem.temp_size_in_bytes,
           "argument_bytes": mem.argument_size_in_bytes,
           "output_bytes": mem.output_size_in_bytes,
           "peak_bytes": getattr(mem, "peak_memory_in_bytes", 0),
           "compile_s": compile_s,
           # convolutions in the optimised program (XLA's, or cuDNN calls on a GPU): the
           # recomputation remat adds, whatever the memory figures say
           "convolutions": len(re.findall(r"\bconvolution\(|cudnn\$conv", hlo))}
    if steps:
        jax.block_until_ready(compiled(params, x0, x1, t))
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            jax.block_until_ready(compiled(params, x0, x1, t))
            times.append(1e3 * (time.perf_counter() - start))
        row["ms_per_step"] = statistics.median(times)
    return row


def dense_chain(layers: int = 16, batch: int = 2048, width: int = 512) -> dict:
    """{remat: temp bytes} of the gradient of a chain of dense layers (see the docstring)."""
    import jax
    import jax.numpy as jnp

    def layer(w, x):
        return jnp.sin(jnp.sin(x @ w) * 2.0)

    keys = jax.random.split(jax.random.key(0), layers + 1)
    ws = [0.05 * jax.random.normal(k, (width, width)) for k in keys[1:]]
    x = jax.random.normal(keys[0], (batch, width))
    out = {}
    for remat in (False, True):
        f = (jax.checkpoint(layer, policy=jax.checkpoint_policies.nothing_saveable)
             if remat else layer)

        def loss(ws, x, f=f):
            for w in ws:
                x = f(w, x)
            return jnp.sum(x)

        compiled = jax.jit(jax.grad(loss)).lower(ws, x).compile()
        out[remat] = compiled.memory_analysis().temp_size_in_bytes
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image", default="28,28,1", help="H,W,C of the random images")
    parser.add_argument("--channels", default="", help="override model.channels, e.g. 64,128")
    parser.add_argument("--num-res-blocks", type=int, default=0,
                        help="override model.num_res_blocks (0: the config's)")
    parser.add_argument("--attention", action="store_true", help="model.attention=True")
    parser.add_argument("--policies", default="", help="comma-separated; default all")
    parser.add_argument("--steps", type=int, default=0, help="also time N steps (0: no)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dense-chain", action="store_true",
                        help="only the textbook case: 16 checkpointed dense layers")
    args = parser.parse_args(argv)

    import jax

    if args.dense_chain:
        temp = dense_chain()
        print(f"# 16 dense layers, (2048, 512) float32; {jax.devices()[0].platform}, "
              f"jax {jax.__version__}")
        print("| remat | temp MiB |\n|---|---|")
        for remat, b in temp.items():
            print(f"| {'nothing_saveable' if remat else 'none'} | {b / 2.0 ** 20:.2f} |")
        return 0

    from jaxgen.nn.remat import POLICIES

    settings = model_settings(args.config)
    if args.channels:
        settings["channels"] = tuple(int(c) for c in args.channels.split(","))
    if args.num_res_blocks:
        settings["num_res_blocks"] = args.num_res_blocks
    if args.attention:
        settings["attention"] = True
    policies = args.policies.split(",") if args.policies else list(POLICIES)
    image = tuple(int(v) for v in args.image.split(","))

    device = jax.devices()[0]
    print(f"# U-Net {settings}, batch {args.batch}, images {image}; "
          f"{device.platform} ({device.device_kind}), jax {jax.__version__}")
    rows = [measure(settings, p, args.batch, image, args.steps) for p in policies]
    base = rows[0]["temp_bytes"] if rows and rows[0]["policy"] == "none" else None
    mib = 2.0 ** 20
    cols = ["policy", "temp MiB", "temp / none", "argument MiB", "output MiB", "convolutions",
            "compile s"]
    if args.steps:
        cols.append("ms/step")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        ratio = f"{r['temp_bytes'] / base:.3f}" if base else "-"
        cells = [r["policy"], f"{r['temp_bytes'] / mib:.2f}", ratio,
                 f"{r['argument_bytes'] / mib:.2f}", f"{r['output_bytes'] / mib:.2f}",
                 str(r["convolutions"]), f"{r['compile_s']:.1f}"]
        if args.steps:
            cells.append(f"{r['ms_per_step']:.1f}")
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in settings.items()},
                                         "batch": args.batch, "image": list(image),
                                         "backend": device.platform,
                                         "device_kind": device.device_kind,
                                         "jax": jax.__version__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
