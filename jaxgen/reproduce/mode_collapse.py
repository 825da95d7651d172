"""mode-collapse: the GAN of Metz et al. (2017) on a ring of 8 Gaussians collapses onto a
few modes and hops between them; the unrolled discriminator and PacGAN's packing cure it.

The protocol (configs/gan/metz_ring8.py) is the "mixture of Gaussians" experiment of the
Unrolled GAN paper (Metz, Poole, Pfau & Sohl-Dickstein, 2017, appendix A): ring of 8
Gaussians of radius 2 and std 0.02; G an MLP of 2 hidden layers of 128 ReLU from
z ~ N(0, I_256), orthogonal kernels of gain 0.8; D scales its input by 1/4, then 1 hidden
layer of 128 ReLU and a logit; the minimax (saturating) game; Adam(1e-4, β1 = 0.5) for
both players; batches of 512. The paper trains 25 000 steps and more; at budget 1 each run
here trains 10 000 (a D and a G update each: about 2 min per run with its evaluations on
a shared, loaded 2-core CPU; 32 min for the 15 runs), by when the plain GAN has hopped
between modes several times and both remedies cover the ring. Three games are trained
on it over the same seeds, each through the one trainer (`train_and_evaluate`) into
REPORT/runs/<game>/seed<k>:

* "GAN": the plain minimax game (objective.unroll_steps = 0, pack = 1);
* "unrolled GAN (k = 5)": G's loss against D after 5 unrolled gradient steps
  (objective.unroll_steps = 5, unroll_lr: `jaxgen.families.gan.gan`, whose unrolled steps are
  plain gradient steps where Metz et al. unroll D's Adam);
* "PacGAN2": D judges pairs of samples (objective.pack = 2; Lin et al., 2018).

Each run keeps a checkpoint every fifth of its steps; at every checkpoint (and at the
initialisation, step 0) 2500 samples are scored by the VEEGAN / PacGAN mode metrics
(`jaxgen.eval.modes`: a mode is covered when a sample lies within 3σ of it; high quality =
% of samples within 3σ of their nearest mode; reverse KL of the high-quality samples' mode
histogram against uniform). The figure is the lecture's "mode collapse" slide: each game's
samples at those checkpoints over the data. Beside the final numbers: PacGAN's Table 1
(Lin et al., 2018; their ring: 8 Gaussians of radius 1, std 0.01, G 4 x 400 ReLU, D maxout,
10 trials), `jaxgen.eval.modes.PUBLISHED`.

The verdict, from the numbers: the GAN *collapses* when in most seeds its final samples
cover at most half of the 8 modes, or when in most seeds it hops: at the checkpoints where
over half its samples are nearest one mode, that mode is not always the same; a remedy
*cures* it when its final modes covered exceed the GAN's by more than twice their combined
standard error and its reverse KL is lower.
"""

from __future__ import annotations

import json

import numpy as np

from jaxgen.eval.modes import PUBLISHED

TITLE = "Mode collapse on the ring of 8 Gaussians, and two remedies (unrolled D, PacGAN)"
CLAIM = ("GANs collapse modes: trained on a mixture of Gaussians, the generator covers only "
         "some of the modes and, over training, hops between them (the lecture's \"mode "
         "collapse\" slide; Metz et al., 2017, Fig. 1); unrolling the discriminator (Metz et "
         "al.) or packing its inputs (PacGAN, Lin et al., 2018, Table 1: GAN 6.3 of 8 ring "
         "modes, PacGAN2 7.9) cures it.")

CONFIG = "gan/metz_ring8"
# name in the report -> (run folder, config overrides)
GAMES = {"GAN": ("gan", []),
         "unrolled GAN (k = 5)": ("unrolled5", ["objective.unroll_steps=5"]),
         "PacGAN2": ("pacgan2", ["objective.pack=2"])}
NUM_SAMPLES = 2500  # per evaluation (VEEGAN / PacGAN)
FAST = ["model.latent_dim=8", "model.g_features=(16,)", "model.d_features=(16,)",
        "train.batch_size=64", "data.num_train=2000", "data.num_eval=400"]


