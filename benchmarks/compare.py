"""jaxgen vs PyTorch: median ms per train step of four architectures, side by side.

    python benchmarks/compare.py [--only mlp,unet,dcgan,pixelcnn] [--steps N] [--warmup W]
                                 [--json out.json] [--channels-last]

For each architecture, in one process: `jaxgen.runner.bench.bench` on the config (the
trainer's real jitted step on one batch of the config's data, repeated), then
the PyTorch twin of `benchmarks/torch_models.py` on the *same* batch (W warm-up
steps, then the median of N timed steps), eager NCHW and, with
--channels-last, the conv nets again in channels_last memory. The parameter
counts of both must be equal (checked). One table at the end; --json writes
every number (jaxgen's whole bench dict included).

Needs PyTorch (pip install torch), which jaxgen itself never imports.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARCHS = {  # architecture -> the jaxgen config its twin reproduces
    "mlp": "configs/flow_matching/toy2d.py",
    "unet": "configs/diffusion/ddpm_fashion_mnist.py",
    "dcgan": "configs/gan/dcgan_fashion_mnist.py",
    "pixelcnn": "configs/autoregressive/pixelcnn_fashion_mnist.py",
}
CONV_NETS = ("unet", "dcgan", "pixelcnn")
TORCH_MISSING = ("benchmarks/compare.py needs PyTorch, which is not installed.\n"
                 "  pip install torch\n"
                 "(CPU-only wheels: pip install torch --index-url "
                 "https://download.pytorch.org/whl/cpu). jaxgen itself does not need it.")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------ config -> twin arguments
def _optim_settings(tm, config, player: str):
    """The twin's Adam settings for one player, from the config (as make_optimizer reads
    them, `optim.players.<player>.*` overrides included)."""
    from jaxgen.runner.optim import player_config
    c = player_config(config.optim, player)
    if c["name"] != "adam":
        raise ValueError(f"optim.name={c['name']!r}: the PyTorch twins use Adam only.")
    return tm.OptimSettings(
        learning_rate=float(c["learning_rate"]), b1=float(c["b1"]), b2=float(c["b2"]),
        eps=float(c["eps"]), schedule=c["schedule"], warmup_steps=int(c["warmup_steps"]),
        decay_steps=int(c["decay_steps"] or 0), end_lr_factor=float(c["end_lr_factor"]),
        grad_clip=float(c["grad_clip"] or 0.0), total_steps=int(config.train.steps))


def _require(cond: bool, arch: str, what: str) -> None:
    if not cond:
        raise ValueError(f"{arch}: the PyTorch twin reproduces {ARCHS[arch]} as it is; "
                         f"this config has {what}.")


def twin_kwargs(tm, arch: str, config) -> dict:
    """The builder's keyword arguments for `arch`, read from its (possibly overridden)
    config; refuses settings the twin does not implement."""
    m, o, t = config.model, config.objective, config.train
    common = dict(batch_size=int(t.batch_size), ema_decay=float(t.ema_decay),
                  seed=int(config.seed))
    _require(int(t.get("steps_per_call", 1)) == 1, arch, "train.steps_per_call != 1")
    _require(int(t.get("grad_accum", 1)) == 1, arch, "train.grad_accum != 1")
    if arch == "mlp":
        _require(m.name == "mlp" and o.name == "flow_matching", arch, "another model/objective")
        _require(m.get("num_classes", None) is None, arch, "model.num_classes")
        return dict(common, features=tuple(m.features), time_dim=int(m.time_dim),
                    sigma_min=float(o.get("sigma_min", 0.0)),
                    optim=_optim_settings(tm, config, "model"))
    if arch == "unet":
        _require(m.name == "unet" and o.name == "ddpm", arch, "another model/objective")
        _require(not m.get("attention", False) and m.get("num_classes", None) is None, arch,
                 "attention or classes")
        _require(o.get("schedule", "linear") == "linear" and o.get("prediction", "eps") == "eps",
                 arch, "a non-linear schedule or a non-eps prediction")
        return dict(common, channels=tuple(m.channels), num_res_blocks=int(m.num_res_blocks),
                    time_dim=int(m.time_dim), groups=int(m.groups),
                    num_steps=int(o.get("num_steps", 1000)),
                    optim=_optim_settings(tm, config, "model"))
    if arch == "dcgan":
        _require(m.name == "dcgan" and o.name == "gan", arch, "another model/objective")
        _require(o.get("loss", "ns") == "ns" and int(o.get("n_critic", 1)) == 1, arch,
                 "another loss or n_critic > 1")
        _require(not m.get("class_head", False) and m.get("num_classes", None) is None, arch,
                 "a class head or classes")
        return dict(common, latent_dim=int(m.latent_dim), g_channels=int(m.g_channels),
                    d_channels=int(m.d_channels),
                    optim_d=_optim_settings(tm, config, "discriminator"),
                    optim_g=_optim_settings(tm, config, "generator"))
    if arch == "pixelcnn":
        _require(m.name == "pixelcnn" and o.name == "autoregressive", arch,
                 "another model/objective")
        _require(not m.get("gated", False) and not o.get("binarize", ""), arch,
                 "gated=True or binarize")
        return dict(common, channels=int(m.channels), num_layers=int(m.num_layers),
                    hidden=int(m.hidden), optim=_optim_settings(tm, config, "model"))
    raise ValueError(f"unknown architecture {arch!r}")


def jaxgen_batch(config) -> np.ndarray:
    """The batch `jaxgen.runner.bench.bench` times (step 0 of the trainer's pipeline)."""
    from jaxgen.data import get_dataset
    from jaxgen.data.pipeline import BatchPipeline
    dataset = get_dataset(config.data, "train")
    pipe = BatchPipeline(dataset.source, config.train.batch_size, config.seed)
    return np.asarray(pipe.local_batch(0)["x"])


# ------------------------------------------------------------------ timing
def time_torch(twin, steps: int, warmup: int) -> dict:
    """Warm-up steps, then `steps` timed steps (PyTorch on CPU runs synchronously, so the
    wall time of `step_fn()` is the step)."""
    first = twin.step_fn()
    for _ in range(max(warmup - 1, 0)):
        twin.step_fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        m = twin.step_fn()
        times.append(time.perf_counter() - t0)
    ms = 1000 * float(np.median(times))
    losses = (float(first["loss"]), float(m["loss"]))
    if not all(np.isfinite(losses)):
        raise FloatingPointError(f"{twin.name}: the PyTorch loss is not finite: {losses}")
    return {"ms_per_step_median": round(ms, 2),
            "ms_per_step_p10_p90": [round(1000 * float(np.percentile(times, q)), 2)
                                    for q in (10, 90)],
            "loss_first": round(losses[0], 5), "loss_last": round(losses[1], 5),
            "timed_steps": steps}


def run_arch(arch: str, args, torch, tm) -> dict:
    from jaxgen.kernel.config import load_config
    from jaxgen.runner.bench import bench

    config = load_config(ROOT / ARCHS[arch], args.override)
    log(f"[{arch}] jaxgen bench {ARCHS[arch]} ({args.steps} steps, {args.warmup} warm-up) ...")
    with contextlib.redirect_stdout(io.StringIO()):  # bench prints its own table
        jx = bench(config, steps=args.steps, warmup=args.warmup)
    log(f"[{arch}] jaxgen: {jx['ms_per_step_median']} ms/step (compile {jx['compile_s']} s)")

    batch = jaxgen_batch(config)
    kwargs = twin_kwargs(tm, arch, config)
    row = {"architecture": arch, "config": ARCHS[arch], "params_jaxgen": jx["params"],
           "jaxgen": jx, "torch_threads": torch.get_num_threads()}
    layouts = [False] + ([True] if args.channels_last and arch in CONV_NETS else [])
    for cl in layouts:
        key = "torch_channels_last" if cl else "torch_eager"
        twin = tm.BUILDERS[arch](batch, channels_last=cl, **kwargs)
        row["params_torch"] = twin.params
        print(f"{arch}: params jaxgen {jx['params']:,}  torch {twin.params:,}", flush=True)
        assert twin.params == jx["params"], (
            f"{arch}: parameter counts differ: jaxgen {jx['params']}, torch {twin.params}")
        log(f"[{arch}] PyTorch {'channels_last' if cl else 'eager'} ...")
        row[key] = time_torch(twin, args.steps, args.warmup)
        log(f"[{arch}] PyTorch {'channels_last' if cl else 'eager'}: "
            f"{row[key]['ms_per_step_median']} ms/step, loss {row[key]['loss_first']} -> "
            f"{row[key]['loss_last']}")
        del twin
    return row


# ------------------------------------------------------------------ output
def format_rows(rows: list[dict], channels_last: bool) -> str:
    def num(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    header = ["architecture", "params (jaxgen)", "params (torch)", "jaxgen ms/step",
              "PyTorch ms/step (eager)", "PyTorch channels_last ms/step",
              "jaxgen/PyTorch eager"]
    if channels_last:
        header.append("jaxgen/PyTorch CL")
    header += ["jaxgen GFLOP/s", "fraction of matmul peak"]
    table = [header]
    for r in rows:
        jx = r["jaxgen"]["ms_per_step_median"]
        eager = r["torch_eager"]["ms_per_step_median"]
        cl = r.get("torch_channels_last", {}).get("ms_per_step_median")
        line = [r["architecture"], f"{r['params_jaxgen']:,}", f"{r['params_torch']:,}",
                num(jx), num(eager), num(cl), num(jx / eager, "{:.2f}x")]
        if channels_last:
            line.append(num(jx / cl if cl else None, "{:.2f}x"))
        line.append(num(r["jaxgen"].get("achieved_gflop_s")))
        line.append(num(r["jaxgen"].get("fraction_of_peak"), "{:.1%}"))
        table.append(line)
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    fmt = " | ".join("{:<%d}" % w if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*row) for row in table[1:]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(ARCHS),
                   help=f"comma list of architectures (default: all: {','.join(ARCHS)})")
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--json", default=None, help="also write every number here")
    p.add_argument("--channels-last", action="store_true",
                   help="also time the conv nets' twins in channels_last memory")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="a jaxgen config override for every architecture (repeatable), e.g. "
                        "train.xla_options=xla_cpu_experimental_ynn_fusion_type=")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch.set_num_threads (default: os.cpu_count())")
    args = p.parse_args(argv)
    archs = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown or not archs:
        p.error(f"--only: unknown architecture(s) {unknown}; choose from {', '.join(ARCHS)}")
    if args.steps < 1 or args.warmup < 1:
        p.error("--steps and --warmup must be >= 1")

    try:
        import torch
    except ImportError:
        print(TORCH_MISSING, file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_models as tm

    torch.set_num_threads(args.threads)
    import jax
    log(f"jax {jax.__version__} ({jax.default_backend()}, {jax.device_count()} device(s)), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{os.cpu_count()} CPUs")

    rows = [run_arch(a, args, torch, tm) for a in archs]
    print()
    print(format_rows(rows, args.channels_last))
    print(f"\nmedian of {args.steps} timed steps after {args.warmup} warm-up steps; "
          f"jaxgen/PyTorch < 1 means jaxgen is faster. GFLOP/s: XLA's cost analysis of the "
          f"step / jaxgen's time; its fraction of the float32 matmul peak "
          f"({rows[0]['jaxgen'].get('matmul_peak_gflop_s', '-')} GFLOP/s, measured in this run)."
          + (f" jaxgen overrides: {args.override}" if args.override else ""))
    if args.json:
        meta = {"jax": jax.__version__, "torch": torch.__version__, "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "steps": args.steps,
                "warmup": args.warmup, "overrides": args.override}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
