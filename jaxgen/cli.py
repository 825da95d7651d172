"""The `jaxgen` command: train | sample | eval | pictures | codes | compress | decompress |
invert | edit | bench | list.

    jaxgen train  --config CFG.py --workdir DIR [--config.KEY=VALUE ...]
    jaxgen sample --workdir DIR --num N --out FILE.png|FILE.npz [--raw-params] [--classes] [--time]
                  [--truncation PSI]   (GANs: the truncation trick, z ~ N(0, I) cut to [-PSI, PSI])
    jaxgen eval   --workdir DIR [--split test] [--config.KEY=VALUE ...]
    jaxgen pictures --workdir DIR [--out FOLDER] [--step N] [--raw-params] [--force]
    jaxgen codes  --workdir DIR --out FILE.npz [--split train] [--num N]   (VQ-VAE code maps)
    jaxgen compress   --workdir DIR --out FILE.jgac [--split test | --input FILE] [--num N]
    jaxgen decompress --workdir DIR --in FILE.jgac --out FILE.npz [--verify]
                  (lossless coding with an autoregressive model's conditionals)
    jaxgen classifier [--force]   (train + cache the Fashion-MNIST feature classifier)
    jaxgen reproduce NAME|all [--out reports] [--budget 1] [--fast] [--force [--reuse-runs]]
                  (a lecture claim measured: reports/NAME/report.md)
    jaxgen invert --workdir DIR [--num 16] [--steps 500] [--restarts 4] [--prior-weight 0]
                  [--out FOLDER]   (GAN inversion: z* with G(z*) = a picture; WORKDIR/inversion)
    jaxgen edit   --workdir DIR [--attribute footwear] [--num 8] [--n-latents 4000]
                  [--out FOLDER]   (GAN editing along a hyperplane normal; WORKDIR/edit)
    jaxgen bench  --config CFG.py [--steps 20] [--sample N] [--json FILE] [--config.KEY=VALUE ...]
    jaxgen list

The parsing is thin; each command calls an importable function
(`train_and_evaluate`, `evaluate`, `bench`, ...). Set JAXGEN_DEBUG=1 to get a
traceback instead of the one-line error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_OVERRIDE = "--config."


class UsageError(ValueError):
    pass


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    rest, overrides = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith(_OVERRIDE):
            body = a[len(_OVERRIDE):]
            if "=" not in body:
                if i + 1 >= len(argv):
                    raise UsageError(f"{a} needs a value: {a}=VALUE")
                body = f"{body}={argv[i + 1]}"
                i += 1
            overrides.append(body)
        else:
            rest.append(a)
        i += 1
    return rest, overrides


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jaxgen", description="Deep generative models in JAX: one trainer, pure objectives.",
        epilog="Override any config key with --config.KEY=VALUE, e.g. --config.train.steps=100.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a run")
    t.add_argument("--config", required=True, help="configs/<objective>/<data>.py")
    t.add_argument("--workdir", required=True, help="run folder; resumes if it holds a checkpoint")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("--workdir", required=True)
    s.add_argument("--num", type=int, default=64)
    s.add_argument("--out", required=True, help=".png (grid or 2-D scatter) or .npz (arrays)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    s.add_argument("--raw-params", action="store_true", help="use raw params instead of EMA")
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s.add_argument("--classes", action="store_true",
                   help="class-conditional models: --num/C samples per class, a row per class")
    s.add_argument("--time", action="store_true",
                   help="compile first, then time the sampling (prints ms/sample, samples/s)")
    s.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="GANs: the truncation trick, z ~ N(0, I) truncated to [-PSI, PSI] "
                        "(0: none; default: sample.truncation)")

    e = sub.add_parser("eval", help="exact likelihood and sample metrics on held-out data")
    e.add_argument("--workdir", required=True)
    e.add_argument("--split", default="test")
    e.add_argument("--step", type=int, default=None)

    pc = sub.add_parser("pictures", help="(re)draw a run's end-of-run pictures from a checkpoint")
    pc.add_argument("--workdir", required=True)
    pc.add_argument("--out", default=None, help="folder (default: WORKDIR/samples)")
    pc.add_argument("--step", type=int, default=None)
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--raw-params", action="store_true", help="use raw params instead of EMA")
    pc.add_argument("--force", action="store_true",
                    help="overwrite pictures of the same name in --out")

    cd = sub.add_parser("codes", help="export a VQ-VAE's code maps (to train a prior on)")
    cd.add_argument("--workdir", required=True)
    cd.add_argument("--out", required=True, help=".npz: codes (N, h, w) int, label (N,) if any")
    cd.add_argument("--split", default="train")
    cd.add_argument("--num", type=int, default=None, help="first N examples (default: all)")
    cd.add_argument("--batch-size", type=int, default=500)

    cp = sub.add_parser("compress", help="lossless compression with an autoregressive model")
    cp.add_argument("--workdir", required=True)
    cp.add_argument("--out", required=True, help="the compressed file (.jgac)")
    cp.add_argument("--split", default="test", help="the run's data split to compress")
    cp.add_argument("--input", default=None,
                    help=".npy/.npz of uint8 images (or int codes) instead of --split")
    cp.add_argument("--num", type=int, default=None, help="first N examples (default: all)")
    cp.add_argument("--batch-size", type=int, default=500,
                    help="examples coded side by side (recorded in the file)")
    cp.add_argument("--step", type=int, default=None)
    cp.add_argument("--raw-params", action="store_true")
    cp.add_argument("--json", default=None, help="also write the figures here")
    cp.add_argument("--force", action="store_true", help="overwrite --out")

    cl = sub.add_parser("classifier", help="train and cache the Fashion-MNIST feature "
                        "classifier (FD / precision / recall in jaxgen eval)")
    cl.add_argument("--cache-dir", default=None, help="default: ~/.cache/jaxgen/fmnist_classifier")
    cl.add_argument("--force", action="store_true", help="retrain even if the cache is valid")

    rp = sub.add_parser("reproduce", help="measure a lecture claim: reports/NAME/report.md")
    rp.add_argument("name", help="a reproduction (jaxgen list shows them) or all")
    rp.add_argument("--out", default="reports", help="reports root (default: ./reports)")
    rp.add_argument("--budget", type=float, default=1.0,
                    help="scales the step counts (1 = the budget the report quotes)")
    rp.add_argument("--fast", action="store_true", help="tiny end-to-end run (tests)")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--force", action="store_true", help="replace an existing report folder")
    rp.add_argument("--reuse-runs", action="store_true",
                    help="with --force: keep the folder's trained runs (runs/) and measure again")

    dp = sub.add_parser("decompress", help="decode a `jaxgen compress` file")
    dp.add_argument("--workdir", required=True, help="the run that compressed it")
    dp.add_argument("--in", dest="input", required=True)
    dp.add_argument("--out", required=True, help=".npz: x (the decoded examples)")
    dp.add_argument("--verify", action="store_true",
                    help="compare byte for byte with the source the header names")
    dp.add_argument("--force", action="store_true", help="overwrite --out")
    cd.add_argument("--step", type=int, default=None)
    cd.add_argument("--raw-params", action="store_true")
    cd.add_argument("--force", action="store_true", help="overwrite --out if it exists")

    iv = sub.add_parser("invert", help="GAN inversion: find z* with G(z*) = a given picture")
    iv.add_argument("--workdir", required=True)
    iv.add_argument("--out", default=None, help="folder (default: WORKDIR/inversion)")
    iv.add_argument("--num", type=int, default=16, help="targets of each kind")
    iv.add_argument("--steps", type=int, default=500, help="Adam steps on z")
    iv.add_argument("--restarts", type=int, default=4, help="random starts per target (best kept)")
    iv.add_argument("--lr", type=float, default=0.05)
    iv.add_argument("--prior-weight", type=float, default=0.0,
                    help="loss += PRIOR_WEIGHT * |z|^2 / latent_dim")
    iv.add_argument("--num-reference", type=int, default=1000,
                    help="random samples G(z) the nearest-sample reference picks from")
    iv.add_argument("--seed", type=int, default=0)
    iv.add_argument("--step", type=int, default=None)
    iv.add_argument("--raw-params", action="store_true")
    iv.add_argument("--force", action="store_true", help="overwrite the outputs in --out")

    ed = sub.add_parser("edit", help="GAN editing: move z along an attribute's hyperplane normal")
    ed.add_argument("--workdir", required=True)
    ed.add_argument("--out", default=None, help="folder (default: WORKDIR/edit)")
    ed.add_argument("--attribute", default="footwear",
                    help="footwear, upper_body, trouser, dress, bag, or class ids like 5,7,9")
    ed.add_argument("--num", type=int, default=8, help="rows (latents) in edit.png")
    ed.add_argument("--n-latents", type=int, default=4000,
                    help="generated images labelled to fit the latent direction")
    ed.add_argument("--threshold", default="0.5",
                    help="attribute probability above which G(z) has it, or 'median'")
    ed.add_argument("--t-max", type=float, default=None,
                    help="strip end T (default: 2x the rows' largest distance to the hyperplane)")
    ed.add_argument("--num-train", type=int, default=10000,
                    help="training images for the pixel attribute classifier")
    ed.add_argument("--seed", type=int, default=0)
    ed.add_argument("--step", type=int, default=None)
    ed.add_argument("--raw-params", action="store_true")
    ed.add_argument("--force", action="store_true", help="overwrite the outputs in --out")

    b = sub.add_parser("bench", help="compile time, ms/step, FLOPs, fraction of matmul peak, "
                                     "memory of a config's train step")
    b.add_argument("--config", required=True)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--json", default=None, help="also write the result here")
    b.add_argument("--sample", type=int, default=0, metavar="N",
                   help="also time the sampler drawing N at once (compiled first)")

    sub.add_parser("list", help="configs, objectives, models and datasets")
    return p


def _workdir_config(workdir: str, overrides: list[str]):
    from jaxgen import config as config_lib
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{workdir} holds no jaxgen run (no config.json). Train first: "
            f"jaxgen train --config CFG.py --workdir {workdir}")
    cfg = config_lib.from_json_file(path)
    config_lib.apply_overrides(cfg, overrides)
    return cfg


def cmd_train(args, overrides):
    from jaxgen import config as config_lib
    from jaxgen.train.distributed import initialize_from_env
    initialize_from_env()
    from jaxgen.train.loop import train_and_evaluate
    cfg = config_lib.load_config(args.config, overrides)
    train_and_evaluate(cfg, args.workdir)


def cmd_sample(args, overrides):
    import jax
    import numpy as np

    from jaxgen import viz
    from jaxgen.data import class_names
    from jaxgen.experiment import Experiment, read_run_info
    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise UsageError(f"--out {out}: use a .png (picture) or .npz (arrays) file name.")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or choose another --out.")
    if args.num < 1:
        raise UsageError("--num must be >= 1.")
    cfg = _workdir_config(args.workdir, overrides)
    info = read_run_info(Path(args.workdir))
    exp = Experiment(cfg, info)
    state, _ = exp.restore(args.workdir, args.step)
    params = state.params if args.raw_params else state.ema_params
    labels = None
    if args.classes:
        c = info.num_classes
        if not c or not getattr(exp.model, "num_classes", None):
            raise UsageError("--classes needs a class-conditional model (model.num_classes set).")
        if args.num < c:
            raise UsageError(f"--classes draws --num/{c} samples per class; use --num >= {c}.")
        labels = np.repeat(np.arange(c), args.num // c)
        args.num = len(labels)
    options = {}
    if args.truncation is not None:
        if "latents" not in exp.objective.info:
            raise UsageError(f"--truncation is the GAN truncation trick; objective "
                             f"{exp.objective.name} has no latent prior to truncate.")
        if args.truncation < 0:
            raise UsageError(f"--truncation must be >= 0 (0: none), got {args.truncation}.")
        options["truncation"] = float(args.truncation)
    rng = jax.random.key(args.seed)
    if args.time:  # compile ahead of time, so the timing is sampling alone
        compile_s = exp.compile_sample(params, args.num, chunk=args.num, labels=labels, **options)
    t0 = time.perf_counter()
    x = exp.sample(params, rng, args.num, chunk=args.num if args.time else 1000, labels=labels,
                   **options)
    wall = time.perf_counter() - t0
    if args.time:
        print(f"Sampled {args.num} in {wall:.2f} s: {1000 * wall / args.num:.1f} ms/sample, "
              f"{args.num / wall:.1f} samples/s (compile: {compile_s:.1f} s; "
              f"sample.* = {dict(sorted(cfg.sample.to_dict().items()))})")
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if labels is None else {"label": labels}
        if info.kind == "tokens":
            from jaxgen.train.token_pictures import decode
            images = decode(cfg, x)
            if images is not None:
                extra["images"] = images  # the codes decoded by their VQ-VAE
        np.savez(out, x=x, **extra)
    elif info.kind == "tokens":
        from jaxgen.train.token_pictures import write_token_samples
        _, note = write_token_samples(exp, x, out)
        print(f"({note})")
    elif info.kind == "images" and labels is not None:
        viz.save_image_rows([x[labels == k] for k in range(info.num_classes)], out,
                            row_labels=class_names(info.name, info.num_classes))
    elif info.kind == "images":
        viz.save_image_grid(x, out)
    elif x.shape[-1] == 2:
        viz.save_scatter(x, out,
                         title=f"{args.num} samples ({'raw' if args.raw_params else 'EMA'})")
    else:
        raise UsageError(f"{info.dim}-D points cannot be drawn; use --out FILE.npz.")
    print(f"Wrote {args.num} samples to {out}")


def cmd_eval(args, overrides):
    from jaxgen.eval.evaluate import evaluate
    cfg = _workdir_config(args.workdir, overrides)
    evaluate(cfg, args.workdir, split=args.split, step=args.step)


def _restore(args, overrides, check=None):
    """(exp, params) of the run in args.workdir; `check(exp)` runs before the restore."""
    from jaxgen.experiment import Experiment, read_run_info
    cfg = _workdir_config(args.workdir, overrides)
    info = read_run_info(Path(args.workdir))
    exp = Experiment(cfg, info)
    if check is not None:
        check(exp)
    state, _ = exp.restore(args.workdir, args.step)
    return exp, (state.params if args.raw_params else state.ema_params)


def cmd_pictures(args, overrides):
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.train import pictures
    folder = Path(args.out) if args.out else Path(args.workdir) / "samples"
    exp, params = _restore(args, overrides)
    dataset = get_dataset(exp.config.data, "train")
    if folder.exists() and any(folder.iterdir()) and args.out and not args.force:
        raise UsageError(f"{folder} is not empty; pass --force to draw into it (pictures of "
                         "the same name are replaced) or choose another --out.")
    done = pictures.write_end_of_run(exp, params, jax.random.key(args.seed), dataset, folder)
    if not done:
        print(f"{exp.objective.name} on {exp.info.name} has no end-of-run pictures beyond "
              "the sample grids (jaxgen sample).")
    for path, note in done:
        print(f"Wrote {path}{f' ({note})' if note else ''}")


def cmd_codes(args, overrides):
    import jax
    import numpy as np
    from tqdm.auto import tqdm

    from jaxgen.data import get_dataset, transforms
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: use a .npz file name.")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or choose another --out.")
    exp, params = _restore(args, overrides)
    encode = exp.objective.info.get("encode_codes")
    if encode is None:
        raise UsageError(f"objective {exp.objective.name} has no discrete codes; "
                         "`jaxgen codes` exports a VQ-VAE's (objective.name=vqvae).")
    source = get_dataset(exp.config.data, args.split).source
    n = len(source) if args.num is None else min(args.num, len(source))
    fn = jax.jit(lambda p, x: encode(p, transforms.preprocess(
        exp.info.kind, x, None, dequantize=False)))
    codes, labels = [], []
    bs = max(1, args.batch_size)
    for lo in tqdm(range(0, n, bs), desc=f"encoding {args.split}"):
        batch = source.get(np.arange(lo, min(lo + bs, n)))
        codes.append(np.asarray(fn(params, batch["x"])))
        if "label" in batch:
            labels.append(np.asarray(batch["label"]))
    codes = np.concatenate(codes).astype(np.int32)
    arrays = {"codes": codes, "num_codes": np.int32(exp.objective.info["num_codes"]),
              "vqvae_workdir": np.array(str(Path(args.workdir).resolve()))}
    if labels:
        arrays["label"] = np.concatenate(labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    used = len(np.unique(codes))
    print(f"Wrote {out}: codes {codes.shape} over {arrays['num_codes']} codes "
          f"({used} used){', label ' + str(arrays['label'].shape) if labels else ''}")


def _coding_source(exp, split: str | None, input_path: str | None, num: int | None):
    """The raw examples to code: the first `num` of a split, or of the user's file."""
    import numpy as np

    from jaxgen.data import get_dataset, load_array_file
    if input_path:
        src = load_array_file(input_path)
        where = {"input": str(Path(input_path).resolve())}
    else:
        src = get_dataset(exp.config.data, split).source
        where = {"split": split}
    n = len(src) if num is None else min(num, len(src))
    if n < 1:
        raise UsageError("--num must be >= 1.")
    where["first"] = n
    return src.get(np.arange(n))["x"], where


