"""mode-collapse: ring-8 and grid-25 for the minimax, non-saturating and WGAN-GP
games over several seeds, next to PacGAN's published GAN row.

The protocol of VEEGAN / PacGAN (Lin et al., 2018, Table 1): a mixture of 8
Gaussians on a ring (or 25 on a grid), 2500 generated points per run, a mode
"covered" when at least one sample lies within 3σ of it, "high quality" the
% of samples within 3σ of their nearest mode, and the reverse KL of the
high-quality samples' mode histogram against uniform (`jaxgen.eval.modes`).
Every run is `jaxgen train` + `jaxgen eval` of configs/gan/<game>_toy2d.py
(the same as launch/gan_mode_collapse.sh), in WORKDIR = the report folder's
runs/, so a report can be audited run by run.
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from jaxgen.eval.modes import PUBLISHED

TITLE = "Mode collapse of GANs on ring-8 and grid-25"
CLAIM = ("GANs collapse modes: on mixtures of Gaussians the GAN covers on average 6.3 of 8 "
         "(ring) and 17.3 of 25 (grid) modes (PacGAN, Lin et al., 2018, Table 1, GAN row), "
         "and the lecture's \"mode collapse\" slide.")


GAMES = ("minimax", "ns", "wgan_gp")
DATA = ("ring8", "grid25")


def run(report, budget):
    from jaxgen.eval.evaluate import evaluate
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.loop import train_and_evaluate
    steps = budget.steps(10000, 20)
    seeds = budget.pick(3, 1)
    root = report.path("runs")
    fast = ["model.g_features=(16,)", "model.d_features=(16,)", "eval.mmd_num=100",
            "eval.mode_samples=300", "train.batch_size=40", "data.num_train=2000",
            "data.num_eval=400"] if budget.fast else []
    results = {}
    datas, games = budget.pick((DATA, GAMES), ((DATA[0],), (GAMES[1],)))  # fast: one run
    for data in datas:
        for game in games:
            for seed in range(seeds):
                wd = root / data / game / f"seed{seed}"
                cfg = config_lib.load_config(f"gan/{game}_toy2d", [
                    f"data.name={data}", f"seed={budget.seed + seed}", f"train.steps={steps}",
                    "train.progress=false", f"train.checkpoint_every={steps}",
                    f"train.sample_every={steps}", *fast])
                train_and_evaluate(cfg, wd)
                ev = evaluate(cfg, wd, progress=False)
                results.setdefault((data, game), []).append(ev)
    rows = []
    for (data, game), evs in results.items():
        k = evs[0]["num_modes"]
        covered = np.array([e["modes_covered"] for e in evs], np.float64)
        hq = np.array([e["high_quality_pct"] for e in evs], np.float64)
        rkl = np.array([e["reverse_kl"] for e in evs], np.float64)
        rows.append((data, game, len(evs), f"{_mean_se(covered)} / {k}", _mean_se(hq),
                     _mean_se(rkl)))
        if game in ("minimax", "ns"):
            pub = next(iter(PUBLISHED[data].values()))
            report.compare(f"{data}: modes covered by {game} (mean of {len(evs)} seeds)",
                           f"{covered.mean():.2f} / {k}", f"{pub} / {k} (GAN row)",
                           "PacGAN Table 1")
    report.verdict_from_rows("the games cover as many modes as PacGAN's GAN row or more",
                             f"{seeds} seeds x {steps} generator steps per game and data")
    for data in datas:
        for name, modes in PUBLISHED[data].items():
            rows.append((data, name, "-", f"{modes} (published)", "-", "-"))
    report.table(("data", "game", "seeds", "modes covered", "high quality %", "reverse KL"),
                 rows, f"{steps} generator steps per run, "
                 f"{next(iter(results.values()))[0]['mode_samples']} samples per eval, "
                 "mean ± s.e. over seeds")
    report.text("\"Covered\" = at least one high-quality sample (PacGAN's definition); the "
                "architectures and schedules differ from PacGAN's (theirs: 4 x 400 ReLU "
                "generator, maxout discriminator), so the comparison is of the phenomenon, "
                "not of the exact number. Runs: `runs/<data>/<game>/seed<k>/` (eval/, "
                "samples/).")
    (report.path("mode_collapse.json")).write_text(json.dumps(
        {f"{d}/{g}": evs for (d, g), evs in results.items()}, indent=1, default=float))
    for data in datas:  # copied beside report.md: runs/ is not committed with a report
        pic = root / data / games[0] / "seed0" / "samples" / f"step_{steps:07d}.png"
        if pic.exists():
            name = f"{data}_{games[0]}_samples.png"
            shutil.copy(pic, report.path(name))
            report.figure(name, f"{data}: {games[0]} GAN samples (seed 0) over the data")


def _mean_se(v) -> str:
    v = np.asarray(v, np.float64)
    if not np.all(np.isfinite(v)):
        return f"inf ({int(np.sum(~np.isfinite(v)))} of {len(v)} seeds had no HQ sample)"
    if len(v) < 2:
        return f"{v.mean():.2f}"
    return f"{v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f}"


def summarize(root) -> str:
    """A Markdown table over the runs ROOT/<data>/<game>/seed*/: each run's newest test
    evaluation (`jaxgen.eval.evaluate.read_eval`), mean ± s.e. over seeds."""
    from pathlib import Path

    from jaxgen.eval.evaluate import read_eval
    from jaxgen.kernel.errors import MissingError
    root = Path(root)

    def evaluation(run):
        try:
            return read_eval(run, "test")
        except MissingError:  # not evaluated (yet)
            return None
    lines = ["| data | game | seeds | modes covered | high quality % | reverse KL |",
             "|---|---|---|---|---|---|"]

    def cell(v):
        v = np.asarray(v, np.float64)
        if not np.all(np.isfinite(v)):  # reverse KL of a run without a high-quality sample
            return f"inf ({int(np.sum(~np.isfinite(v)))} of {len(v)} seeds had none)"
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return f"{v.mean():.2f} ± {se:.2f}"

    for data_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for game_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            evs = [e for e in map(evaluation, sorted(game_dir.glob("seed*"))) if e is not None]
            if not evs:
                continue
            k = evs[0]["num_modes"]
            lines.append(f"| {data_dir.name} | {game_dir.name} | {len(evs)} | "
                         f"{cell([e['modes_covered'] for e in evs])} / {k} | "
                         f"{cell([e['high_quality_pct'] for e in evs])} | "
                         f"{cell([e['reverse_kl'] for e in evs])} |")
        for name, modes in PUBLISHED.get(data_dir.name, {}).items():
            lines.append(f"| {data_dir.name} | {name} | - | {modes} (published) | - | - |")
    return "\n".join(lines)

