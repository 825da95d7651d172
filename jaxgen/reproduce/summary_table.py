"""summary-table: the lecture's closing comparison, every cell measured on Fashion-MNIST.

The lecture's table (AR | GAN | VAE, diffusion):

    Training        Stable    | Unstable | Stable
    Likelihood      Exact     | No       | Approximate
    Sampling        Slow      | Fast     | Fast
    Compression     Lossless  | No       | Lossy
    Representation  No        | No       | Yes

Each family is trained by the one trainer at the same budget (steps x batch) with
`seeds` seeds, and each row becomes measurements with a verdict:
  * training: the spread over seeds of the Fréchet distance of n samples in the jaxgen
    classifier's feature space (`jaxgen.eval.classifier`), as the s.d. of log FD (a
    scale-free spread), with the Brown-Forsythe test of equal spread of the GAN's log FD
    against each other family's. Whether the budget has converged is measured too: seed
    0 is also trained for half the steps, and the FD ratio half / full says how much the
    second half still changed;
  * likelihood: the kind jaxgen's estimator gives (exact, bound, none) and its test
    bits/dim on n_lik images (VAE: IWAE k = 100; diffusion: the VLB);
  * sampling: samples/s and FD of the lecture's sampler and of jaxgen's best shipped one
    (the PixelCNN's cached sampler; DPM-Solver++ for the DDPM), one compiled call for a
    batch, after a compile call; the DDPM's T = 1000 ancestral chain draws n_anc = 100
    images, scored beside the best sampler's FD on as many (FD's bias depends on n), and
    the PixelCNN's full pass per pixel is timed on 20 (it draws what the cached one does);
  * compression: the autoregressive model's `jaxgen compress` code length of n_comp test
    images in bits/image (lossless, round trip checked) beside PNG; the likelihood in
    bits/image is the code length a bits-back coder could approach for the others (no
    bits-back coder is measured here);
  * representation: x -> z -> x measured (`jaxgen.kernel.contract.round_trip_of`): a
    flow's bijection, DDIM inversion, the VAE's encoder, a GAN's inversion by
    optimisation; the root-mean-square error in pixel levels (0-255) on n_rt test images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from jaxgen.reproduce.runs import FAMILIES, feature_classifier, timed_samples, train_run

TITLE = "The lecture's summary table, measured on Fashion-MNIST"
CLAIM = ("AR: stable training, exact likelihood, slow sampling, lossless compression, no "
         "representation; GAN: unstable, no likelihood, fast, no compression, no "
         "representation; VAE / diffusion: stable, approximate likelihood, fast, lossy, "
         "representation (the lecture's closing summary table).")

AR, GAN, VAE, DDPM, FLOW = ("autoregressive (PixelCNN)", "GAN (DCGAN)", "VAE",
                            "diffusion (DDPM)", "flow (RealNVP)")
ROWS = {
    AR: ("autoregressive/pixelcnn_fashion_mnist.py",
         ["model.channels=8", "model.num_layers=1", "model.hidden=8"]),
    GAN: FAMILIES[GAN],
    VAE: FAMILIES[VAE],
    DDPM: FAMILIES[DDPM],
    FLOW: FAMILIES[FLOW],
}
#: (label, sample options) of the lecture's sampler, then jaxgen's best shipped one, where
#: they differ: the lecture's AR sampler reruns the network for every pixel, jaxgen's
#: cached one computes per pixel only what it needs (the same distribution); the lecture's
#: DDPM sampler is ancestral over all T steps.
SAMPLERS = {
    AR: (("full pass per pixel (the lecture's)", {"sampler": "recompute"}),
         ("cached (jaxgen's default)", {"sampler": "cached"})),
    DDPM: (("ancestral, T = 1000 (the lecture's)", {"sampler": "ddpm"}),
           ("DPM-Solver++(2M), 20 steps", {"sampler": "dpm_solver", "steps": 20})),
}
ONE_PASS = (("one network pass", {}),)
NO_PICTURES = ["train.pictures=false"]  # the runs' end-of-run figures are not used here
LECTURE = {
    AR: ("stable", "exact", "slow", "lossless", "no"),
    GAN: ("unstable", "no", "fast", "no", "no"),
    VAE: ("stable", "approximate", "fast", "lossy", "yes"),
    DDPM: ("stable", "approximate", "fast", "lossy", "yes"),
    FLOW: ("(not in the lecture's table)",) * 5,
}
FEATURES = ("training", "likelihood", "sampling", "compression", "representation")
ALPHA = 0.05  # the stability test's level


def _final_loss(workdir) -> float:
    """The loss logged at the run's last step (also when the run was restored, not trained)."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return float(json.loads([ln for ln in lines if ln.strip()][-1])["loss"])