def run(report, budget):
    steps = budget.steps(10000, 10)
    seeds = budget.pick(5, 1)
    games = budget.pick(tuple(GAMES), ("GAN",))  # fast: the remedies have unit tests
    every = budget.pick(steps // 5, steps)
    n = budget.pick(NUM_SAMPLES, 300)
    root = report.path("runs")
    curves = {}  # game -> [per seed: [(step, metrics, samples)]]
    for game in games:
        folder, overrides = GAMES[game]
        for seed in range(seeds):
            curves.setdefault(game, []).append(_train_and_score(
                root / folder / f"seed{seed}", [
                    *overrides, f"seed={budget.seed + seed}", f"train.steps={steps}",
                    f"train.checkpoint_every={every}", "train.sample_every=0",
                    f"train.max_to_keep={steps // every + 1}", "train.progress=false",
                    *(FAST if budget.fast else [])], n, with_init=not budget.fast))
    _report(report, curves, steps, seeds, n, budget.fast)


def _train_and_score(wd, overrides, n, with_init=True):
    """Train (or resume) the run; [(step, mode metrics, samples)] at every checkpoint and,
    with_init, at the initialisation (step 0), each from n samples of one latent key."""
    import jax

    from jaxgen.data.toy2d import get_toy
    from jaxgen.eval.modes import mode_metrics
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.checkpoint import checkpoint_steps
    from jaxgen.runner.experiment import Experiment, read_run_info
    from jaxgen.runner.loop import train_and_evaluate
    cfg = config_lib.load_config(CONFIG, overrides)
    train_and_evaluate(cfg, wd)
    exp = Experiment(cfg, read_run_info(wd))
    toy = get_toy(cfg.data.name)
    key = jax.random.key(cfg.seed + 10**6)
    states = ([(0, exp.init_state())] if with_init else []) + [
        (s, exp.restore(wd, s)[0]) for s in checkpoint_steps(wd, cfg)]
    out = []
    for step, state in states:
        x = np.asarray(exp.sample(state.params, key, n, chunk=n))
        out.append((step, mode_metrics(x, toy.modes, toy.std), x))
    return out


def dominant_modes(curve, modes) -> list[tuple[int, float]]:
    """(the mode nearest to most samples, the share of the samples it holds) at each
    (step, metrics, samples) of `curve`."""
    from jaxgen.eval.modes import assign_modes
    out = []
    for _, _, x in curve:
        counts = np.bincount(assign_modes(x, modes)[0], minlength=len(modes))
        out.append((int(counts.argmax()), float(counts.max() / counts.sum())))
    return out


def hops(curve, modes) -> int:
    """How many distinct modes the generator sat on at the trained checkpoints where it
    was collapsed (over half its samples nearest one mode)."""
    return len({d for d, share in dominant_modes(_trained(curve), modes) if share > 0.5})


def _mean_se(v) -> tuple[float, float]:
    v = np.asarray(v, np.float64)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _cell(v) -> str:
    v = np.asarray(v, np.float64)
    if not np.all(np.isfinite(v)):
        return f"inf ({int(np.sum(~np.isfinite(v)))} of {len(v)} seeds had no HQ sample)"
    m, se = _mean_se(v)
    return f"{m:.2f} ± {se:.2f}" if len(v) > 1 else f"{m:.2f}"


def _report(report, curves, steps, seeds, n, fast):
    from jaxgen import viz
    from jaxgen.data.toy2d import get_toy
    from jaxgen.kernel import config as config_lib
    toy = get_toy("ring8")
    k = len(toy.modes)
    final = {g: [c[-1][1] for c in cs] for g, cs in curves.items()}
    covered = {g: np.array([m["modes_covered"] for m in ms], np.float64)
               for g, ms in final.items()}
    rkl = {g: np.array([m["reverse_kl"] for m in ms], np.float64) for g, ms in final.items()}
    hop = {g: [hops(c, toy.modes) for c in cs] for g, cs in curves.items()}
    share = {g: np.mean([sh for c in cs for _, sh in dominant_modes(_trained(c), toy.modes)])
             for g, cs in curves.items()}
    # the modes ever covered at some checkpoint after the initialisation, per seed
    ever = {g: [int(np.any([_covered_modes(x, toy) for _, _, x in _trained(c)], axis=0).sum())
                for c in cs] for g, cs in curves.items()}
    rows = []
    for g, ms in final.items():
        per_ckpt = [m["modes_covered"] for c in curves[g] for _, m, _ in _trained(c)]
        rows.append((g, len(ms), f"{_cell(covered[g])} / {k}",
                     _cell([m["high_quality_pct"] for m in ms]), _cell(rkl[g]),
                     f"{np.mean(per_ckpt):.2f}", f"{np.mean(ever[g]):.1f}",
                     f"{100 * share[g]:.0f}", f"{np.mean(hop[g]):.1f}"))
    for name, pub in PUBLISHED["ring8"].items():
        rows.append((f"{name} (published)", pub.trials, f"{pub.modes} ± {pub.modes_se} / {k}",
                     pub.high_quality, pub.reverse_kl, "-", "-", "-", "-"))
    report.table(("game", "seeds", "modes covered (final)", "high quality %",
                  "reverse KL", "modes covered, mean over checkpoints",
                  "modes ever covered", "% of samples on the dominant mode",
                  "modes sat on while collapsed"), rows,
                 f"ring8, {steps} steps per run (a D and a G update each), {n} samples per "
                 f"evaluation, mean ± s.e. over {seeds} seeds; checkpoints at steps "
                 f"{', '.join(str(s) for s, _, _ in _trained(next(iter(curves.values()))[0]))}; "
                 "published rows: PacGAN Table 1 (10 trials, ± s.e.)")
    report.text(
        "Setting: Metz et al.'s (configs/gan/metz_ring8.py: G 2 x 128 ReLU from a 256-d "
        "latent, D 1 x 128 ReLU on x / 4, minimax game, Adam 1e-4, β1 = 0.5, batch 512). "
        "PacGAN's published rows come from another setting (their ring: radius 1, std 0.01; "
        "G 4 x 400 ReLU, D maxout, 2-d latent), in which the plain GAN keeps 6.3 of 8 modes; "
        "they are printed for the size of the remedies' effect, not as the number to match. "
        "\"Covered\" = at least one sample within 3σ of the mode; \"dominant mode\" = the "
        "mode nearest to most samples (all samples, high quality or not). The unrolled D "
        "takes plain gradient steps of size objective.unroll_lr = "
        f"{config_lib.load_config(CONFIG, []).objective.unroll_lr:g} (Metz et al. unroll "
        "Adam). Runs: `runs/<game>/seed<k>/`.")
    # per-seed trajectories of covered modes: the hopping, seed by seed
    lines = []
    for g, cs in curves.items():
        for s, c in enumerate(cs):
            dom = dominant_modes(c, toy.modes)
            lines.append(f"| {g} | {s} | " + " | ".join(
                f"{m['modes_covered']} (mode {d}: {100 * sh:.0f}%)"
                for (_, m, _), (d, sh) in zip(c, dom)) + " |")
    header = [step for step, _, _ in next(iter(curves.values()))[0]]
    report.text("Per seed: modes covered at each checkpoint, and (in brackets) the mode "
                "nearest to most samples with the share of samples it holds (12.5% each when "
                "spread evenly). A collapsed generator holds most samples on one mode, and "
                "that mode changes from checkpoint to checkpoint.\n\n"
                "| game | seed | " + " | ".join(f"step {s}" for s in header) + " |\n"
                "|---|---|" + "---|" * len(header) + "\n" + "\n".join(lines))
    # the lecture's slide: samples over training, one row per game (seed 0)
    data = toy.sample(np.random.default_rng(0), 500)
    for g, cs in curves.items():
        folder, c = GAMES[g][0], cs[0]
        name = f"samples_over_training_{folder}.png"
        viz.save_scatter_panels(
            [("data", data)] + [(f"step {s}: {m['modes_covered']}/{k} modes", x[:500])
                                for s, m, x in c], report.path(name), lim=2.8,
            title=f"{g}, seed 0: 500 of its samples at each checkpoint")
        report.figure(name, f"{g} (seed 0): samples over training (left: the data)")
    report.path("mode_collapse.json").write_text(json.dumps(
        {g: [[{"step": s, **m} for s, m, _ in c] for c in cs] for g, cs in curves.items()},
        indent=1, default=float))
    # the verdict, from the numbers
    base = "GAN"
    few = int(np.sum(covered[base] <= k / 2))
    hopping = int(np.sum(np.asarray(hop[base]) >= 2))
    collapse = few > seeds / 2 or hopping > seeds / 2
    m0, s0 = _mean_se(covered[base])
    report.compare(f"modes covered by the GAN (mean of {seeds} seeds; seeds with at most "
                   f"{k // 2}; seeds hopping while collapsed)",
                   f"{m0:.2f} ± {s0:.2f} / {k}; {few} of {seeds}; {hopping} of {seeds}",
                   "few, one at a time, hopping (Metz et al. 2017, Fig. 1)",
                   "Metz et al. 2017", ok=None if fast else bool(collapse))
    cured = []
    for g in curves:
        if g == base:
            continue
        (m0, s0), (m1, s1) = _mean_se(covered[base]), _mean_se(covered[g])
        better = m1 - m0 > 2 * np.hypot(s0, s1) and np.mean(rkl[g]) < np.mean(rkl[base])
        report.compare(f"modes covered: {g} vs GAN (mean of {seeds} seeds)",
                       f"{m1:.2f} vs {m0:.2f} / {k}", "more (PacGAN Table 1: 7.9 vs 6.3)",
                       "Metz et al. 2017; Lin et al. 2018", ok=None if fast else bool(better))
        if better:
            cured.append(f"{g} {m1:.1f} ± {s1:.1f}")
    why = (f"the GAN ends on {m0:.1f} ± {s0:.1f} of {k} modes, at most {k // 2} in {few} of "
           f"{seeds} seeds, hopping between modes while collapsed (over half its samples on one "
           f"mode, on 2 or more modes over the checkpoints) in {hopping} of {seeds}; "
           + (f"significantly more with {', '.join(cured)}" if cured else
              "no remedy covers significantly more"))
    verdict = ("holds" if collapse and cured else
               "does not hold" if not collapse else "cannot tell at this budget")
    report.verdict(verdict, why, f"{len(curves)} games x {seeds} seeds x {steps} steps "
                                 "(batch 512, CPU)")


def _trained(curve):
    """The entries of a curve after the initialisation (step > 0)."""
    return [e for e in curve if e[0] > 0]


def _covered_modes(x, toy) -> np.ndarray:
    """(K,) bool: the modes with a sample within 3σ."""
    from jaxgen.eval.modes import assign_modes
    idx, dist = assign_modes(x, toy.modes)
    return np.bincount(idx[dist <= 3 * toy.std], minlength=len(toy.modes)) > 0


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
    for data_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for game_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            evs = [e for e in map(evaluation, sorted(game_dir.glob("seed*"))) if e is not None]
            if not evs:
                continue
            k = evs[0]["num_modes"]
            lines.append(f"| {data_dir.name} | {game_dir.name} | {len(evs)} | "
                         f"{_cell([e['modes_covered'] for e in evs])} / {k} | "
                         f"{_cell([e['high_quality_pct'] for e in evs])} | "
                         f"{_cell([e['reverse_kl'] for e in evs])} |")
        for name, pub in PUBLISHED.get(data_dir.name, {}).items():
            lines.append(f"| {data_dir.name} | {name} | - | {pub.modes} (published) | "
                         f"{pub.high_quality} | {pub.reverse_kl} |")
    return "\n".join(lines)