def cmd_compress(args, overrides):
    import json

    import jax
    import numpy as np
    from tqdm.auto import tqdm

    from jaxgen.coding import codec
    from jaxgen.data import transforms
    from jaxgen.train.logging import format_table
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or choose another --out.")
    if args.input and args.split != "test":
        raise UsageError("give --split or --input, not both.")

    def check(exp):
        if exp.objective.info.get("coder") is None:
            raise UsageError(f"{args.workdir} is a {exp.objective.name} run; compression needs "
                             "an autoregressive model of images or code maps "
                             "(configs/autoregressive/).")
    exp, params = _restore(args, overrides, check)
    raw, where = _coding_source(exp, args.split, args.input, args.num)
    coder = exp.objective.info["coder"]
    step = _checkpoint_step(args)
    meta = {"workdir": str(Path(args.workdir).resolve()), "step": step,
            "params": "raw" if args.raw_params else "ema", "objective": exp.objective.name,
            "model": exp.config.model.name, "source": where}
    # the model's own NLL of the same examples (parallel pass), the figure to match
    log_probs = jax.jit(exp.objective.info["log_probs"])
    nll, bs = [], max(1, min(args.batch_size, int(exp.config.eval.batch_size)))
    for lo in range(0, len(raw), bs):  # eval.batch_size: the run's memory-safe parallel batch
        x = transforms.preprocess(exp.info.kind, raw[lo:lo + bs], None, dequantize=False)
        nll.append(-np.asarray(log_probs(params, x), np.float64).sum(1) / np.log(2))
    nll_bits = float(np.mean(np.concatenate(nll)))
    with tqdm(total=len(raw) * coder.dim, desc="encoding", unit="sym",
              unit_scale=True) as bar:
        data, st = codec.compress(exp.objective, params, raw, batch_size=args.batch_size,
                                  model_meta=meta, progress=bar)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    base = codec.baselines(raw)
    d = coder.dim
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