def spread_test(log_fd_a, log_fd_b) -> float:
    """The Brown-Forsythe p-value of equal spread (Levene's test about the medians)."""
    from scipy import stats
    return float(stats.levene(log_fd_a, log_fd_b, center="median").pvalue)


def stability_verdict(log_fds: dict, unstable: str, alpha: float = ALPHA) -> tuple[str, dict]:
    """Whether `unstable`'s log-FD spread over seeds exceeds every other family's: "holds"
    when it has the largest s.d. and the Brown-Forsythe test tells it from each other
    family at `alpha`; "does not hold" when some family's spread is significantly larger;
    else "cannot tell at this budget". Also the per-family p-values."""
    sd = {f: float(np.std(v, ddof=1)) for f, v in log_fds.items()}
    pvals = {f: spread_test(log_fds[unstable], v) for f, v in log_fds.items() if f != unstable}
    if any(sd[f] > sd[unstable] and p < alpha for f, p in pvals.items()):
        return "does not hold", pvals
    if all(sd[unstable] > sd[f] and p < alpha for f, p in pvals.items()):
        return "holds", pvals
    return "cannot tell at this budget", pvals


def _round_trip(exp, params, raw, seed: int) -> tuple[str, float | None]:
    """(how, RMSE in pixel levels) of x -> z -> x on uint8 images `raw`, or ("none", None)."""
    import jax

    from jaxgen.kernel import transforms
    from jaxgen.kernel.contract import round_trip_of
    rt = round_trip_of(exp.objective)
    if rt is None:
        return "none", None
    x = transforms.preprocess(exp.info.kind, raw, dequantize=False)
    z = jax.jit(rt.encode)(params, x, jax.random.key(seed))
    back = np.asarray(transforms.postprocess(exp.info.kind, jax.jit(rt.decode)(params, z)),
                      np.float64)
    return rt.how, float(np.sqrt(np.mean((back - np.asarray(raw, np.float64)) ** 2)))


def _fd(clf, cparams, ref, x) -> float:
    return float(clf.sample_quality(cparams, x, ref=ref)["fd"])


