"""One table of what an accelerator does with jaxgen's architectures.

Per architecture (the config named beside it), in one process, each on its own (one that
raises is recorded as failed, with the stage it reached, and the others still run):

* fp32 and bf16 (`train.compute_dtype`) ms/step of the real jitted train step
  (`jaxgen.runner.bench.bench`: one batch of the config's data, repeated, blocking on
  every call) and the compile seconds of the fp32 step;
* the step's achieved FLOP rate (XLA's cost analysis / time) as a fraction of the
  matmul peak measured in the same run in the same dtype (an n x n x n product);
* the bf16 FLOP share: of the convolution and matmul FLOPs of the bf16 step (its lowered
  StableHLO, `jaxgen.nn.precision.bf16_flop_share`), the share with bf16 operands;
* the sharded path: the fp32 step with `train.mesh=fsdp,train.shard_state=true` over every
  device (on one device the mesh has one device, so this checks that the path runs; with
  more it is the real FSDP step), ms/step;
* the trainer's own ms/step (`jaxgen.runner.bench.trainer_ms_per_step`: `jaxgen train`
  for `--train-steps` steps) and its ratio to the pure step (goal <= 1.05);
* the config's sampler: samples/s for `--sample-num` samples in one call.

Then the largest-model table: per-device memory of the U-Net's train step at about 0.3B
and 1B params, state replicated vs sharded (FSDP), against an H100's 80 GB and a TPU v5e's
16 GB, from XLA's `memory_analysis` (`benchmarks/sharded_memory.py`, shapes only). With one
device it runs in a subprocess on 8 simulated CPU devices (XLA:CPU estimates; alongside the
timings, at low priority, on an accelerator; after them on a CPU); with several devices, on
them, after the timings.

Where the Fashion-MNIST files are absent (or with `--synthetic`), the image configs train on
synthetic data of the same shape (random uint8 28x28x1 images, 10 classes, through
`data.name=array`); the row says so.

Each row is printed when its architecture finishes, and `--out DIR` (gpu_check.md,
gpu_check.json) and `--json FILE` are rewritten then (and when a stage starts), so a run
cut short keeps the rows it finished and says where it was. Exit status 1 if any row failed.

    bash benchmarks/gpu_check.sh                     # all, about 9 minutes at most
    python benchmarks/gpu_check.py --only mlp,unet --out runs/gpu_check
    python benchmarks/gpu_check.py --set unet:model.channels=(128,256,256) --only unet

It runs on any backend and says which; on a CPU it is slow (use --only and fewer steps).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ARCHS = {  # name -> config
    "mlp": "flow_matching/toy2d",
    "unet": "diffusion/ddpm_fashion_mnist",
    "dcgan": "gan/dcgan_fashion_mnist",
    "pixelcnn": "autoregressive/pixelcnn_fashion_mnist",
    "transformer": "autoregressive/transformer_fashion_mnist",
}
SYNTHETIC_SHAPE, SYNTHETIC_CLASSES = (28, 28, 1), 10  # Fashion-MNIST's
MEMORY_SCRIPT = ROOT / "benchmarks" / "sharded_memory.py"
SIMULATED_DEVICES = 8
_CHILDREN: list = []  # the memory table's subprocesses while they run
HEADER = ("arch", "data", "params", "fp32 ms/step", "bf16 ms/step", "compile s (fp32)",
          "fp32 peak frac", "bf16 peak frac", "bf16 FLOP share", "fsdp fp32 ms/step (mesh)",
          "trainer ms/step", "trainer/step", "samples/s", "status")
MEMORY_HEADER = ("U-Net", "params", "state", "mesh", "state GiB/device", "total GiB/device",
                 "fits H100 (80 GB)", "fits TPU v5e (16 GB)", "compile s", "status")


class Terminated(BaseException):
    """SIGTERM (e.g. from `timeout`): not an architecture's failure; ends the run."""