def _checkpoint_step(args) -> int:
    from jaxgen.train.checkpoint import Checkpointer
    if args.step is not None:
        return int(args.step)
    ckpt = Checkpointer(Path(args.workdir) / "checkpoints", read_only=True)
    try:
        return int(ckpt.latest_step())
    finally:
        ckpt.close()


def cmd_decompress(args, overrides):
    import numpy as np
    from tqdm.auto import tqdm

    from jaxgen.coding import codec
    src, out = Path(args.input), Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: use a .npz file name.")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to overwrite it or choose another --out.")
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist.")
    data = src.read_bytes()
    header, _ = codec.read_header(data)
    m = header["model"]
    args.step, args.raw_params = m.get("step"), m.get("params") == "raw"
    exp, params = _restore(args, overrides)
    t0 = time.perf_counter()
    with tqdm(total=header["n"] * header["dim"], desc="decoding", unit="sym",
              unit_scale=True) as bar:
        raw, header = codec.decompress(exp.objective, params, data, progress=bar)
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=raw)
    print(f"Wrote {out}: x {raw.shape} {raw.dtype} (CRC-32 matches the original's); decoding "
          f"{seconds:.1f} s ({header['n'] / seconds:.1f} examples/s).")
    if args.verify:
        where = m["source"]
        ref, _ = _coding_source(exp, where.get("split"), where.get("input"), where["first"])
        same = ref.shape == raw.shape and ref.dtype == raw.dtype and np.array_equal(ref, raw)
        print(f"Byte-for-byte equal to the source ({where}): {'yes' if same else 'NO'}")
        if not same:
            raise UsageError("the decoded examples differ from the source.")


