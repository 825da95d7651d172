"""Sample quality against network calls (NFE) for a DDPM's samplers: DDPM ancestral (1000),
DDIM, DPM-Solver++(2M) and the probability-flow ODE (RK4, Heun).

    python benchmarks/solver_quality.py --workdir runs/solver_toy2d \\
        [--fmnist-workdir runs/solver_fmnist [--fmnist-steps 3000]] [--json out.json]

2-D toy: the run in --workdir (configs/diffusion/ddpm_toy2d.py; trained there first,
`--train-steps` or the config's 24000, when the folder has no checkpoint). Each sampler
draws --num points (EMA params, the same x_T for every sampler, so deterministic samplers
are comparable point by point) scored against as many fresh true points: MMD² (the
unbiased `jaxgen.eval.mmd.mmd2`; the true-vs-true value is its noise floor), the sliced W1
in units of its two-true-sample floor (`jaxgen.eval.sample_quality`),
`NLL` = −mean log p_true(samples) (exact density; to compare with the entropy H: below H
means samples packed into the modes, above H spread off them), and `ODE err`: the RMS
distance of each point to the converged probability-flow ODE solution from the same x_T
(DPM-Solver++ on all 1000 steps; the deterministic samplers only; the PF-ODE rows stop at
t = 1, σ_1 = 0.01, undenoised, which alone is ~0.01 of it). DPM-Solver++ rows use the
default spacing (quadratic in t) unless they name another.

Fashion-MNIST (optional): the run in --fmnist-workdir (configs/diffusion/
ddpm_fashion_mnist.py, trained there for --fmnist-steps when it has no checkpoint). FD (and
k-NN precision/recall) of --fmnist-num samples in the features of jaxgen's classifier
(`jaxgen.eval.classifier`, trained once by `jaxgen classifier`) against all 10000 test
images; FD's bias depends on n, so the rows compare at equal n, and a row of n real train
images gives the floor. `seconds`: sampling alone (compiled before), on whatever the
machine is shared with.

Measured (2 CPU cores shared with other jobs; `--workdir runs/solver_toy2d --fmnist-workdir
runs/solver_fmnist --fmnist-num 1000`, both runs trained at their configs' steps, 24000
and 3000): on 8gaussians DPM-Solver++ with 10 steps matched DDIM-50 on MMD² and SW1/floor
(1.01 vs 1.08), with 20 its distance to the converged ODE solution (0.031 vs 0.037);
Fashion-MNIST FD (n = 1000; real train images 4.2): DDIM 10/20/50/100 194.8/168.8/158.5/
154.2, DPM-Solver++ 5/10/15/20/50 203.9/164.8/153.2/157.4/151.7, DDPM ancestral 1000 140.6
(`--seed 0`). FD moves with the draw: DPM-Solver++ 15 / 20 steps at seeds 0, 1, 2 gave
153.2 / 157.4, 156.9 / 160.9, 159.8 / 163.9, a ~6-unit spread, 15 steps ~4 better in each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOY_CONFIG = ROOT / "configs" / "diffusion" / "ddpm_toy2d.py"
FMNIST_CONFIG = ROOT / "configs" / "diffusion" / "ddpm_fashion_mnist.py"


def samplers(ancestral: bool = True, ode: bool = True, spacings: bool = False):
    """(row name, NFE, sample options) of the comparison (`spacings`: DPM-Solver++ at 10 and
    20 steps on its other two spacings too)."""
    rows = [("DDPM ancestral", 1000, {"sampler": "ddpm"})] if ancestral else []
    rows += [(f"DDIM {n}", n, {"sampler": "ddim", "steps": n, "eta": 0.0})
             for n in (10, 20, 50, 100)]
    rows += [(f"DPM-Solver++(2M) {n}", n, {"sampler": "dpm_solver", "steps": n})
             for n in (5, 10, 15, 20, 50)]
    if spacings:
        rows += [(f"DPM-Solver++(2M) {n}, {sp}", n,
                  {"sampler": "dpm_solver", "steps": n, "spacing": sp})
                 for sp in ("logsnr", "time") for n in (10, 20)]
    if ode:  # NFE: network calls per step (METHODS) x steps
        from jaxgen.samplers.ode import METHODS
        rows += [(f"PF-ODE {method} {n}", METHODS[method] * n,
                  {"sampler": "ode", "method": method, "steps": n})
                 for method, n in (("heun", 50), ("rk4", 25))]
    return rows


def run_or_train(workdir, config, steps):
    """The trained run in `workdir`, training `config` there first if it has no checkpoint."""
    import jaxgen
    workdir = Path(workdir)
    if not (workdir / "checkpoints").is_dir() or not any((workdir / "checkpoints").iterdir()):
        overrides = [] if steps is None else [f"train.steps={steps}"]
        print(f"training {config.name} into {workdir} ({overrides or 'its own steps'})",
              flush=True)
        jaxgen.train(jaxgen.load_config(config, overrides), workdir)
    run = jaxgen.load(workdir)
    print(f"{workdir}: step {run.step}", flush=True)
    return run


def draw(run, num: int, chunk: int, seed: int, options: dict):
    """(samples in data space, seconds of sampling after compiling)."""
    import jax
    exp = run.experiment
    exp.compile_sample(run.params, num, chunk, **options)
    t0 = time.perf_counter()
    x = exp.sample(run.params, jax.random.key(seed), num, chunk, **options)
    return x, time.perf_counter() - t0


def toy_table(run, num: int, seed: int):
    from jaxgen.data import get_dataset
    from jaxgen.data.toy2d import entropy
    from jaxgen.eval.mmd import mmd2
    from jaxgen.eval.sample_quality import sliced_w1, sliced_w1_floor
    from jaxgen.runner.logging import format_table

    toy = get_dataset(run.config.data, "test").toy
    rng = np.random.default_rng(seed)
    true, true2 = toy.sample(rng, num), toy.sample(rng, num)
    h, h_se = entropy(toy)
    sw_floor = sliced_w1_floor(toy.sample, num, seed=seed)
    ref, _ = draw(run, num, num, seed, {"sampler": "dpm_solver", "steps": 1000})
    rows, results = [], []
    for name, nfe, opts in samplers(spacings=True):
        x, secs = draw(run, num, num, seed, opts)
        r = {"sampler": name, "nfe": nfe, "options": opts, "seconds": round(secs, 2),
             "mmd2": float(mmd2(x, true)),
             "nll_true": float(-np.mean(toy.log_prob(np.asarray(x, np.float64)))),
             "sliced_w1_ratio": sliced_w1(x, true, seed=seed) / sw_floor}
        if opts["sampler"] != "ddpm":
            r["ode_err"] = float(np.sqrt(np.mean(np.sum((x - ref) ** 2, -1))))
        results.append(r)
        rows.append((name, nfe, f"{r['mmd2']:.2e}", f"{r['nll_true']:.3f}",
                     f"{r['sliced_w1_ratio']:.2f}",
                     f"{r['ode_err']:.4f}" if "ode_err" in r else "-", f"{secs:.1f}"))
        print(rows[-1], flush=True)
    floor = float(mmd2(true, true2))
    title = (f"\n{run.config.data.name}, DDPM {run.workdir.name} at step {run.step}: "
             f"{num} samples vs {num} true; entropy H = {h:.3f} ± {h_se:.3f} nats, "
             f"true-vs-true MMD² {floor:.1e}, NLL of true points "
             f"{-np.mean(toy.log_prob(np.asarray(true2, np.float64))):.3f}")
    print(format_table(rows, header=("sampler", "NFE", "MMD²", "NLL (nats)", "SW1/floor",
                                     "ODE err", "seconds"), title=title), flush=True)
    return {"step": run.step, "entropy": h, "mmd2_floor": floor, "rows": results}


def fmnist_table(run, num: int, seed: int, chunk: int, ancestral: bool):
    from jaxgen.eval import classifier as clf
    from jaxgen.runner.logging import format_table

    cached = clf.load_cached()
    if cached is None:
        print("Fashion-MNIST: skipped, train the feature classifier once with "
              "`jaxgen classifier`", flush=True)
        return None
    cparams, _ = cached
    ref = clf.reference_stats(cparams)
    from jaxgen.data import get_dataset
    train_x = get_dataset(run.config.data, "train").source.get(np.arange(2 * num))["x"]
    real_pr = train_x[num:]  # precision/recall against other real images
    floor = clf.sample_quality(cparams, train_x[:num], ref=ref, real_for_pr=real_pr)
    rows = [("real train images", "-", f"{floor['fd']:.2f}", f"{floor['precision']:.3f}",
             f"{floor['recall']:.3f}", "-")]
    results = [{"sampler": "real train images", **floor}]
    for name, nfe, opts in samplers(ancestral=ancestral, ode=False):
        x, secs = draw(run, num, chunk, seed, opts)
        q = clf.sample_quality(cparams, x, ref=ref, real_for_pr=real_pr)
        results.append({"sampler": name, "nfe": nfe, "options": opts,
                        "seconds": round(secs, 1), **q})
        rows.append((name, nfe, f"{q['fd']:.2f}", f"{q['precision']:.3f}",
                     f"{q['recall']:.3f}", f"{secs:.1f}"))
        print(rows[-1], flush=True)
    title = (f"\nFashion-MNIST, DDPM {run.workdir.name} at step {run.step}: FD of {num} "
             f"samples vs the {ref['n']} test images (classifier features), "
             f"precision/recall (k=3) vs {num} train images")
    print(format_table(rows, header=("sampler", "NFE", "FD", "precision", "recall",
                                     "seconds"), title=title), flush=True)
    return {"step": run.step, "rows": results}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="runs/solver_toy2d", help="the 2-D toy run")
    ap.add_argument("--train-steps", type=int, default=None,
                    help="toy training steps if --workdir has no checkpoint (default: the "
                         "config's)")
    ap.add_argument("--num", type=int, default=5000, help="toy samples per sampler")
    ap.add_argument("--no-toy", action="store_true")
    ap.add_argument("--fmnist-workdir", default=None, help="a Fashion-MNIST DDPM run")
    ap.add_argument("--fmnist-steps", type=int, default=None,
                    help="its training steps if it has no checkpoint (default: the config's)")
    ap.add_argument("--fmnist-num", type=int, default=1000, help="FMNIST samples per sampler")
    ap.add_argument("--fmnist-chunk", type=int, default=250)
    ap.add_argument("--no-ancestral-fmnist", action="store_true",
                    help="skip DDPM's 1000 ancestral steps on Fashion-MNIST (the slow row)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    out = {}
    if not args.no_toy:
        out["toy"] = toy_table(run_or_train(args.workdir, TOY_CONFIG, args.train_steps),
                               args.num, args.seed)
    if args.fmnist_workdir:
        out["fmnist"] = fmnist_table(
            run_or_train(args.fmnist_workdir, FMNIST_CONFIG, args.fmnist_steps),
            args.fmnist_num, args.seed, args.fmnist_chunk, not args.no_ancestral_fmnist)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
