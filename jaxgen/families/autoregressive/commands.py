"""`jaxgen compress` / `jaxgen decompress`: lossless coding of images (or VQ code maps) with an
autoregressive model's exact conditionals (`jaxgen.coding.codec`)."""

from __future__ import annotations

import time
from pathlib import Path


def configure_compress(p) -> None:
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True, help="the compressed file (.jgac)")
    p.add_argument("--split", default="test", help="the run's data split to compress")
    p.add_argument("--input", default=None,
                   help=".npy/.npz of uint8 images (or int codes) instead of --split")
    p.add_argument("--num", type=int, default=None, help="first N examples (default: all)")
    p.add_argument("--batch-size", type=int, default=500,
                   help="examples coded side by side (recorded in the file)")
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--raw-params", action="store_true")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--force", action="store_true", help="overwrite --out")


def configure_decompress(p) -> None:
    p.add_argument("--workdir", required=True, help="the run that compressed it")
    p.add_argument("--in", dest="input", required=True)
    p.add_argument("--out", required=True, help=".npz: x (the decoded examples)")
    p.add_argument("--verify", action="store_true",
                   help="compare byte for byte with the source the header names")
    p.add_argument("--given", default=None,
                   help=".npz/.npy whose x holds each example's conditioning prefix (a "
                        "model with objective.condition_prefix: e.g. the decoded top codes)")
    p.add_argument("--force", action="store_true", help="overwrite --out")


def coding_source(exp, split: str | None, input_path: str | None, num: int | None):
    """The raw examples to code: the first `num` of a split, or of the user's file."""
    import numpy as np

    from jaxgen.data import get_dataset, read_array_file
    from jaxgen.kernel.errors import UsageError
    if input_path:
        src = read_array_file(input_path)
        where = {"input": str(Path(input_path).resolve())}
    else:
        src = get_dataset(exp.config.data, split).source
        where = {"split": split}
    n = len(src) if num is None else min(num, len(src))
    if n < 1:
        raise UsageError("--num must be >= 1.")
    where["first"] = n
    return src.get(np.arange(n))["x"], where


def _check_coder(exp) -> None:
    from jaxgen.families.autoregressive.objective import ARTools
    from jaxgen.kernel.errors import UsageError
    if exp.objective.coder is None or not isinstance(exp.objective.tools, ARTools):
        raise UsageError(f"the run is a {exp.objective.name} run; compression needs an "
                         "autoregressive model of images or code maps "
                         "(configs/autoregressive/).")


def compress(args, overrides) -> None:
    import json

    import jax
    import numpy as np

    from jaxgen.coding import codec
    from jaxgen.kernel import transforms
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    from jaxgen.runner.logging import format_table, progress_bar
    out = Path(args.out)
    runs.refuse_existing(out, args.force)
    if args.input and args.split != "test":
        raise UsageError("give --split or --input, not both.")
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params,
                               check=_check_coder)
    raw, where = coding_source(exp, args.split, args.input, args.num)
    coder = exp.objective.coder
    step = runs.checkpoint_step(args.workdir, args.step)
    meta = {"workdir": str(Path(args.workdir).resolve()), "step": step,
            "params": "raw" if args.raw_params else "ema", "objective": exp.objective.name,
            "model": exp.config.model.name, "source": where}
    # the model's own NLL of the same examples (parallel pass), the figure to match
    log_probs = jax.jit(exp.objective.tools.log_probs)
    nll, bs = [], max(1, min(args.batch_size, int(exp.config.eval.batch_size)))
    for lo in range(0, len(raw), bs):  # eval.batch_size: the run's memory-safe parallel batch
        x = transforms.preprocess(exp.info.kind, raw[lo:lo + bs], None, dequantize=False)
        nll.append(-np.asarray(log_probs(params, x), np.float64).sum(1) / np.log(2))
    nll_bits = float(np.mean(np.concatenate(nll)))
    with progress_bar(len(raw) * coder.dim, 0, True, desc="encoding", unit="symbol") as bar:
        data, st = codec.compress(exp.objective, params, raw, batch_size=args.batch_size,
                                  model_meta=meta, progress=bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    p = getattr(coder, "given", 0)  # a conditioning prefix is not coded: neither by these
    base = codec.baselines(raw.reshape(len(raw), -1)[:, p:] if p else raw)
    d = coder.dim - p
    coded = st["bits_per_example"]
    rows = [("model NLL (exact, parallel pass)", nll_bits),
            ("arithmetic code (payload)", coded),
            ("arithmetic code (whole file)", 8.0 * st["file_bytes"] / st["n"])]
    rows += [(name, base[key]) for key, name in (
        ("png", "PNG per example (Pillow, optimize)"), ("gzip_each", "gzip -9 per example"),
        ("gzip_all", "gzip -9 of the whole array"), ("raw", "raw"))
        if key in base]
    table = [(name, f"{b:.1f}", f"{b / d:.4f}", f"{b / nll_bits:.4f}") for name, b in rows]
    print(format_table(table, title=f"\njaxgen compress: {st['n']} examples of {d} symbols "
                       f"({', '.join(f'{k}={v}' for k, v in where.items())}), K = "
                       f"{coder.num_bins}", header=("codec", "bits/example", "bits/dim",
                                                    "x model NLL")))
    gap = coded - nll_bits
    print(f"Wrote {out} ({st['file_bytes']:,} bytes). Code - NLL = {gap:.2f} bits/example "
          f"({100 * gap / nll_bits:.3f} %); encoding {st['seconds']:.1f} s "
          f"({st['n'] / st['seconds']:.1f} examples/s).")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"nll_bits": nll_bits, "coded_bits": coded, **{f"{k}_bits": v for k, v in base.items()},
             **st, "dim": d, "num_bins": coder.num_bins, "source": where}, indent=2))


def decompress(args, overrides) -> None:
    import numpy as np

    from jaxgen.coding import codec
    from jaxgen.kernel.errors import MissingError, UsageError
    from jaxgen.runner import runs
    from jaxgen.runner.logging import progress_bar
    src, out = Path(args.input), Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: use a .npz file name.")
    runs.refuse_existing(out, args.force)
    if not src.exists():
        raise MissingError(f"{src} does not exist.")
    data = src.read_bytes()
    header, _ = codec.read_header(data)
    m = header["model"]
    exp, params = runs.restore(args.workdir, overrides, m.get("step"),
                               m.get("params") == "raw", check=_check_coder)
    t0 = time.perf_counter()
    given = None
    if args.given:
        loaded = np.load(args.given)
        given = np.asarray(loaded["x"] if hasattr(loaded, "files") else loaded)
    with progress_bar(header["n"] * header["dim"], 0, True, desc="decoding",
                      unit="symbol") as bar:
        raw, header = codec.decompress(exp.objective, params, data, progress=bar, given=given)
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=raw)
    print(f"Wrote {out}: x {raw.shape} {raw.dtype} (CRC-32 matches the original's); decoding "
          f"{seconds:.1f} s ({header['n'] / seconds:.1f} examples/s).")
    if args.verify:
        where = m["source"]
        ref, _ = coding_source(exp, where.get("split"), where.get("input"), where["first"])
        same = ref.shape == raw.shape and ref.dtype == raw.dtype and np.array_equal(ref, raw)
        print(f"Byte-for-byte equal to the source ({where}): {'yes' if same else 'NO'}")
        if not same:
            raise UsageError("the decoded examples differ from the source.")