def cmd_classifier(args, overrides):
    from jaxgen.eval import classifier
    if overrides:
        raise UsageError("jaxgen classifier takes no --config overrides.")
    argv = (["--cache-dir", args.cache_dir] if args.cache_dir else []) + (
        ["--force"] if args.force else [])
    rc = classifier.main(argv)
    if rc:
        raise UsageError("training the classifier failed (see above).")


def cmd_reproduce(args, overrides):
    from jaxgen import reproduce
    from jaxgen.train.logging import format_table
    if overrides:
        raise UsageError("jaxgen reproduce takes no --config overrides (use --budget, --seed).")
    if args.budget <= 0:
        raise UsageError(f"--budget must be > 0, got {args.budget}.")
    if args.reuse_runs and not args.force:
        raise UsageError("--reuse-runs replaces the report around the kept runs: add --force.")
    names = reproduce.REPRODUCTIONS if args.name == "all" else (args.name,)
    budget = reproduce.Budget(scale=args.budget, fast=args.fast, seed=args.seed)
    summary = []
    for name in names:
        try:
            rep = reproduce.run(name, args.out, budget=budget, force=args.force,
                                reuse_runs=args.reuse_runs)
        except FileExistsError as e:
            raise UsageError(str(e)) from None
        print(format_table([r[:3] + r[4:] for r in rep.rows], title=f"\n{rep.title}",
                           header=("quantity", "measured", "claimed", "")))
        print(f"Wrote {rep.md} ({rep.seconds:.1f} s)")
        summary.append((name, str(rep.md), f"{rep.seconds:.1f}",
                        sum(r[4] == "agrees" for r in rep.rows),
                        sum(r[4] == "differs" for r in rep.rows)))
    if len(names) > 1:
        print(format_table(summary, title="\njaxgen reproduce all",
                           header=("reproduction", "report", "seconds", "agrees", "differs")))


