"""The `jaxgen` command. Generic commands here; each family adds its own from its folder
(`jaxgen.kernel.registry.register_command`: codes, compress, decompress, invert, edit).

    jaxgen train  --config CFG --workdir DIR [--config.KEY=VALUE ...]
    jaxgen sample --workdir DIR --num N --out FILE.png|FILE.npz [--raw-params] [--classes] [--time]
                  [--truncation PSI]   (sample.truncation of a GAN)
    jaxgen eval   --workdir DIR [--split test] [--step N] [--full] [--out FILE.json] [--force]
                  [--config.KEY=VALUE ...]   (results: DIR/eval/SPLIT_stepNNNNNNN[...].json)
    jaxgen pictures --workdir DIR [--out FOLDER] [--step N] [--raw-params] [--force]
    jaxgen bench  --config CFG [--steps 20] [--sample N] [--json FILE] [--config.KEY=VALUE ...]
    jaxgen config CFG [--config.KEY=VALUE ...]   (the resolved config, each key with its doc)
    jaxgen reproduce NAME|all [--out reports] [--budget 1] [--fast] [--force [--reuse-runs]]
    jaxgen classifier [--force]   (train + cache the Fashion-MNIST feature classifier)
    jaxgen fid-stats [--config CFG] --out FILE.npz [--split train] [--config.data.KEY=VALUE ...]
    jaxgen list

CFG is a config file or a shipped config's name (`flow_matching/toy2d`). The parsing is
thin; each command calls an importable function. jaxgen's own errors (`JaxgenError`:
a setting, an argument or a file to fix) print one line; anything else is a bug and
prints its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import time
from pathlib import Path

_OVERRIDE = "--config."


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    from jaxgen.kernel.errors import UsageError
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


CONFIG_HELP = "a config file, or a shipped config's name (e.g. flow_matching/toy2d)"


def _parser() -> argparse.ArgumentParser:
    from jaxgen.kernel import registry
    p = argparse.ArgumentParser(
        prog="jaxgen", description="Deep generative models in JAX: one trainer, pure objectives.",
        epilog="Override any config key with --config.KEY=VALUE, e.g. --config.train.steps=100.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a run")
    t.add_argument("--config", required=True, help=CONFIG_HELP)
    t.add_argument("--workdir", required=True, help="run folder; resumes if it holds a checkpoint")

    ck = sub.add_parser("check", help="run the objective contract on a config or a one-file "
                                      "plugin: build, 2 steps, resume, sample, likelihoods")
    ck.add_argument("target", help="FILE.py (its get_config()), or FILE.py:make (an objective; "
                                   "then --config names the config it runs on)")
    ck.add_argument("--config", default=None, help=CONFIG_HELP)

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

    e = sub.add_parser(
        "eval", help="exact likelihood and sample metrics on held-out data",
        description="Scores a run on held-out data, prints the results, then keeps them in "
                    "WORKDIR/eval/SPLIT_stepNNNNNNN[_full|_HASH].json: one file per split, "
                    "checkpoint and settings, so no evaluation replaces a different one. "
                    "The defaults of the shipped image configs are quick (about a minute on "
                    "2 CPU cores); --full runs the config's paper-grade settings (eval.full).")
    e.add_argument("--workdir", required=True)
    e.add_argument("--split", default="test", help="test (default), train, or a tfds split")
    e.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    e.add_argument("--full", action="store_true",
                   help="paper-grade evaluation: apply the config's eval.full preset (e.g. the "
                        "whole test set; `jaxgen config CFG` shows it); --config overrides "
                        "still apply on top")
    e.add_argument("--out", default=None,
                   help="write the results to this file instead of WORKDIR/eval/")
    e.add_argument("--force", action="store_true",
                   help="replace --out, or a file under WORKDIR/eval/ that holds a different "
                        "evaluation")

    pc = sub.add_parser("pictures", help="(re)draw a run's end-of-run pictures from a checkpoint")
    pc.add_argument("--workdir", required=True)
    pc.add_argument("--out", default=None, help="folder (default: WORKDIR/samples)")
    pc.add_argument("--step", type=int, default=None)
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--raw-params", action="store_true", help="use raw params instead of EMA")
    pc.add_argument("--force", action="store_true",
                    help="overwrite pictures of the same name in --out")

    b = sub.add_parser("bench", help="compile time, ms/step, FLOPs, fraction of matmul peak, "
                                     "memory of a config's train step")
    b.add_argument("--config", required=True, help=CONFIG_HELP)
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--json", default=None, help="also write the result here")
    b.add_argument("--sample", type=int, default=0, metavar="N",
                   help="also time the sampler drawing N at once (compiled first)")

    c = sub.add_parser("config", help="print a config resolved: every key, its value and doc")
    c.add_argument("config", help=CONFIG_HELP)

    rp = sub.add_parser("reproduce", help="measure a lecture claim: reports/NAME/report.md")
    rp.add_argument("name", help="a reproduction (jaxgen list shows them), all, or verdicts "
                                 "(the verdict table of the reports under --out, as markdown)")
    rp.add_argument("--out", default="reports", help="reports root (default: ./reports)")
    rp.add_argument("--budget", type=float, default=1.0,
                    help="scales the step counts (1 = the budget the report quotes)")
    rp.add_argument("--fast", action="store_true", help="tiny end-to-end run (tests)")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--force", action="store_true", help="replace an existing report folder")
    rp.add_argument("--reuse-runs", action="store_true",
                    help="with --force: keep the folder's trained runs (runs/) and measure again")

    cl = sub.add_parser("classifier", help="train and cache the Fashion-MNIST feature "
                        "classifier (FD / precision / recall in jaxgen eval)")
    cl.add_argument("--cache-dir", default=None, help="default: ~/.cache/jaxgen/fmnist_classifier")
    cl.add_argument("--force", action="store_true", help="retrain even if the cache is valid")

    fs = sub.add_parser(
        "fid-stats", help="Inception reference statistics of a dataset (pytorch-fid's .npz)",
        description="Streams a registered dataset's images through pytorch-fid's Inception-V3 "
                    "(converted by `jaxgen inception-weights`) and writes the mean and "
                    "covariance of the pool features as pytorch-fid's .npz (mu, sigma), for "
                    "eval.fid_ref. The data: --config CFG's data group, or --config.data.* "
                    "alone (e.g. --config.data.name=cifar10 --config.data.source=PATH).")
    fs.add_argument("--config", default=None, help=CONFIG_HELP + " (its data.* settings)")
    fs.add_argument("--out", required=True, help="the .npz to write")
    fs.add_argument("--split", default="train", help="train (default, as the papers) or test")
    fs.add_argument("--num", type=int, default=0, help="the first N images only (0: all)")
    fs.add_argument("--batch", type=int, default=250, help="images per feature call")
    fs.add_argument("--weights", default="", help="converted Inception weights (default: "
                                                  "$JAXGEN_CACHE/inception/)")
    fs.add_argument("--force", action="store_true", help="replace --out")
    sub.add_parser("list", help="configs, objectives, models, datasets, reproductions")

    for command in registry.commands():  # the families' own
        command.configure(sub.add_parser(command.name, help=command.help))
    return p


def cmd_train(args, overrides):
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.distributed import initialize_from_env
    initialize_from_env()
    from jaxgen.runner.loop import train_and_evaluate
    cfg = config_lib.load_config(args.config, overrides)
    train_and_evaluate(cfg, args.workdir)


def cmd_sample(args, overrides):
    import jax
    import numpy as np

    from jaxgen import viz
    from jaxgen.data import class_names
    from jaxgen.kernel import registry
    from jaxgen.kernel.errors import NonFiniteResultError, UsageError
    from jaxgen.runner import pictures, runs
    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise UsageError(f"--out {out}: use a .png (picture) or .npz (arrays) file name.")
    runs.refuse_existing(out, args.force)
    if args.num < 1:
        raise UsageError("--num must be >= 1.")
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params)
    info = exp.info
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
        if not hasattr(exp.sample_settings, "truncation"):
            raise UsageError(f"--truncation is the GAN truncation trick; objective "
                             f"{exp.objective.name} has no latent prior to truncate.")
        options["truncation"] = float(args.truncation)
    rng = jax.random.key(args.seed)
    if args.time:  # compile ahead of time, so the timing is sampling alone
        compile_s = exp.compile_sample(params, args.num, chunk=args.num, labels=labels, **options)
    t0 = time.perf_counter()
    try:
        x = exp.sample(params, rng, args.num, chunk=args.num if args.time else 1000,
                       labels=labels, finite=True, **options)
    except NonFiniteResultError as e:
        raise NonFiniteResultError(
            f"{e} ({args.workdir}, {exp.restored}); nothing was written. A damaged or "
            "diverged checkpoint: try --step N of an earlier one, or the other params "
            "(--raw-params or not).") from None
    wall = time.perf_counter() - t0
    if args.time:
        print(f"Sampled {args.num} in {wall:.2f} s: {1000 * wall / args.num:.1f} ms/sample, "
              f"{args.num / wall:.1f} samples/s (compile: {compile_s:.1f} s; "
              f"sample.* = {dict(sorted(exp.config.sample.to_dict().items()))})")
    decoder = registry.dataset_decoder(exp.config.data)  # latents or codes of another run
    if out.suffix == ".npz":
        extra = {} if labels is None else {"label": labels}
        images = None if decoder is None else decoder.decode(x)
        if images is not None:
            extra["images"] = images  # decoded by their autoencoder
        write = lambda path: np.savez(path, x=x, **extra)
    elif decoder is not None:
        images, note = pictures.decoded_images(exp, x, decoder)
        print(f"({note})")
        if images is None:  # latent vectors that cannot be drawn: kept as an .npy
            out = out.with_suffix(".npy")
            write = lambda path: np.save(path, x)
        else:
            write = lambda path: viz.save_image_grid(images, path)
    elif info.kind == "images" and labels is not None:
        write = lambda path: viz.save_image_rows(
            [x[labels == k] for k in range(info.num_classes)], path,
            row_labels=class_names(info.name, info.num_classes))
    elif info.kind == "images":
        write = lambda path: viz.save_image_grid(x, path)
    elif x.shape[-1] == 2:
        write = lambda path: viz.save_scatter(
            x, path, title=f"{args.num} samples ({'raw' if args.raw_params else 'EMA'})")
    else:
        raise UsageError(f"{info.dim}-D points cannot be drawn; use --out FILE.npz.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with runs.written_whole(out) as tmp:  # no partial file is left at --out
        write(tmp)
    print(f"Wrote {args.num} samples to {out}")


def cmd_eval(args, overrides):
    """Prints the results, then writes them (eval/ or --out). A run folder that cannot be
    written is still evaluated: one line says so first, the results are printed, exit 0."""
    from jaxgen.eval import evaluate as ev
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    if args.full:
        preset = ev.full_overrides(runs.workdir_config(args.workdir,
                                                       ev.name_overrides(overrides)))
        if not preset:
            raise UsageError(f"--full: the config of {args.workdir} declares no paper-grade "
                             "evaluation (eval.full is empty); pass --config.eval.* overrides.")
        overrides = [*preset, *overrides]  # the user's overrides win
    config = runs.workdir_config(args.workdir, overrides)
    from jaxgen.runner import provenance
    provenance.note_changes(args.workdir, config, lambda m: print(m, file=sys.stderr), "eval")
    write = True
    if args.out:
        runs.refuse_existing(args.out, args.force)
        if not runs.writable(Path(args.out)):
            raise UsageError(f"--out {args.out}: its folder cannot be written.")
    elif not runs.writable(Path(args.workdir) / ev.EVAL_DIR):
        print(runs.read_only_note(args.workdir), flush=True)
        write = False
    ev.evaluate(config, args.workdir, split=args.split, step=args.step, write=write,
                echo=True, out_path=args.out, overrides=overrides, force=args.force)


def cmd_pictures(args, overrides):
    import jax

    from jaxgen.data import get_dataset
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import pictures, runs
    folder = Path(args.out) if args.out else Path(args.workdir) / "samples"
    if not runs.writable(folder):  # before the restore and the drawing, not after
        raise UsageError(f"{folder} cannot be written (read-only, or not yours); pass --out "
                         "FOLDER to draw the pictures elsewhere.")
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params)
    dataset = get_dataset(exp.config.data, "train")
    if folder.exists() and any(folder.iterdir()) and args.out and not args.force:
        raise UsageError(f"{folder} is not empty; pass --force to draw into it (pictures of "
                         "the same name are replaced) or choose another --out.")
    done = pictures.write_end_of_run(exp, params, jax.random.key(args.seed), dataset, folder,
                                     say=lambda line: print(line, flush=True))
    if not done:
        print(f"{exp.objective.name} on {exp.info.name} has no end-of-run pictures beyond "
              "the sample grids (jaxgen sample).")
    for path, note in done:
        print(f"Wrote {path}{f' ({note})' if note else ''}")


def cmd_bench(args, overrides):
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import bench
    cfg = config_lib.load_config(args.config, overrides)
    bench(cfg, steps=args.steps, warmup=args.warmup, out=args.json, sample_num=args.sample)


def cmd_config(args, overrides):
    from jaxgen.kernel import config as config_lib
    cfg = config_lib.load_config(args.config, overrides)
    config_lib.check_model_keys(cfg)
    rows = config_lib.describe(cfg)
    width = max(len(k) for k, _, _ in rows)
    vwidth = min(28, max(len(v) for _, v, _ in rows))
    print(f"# {config_lib.find_config(args.config)}"
          + (f" with {' '.join('--config.' + o for o in overrides)}" if overrides else ""))
    for key, value, doc in rows:
        print(f"{key:<{width}}  {value:<{vwidth}}  # {doc}")


def cmd_reproduce(args, overrides):
    from jaxgen import reproduce
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner.logging import format_table
    if overrides:
        raise UsageError("jaxgen reproduce takes no --config overrides (use --budget, --seed).")
    if args.budget <= 0:
        raise UsageError(f"--budget must be > 0, got {args.budget}.")
    if args.reuse_runs and not args.force:
        raise UsageError("--reuse-runs replaces the report around the kept runs: add --force.")
    if args.name == "verdicts":
        print(reproduce.verdict_markdown(args.out))
        return
    names = reproduce.REPRODUCTIONS if args.name == "all" else (args.name,)
    budget = reproduce.Budget(scale=args.budget, fast=args.fast, seed=args.seed)
    if args.fast:
        print("--fast: tiny models and budgets, to check that a reproduction runs end to end; "
              "its figures do not test the claims (drop --fast for that).", flush=True)
    summary = []
    for name in names:
        rep = reproduce.run(name, args.out, budget=budget, force=args.force,
                            reuse_runs=args.reuse_runs)
        print(format_table([r[:3] + r[4:] for r in rep.rows], title=f"\n{rep.title}",
                           header=("quantity", "measured", "claimed", "")))
        print(f"Verdict: {rep.verdict_[0]}. {rep.verdict_[1]}")
        print(f"Wrote {rep.md} ({rep.seconds:.1f} s)")
        summary.append((name, str(rep.md), f"{rep.seconds:.1f}",
                        sum(r[4] == "agrees" for r in rep.rows),
                        sum(r[4] == "differs" for r in rep.rows), rep.verdict_[0]))
    if len(names) > 1:
        print(format_table(summary, title="\njaxgen reproduce all",
                           header=("reproduction", "report", "seconds", "agrees", "differs",
                                   "verdict")))


def cmd_classifier(args, overrides):
    from jaxgen.eval import classifier
    from jaxgen.kernel.errors import UsageError
    if overrides:
        raise UsageError("jaxgen classifier takes no --config overrides.")
    argv = (["--cache-dir", args.cache_dir] if args.cache_dir else []) + (
        ["--force"] if args.force else [])
    rc = classifier.main(argv)
    if rc:
        raise UsageError("training the classifier failed (see above).")


def cmd_fid_stats(args, overrides):
    from jaxgen.data import get_dataset
    from jaxgen.eval import fid
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    if args.config:
        config = config_lib.load_config(config_lib.find_config(args.config), overrides)
    else:
        if any(not o.startswith("data.") for o in overrides):
            raise UsageError("jaxgen fid-stats without --config takes only --config.data.* "
                             "overrides (the dataset's settings).")
        config = config_lib.apply_overrides(config_lib.base_config(), overrides)
    if args.num < 0 or args.batch < 1:
        raise UsageError("--num must be >= 0 and --batch >= 1.")
    runs.refuse_existing(args.out, args.force)
    net = fid.FeatureNet.load(args.weights)
    dataset = get_dataset(config.data, args.split)
    t0 = time.perf_counter()
    mu, sigma, n = fid.dataset_stats(dataset, net, args.batch, args.num)
    seconds = time.perf_counter() - t0
    path = fid.write_stats(args.out, mu, sigma, data=config_lib.to_json(config.data),
                           split=args.split, n=n, inception_sha256=net.sha256)
    print(f"Wrote {path}: {n} images of {dataset.name} ({args.split}) in {seconds:.1f} s "
          f"({n / seconds:.1f} images/s); weights {net.path} (sha256 {net.sha256[:12]}...)")


def cmd_check(args, overrides):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner.check import check_config
    target = args.target
    if ":" in Path(target).name:
        if not args.config:
            raise UsageError(f"{target} names an objective; name the config it runs on with "
                             "--config (e.g. --config flow_matching/toy2d), or check a file "
                             "that also defines get_config().")
        cfg = config_lib.load_config(args.config, [f"objective.name={target}", *overrides])
    else:
        if args.config:
            raise UsageError(f"{target} is a config file; drop --config, or name an "
                             "objective (FILE.py:make) to run on --config.")
        cfg = config_lib.load_config(target, overrides)
    return 0 if check_config(cfg) else 1


def cmd_list(args, overrides):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.reproduce import REPRODUCTIONS
    print("configs (--config PATH, or the name after configs/ without .py):\n  "
          + "\n  ".join(config_lib.shown_configs()))
    print("objectives:")
    for spec in registry.objective_specs():
        print(f"  {spec.name:<16} {spec.summary}")
    print("models:\n  " + "\n  ".join(registry.model_names()))
    print("datasets (data.name, or a file of your own: data.name=path/to/my_data.py:make):")
    for spec in registry.dataset_specs():
        print(f"  {spec.listed or spec.name:<16} {spec.summary}")
    print("reproductions (jaxgen reproduce NAME|all):\n  " + "\n  ".join(REPRODUCTIONS))


COMMANDS = {"train": cmd_train, "check": cmd_check, "sample": cmd_sample, "eval": cmd_eval,
            "pictures": cmd_pictures, "bench": cmd_bench, "config": cmd_config,
            "reproduce": cmd_reproduce, "classifier": cmd_classifier,
            "fid-stats": cmd_fid_stats, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    from jaxgen.runner import stops
    argv = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C and SIGTERM are handled from here on, before anything heavy is imported
    with stops.handled(next((a for a in argv if not a.startswith("-")), "jaxgen")):
        return _main(argv)


def _main(argv: list[str]) -> int:
    from jaxgen.kernel import registry
    from jaxgen.kernel.errors import JaxgenError, NonFiniteLossError
    try:
        rest, overrides = _split_overrides(argv)
    except JaxgenError as e:
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 2
    args = _parser().parse_args(rest)
    if overrides and args.command == "list":
        print("jaxgen: error: list takes no --config overrides", file=sys.stderr)
        return 2
    if not os.environ.get("JAXGEN_DEBUG"):
        # Library chatter (tfds's OpenCV hint, Orbax's notes) is not for the console.
        # Orbax's and asyncio's error logs repeat, as tracebacks from their threads, what
        # reaches the user as one exception (a full disk gave 400 lines before the one that
        # says so); JAXGEN_DEBUG=1 shows them.
        import logging

        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.FATAL)
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    run = COMMANDS.get(args.command)
    if run is None:
        run = registry.resolve(next(c.run for c in registry.commands()
                                    if c.name == args.command))
    try:
        code = run(args, overrides)
    except JaxgenError as e:  # a setting, argument or file to fix: one line
        if os.environ.get("JAXGEN_DEBUG"):
            raise
        print(f"jaxgen: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, NonFiniteLossError) else 2
    except KeyboardInterrupt:  # a second Ctrl-C in train, or one anywhere else
        if os.environ.get("JAXGEN_DEBUG"):
            raise
        print(f"\njaxgen: {args.command} aborted (Ctrl-C); what was written stays (train: "
              "rerun to resume from the last checkpoint).", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - only storage errors become one line; others re-raise
        message = storage_error(e)
        if message is None or os.environ.get("JAXGEN_DEBUG"):
            raise
        print(f"jaxgen: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


_STORAGE = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.EDQUOT: "disk quota exceeded"}


def storage_error(e: BaseException) -> str | None:
    """One line for a full disk, a read-only folder or a permission error, naming the path
    (also when a library wrapped the OSError, as Orbax's async writers do); None for others."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _STORAGE:
            where = e.filename or "a file"
            detail = f" ({e.strerror})" if e.strerror and e.strerror != os.strerror(e.errno) \
                else ""
            return (f"{_STORAGE[e.errno]} writing {where}{detail}. Free space or pick a "
                    "writable folder; a run resumes from its last checkpoint.")
        text = str(e)
        for code, what in _STORAGE.items():
            if os.strerror(code) in text or what in text.lower():
                paths = re.findall(r'"(/[^"]+)"', text)  # TensorStore quotes the file
                where = paths[-1] if paths else text.splitlines()[0][:300]
                return (f"{what} writing {where}. Free space or pick a writable folder; a "
                        "run resumes from its last checkpoint.")
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
