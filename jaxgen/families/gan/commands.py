"""`jaxgen invert` (GAN inversion: z* with G(z*) = a picture) and `jaxgen edit` (moving z
along an attribute's hyperplane normal), on a trained GAN run."""

from __future__ import annotations

from pathlib import Path


def configure_invert(p) -> None:
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", default=None, help="folder (default: WORKDIR/inversion)")
    p.add_argument("--num", type=int, default=16, help="targets of each kind")
    p.add_argument("--steps", type=int, default=500, help="Adam steps on z")
    p.add_argument("--restarts", type=int, default=4, help="random starts per target (best kept)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--prior-weight", type=float, default=0.0,
                   help="loss += PRIOR_WEIGHT * |z|^2 / latent_dim")
    p.add_argument("--num-reference", type=int, default=1000,
                   help="random samples G(z) the nearest-sample reference picks from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--raw-params", action="store_true")
    p.add_argument("--force", action="store_true", help="overwrite the outputs in --out")


def invert(args, overrides) -> None:
    from jaxgen.data import get_dataset
    from jaxgen.families.gan import inversion
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    from jaxgen.runner.logging import format_table
    for flag, v in (("--num", args.num), ("--steps", args.steps), ("--restarts", args.restarts),
                    ("--num-reference", args.num_reference)):
        if v < 1:
            raise UsageError(f"{flag} must be >= 1, got {v}.")
    if args.prior_weight < 0 or args.lr <= 0:
        raise UsageError("--prior-weight must be >= 0 and --lr > 0.")
    folder = Path(args.out) if args.out else Path(args.workdir) / "inversion"
    runs.refuse_overwrite(folder, inversion.INVERSION_FILES, args.force)
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params,
                               check=lambda e: inversion.gan_tools_of(e, "invert"))
    test = get_dataset(exp.config.data, "test").source
    r = inversion.run_inversion(
        exp, params, test, folder, num=args.num, steps=args.steps, restarts=args.restarts,
        lr=args.lr, prior_weight=args.prior_weight, seed=args.seed,
        num_reference=args.num_reference)
    print(format_table(inversion.inversion_rows(r),
                       title=f"GAN inversion ({args.num} targets each, {args.steps} Adam steps, "
                             f"best of {args.restarts} starts; mse in model space)"))
    print(f"Wrote {folder / 'inversion.json'}, inversion_generated.png, inversion_real.png")


def configure_edit(p) -> None:
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", default=None, help="folder (default: WORKDIR/edit)")
    p.add_argument("--attribute", default="footwear",
                   help="footwear, upper_body, trouser, dress, bag, or class ids like 5,7,9")
    p.add_argument("--num", type=int, default=8, help="rows (latents) in edit.png")
    p.add_argument("--n-latents", type=int, default=4000,
                   help="generated images labelled to fit the latent direction")
    p.add_argument("--threshold", default="0.5",
                   help="attribute probability above which G(z) has it, or 'median'")
    p.add_argument("--t-max", type=float, default=None,
                   help="strip end T (default: 2x the rows' largest distance to the hyperplane)")
    p.add_argument("--num-train", type=int, default=10000,
                   help="training images for the pixel attribute classifier")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--raw-params", action="store_true")
    p.add_argument("--force", action="store_true", help="overwrite the outputs in --out")


def edit(args, overrides) -> None:
    from jaxgen.data import get_dataset
    from jaxgen.families.gan import inversion
    from jaxgen.families.gan import tools as gan_tools
    from jaxgen.kernel.errors import UsageError
    from jaxgen.runner import runs
    from jaxgen.runner.logging import format_table
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
    runs.refuse_overwrite(folder, inversion.EDIT_FILES, args.force)
    exp, params = runs.restore(args.workdir, overrides, args.step, args.raw_params,
                               check=inversion.check_editable)
    clf = inversion.pixel_labeler(exp.info.kind, get_dataset(exp.config.data, "train").source,
                                  get_dataset(exp.config.data, "test").source, positive,
                                  num_train=args.num_train, seed=args.seed)
    print(f"pixel classifier for {args.attribute} (classes {positive} vs the rest): accuracy "
          f"{clf.train_accuracy:.3f} train, {clf.test_accuracy:.3f} held-out test")
    r = inversion.run_edit(exp, params, folder, clf.prob, name=args.attribute, num=args.num,
                           n_latents=args.n_latents, threshold=threshold, t_max=args.t_max,
                           seed=args.seed,
                           extra={"classes": list(positive),
                                  "classifier_train_accuracy": clf.train_accuracy,
                                  "classifier_test_accuracy": clf.test_accuracy})
    print(format_table(inversion.edit_rows(r),
                       title=f"mean P({args.attribute}) along G(z + t n), {r['rows']} rows "
                             f"(hyperplane normal; rises: {r['rises']})"))
    print(f"Wrote {folder / 'edit.png'} and edit.json")