def _refuse_overwrite(folder: Path, names, force: bool) -> None:
    there = [n for n in names if (folder / n).exists()]
    if there and not force:
        raise UsageError(f"{folder / there[0]} exists; pass --force to overwrite it or choose "
                         "another --out.")


def cmd_invert(args, overrides):
    from jaxgen.data import get_dataset
    from jaxgen.eval import gan_inversion
    from jaxgen.train.logging import format_table
    for flag, v in (("--num", args.num), ("--steps", args.steps), ("--restarts", args.restarts),
                    ("--num-reference", args.num_reference)):
        if v < 1:
            raise UsageError(f"{flag} must be >= 1, got {v}.")
    if args.prior_weight < 0 or args.lr <= 0:
        raise UsageError("--prior-weight must be >= 0 and --lr > 0.")
    folder = Path(args.out) if args.out else Path(args.workdir) / "inversion"
    _refuse_overwrite(folder, gan_inversion.INVERSION_FILES, args.force)
    exp, params = _restore(args, overrides,
                           check=lambda e: gan_inversion.gan_info(e, "invert"))
    test = get_dataset(exp.config.data, "test").source
    r = gan_inversion.run_inversion(
        exp, params, test, folder, num=args.num, steps=args.steps, restarts=args.restarts,
        lr=args.lr, prior_weight=args.prior_weight, seed=args.seed,
        num_reference=args.num_reference)
    print(format_table(gan_inversion.inversion_rows(r),
                       title=f"GAN inversion ({args.num} targets each, {args.steps} Adam steps, "
                             f"best of {args.restarts} starts; mse in model space)"))
    print(f"Wrote {folder / 'inversion.json'}, inversion_generated.png, inversion_real.png")


