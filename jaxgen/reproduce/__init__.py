"""`jaxgen reproduce NAME`: one command per lecture claim, each writing
`reports/NAME/report.md` (figures beside it) with the measured numbers next to
the lecture's or paper's.

    optimal-discriminator   D* = p/(p+q) and C(G) = 2·JSD − log 4 on 2-D densities
    js-vs-wasserstein       the parallel-lines example: TV, KL, JS, W1 against θ; a
                            critic recovers |θ| while a JS discriminator's signal is flat
    forward-diffusion       q(x_t | x_0) in closed form against iterating the chain
    mode-collapse           a GAN collapsing on ring-8 (Metz et al.'s protocol), its modes over
                            training, and the remedies (unrolled D, PacGAN, ...) over seeds
    vae-latent              interpolation strip, 2-D manifold, and a blur measure of VAE samples
                            against flow, diffusion and GAN samples at a matched budget
    summary-table           the lecture's closing table (training stability, likelihood,
                            sampling speed, compression, representation) measured per family
    style-transfer          content + Gram-style losses on the jaxgen classifier's features
    defaults-quality        every shipped 2-D config at its default budget on three random
                            Gaussian mixtures against its family's quality target
    truncation              BigGAN's truncation trick over ψ: FD, precision/recall and class
                            entropy of a class-conditional G with vs without orthogonal reg.
    latent-vs-pixel         flow matching on pixels vs in a VAE's latent space at equal
                            training wall time: FD, samples/s, bits/dim or the bound
    nash-toy                gradient play on min_x max_y xy: simultaneous steps spiral out,
                            alternating ones orbit (exact growth factor, conserved H)
    cfm-euler               conditional flow matching sampled by Euler, Heun and RK4 at NFE
                            1-100: NLL gap, MMD, sliced W1 (2-D), FD (Fashion-MNIST)
    ae-vs-vae               a deterministic autoencoder against the VAE with the same networks:
                            latent scatters, decoded N(0, I) draws and their FD, interpolations
    vae-beta                the β sweep (KL, reconstruction, active units, FD) and log p(x) by
                            prior sampling against IWAE over K
    gan-claims              saturating vs non-saturating generator gradients against D(G(z)),
                            k discriminator steps, DCGAN interpolation / arithmetic / neighbours
    ar-order                autoregressive bits/dim against the context window k, in raster
                            and in random order, beside a full-context transformer
    translation             pix2pix's L1 / cGAN / both ablation (sharpness, L1, FD, class) and
                            CycleGAN sneakers <-> ankle boots until the classifier agrees
    vq-priors               VQ-VAE and VQ-VAE-2 priors: decoded samples against the test set's
                            reconstructions and random codes (FD, confidently classified)
    baselines-2d            EDM's Heun sampler against DDIM / DPM-Solver++ at equal NFE,
                            consistency models at 1 and 2 steps, reflow's straightening
    baselines-images        Fashion-MNIST: EDM against DDIM / DPM-Solver++ at equal NFE (FD),
                            consistency models at 1 and 2 steps beside their EDM teacher,
                            a DiT against the U-Net at equal training wall time
    all                     every one of them, in this order

Every reproduction is a module here with `TITLE`, `CLAIM` and
`run(report, budget)`; `--budget X` scales its step counts (1 = the budget its
report quotes), `--fast` runs it end to end at tiny size (the tests do).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from jaxgen.kernel.errors import UnknownNameError
from jaxgen.reproduce.report import Budget, Report, fresh_folder

__all__ = ["REPRODUCTIONS", "run", "Budget", "Report", "verdict_markdown"]

REPRODUCTIONS = ("optimal-discriminator", "js-vs-wasserstein", "forward-diffusion",
                 "mode-collapse", "vae-latent", "summary-table", "style-transfer",
                 "defaults-quality", "truncation", "latent-vs-pixel", "nash-toy", "cfm-euler",
                 "ae-vs-vae", "vae-beta", "gan-claims", "ar-order",
                 "translation", "vq-priors", "baselines-2d",
                 "baselines-images")


def _module(name: str):
    if name not in REPRODUCTIONS:
        raise UnknownNameError(f"unknown reproduction {name!r}; choose one of "
                         f"{', '.join(REPRODUCTIONS)} or all.")
    return importlib.import_module(f"jaxgen.reproduce.{name.replace('-', '_')}")


def run(name: str, out_root="reports", *, budget: Budget | None = None, force: bool = False,
        command: str | None = None, reuse_runs: bool = False) -> Report:
    """Run one reproduction into OUT_ROOT/NAME (refusing a non-empty folder unless force);
    returns the written Report (`.md` its path, `.rows` the measured-vs-claimed rows).

    reuse_runs (with force): keep OUT_ROOT/NAME/runs, so training runs that finished are
    restored instead of retrained (a run with another config is refused by the trainer)."""
    budget = budget or Budget()
    mod = _module(name)
    reused = reuse_runs and (Path(out_root) / name / "runs").is_dir()
    folder = fresh_folder(Path(out_root) / name, force, keep=("runs",) if reuse_runs else ())
    cmd = command or (f"jaxgen reproduce {name} --out {out_root}"
                      + (" --fast" if budget.fast else f" --budget {budget.scale:g}")
                      + (f" --seed {budget.seed}" if budget.seed else ""))
    report = Report(folder, name, mod.TITLE, mod.CLAIM, budget, cmd, reused_runs=reused)
    mod.run(report, budget)
    report.write()
    return report


def verdict_markdown(out_root="reports") -> str:
    """The verdict table of the reports under OUT_ROOT (each folder's report.json), in
    REPRODUCTIONS order: claim (the report's title) | report | budget and wall time | its
    first figure | verdict and why."""
    import json
    rows = ["| claim | report | budget | figure | verdict |", "|---|---|---|---|---|"]
    missing = []
    for name in REPRODUCTIONS:
        path = Path(out_root) / name / "report.json"
        if not path.is_file():
            missing.append(name)
            continue
        r = json.loads(path.read_text())
        base = f"{Path(out_root).as_posix()}/{name}"  # links as seen from where it is run
        fig = (f"[{r['figures'][0]}]({base}/{r['figures'][0]})" if r["figures"] else "-")
        budget = r["budget_note"] or r["budget"]
        w = r["wall_seconds"]
        wall = f"{w:.0f} s" if w < 120 else f"{w / 60:.0f} min"
        rows.append(f"| {r['title']} | [{name}]({base}/report.md) | {budget}; {wall} | "
                    f"{fig} | **{r['verdict']}**: "
                    f"{r['why']} |")
    if missing:
        rows += ["", "No report.json (not run since reports state verdicts): "
                 + ", ".join(missing) + "."]
    return "\n".join(rows)
