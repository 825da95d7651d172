"""PixelCNN: the full-pass sampler vs the incremental ("fast PixelCNN") step, and coding.

    python benchmarks/pixelcnn_sampling.py [--num 16] [--train-steps 0] [--code 200]
                                           [--only plain|gated] [--json out.json]

For configs/autoregressive/pixelcnn_fashion_mnist.py and its gated variant:
the Experiment and params (the initial ones, or after --train-steps steps of
the trainer's own step on Fashion-MNIST batches: the cost of a draw does not
depend on the weights, bits/dim does), then

* samples/s of sample.sampler=recompute (784 full passes of the conv net) and
  of sample.sampler=cached (what "auto" picks: `PixelCNN.step`), N samples in
  one call, each compiled once ahead of time, the median of up to --reps
  timed draws (one if a draw takes over 20 s), keys 0, 1, ...; "same draws":
  whether the two samplers' first draws (key 0) are the same images;
* a lossless round trip of the first --code Fashion-MNIST test images through
  `jaxgen.coding.codec` (the coder runs the same step; one batch of all the
  images): encode and decode seconds (wall, each including its compile),
  bits/dim of the payload beside the model's NLL (parallel pass), and whether
  the decoded images are the originals byte for byte.

The load average is printed with the table: the timings are only as good as
the machine was idle.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"plain": "pixelcnn_fashion_mnist.py", "gated": "gated_pixelcnn_fashion_mnist.py"}


def _train(exp, state, config, steps: int):
    """`steps` steps of the trainer's step on the config's training batches."""
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.data.pipeline import BatchPipeline
    from jaxgen.runner import distributed
    t = config.train
    pipe = BatchPipeline(get_dataset(config.data, "train").source, t.batch_size, config.seed,
                         process_index=jax.process_index(), process_count=jax.process_count(),
                         steps_per_call=t.steps_per_call)
    step = exp.train_step()
    metrics = {}
    for k in range(steps // t.steps_per_call):
        batch = distributed.to_global(pipe.local_batch(k), exp.mesh, t.batch_size,
                                      t.steps_per_call)
        state, metrics = step(state, batch)
    return state, {k: float(v) for k, v in jax.device_get(metrics).items()}


def _draws(exp, params, num: int, sampler: str, reps: int) -> dict:
    """Compile once, then up to `reps` timed draws (keys 0, 1, ...): samples/s of the median
    draw and the first draw's images (to compare samplers)."""
    import jax
    import numpy as np
    compile_s = exp.compile_sample(params, num, chunk=num, sampler=sampler)
    times, first = [], None
    for r in range(reps):
        t0 = time.perf_counter()
        x = exp.sample(params, jax.random.key(r), num, chunk=num, sampler=sampler)
        times.append(time.perf_counter() - t0)
        first = x if first is None else first
        if times[-1] > 20:
            break
    return {"compile_s": round(compile_s, 2), "calls": len(times), "images": first,
            "samples_per_s": num / float(np.median(times))}


def _round_trip(exp, params, raw) -> dict:
    import jax
    import numpy as np

    from jaxgen.coding import codec
    from jaxgen.kernel import transforms
    n, d = len(raw), int(np.prod(raw.shape[1:]))
    x = transforms.preprocess("images", raw, None, dequantize=False)
    nll = -np.asarray(jax.jit(exp.objective.tools.log_probs)(params, x), np.float64).sum()
    t0 = time.perf_counter()
    data, stats = codec.compress(exp.objective, params, raw, batch_size=n)
    t1 = time.perf_counter()
    back, _ = codec.decompress(exp.objective, params, data)
    t2 = time.perf_counter()
    return {"encode_s": t1 - t0, "decode_s": t2 - t1,
            "bits_per_dim": 8.0 * stats["payload_bytes"] / (n * d),
            "nll_bits_per_dim": float(nll / (n * d * np.log(2))),
            "exact": bool(back.dtype == raw.dtype and np.array_equal(back, raw))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=16, help="samples drawn in one call")
    ap.add_argument("--reps", type=int, default=3, help="timed draws (median)")
    ap.add_argument("--train-steps", type=int, default=0,
                    help="train this many steps first (0: the initial params)")
    ap.add_argument("--code", type=int, default=200, help="test images to code (0: none)")
    ap.add_argument("--only", default="", help="plain or gated")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import jax
    import numpy as np

    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import setup
    from jaxgen.runner.experiment import Experiment
    from jaxgen.runner.logging import format_table

    load0 = os.getloadavg()
    rows, results = [], {}
    for name, config in CONFIGS.items():
        if args.only and args.only != name:
            continue
        cfg = config_lib.load_config(ROOT / "configs" / "autoregressive" / config, [])
        exp, state, _ = setup(cfg)
        weights = "initial"
        if args.train_steps:
            t0 = time.perf_counter()
            state, m = _train(exp, state, cfg, args.train_steps)
            weights = (f"{args.train_steps} steps ({time.perf_counter() - t0:.0f} s), "
                       f"train bpd {m['bits_per_dim']:.2f}")
        params = state.params  # the optimiser's (the EMA of a short run is ~ the init)
        full = _draws(exp, params, args.num, "recompute", args.reps)
        fast = _draws(exp, params, args.num, "cached", args.reps)
        assert Experiment(cfg, exp.info).sample_settings.sampler == "auto"
        r = {"config": config, "weights": weights, "num": args.num,
             "full_samples_per_s": full["samples_per_s"], "full_calls": full["calls"],
             "full_compile_s": full["compile_s"],
             "cached_samples_per_s": fast["samples_per_s"], "cached_calls": fast["calls"],
             "cached_compile_s": fast["compile_s"],
             "speedup": fast["samples_per_s"] / full["samples_per_s"],
             "same_draws": bool(np.array_equal(full["images"], fast["images"]))}
        code = ("-",) * 5
        if args.code:
            raw = get_dataset(cfg.data, "test").source.get(np.arange(args.code))["x"]
            c = _round_trip(exp, params, raw)
            r.update(c)
            code = (f"{c['encode_s']:.1f}", f"{c['decode_s']:.1f}", f"{c['bits_per_dim']:.4f}",
                    f"{c['nll_bits_per_dim']:.4f}", "yes" if c["exact"] else "NO")
        results[name] = r
        rows.append((name, weights, f"{r['full_samples_per_s']:.2f} ({full['calls']})",
                     f"{r['cached_samples_per_s']:.1f} ({fast['calls']})",
                     f"{r['speedup']:.0f}x", "yes" if r["same_draws"] else "no", *code))
        print(f"{name}: {r}", flush=True)
    load1 = os.getloadavg()
    print(format_table(rows, header=(
        "PixelCNN", "params", "full pass samples/s (draws)", "cached samples/s (draws)",
        "ratio", "same draws", f"encode {args.code} s", f"decode {args.code} s",
        "code bits/dim", "NLL bits/dim", "round trip exact"),
        title=f"\nPixelCNN sampling ({args.num} at once, compiled once, median draw) and "
              f"coding, {jax.device_count()} x {jax.devices()[0].device_kind}, "
              f"{os.cpu_count()} CPUs, load average {load0[0]:.1f} at start, "
              f"{load1[0]:.1f} at end"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