def run(report, budget):
    from jaxgen.coding import codec
    from jaxgen.data import get_dataset
    from jaxgen.eval import classifier as clf
    from jaxgen.eval.evaluate import evaluate
    fast = budget.fast
    steps, batch = budget.steps(4000, 2), budget.pick(64, 8)
    seeds = budget.pick(5, 3)
    n_fd, n_lik, n_comp = budget.pick(500, 16), budget.pick(200, 8), budget.pick(50, 3)
    n_rt, n_slow = budget.pick(100, 4), budget.pick(20, 4)  # n_slow: the AR full-pass timing
    n_anc = budget.pick(100, 4)  # the lecture's DDPM sampler: T network passes per sample
    cparams, cinfo = feature_classifier(report, fast)
    ref = clf.reference_stats(cparams, report.path("runs") / "classifier" if fast else None)
    test_raw = None
    cells = {}
    for family, (config, small) in ROWS.items():
        samplers = SAMPLERS.get(family, ONE_PASS)
        best = samplers[-1][1]
        fds, losses, train_s = [], [], []
        for seed in range(seeds):
            exp, params, summary, wd = train_run(
                report, f"{family}/seed{seed}", config, NO_PICTURES, steps=steps, batch=batch,
                seed=budget.seed + seed, fast_overrides=small, fast=fast)
            x, _ = timed_samples(exp, params, n_fd, budget.seed + seed, **best)
            fds.append(_fd(clf, cparams, ref, x))
            losses.append(_final_loss(wd))
            train_s.append(summary["train_seconds"])
            if seed == 0:
                first = (exp, params, wd)
        exp, params, wd = first
        # converged? seed 0 again at half the steps
        h_exp, h_params, _, _ = train_run(
            report, f"{family}/half", config, NO_PICTURES, steps=max(1, steps // 2),
            batch=batch,
            seed=budget.seed, fast_overrides=small, fast=fast)
        x, _ = timed_samples(h_exp, h_params, n_fd, budget.seed, **best)
        fd_half = _fd(clf, cparams, ref, x)
        # sampling: each sampler's samples/s (and FD where it is a different algorithm)
        # (the AR full pass is timed on n_slow images, no FD: it draws what the cached sampler
        # draws; DDPM's T = 1000 ancestral chain is scored on n_anc images, beside the best
        # sampler's FD on as many, since FD's bias depends on n)
        sampling = []
        for label, options in samplers:
            recompute = options.get("sampler") == "recompute"
            ancestral = options.get("sampler") == "ddpm"
            n = n_slow if recompute else n_anc if ancestral else n_fd
            x, per_s = timed_samples(exp, params, n, budget.seed, **options)
            fd = None if recompute else _fd(clf, cparams, ref, x)
            sampling.append((label, per_s, fd, n))
        if any(n < n_fd and fd is not None for _, _, fd, n in sampling):
            label, per_s, _, _ = sampling[-1]
            x, _ = timed_samples(exp, params, n_anc, budget.seed, **best)
            sampling.insert(-1, (f"{label}, FD on as many", per_s,
                                 _fd(clf, cparams, ref, x), n_anc))
        lik = {"likelihood": "none"}
        if exp.objective.likelihoods:
            cfg = exp.config.copy_and_resolve_references()
            cfg.eval.num_examples, cfg.eval.batch_size = n_lik, min(n_lik, 50)
            if "iwae_k" in cfg.eval:  # the VAE's estimator
                cfg.eval.iwae_k, cfg.eval.iwae_chunk = budget.pick(100, 4), budget.pick(25, 4)
            lik = evaluate(cfg, wd, write=False, progress=False)
        test = get_dataset(exp.config.data, "test").source
        if test_raw is None:
            test_raw = test.get(np.arange(max(n_comp, n_rt)))["x"]
        comp = _compression(codec, exp, params, test_raw[:n_comp], lik)
        t0 = time.perf_counter()
        how, rmse = _round_trip(exp, params, test_raw[:n_rt], budget.seed)
        rt_s = time.perf_counter() - t0
        fds = np.asarray(fds)
        cells[family] = {
            "fds": fds.tolist(), "log_fd": np.log(fds).tolist(), "fd_half": fd_half,
            "losses": losses, "train_seconds": train_s, "sampling": sampling,
            "lik": {k: v for k, v in lik.items() if isinstance(v, (int, float, str))},
            "kind": lik["likelihood"], "compression": comp, "round_trip": (how, rmse, rt_s),
        }
    _write(report, cells, steps=steps, batch=batch, seeds=seeds, n_fd=n_fd, n_lik=n_lik,
           n_rt=n_rt, cinfo=cinfo, ref=ref)


def _compression(codec, exp, params, raw, lik) -> dict:
    if exp.objective.coder is not None:
        data, st = codec.compress(exp.objective, params, raw, batch_size=len(raw))
        back, _ = codec.decompress(exp.objective, params, data)
        return {"lossless": True, "exact": bool(np.array_equal(back, raw)),
                "bits": float(st["bits_per_example"]),
                "png": float(codec.baselines(raw)["png"])}
    if "bits_per_dim" in lik:
        return {"lossless": False, "bound": lik["likelihood"] == "bound",
                "bits": float(lik["bits_per_dim"]) * int(np.prod(raw.shape[1:]))}
    return {"lossless": False, "bits": None}


def _sd(v) -> float:
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _cell_text(c: dict, feature: str, n_fd: int, n_lik: int, n_rt: int) -> str:
    if feature == "training":
        f = np.asarray(c["fds"])
        return (f"FD {f.mean():.1f} ± {_sd(f):.1f} over {len(f)} seeds, s.d. of log FD "
                f"{_sd(c['log_fd']):.3f} (n = {n_fd}); half the steps: FD {c['fd_half']:.1f}")
    if feature == "likelihood":
        lik = c["lik"]
        return (f"{c['kind']}: {lik['bits_per_dim']:.3f} bits/dim (n = {n_lik})"
                if "bits_per_dim" in lik else "none")
    if feature == "sampling":
        return "; ".join(f"{label}: {per_s:.1f} samples/s"
                         + (f", FD {fd:.1f}" + (f" (n = {n})" if n != n_fd else "")
                            if fd is not None and len(c["sampling"]) > 1 else "")
                         for label, per_s, fd, n in c["sampling"])
    if feature == "compression":
        m = c["compression"]
        if m["lossless"]:
            return (f"{m['bits']:.0f} bits/image lossless (round trip "
                    f"{'exact' if m['exact'] else 'FAILED'}; PNG {m['png']:.0f})")
        if m["bits"] is not None:
            return (f"no coder here; −log2 p {'bound ' if m['bound'] else ''}"
                    f"{m['bits']:.0f} bits/image (what bits-back coding could approach)")
        return "no (no likelihood)"
    how, rmse, secs = c["round_trip"]
    if rmse is None:
        return "none: no x -> z"
    return f"{how}: RMSE {rmse:.2f} of 255 (n = {n_rt}, {secs:.1f} s)"


def _write(report, cells, *, steps, batch, seeds, n_fd, n_lik, n_rt, cinfo, ref):
    judge = None if report.budget.fast else True  # a fast run judges nothing
    header = ("", *ROWS)
    rows = [(f, *[_cell_text(cells[fam], f, n_fd, n_lik, n_rt) for fam in ROWS])
            for f in FEATURES]
    report.table(header, rows, f"measured: {steps} steps x batch {batch} per run, {seeds} seeds "
                 f"per family; FD in the jaxgen classifier's feature space (test accuracy "
                 f"{cinfo['test_accuracy']:.4f}), reference = {ref['n']} test images")
    report.table(header, [(f, *[LECTURE[fam][i] for fam in ROWS])
                          for i, f in enumerate(FEATURES)], "the lecture's table")
    verdicts = []

    # training
    log_fds = {f: np.asarray(c["log_fd"]) for f, c in cells.items()}
    v_train, pvals = stability_verdict(log_fds, GAN)
    report.table(("family", "FD per seed", "s.d. of log FD", "Brown-Forsythe p vs the GAN",
                  "FD at half the steps / at all", "train s per run"),
                 [(f, ", ".join(f"{x:.1f}" for x in c["fds"]), _sd(c["log_fd"]),
                   "-" if f == GAN else f"{pvals[f]:.3f}",
                   f"{c['fd_half'] / np.mean(c['fds'][:1]):.2f}",
                   f"{np.mean(c['train_seconds']):.0f}") for f, c in cells.items()],
                 f"training stability: {seeds} seeds; the half-steps run is seed 0 trained for "
                 f"{max(1, steps // 2)} steps (a ratio near 1: the second half changed little)")
    converged = {f: c["fd_half"] / c["fds"][0] for f, c in cells.items()}
    verdicts.append(("training: GAN unstable, the others stable",
                     f"s.d. of log FD: GAN {_sd(log_fds[GAN]):.3f}, others "
                     f"{min(_sd(v) for f, v in log_fds.items() if f != GAN):.3f}–"
                     f"{max(_sd(v) for f, v in log_fds.items() if f != GAN):.3f}; smallest "
                     f"Brown-Forsythe p {min(pvals.values()):.3f}", v_train))
    # likelihood
    kinds = [cells[f]["kind"] for f in (AR, GAN, VAE, DDPM)]
    ok = kinds == ["exact", "none", "bound", "bound"]
    verdicts.append(("likelihood: AR exact, GAN none, VAE / diffusion approximate",
                     ", ".join(kinds), "holds" if ok else "does not hold"))
    report.compare("likelihood kinds (AR, GAN, VAE, diffusion)", ", ".join(kinds),
                   "exact, none, bound, bound", "lecture", judge and ok)
    # sampling
    best = {f: c["sampling"][-1][1] for f, c in cells.items()}
    lect = {f: c["sampling"][0][1] for f, c in cells.items()}
    slowest_best, slowest_lect = min(best, key=best.get), min(lect, key=lect.get)
    verdicts.append(("sampling: AR slow, the others fast",
                     f"slowest with the lecture's samplers: {slowest_lect} "
                     f"({lect[slowest_lect]:.1f}/s); with jaxgen's best: {slowest_best} "
                     f"({best[slowest_best]:.1f}/s; AR {best[AR]:.1f}/s)",
                     "holds" if slowest_best == AR else "does not hold"))
    report.compare("slowest sampler, the lecture's samplers", slowest_lect, AR,
                   "lecture: AR sampling is slow", judge and slowest_lect == AR)
    report.compare("slowest sampler, jaxgen's best shipped samplers", slowest_best, AR,
                   "lecture: AR sampling is slow", judge and slowest_best == AR)
    # compression
    m = cells[AR]["compression"]
    ok = m["lossless"] and m["exact"]  # the claim is losslessness; PNG is shown for scale
    verdicts.append(("compression: AR lossless", f"{m['bits']:.0f} bits/image, round trip "
                     f"{'exact' if m['exact'] else 'FAILED'}, PNG {m['png']:.0f}",
                     "holds" if ok else "does not hold"))
    report.compare("AR lossless code vs PNG (bits/image)", f"{m['bits']:.0f} vs {m['png']:.0f}",
                   "lossless (round trip exact)", "lecture", judge and ok)
    # representation
    rt = {f: c["round_trip"][1] for f, c in cells.items()}
    yes = [f for f in (VAE, DDPM) if rt[f] is not None]
    ok = len(yes) == 2 and rt[AR] is None
    verdicts.append(("representation: VAE / diffusion yes, AR / GAN no",
                     "; ".join(f"{f}: " + ("none" if r is None else f"RMSE {r:.2f}")
                               for f, r in rt.items()),
                     "holds" if ok else "does not hold"))
    report.compare("x -> z -> x exists for VAE and diffusion, not for AR",
                   ", ".join(f"{f}: {'-' if r is None else f'{r:.2f}'}" for f, r in rt.items()),
                   "VAE, diffusion yes; AR no", "lecture", judge and ok)
    report.table(("lecture's row", "measured", "verdict"), verdicts,
                 "each row of the lecture's table against the measurements")
    report.text("The GAN's representation: the lecture says no (it has no encoder); x -> z by "
                "optimisation (`jaxgen invert`) exists and is measured above when the family "
                "offers it, so the row is judged on what it measures. The flow (not in the "
                "lecture's table) is exact: its round trip is its bijection. Converged? The "
                "half-steps column: " + ", ".join(f"{f} {r:.2f}" for f, r in converged.items())
                + " (FD at half the steps over FD at all of them, seed 0).")
    order = [v for _, _, v in verdicts]
    overall = ("does not hold" if "does not hold" in order else
               "holds" if all(v == "holds" for v in order) else "cannot tell at this budget")
    report.verdict(overall, "; ".join(f"{claim.split(':')[0]} {v}"
                                      for claim, _, v in verdicts),
                   f"{steps} steps x batch {batch} per run, {seeds} seeds per family, plus a "
                   "half-steps run of seed 0")
    report.path("summary_table.json").write_text(json.dumps(cells, indent=1, default=float))
