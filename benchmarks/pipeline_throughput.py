"""Images/s of the batch pipeline alone (no model): per-batch decoding in a reader thread
(the pipeline as it was at fe23e6b, and the same path now), decoded once and gathered from
memory, and 1/2/4 worker processes, for 28x28x1, 32x32x3 and 64x64x3 uint8 images at
batch 256.

    python benchmarks/pipeline_throughput.py                      # ~1-2 min on 2 cores
    python benchmarks/pipeline_throughput.py --seconds 1 --workers 2
    python benchmarks/pipeline_throughput.py --fashion-mnist      # + the real tfds source

The decoding source stores each image as PNG bytes and decodes every record it reads
with pillow, as tfds's image features do (`--fashion-mnist` adds rows for the real
Fashion-MNIST tfds source, prepared on first use). Each row times `iterate` for
`--seconds` after its first batch and after the batches read ahead during start-up have
been taken (so they do not count); "first batch s" is the start-up: the pool's start for
workers (the first pool of a process also starts the forkserver), the whole decode for
"in memory". "CPU ms/1k" is the CPU time this process and its workers spent per 1000
images while timed: what a row costs whatever else runs. On a busy machine the scheduler
gives one session's processes together a share of the cores (Linux autogroups), so more
workers then add CPU cost without adding images/s; compare them on idle cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxgen.data.pipeline import BatchPipeline  # noqa: E402

BEFORE = "fe23e6b"  # the commit before the pipeline read from memory or worker processes
SHAPES = {"28x28x1": ((28, 28, 1), 30_000), "32x32x3": ((32, 32, 3), 20_000),
          "64x64x3": ((64, 64, 3), 8_000)}  # (shape, examples)


class PngSource:
    """`n` records, each a PNG decoded with pillow on every read (`unique` distinct
    images, record i is image i % unique), with labels. Module level: it pickles for the
    workers."""

    def __init__(self, shape, n: int, unique: int = 1000, seed: int = 0):
        rng = np.random.default_rng(seed)
        h, w, c = shape
        self.pngs = []
        for _ in range(unique):
            # smooth blobs plus a little noise: compresses like photographs, not like noise
            low = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, c)).astype(np.float32)
            img = np.repeat(np.repeat(low, 4, 0), 4, 1)[:h, :w]
            img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img[..., 0] if c == 1 else img).save(buf, format="PNG")
            self.pngs.append(buf.getvalue())
        self.n, self.shape = n, tuple(shape)
        self.event_shape, self.num_classes = self.shape, 10

    def __len__(self):
        return self.n

    def get(self, indices):
        idx = np.asarray(indices, np.int64)
        u = len(self.pngs)
        x = np.stack([np.asarray(Image.open(io.BytesIO(self.pngs[i % u]))) for i in idx])
        return {"x": x.reshape(len(idx), *self.shape), "label": (idx % 10).astype(np.int32)}


def before_pipeline():
    """BatchPipeline as it was at BEFORE (`git show`), or None without git."""
    try:
        code = subprocess.run(["git", "show", f"{BEFORE}:jaxgen/data/pipeline.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "pipeline_before.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("pipeline_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.BatchPipeline


def tree_cpu() -> float:
    """CPU seconds of this process and all its descendants alive now (the workers are
    children of the forkserver, itself a child of this process); Linux's /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                text = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            f = text[text.rindex(")") + 2:].split()  # fields from the state on
            stats[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == pid]
    return total


def measure(pipe, seconds: float, ahead: int) -> tuple[float, float, float]:
    """(seconds to the first batch, images/s after it and the `ahead` batches read ahead,
    CPU ms per 1000 images over the same time: this process and the workers)."""
    t0 = time.perf_counter()
    it = pipe.iterate(0, 10**9)
    try:
        next(it)
        first = time.perf_counter() - t0
        for _ in range(ahead):
            next(it)
        n, c1, t1 = 0, tree_cpu(), time.perf_counter()
        while time.perf_counter() - t1 < seconds:
            next(it)
            n += 1
        images = n * pipe.local_batch_size
        rate = images / (time.perf_counter() - t1)
        cpu_ms = 1e6 * (tree_cpu() - c1) / max(1, images)
    finally:
        it.close()
    return first, rate, cpu_ms


def rows_for(name, source, args, old_cls) -> list[dict]:
    b, out = args.batch, []
    kw = dict(seed=0, prefetch=2)
    runs = []
    if old_cls is not None:
        runs.append((f"before ({BEFORE}): thread, decode per batch",
                     lambda: old_cls(source, b, **kw), 3))
    runs.append(("thread, decode per batch (now, workers=0 in_memory_mb=0)",
                 lambda: BatchPipeline(source, b, **kw), 3))
    runs.append(("in memory (decoded once)",
                 lambda: BatchPipeline(source, b, in_memory_mb=1 << 20, verbose=False, **kw),
                 3))
    for w in args.workers:
        runs.append((f"workers={w}", lambda w=w: BatchPipeline(source, b, workers=w, **kw),
                     max(3, 2 * w) + 1))
    for path, make, ahead in runs:
        first, rate, cpu_ms = measure(make(), args.seconds, ahead)
        out.append({"data": name, "path": path, "first_batch_s": first, "images_per_s": rate,
                    "cpu_ms_per_1k_images": cpu_ms})
        print(f"  {name:<22} {path:<58} {first:8.2f} {rate:12,.0f} {cpu_ms:10.1f}",
              flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.5, help="timed seconds per row")
    ap.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")],
                    default=[1, 2, 4])
    ap.add_argument("--only", default=",".join(SHAPES), help="shapes, e.g. 28x28x1,64x64x3")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the examples")
    ap.add_argument("--fashion-mnist", action="store_true",
                    help="also the real Fashion-MNIST tfds source (60k PNG records)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    old_cls = before_pipeline()
    print(f"pipeline throughput: BatchPipeline.iterate alone (no model), batch {args.batch}, "
          f"uint8; {os.cpu_count()} CPU cores, load average {load0[0]:.2f} at start")
    print(f"  {'data':<22} {'path':<58} {'first s':>8} {'images/s':>12} {'CPU ms/1k':>10}")
    rows = []
    for name in args.only.split(","):
        shape, n = SHAPES[name]
        src = PngSource(shape, max(4 * args.batch, int(n * args.scale)))
        rows += rows_for(f"{name} PNG n={len(src)}", src, args, old_cls)
    if args.fashion_mnist:
        from jaxgen.data.datasets.fashion_mnist import DEFAULT_TFDS_DIR
        from jaxgen.data.fashion_mnist import fashion_mnist_source
        src = fashion_mnist_source("train", os.path.expanduser(DEFAULT_TFDS_DIR))
        rows += rows_for("Fashion-MNIST tfds", src, args, old_cls)
    load1 = os.getloadavg()
    print(f"load average {load1[0]:.2f} at the end; {time.perf_counter() - t0:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"cpus": os.cpu_count(), "load_start": load0, "load_end": load1,
             "batch": args.batch, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