def _sharded_memory_module():
    spec = importlib.util.spec_from_file_location("sharded_memory", MEMORY_SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_line(e: BaseException, limit: int = 300) -> str:
    msg = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {msg[:limit]}{'...' if len(msg) > limit else ''}"


# --------------------------------------------------------------------------- data

def fashion_mnist_present(data) -> bool:
    """Whether `data.name=fashion_mnist` with these settings can be read: its IDX files are in
    data.source_dir (as `jaxgen.data.fashion_mnist` looks for them, gzipped or not), or a
    prepared copy is in data.path (tfds's array_record)."""
    try:
        from jaxgen.data.datasets.fashion_mnist import DEFAULT_SOURCE_DIR, DEFAULT_TFDS_DIR
        from jaxgen.data.fashion_mnist import check_source_dir
        from jaxgen.kernel.errors import MissingError
    except ImportError:  # no tensorflow_datasets: the dataset cannot be built at all
        return False
    try:
        check_source_dir(data.get("source_dir") or DEFAULT_SOURCE_DIR)
        return True
    except MissingError:
        pass
    prepared = Path(os.path.expanduser(data.get("path") or DEFAULT_TFDS_DIR)) / "fashion_mnist"
    return any(prepared.glob("*/dataset_info.json"))


def synthetic_files(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """(train, eval) .npz of random uint8 images of Fashion-MNIST's shape, 10 balanced
    classes: n training images, n // 4 held out (written once per n)."""
    train, held_out = folder / f"train_{n}.npz", folder / f"eval_{n}.npz"
    if not train.exists():
        import numpy as np
        rng = np.random.default_rng(seed)
        for path, m in ((train, n), (held_out, max(n // 4, SYNTHETIC_CLASSES))):
            x = rng.integers(0, 256, (m, *SYNTHETIC_SHAPE), dtype=np.uint8)
            y = rng.permutation(np.arange(m) % SYNTHETIC_CLASSES).astype(np.int32)
            np.savez(path, x=x, y=y)
    return train, held_out


# --------------------------------------------------------------------------- report

def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


class Report:
    """The run's figures, rewritten to gpu_check.md / gpu_check.json (and --json) on every
    change, so whatever is cut off, the rows done so far stay on disk."""

    def __init__(self, out_dir: str | None, json_path: str | None, meta: dict):
        self.out_dir = Path(out_dir) if out_dir else None
        self.json_path = Path(json_path) if json_path else None
        self.data = {**meta, "status": "running", "archs": {}, "memory": {"rows": []}}
        self.t0 = time.perf_counter()
        self.lock = threading.RLock()
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.json_path:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)

    # rows
    def arch_cells(self, name: str, r: dict) -> tuple:
        f32, b16, sh = r.get("float32", {}), r.get("bfloat16", {}), r.get("sharded", {})
        status = r.get("status", "")
        if status == "failed":
            status = f"failed ({r.get('stage')}): {r.get('error', '')}"
            status = status[:120] + ("..." if len(status) > 120 else "")
        elif status.startswith("running"):
            status = f"cut during {r.get('stage')}" if self.data["status"] != "running" \
                else f"running: {r.get('stage')}"
        fsdp = f"{_fmt(sh['ms'])} ({sh['mesh']})" if "ms" in sh else "-"
        sampler = r.get("sampler", {})
        return (name, r.get("data_label", "-"),
                f"{r['params']:,}" if "params" in r else "-",
                _fmt(f32.get("ms")), _fmt(b16.get("ms")), _fmt(f32.get("compile_s")),
                _fmt(f32.get("peak_fraction")), _fmt(b16.get("peak_fraction")),
                _fmt(r.get("bf16_flop_share")), fsdp, _fmt(r.get("trainer_ms")),
                _fmt(r.get("trainer_ratio")),
                f"{_fmt(sampler['samples_per_s'])} ({sampler['sample_batch']})"
                if "samples_per_s" in sampler else "-", status)

    def memory_cells(self, m: dict) -> tuple:
        status = m.get("status", "")
        if status == "failed":
            status = f"failed: {m.get('error', '')}"[:120]
        fits = m.get("fits", {})
        return (f"~{m['size']}B", f"{m['params'] / 1e6:.0f}M" if "params" in m else "-",
                m.get("state", "-"), m.get("mesh", "-"),
                _fmt(m.get("state_gib_per_device"), 3), _fmt(m.get("total_gib"), 3),
                fits.get("H100 (80 GB)", "-"), fits.get("TPU v5e (16 GB)", "-"),
                _fmt(m.get("compile_s"), 3), status)

    def set_arch(self, name: str, row: dict) -> None:
        with self.lock:
            self.data["archs"][name] = row
            self.write()

    def add_memory(self, rows: list[dict]) -> None:
        with self.lock:
            self.data["memory"]["rows"].extend(rows)
            self.write()

    def finish(self, status: str) -> None:
        with self.lock:
            self.data["status"] = status
            self.write()

    # files
    def markdown(self) -> str:
        d = self.data
        peak = d.get("matmul_peak_gflop_s") or {}
        lines = [
            "# jaxgen GPU check", "",
            f"{d['device_count']} x {d['device']} ({d['backend']}), jax {d['jax']}; matmul "
            f"peak GFLOP/s: " + (", ".join(f"{k} {_fmt(v)}" for k, v in peak.items()) or "-")
            + f"; {d['status']} after {d.get('elapsed_s', 0):.0f} s.", "",
            "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(self.arch_cells(n, r)) + " |" for n, r in d["archs"].items()]
        lines += ["", f"fsdp: the fp32 step with train.mesh=fsdp, train.shard_state=true; "
                  f"{d['fsdp_note']}"]
        mem = d["memory"]
        if mem.get("source") or mem["rows"]:
            lines += ["", "## Largest model: per-device memory of the U-Net's train step", "",
                      f"{mem.get('source', '')}; {mem.get('per_device', '')} images per device."
                      " Replicated: train.mesh=data; sharded: train.mesh=fsdp, "
                      "train.shard_state=true.", "",
                      "| " + " | ".join(MEMORY_HEADER) + " |", "|" + "---|" * len(MEMORY_HEADER)]
            lines += ["| " + " | ".join(self.memory_cells(m)) + " |" for m in mem["rows"]]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        with self.lock:
            self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
            text = json.dumps(self.data, indent=2, default=str)
            targets = [(self.json_path, text)] if self.json_path else []
            if self.out_dir:
                targets += [(self.out_dir / "gpu_check.json", text),
                            (self.out_dir / "gpu_check.md", self.markdown())]
            for path, content in targets:  # whole files only: write aside, then rename
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(content)
                os.replace(tmp, path)


# --------------------------------------------------------------------------- one architecture

def parse_sets(sets: list[str], names) -> dict:
    """--set [ARCH:]KEY=VALUE -> {arch: [KEY=VALUE, ...]} (no ARCH: every architecture)."""
    out = {n: [] for n in names}
    for s in sets:
        head, eq, _ = s.partition("=")
        if not eq:
            raise ValueError(f"--set {s!r}: expected [ARCH:]KEY=VALUE")
        arch, colon, key = head.partition(":")
        if colon and arch not in out:
            raise ValueError(f"--set {s!r}: {arch!r} is not one of {', '.join(out)}")
        for n in ([arch] if colon else out):
            out[n].append(s[len(arch) + 1:] if colon else s)
    return out


def run_arch(name: str, args, ctx: dict, report: Report) -> dict:
    """One architecture's figures; an exception ends its stages and is recorded, not raised."""
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    from jaxgen.nn.precision import bf16_flop_share
    from jaxgen.runner.bench import bench, sample_throughput, setup, trainer_ms_per_step
    from jaxgen.runner.experiment import DatasetInfo, Experiment

    config = ARCHS[name]
    r = {"config": config, "overrides": list(ctx["sets"][name]), "status": "running"}
    t_arch = time.perf_counter()

    def stage(s):
        r["stage"] = s
        report.set_arch(name, r)

    def quiet(fn, *a, **k):  # bench prints its own table: the figures go to the JSON instead
        with contextlib.redirect_stdout(io.StringIO()):
            return fn(*a, **k)

    try:
        stage("config")
        over = list(ctx["sets"][name])
        probe = config_lib.load_config(config, over)
        synthetic = None
        if probe.data.name == "fashion_mnist":
            if args.synthetic:
                synthetic = "--synthetic"
            elif not fashion_mnist_present(probe.data):
                synthetic = "Fashion-MNIST files absent"
        if synthetic:
            n = max(4096, 2 * int(probe.train.batch_size))
            train, held_out = synthetic_files(ctx["tmp"], n)
            over = ["data.name=array", f"data.path={train}", f"data.eval_path={held_out}", *over]
            r["synthetic"] = synthetic
        r["overrides"] = over
        r["data_label"] = "synthetic data" if synthetic else probe.data.name

        def cfg(*more):
            return config_lib.load_config(config, [*over, *more])

        for dt in ("float32", "bfloat16"):
            if dt == "bfloat16" and "bf16" in args.skip:
                continue
            stage(dt)
            b = quiet(bench, cfg(f"train.compute_dtype={dt}"), steps=args.steps,
                      warmup=args.warmup, peak=False)
            peak = ctx["peak"].get(dt)
            r[dt] = {"ms": b["ms_per_step_median"], "compile_s": b["compile_s"],
                     "peak_fraction": (round(b["achieved_gflop_s"] / peak, 4)
                                       if "achieved_gflop_s" in b and peak else None),
                     "bench": b}
            r["params"] = b["params"]
            r["data_label"] = "synthetic data" if synthetic else b["data"]
            if ctx["datasheet"]:
                tflops = ctx["datasheet"][0 if dt == "bfloat16" else 1]
                if "achieved_gflop_s" in b:
                    r[dt]["datasheet_fraction"] = round(b["achieved_gflop_s"] / 1e3 / tflops, 4)

        if "share" not in args.skip:
            stage("bf16 FLOP share")
            c = cfg("train.compute_dtype=bfloat16")
            exp = Experiment(c, DatasetInfo.of(get_dataset(c.data, "train")))
            text = exp.train_step().lower(exp.abstract_state(), exp.abstract_batch()).as_text()
            share, detail = bf16_flop_share(text)
            r["bf16_flop_share"] = round(share, 4)
            r["bf16_flop_detail"] = {"total_flops": detail["total_flops"],
                                     "flops_by_operands": detail["flops_by_operands"],
                                     "ops": len(detail["ops"])}

        if "fsdp" not in args.skip:
            stage("fsdp")
            b = quiet(bench, cfg("train.mesh=fsdp", "train.shard_state=true"),
                      steps=args.steps, warmup=args.warmup, peak=False)
            n = jax.device_count()
            r["sharded"] = {"ms": b["ms_per_step_median"], "compile_s": b["compile_s"],
                            "mesh": f"fsdp:{n}", "devices": n,
                            "vs_fp32": round(b["ms_per_step_median"] / r["float32"]["ms"], 3),
                            "note": ctx["fsdp_note"], "bench": b}

        if args.train_steps:
            stage("trainer")
            r["trainer_ms"] = quiet(trainer_ms_per_step, cfg(), args.train_steps)
            r["trainer_ratio"] = round(r["trainer_ms"] / r["float32"]["ms"], 3)
        if args.sample_num:
            stage("sampler")
            exp, state, _ = setup(cfg())
            r["sampler"] = sample_throughput(exp, state.ema_params, args.sample_num)
        r["status"] = "ok"
        r.pop("stage", None)
    except Exception as e:  # one architecture's failure is its row's, not the run's
        r.update(status="failed", error=one_line(e), traceback=traceback.format_exc())
        print(f"{name}: failed in {r['stage']}: {one_line(e)}", flush=True)
        print(r["traceback"], file=sys.stderr, flush=True)
    r["seconds"] = round(time.perf_counter() - t_arch, 1)
    report.set_arch(name, r)
    return r


# --------------------------------------------------------------------------- memory table

def memory_row(size: str, r: dict, devices_gb: dict) -> dict:
    r = {"size": size, **r, "status": "ok"}
    r["fits"] = {k: "yes" if r["total_gib"] * 2 ** 30 <= v else "no"
                 for k, v in devices_gb.items()}
    return r


def memory_subprocess(size: str, per_device: int, timeout: float, devices_gb: dict) -> list:
    """The two rows (replicated, sharded) of one size from sharded_memory.py on 8 simulated
    CPU devices, or one failed row."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count="
                        f"{SIMULATED_DEVICES}").strip()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(MEMORY_SCRIPT), "--sizes", size,
               "--per-device", str(per_device), "--json", str(out)]
        if shutil.which("nice"):  # low priority: it may run beside the timings
            cmd = ["nice", "-n", "10", *cmd]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        _CHILDREN.append(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return [{"size": size, "status": "failed", "error": f"timed out after {timeout:.0f} s"}]
        finally:
            proc.kill()  # a no-op once it has exited; else (cut short) it goes with the run
            _CHILDREN.remove(proc)
        if proc.returncode or not out.exists():
            tail = " ".join((stderr or stdout).strip().splitlines()[-1:])
            return [{"size": size, "status": "failed",
                     "error": f"exit {proc.returncode}: {tail[:300]}", "stderr": stderr[-4000:]}]
        return [memory_row(size, r, devices_gb) for r in json.loads(out.read_text())]


def memory_in_process(size: str, per_device: int, devices_gb: dict, mod) -> list:
    rows = []
    for sharded in (False, True):
        r = mod.run(size, per_device, sharded)
        r["state"] = "sharded" if sharded else "replicated"
        rows.append(memory_row(size, r, devices_gb))
    return rows


def memory_table(sizes: list[str], args, report: Report, in_process: bool, deadline: float):
    mod = _sharded_memory_module()
    for size in sizes:
        t0 = time.perf_counter()
        try:
            if in_process:
                rows = memory_in_process(size, args.memory_per_device, mod.DEVICES_GB, mod)
            else:
                rows = memory_subprocess(size, args.memory_per_device,
                                         max(deadline - time.monotonic(), 1), mod.DEVICES_GB)
        except Exception as e:
            rows = [{"size": size, "status": "failed", "error": one_line(e),
                     "traceback": traceback.format_exc()}]
        report.add_memory(rows)
        for m in rows:
            print("memory | " + " | ".join(report.memory_cells(m)) + " |", flush=True)
        print(f"memory ~{size}B: {time.perf_counter() - t0:.0f} s", flush=True)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(ARCHS), help="comma list of " + ", ".join(ARCHS))
    p.add_argument("--steps", type=int, default=20, help="timed steps per dtype")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    p.add_argument("--train-steps", type=int, default=300, help="trainer steps (0: skip)")
    p.add_argument("--sample-num", type=int, default=64, help="samples in one call (0: skip)")
    p.add_argument("--peak-n", type=int, default=None,
                   help="n of the peak's matmul (default 4096; 1024 on a CPU)")
    p.add_argument("--skip", default="", type=lambda s: [x for x in s.split(",") if x],
                   help="comma list of stages to leave out: bf16 (its timing), share (the bf16 "
                        "FLOP share), fsdp")
    p.add_argument("--synthetic", action="store_true",
                   help="synthetic 28x28x1 data for the Fashion-MNIST configs even if the "
                        "files are there")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="[ARCH:]KEY=VALUE",
                   help="a config override for ARCH (or every architecture); repeatable")
    p.add_argument("--no-memory", action="store_true", help="skip the largest-model table")
    p.add_argument("--memory-sizes", default="0.3,1", help="U-Net sizes of that table (B params)")
    p.add_argument("--memory-per-device", type=int, default=32, help="images per device there")
    p.add_argument("--memory-timeout", type=float, default=420,
                   help="seconds for the whole memory table")
    p.add_argument("--out", default=None, help="folder for gpu_check.md and gpu_check.json")
    p.add_argument("--json", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ARCHS))
    if unknown:
        p.error(f"unknown architecture(s) {unknown}; choose from {', '.join(ARCHS)}")
    if set(args.skip) - {"bf16", "share", "fsdp"}:
        p.error(f"--skip {','.join(args.skip)}: choose from bf16, share, fsdp")
    try:
        sets = parse_sets(args.sets, names)
    except ValueError as e:
        p.error(str(e))
    sizes = [] if args.no_memory else [s.strip() for s in args.memory_sizes.split(",") if s.strip()]
    if sizes:
        known = _sharded_memory_module().SIZES
        if set(sizes) - set(known):
            p.error(f"--memory-sizes: choose from {', '.join(known)}")

    import jax
    import jax.numpy as jnp

    from jaxgen.runner.logging import format_table
    from jaxgen.runner.throughput import PEAK_TFLOPS, matmul_peak

    t_all = time.perf_counter()
    dev, backend, n_dev = jax.devices()[0], jax.default_backend(), jax.device_count()
    kind = getattr(dev, "device_kind", "") or ""
    print(f"backend {backend}, {n_dev} x {kind}", flush=True)
    datasheet = next((v for k, v in PEAK_TFLOPS.items() if k.lower() in kind.lower()), None)
    fsdp_note = (f"{n_dev} devices: the real FSDP step" if n_dev > 1 else
                 "1 device: the mesh is that one device, so this checks that the sharded "
                 "path runs (the state is not split)")
    report = Report(args.out, args.json, {
        "device": kind, "backend": backend, "device_count": n_dev, "jax": jax.__version__,
        "args": vars(args), "fsdp_note": fsdp_note,
        "datasheet_peak_tflops": (dict(zip(("bfloat16", "float32_tf32", "float32_highest"),
                                           datasheet)) if datasheet else None)})

    def on_sigterm(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    peak_n = args.peak_n or (1024 if backend == "cpu" else 4096)
    peak = {}
    for dt in ("float32", "bfloat16"):
        try:
            peak[dt] = matmul_peak(peak_n, dtype=getattr(jnp, dt))
        except Exception as e:
            print(f"matmul peak {dt}: failed: {one_line(e)}", flush=True)
    report.data["matmul_peak_gflop_s"] = peak
    report.data["matmul_peak_n"] = peak_n
    print(f"matmul peak GFLOP/s ({peak_n}^3): "
          + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()), flush=True)

    memory_thread, deadline = None, time.monotonic() + args.memory_timeout
    in_process = n_dev > 1
    if sizes:
        report.data["memory"].update(
            sizes=sizes, per_device=args.memory_per_device,
            source=(f"XLA:{backend.upper()} estimates on this machine's {n_dev} devices"
                    if in_process else
                    f"XLA:CPU estimates on {SIMULATED_DEVICES} simulated CPU devices "
                    "(a subprocess; temporaries are laid out differently from a GPU's)"))
        if not in_process and backend != "cpu":  # CPU work beside the accelerator's timings
            report.data["memory"]["concurrent"] = "alongside the timings, at nice 10"
            memory_thread = threading.Thread(
                target=memory_table, args=(sizes, args, report, False, deadline), daemon=True)
            memory_thread.start()
    report.write()

    ctx = {"sets": sets, "peak": peak, "datasheet": datasheet, "fsdp_note": fsdp_note}
    print("| " + " | ".join(HEADER) + " |", flush=True)
    status = "done"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ctx["tmp"] = Path(tmp)
            for name in names:
                r = run_arch(name, args, ctx, report)
                print("| " + " | ".join(report.arch_cells(name, r)) + " |", flush=True)
                print(f"{name}: {r['status']} ({time.perf_counter() - t_all:.0f} s so far)",
                      flush=True)
        if sizes and memory_thread is None:
            deadline = time.monotonic() + args.memory_timeout
            memory_table(sizes, args, report, in_process, deadline)
        elif memory_thread is not None:
            memory_thread.join(max(deadline - time.monotonic(), 0))
            if memory_thread.is_alive():
                done = {m["size"] for m in report.data["memory"]["rows"]}
                report.add_memory([{"size": s, "status": "failed",
                                    "error": "not finished in --memory-timeout"}
                                   for s in sizes if s not in done])
    except (Terminated, KeyboardInterrupt) as e:
        status = "cut by SIGTERM" if isinstance(e, Terminated) else "interrupted"
        print(f"\n{status}: the rows so far are kept", flush=True)
    finally:
        for proc in list(_CHILDREN):
            proc.kill()

    report.finish(status)
    d = report.data
    rows = [report.arch_cells(n, r) for n, r in d["archs"].items()]
    print(format_table(rows, header=HEADER, title=(
        f"\njaxgen GPU check: {n_dev} x {kind} ({backend}), matmul peak "
        + ", ".join(f"{k} {v:.0f}" for k, v in peak.items())
        + f" GFLOP/s, {time.perf_counter() - t_all:.0f} s, {status}")))
    print(f"fsdp: {fsdp_note}")
    if d["memory"]["rows"]:
        print(format_table([report.memory_cells(m) for m in d["memory"]["rows"]],
                           header=MEMORY_HEADER, title=(
            "\nLargest model: per-device memory of the U-Net's train step, "
            f"{args.memory_per_device} images/device; {d['memory']['source']}")))
    for where in filter(None, (args.out, args.json)):
        print(f"wrote {where}")
    failed = [n for n, r in d["archs"].items() if r["status"] == "failed"]
    failed += [f"memory ~{m['size']}B" for m in d["memory"]["rows"] if m["status"] != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    cut = [n for n in names if d["archs"].get(n, {}).get("status") in (None, "running")]
    if status != "done" and cut:
        print(f"not finished: {', '.join(cut)}", flush=True)
    if status != "done":
        return 124 if status.startswith("cut") else 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
