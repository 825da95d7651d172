"""summary-table: the lecture's closing comparison, every cell measured on Fashion-MNIST.

The lecture's table (AR | GAN | VAE, diffusion):

    Training        Stable    | Unstable | Stable
    Likelihood      Exact     | No       | Approximate
    Sampling        Slow      | Fast     | Fast
    Compression     Lossless  | No       | Lossy
    Representation  No        | No       | Yes

Here each family is trained by the one trainer at the same budget (steps x
batch) and `seeds` seeds, and each cell becomes a number:
  * training: the spread over seeds of the Fréchet distance of n samples in the
    jaxgen classifier's feature space (`jaxgen.eval.classifier`; trained and
    cached first if absent), and of the final training loss;
  * likelihood: the kind jaxgen's estimator gives (exact, bound, none) and its
    test bits/dim on n_lik images (VAE: IWAE k = 100; diffusion: the VLB);
  * sampling: samples/s, one compiled call for a batch (after a compile call);
  * compression: the autoregressive model's `jaxgen compress` code length of
    n_comp test images in bits/image (lossless, round trip checked), beside
    PNG; other families have no lossless coder here, their likelihood in
    bits/image is the code length a bits-back coder could approach;
  * representation: whether there is a latent z with x -> z and z -> x (latent
    interpolation of real images): an amortised encoder (VAE), a bijection (flow),
    the probability-flow ODE (diffusion), optimisation (GAN inversion), or none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxgen.reproduce.runs import FAMILIES, timed_samples, train_run

TITLE = "The lecture's summary table, measured on Fashion-MNIST"
CLAIM = ("AR: stable training, exact likelihood, slow sampling, lossless compression, no "
         "representation; GAN: unstable, no likelihood, fast, no compression, no "
         "representation; VAE / diffusion: stable, approximate likelihood, fast, lossy, "
         "representation (the lecture's closing summary table).")

ROWS = {
    "autoregressive (PixelCNN)": ("autoregressive/pixelcnn_fashion_mnist.py",
                                  ["model.channels=8", "model.num_layers=1", "model.hidden=8"]),
    "GAN (DCGAN)": FAMILIES["GAN (DCGAN)"],
    "VAE": FAMILIES["VAE"],
    "diffusion (DDPM)": FAMILIES["diffusion (DDPM)"],
    "flow (RealNVP)": FAMILIES["flow (RealNVP)"],
}
#: The lecture's AR sampler reruns the network for every pixel; jaxgen's default for the
#: PixelCNN computes per pixel only what it needs (`sample.sampler=cached`, 60-78x
#: faster). The table times the lecture's algorithm, named in its cell.
OVERRIDES = {"autoregressive (PixelCNN)": ["sample.sampler=recompute"]}
LECTURE = {
    "autoregressive (PixelCNN)": ("stable", "exact", "slow", "lossless", "no"),
    "GAN (DCGAN)": ("unstable", "no", "fast", "no", "no"),
    "VAE": ("stable", "approximate", "fast", "lossy", "yes"),
    "diffusion (DDPM)": ("stable", "approximate", "fast", "lossy", "yes"),
    "flow (RealNVP)": ("(not in the lecture's table)",) * 5,
}


def _classifier(report, fast: bool):
    from jaxgen.eval import classifier as clf
    if fast:  # a tiny one in the report folder: the tests must not train the real one
        return clf.load_or_train(report.path("runs") / "classifier", steps=20, num_train=500,
                                 num_test=200, progress=False)
    return clf.load_cached() or clf.load_or_train()


def _final_loss(workdir) -> float:
    """The loss logged at the run's last step (also when the run was restored, not trained)."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return float(json.loads([ln for ln in lines if ln.strip()][-1])["loss"])


def _representation(exp) -> str:
    return exp.objective.representation or "no encoder: no latent representation"