def cmd_edit(args, overrides):
    from jaxgen.data import get_dataset
    from jaxgen.eval import gan_inversion
    from jaxgen.objectives import gan_tools
    from jaxgen.train.logging import format_table
    if args.num < 1 or args.n_latents < 10:
        raise UsageError("--num must be >= 1 and --n-latents >= 10.")
    threshold = args.threshold
    if threshold != "median":
        try:
            threshold = float(threshold)
        except ValueError:
            raise UsageError(f"--threshold {threshold!r}: a probability in (0, 1) or "
                             "'median'.") from None
        if not 0 < threshold < 1:
            raise UsageError(f"--threshold must lie in (0, 1), got {threshold}.")
    positive = gan_tools.attribute_classes(args.attribute)
    folder = Path(args.out) if args.out else Path(args.workdir) / "edit"
    _refuse_overwrite(folder, gan_inversion.EDIT_FILES, args.force)
    exp, params = _restore(args, overrides, check=gan_inversion.check_editable)
    clf = gan_inversion.pixel_labeler(exp.info.kind, get_dataset(exp.config.data, "train").source,
                                      get_dataset(exp.config.data, "test").source, positive,
                                      num_train=args.num_train, seed=args.seed)
    print(f"pixel classifier for {args.attribute} (classes {positive} vs the rest): accuracy "
          f"{clf.train_accuracy:.3f} train, {clf.test_accuracy:.3f} held-out test")
    r = gan_inversion.run_edit(exp, params, folder, clf.prob, name=args.attribute, num=args.num,
                               n_latents=args.n_latents, threshold=threshold,
                               t_max=args.t_max, seed=args.seed,
                               extra={"classes": list(positive),
                                      "classifier_train_accuracy": clf.train_accuracy,
                                      "classifier_test_accuracy": clf.test_accuracy})
    print(format_table(gan_inversion.edit_rows(r),
                       title=f"mean P({args.attribute}) along G(z + t n), {r['rows']} rows "
                             f"(hyperplane normal; rises: {r['rises']})"))
    print(f"Wrote {folder / 'edit.png'} and edit.json")


