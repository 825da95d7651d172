"""Sampling throughput of every family's sampler: samples/s, each sampler compiled once.

    python benchmarks/sampling.py [--only NAME,...] [--num N] [--json out.json]

For each config below: the Experiment and its initial params (the cost of
drawing does not depend on what the weights are), the sampler compiled ahead
of time for N samples in one call (`Experiment.compile_sample`), then the
median of 3 timed draws (`jaxgen.runner.bench.sample_throughput`). The sampler and its
steps are the config's own `sample.*` settings, printed beside each row; rows
with `+` are the same config with another sampler. The two PixelCNN rows are the
incremental step (sampler=auto: "cached") and the 784 full passes of the conv net
(sampler=recompute); benchmarks/pixelcnn_sampling.py compares them in detail.
Needs no PyTorch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOW = {"flow_matching": ("method", "steps"), "ddpm": ("sampler", "steps", "eta"),
        "autoregressive": ("sampler",)}
SAMPLERS = {  # name -> (config, overrides)
    "flow matching (ODE)": ("flow_matching/fashion_mnist.py", []),
    "RealNVP (one inverse pass)": ("flows/realnvp_fashion_mnist.py", []),
    "Glow (one inverse pass)": ("flows/glow_fashion_mnist.py", []),
    "DDPM + DDIM": ("diffusion/ddpm_fashion_mnist.py", []),
    "DDPM + ancestral": ("diffusion/ddpm_fashion_mnist.py",
                         ["sample.sampler=ddpm", "sample.steps=1000"]),
    "VAE (decoder)": ("vae/vae_fashion_mnist.py", []),
    "VQ-VAE (decoder of random codes)": ("vae/vqvae_fashion_mnist.py", []),
    "DCGAN (generator)": ("gan/dcgan_fashion_mnist.py", []),
    "AR finite-memory MLP": ("autoregressive/mlp_fashion_mnist.py", []),
    "AR GRU": ("autoregressive/rnn_fashion_mnist.py", []),
    "AR WaveNet": ("autoregressive/wavenet_fashion_mnist.py", []),
    "AR transformer (KV cache)": ("autoregressive/transformer_fashion_mnist.py", []),
    "PixelCNN (cached)": ("autoregressive/pixelcnn_fashion_mnist.py", []),
    "PixelCNN (full pass, sample.sampler=recompute)": ("autoregressive/pixelcnn_fashion_mnist.py",
                                                       ["sample.sampler=recompute"]),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma list of row names (substrings)")
    ap.add_argument("--num", type=int, default=64, help="samples drawn in one call")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import jax

    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import sample_throughput, setup
    from jaxgen.runner.logging import format_table

    want = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    rows, results = [], {}
    for name, (config, overrides) in SAMPLERS.items():
        if want and not any(w in name.lower() for w in want):
            continue
        cfg = config_lib.load_config(ROOT / "configs" / config, overrides)
        exp, state, _ = setup(cfg)
        t0 = time.perf_counter()
        r = sample_throughput(exp, state.ema_params, args.num)
        s = cfg.sample
        how = ", ".join(f"{k}={s[k]}" for k in SHOW.get(cfg.objective.name, ()) if k in s) or "-"
        results[name] = {"config": config, "overrides": overrides, "sample": how, **r,
                         "wall_s": round(time.perf_counter() - t0, 1)}
        rows.append((name, how, r["sample_compile_s"], f"{r['samples_per_s']:.1f}"))
        print(f"{name}: {r['samples_per_s']:.2f} samples/s (compile {r['sample_compile_s']} s)",
              flush=True)
    print(format_table(rows, header=("sampler", "sample.*", "compile s",
                                      f"samples/s ({args.num} at once)"),
                       title=f"\nsampling throughput, {jax.device_count()} x "
                             f"{jax.devices()[0].device_kind}"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