def run(report, budget):
    from jaxgen.coding import codec
    from jaxgen.data import get_dataset
    from jaxgen.eval import classifier as clf
    from jaxgen.eval.evaluate import evaluate
    fast = budget.fast
    steps, batch = budget.steps(2000, 2), budget.pick(64, 8)
    seeds = budget.pick(3, 2)
    # 200 samples per run: the PixelCNN's full-pass sampler, the slowest cell on a CPU (its
    # samples/s are in the report), sets the budget
    n_fd, n_lik, n_comp = budget.pick(200, 16), budget.pick(200, 8), budget.pick(50, 3)
    cparams, cinfo = _classifier(report, fast)
    ref = clf.reference_stats(cparams, report.path("runs") / "classifier" if fast else None)
    cells = {}
    for family, (config, small) in ROWS.items():
        fds, losses = [], []
        for seed in range(seeds):
            exp, params, summary, wd = train_run(
                report, f"{family}/seed{seed}", config, OVERRIDES.get(family, []),
                steps=steps, batch=batch,
                seed=budget.seed + seed, fast_overrides=small, fast=fast)
            n = n_fd  # one n for every family: FD is biased by n, comparable only at equal n
            x, per_s = timed_samples(exp, params, n, budget.seed + seed)
            fds.append(clf.sample_quality(cparams, x, ref=ref)["fd"])
            losses.append(_final_loss(wd))
            if seed == 0:
                first = (exp, params, wd, per_s, n)
        exp, params, wd, per_s, n_speed = first
        lik = {"likelihood": "none"}
        if exp.objective.likelihoods:
            cfg = exp.config.copy_and_resolve_references()
            cfg.eval.num_examples, cfg.eval.batch_size = n_lik, min(n_lik, 50)
            if "iwae_k" in cfg.eval:  # the VAE's estimator
                cfg.eval.iwae_k, cfg.eval.iwae_chunk = budget.pick(100, 4), budget.pick(25, 4)
            lik = evaluate(cfg, wd, write=False, progress=False)
        comp = "-"
        test = get_dataset(exp.config.data, "test").source
        if exp.objective.coder is not None:
            raw = test.get(np.arange(n_comp))["x"]
            data, st = codec.compress(exp.objective, params, raw, batch_size=n_comp)
            back, _ = codec.decompress(exp.objective, params, data)
            ok = np.array_equal(back, raw)
            png = codec.baselines(raw)["png"]
            comp = (f"{st['bits_per_example']:.0f} bits/image lossless (round trip "
                    f"{'exact' if ok else 'FAILED'}; PNG {png:.0f})")
        elif "bits_per_dim" in lik:
            comp = (f"no lossless coder; −log2 P {'bound ' if lik['likelihood'] == 'bound' else ''}"
                    f"{lik['bits_per_dim'] * 784:.0f} bits/image")
        else:
            comp = "no (no likelihood)"
        fds = np.asarray(fds)
        cells[family] = {
            "training": f"FD {fds.mean():.1f} ± {fds.std(ddof=1) if len(fds) > 1 else 0:.1f} "
                        f"(n = {n_fd}, {seeds} seeds); loss {np.mean(losses):.3g} ± "
                        f"{np.std(losses, ddof=1) if len(losses) > 1 else 0:.2g}",
            "likelihood": (f"{lik['likelihood']}: {lik['bits_per_dim']:.3f} bits/dim "
                           f"(n = {n_lik})" if "bits_per_dim" in lik else "none"),
            "sampling": f"{per_s:.1f} samples/s (batch of {n_speed}"
                        + "".join(f", {o}" for o in OVERRIDES.get(family, [])) + ")",
            "compression": comp,
            "representation": _representation(exp),
            "cv": float(fds.std(ddof=1) / fds.mean()) if len(fds) > 1 else float("nan"),
            "per_s": per_s, "kind": lik["likelihood"],
        }
    features = ("training", "likelihood", "sampling", "compression", "representation")
    header = ("", *ROWS)
    rows = [(f, *[cells[fam][f] for fam in ROWS]) for f in features]
    report.table(header, rows, f"measured: {steps} steps x batch {batch} per run, FD in the "
                 f"jaxgen classifier's feature space (test accuracy {cinfo['test_accuracy']:.4f}"
                 f"), reference = {ref['n']} test images")
    report.table(header, [(f, *[LECTURE[fam][i] for fam in ROWS])
                          for i, f in enumerate(features)], "the lecture's table")
    judge = None if fast else True
    ar, gan = "autoregressive (PixelCNN)", "GAN (DCGAN)"
    report.compare("likelihood kinds (AR, GAN, VAE, diffusion)",
                   ", ".join(cells[f]["kind"] for f in list(ROWS)[:4]),
                   "exact, none, bound, bound", "lecture",
                   judge and [cells[f]["kind"] for f in list(ROWS)[:4]] ==
                   ["exact", "none", "bound", "bound"])
    slowest = min(ROWS, key=lambda f: cells[f]["per_s"])
    report.compare("slowest sampler", slowest, ar, "lecture: AR sampling is slow",
                   judge and slowest == ar)
    cv = {f: cells[f]["cv"] for f in ROWS}
    worst = max(cv, key=lambda f: cv[f])
    report.compare(f"largest FD spread over seeds (coefficient of variation {cv[worst]:.2f})",
                   worst, gan, "lecture: GAN training is unstable", judge and worst == gan)
    report.verdict_from_rows(f"slowest sampler {slowest}, largest FD spread {worst}",
                             f"{steps} steps x batch {batch} per run, {seeds} seeds per family")