def cmd_bench(args, overrides):
    from jaxgen import config as config_lib
    from jaxgen.bench import bench
    cfg = config_lib.load_config(args.config, overrides)
    bench(cfg, steps=args.steps, warmup=args.warmup, out=args.json, sample_num=args.sample)


def cmd_list(args, overrides):
    from jaxgen import config as config_lib, registry
    from jaxgen.data import dataset_names
    root = config_lib.repo_root()
    print("configs:")
    for p in config_lib.find_configs():
        try:
            shown = p.relative_to(Path.cwd())
        except ValueError:
            shown = p.relative_to(root) if p.is_relative_to(root) else p
        print(f"  {shown}")
    print("objectives:\n  " + "\n  ".join(registry.objective_names()))
    print("models:\n  " + "\n  ".join(registry.model_names()))
    print("datasets:\n  " + "\n  ".join(dataset_names()))
    from jaxgen.reproduce import REPRODUCTIONS
    print("reproductions (jaxgen reproduce NAME|all):\n  " + "\n  ".join(REPRODUCTIONS))


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval,
            "pictures": cmd_pictures, "codes": cmd_codes, "compress": cmd_compress,
            "decompress": cmd_decompress, "reproduce": cmd_reproduce, "classifier": cmd_classifier,
            "invert": cmd_invert,
            "edit": cmd_edit, "bench": cmd_bench, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, overrides = _split_overrides(argv)
    except UsageError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    args = _parser().parse_args(rest)
    if overrides and args.command == "list":
        print("jaxgen: error: list takes no --config overrides", file=sys.stderr)
        return 2
    if not os.environ.get("JAXGEN_DEBUG"):
        # Library chatter (tfds's OpenCV hint, Orbax's notes) is not for the console.
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    from jaxgen.config import ConfigError
    from jaxgen.registry import UnknownNameError
    from jaxgen.train.loop import NonFiniteLossError
    try:
        COMMANDS[args.command](args, overrides)
    except NonFiniteLossError as e:
        if os.environ.get("JAXGEN_DEBUG"):
            raise
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 1
    except (ConfigError, UnknownNameError, UsageError, FileNotFoundError, ValueError) as e:
        if os.environ.get("JAXGEN_DEBUG"):
            raise
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
