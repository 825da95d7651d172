"""`jaxgen codes`: export a VQ-VAE's code maps (to train an autoregressive prior on); a
VQ-VAE-2's as one array per level, `codes_top` and `codes_bottom`, and `levels`."""

from __future__ import annotations

from pathlib import Path


def configure_codes(p) -> None:
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True, help=".npz: codes (N, h, w) int, label (N,) if any "
                   "(VQ-VAE-2: codes_top, codes_bottom and levels)")
    p.add_argument("--split", default="train")
    p.add_argument("--num", type=int, default=None, help="first N examples (default: all)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--raw-params", action="store_true")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def codes(args, overrides) -> None:
    import jax
    import numpy as np

    from jaxgen.data import get_dataset
    from jaxgen.families.vae.vqvae import CodeTools
    from jaxgen.kernel import transforms
    from jaxgen.kernel.contract import require_tools
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    from jaxgen.runner.logging import progress_bar
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: use a .npz file name.")
    runs.refuse_existing(out, args.force)
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params,
                               check=lambda e: require_tools(e.objective, CodeTools,
                                                             "jaxgen codes"))
    tools = exp.objective.tools
    source = get_dataset(exp.config.data, args.split).source
    n = len(source) if args.num is None else min(args.num, len(source))
    fn = jax.jit(lambda p, x: tools.encode_codes(p, transforms.preprocess(
        exp.info.kind, x, None, dequantize=False)))
    if tools.encode_levels is not None:  # VQ-VAE-2: one array per level, codes_<level>
        fn = jax.jit(lambda p, x: tools.encode_levels(p, transforms.preprocess(
            exp.info.kind, x, None, dequantize=False)))
    maps, labels = [], []
    bs = max(1, args.batch_size)
    with progress_bar(n, 0, True, desc=f"encoding {args.split}", unit="image") as bar:
        for lo in range(0, n, bs):
            batch = source.get(np.arange(lo, min(lo + bs, n)))
            got = fn(params, batch["x"])
            maps.append({k: np.asarray(v) for k, v in got.items()} if isinstance(got, dict)
                        else {"": np.asarray(got)})
            if "label" in batch:
                labels.append(np.asarray(batch["label"]))
            bar.update(len(batch["x"]))
    per_level = {k: np.concatenate([m[k] for m in maps]).astype(np.int32) for k in maps[0]}
    arrays = {("codes_" + k if k else "codes"): v for k, v in per_level.items()}
    if len(per_level) > 1 or "" not in per_level:
        arrays["levels"] = np.array(list(per_level))
    arrays.update({"num_codes": np.int32(tools.num_codes),
                   "vqvae_workdir": np.array(str(Path(args.workdir).resolve()))})
    if labels:
        arrays["label"] = np.concatenate(labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    shapes = ", ".join(f"{k or 'codes'} {v.shape} ({len(np.unique(v))} used)"
                       for k, v in per_level.items())
    print(f"Wrote {out}: {shapes} over {arrays['num_codes']} codes"
          f"{', label ' + str(arrays['label'].shape) if labels else ''}")
