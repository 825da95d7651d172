"""gan-claims: the GAN section's remaining claims, measured on trained models.

1. The saturating generator loss log(1 − D(G(z))) has a vanishing gradient where
   D(G(z)) ≈ 0 (early training, D confident), the non-saturating −log D(G(z)) does not
   (deck 001, "Training GANs: the trick"). For D = σ(l) the chain rule gives
   ‖∇_x log(1 − D)‖ = D ‖∇_x l‖ and ‖∇_x −log D‖ = (1 − D) ‖∇_x l‖: their ratio is
   D / (1 − D) = exp(l) exactly. Measured with `jax.grad` through trained
   discriminators (`tools.generator_loss_gradients`): one trained against the generator
   at its initialisation (the generator's learning rate 0: the start of training, where D
   wins), one at the end of a full game; on the generators' samples and on points between
   them and data (to span D from 0 to 1), plus the gradients w.r.t. all of G's parameters.
2. k discriminator steps per generator step (Goodfellow et al., 2014, Algorithm 1,
   objective.n_critic, each with its own minibatch of m): k = 1, 2, 5 on ring-8 over
   seeds, MMD / high-quality % / modes against generator steps and against wall time.
3. DCGAN (Radford et al., 2016) on Fashion-MNIST: z-interpolation strips, latent
   arithmetic on class-mean latents (classes from jaxgen's Fashion-MNIST classifier), and
   each sample beside its nearest training image in pixels and in the classifier's
   features, with the samples' nearest-train distances against the test images' own.

Every model is trained by the one trainer (`runs.train_run`).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.families.gan import gan
from jaxgen.families.gan import tools as gtools
from jaxgen.kernel import transforms
from jaxgen.reproduce.report import CANNOT_TELL
from jaxgen.reproduce.runs import train_run

TITLE = ("GAN training claims: the saturating generator loss, k discriminator steps, "
         "DCGAN's latent space")
CLAIM = ("(1) Deck 001, \"Training GANs: the trick\": minimising E log(1 − D(G(z))) has "
         "\"grad. small when D(G(z)) is small, i.e., generator is not good, esp. at the "
         "initial stage—bad!\"; minimise −log D(G(z)) instead. (2) Algorithm 1 (Goodfellow "
         "et al., 2014, quoted in deck 000): \"The number of steps to apply to the "
         "discriminator, k, is a hyperparameter. We used k = 1, the least expensive "
         "option\"; deck 001: \"often k > 1 in practice to train the discriminator slightly "
         "faster\". (3) Deck 001, \"DC-GAN results\": \"z interpolation\", \"image "
         "arithmetic\" (Radford et al., 2016), and Goodfellow et al.'s Figure 2: \"the nearest "
         "training example of the neighboring sample, in order to demonstrate that the model "
         "has not memorized the training set\".")

TOY = "gan/ns_toy2d.py"
DCGAN = "gan/dcgan_fashion_mnist.py"
KS = (1, 2, 5)
M = 128  # the minibatch of each discriminator / generator update (Algorithm 1's m)
TOY_FAST = ["model.g_features=(16,)", "model.d_features=(16,)", "eval.mmd_num=100",
            "eval.mode_samples=300", "data.num_train=2000", "data.num_eval=400",
            "train.sample_every=0", "train.pictures=false"]
# the full-budget DCGAN: half the config's widths (measured ~0.2 s/step on 2 shared cores)
DCGAN_FULL = ["model.g_channels=32", "model.d_channels=32"]
DCGAN_FAST = ["model.g_channels=8", "model.d_channels=8", "train.data_in_memory_mb=0",
              "train.pictures=false", "train.sample_every=0"]
# latent arithmetic: A − B + C (Fashion-MNIST class ids)
TRIPLES = ((9, 7, 5), (4, 2, 6), (2, 0, 3))
NAMES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
         "bag", "ankle boot")


def run(report, budget):
    rows = []  # the per-claim table: (claim, measured, verdict)
    toy, note_k = _k_steps(report, budget, rows)
    note_s = _saturation(report, budget, rows, toy)
    note_d = _dcgan(report, budget, rows)
    report.table(("claim", "measured", "verdict"), rows, "each claim's verdict, from the "
                 "numbers above")
    verdicts = [r[2] for r in rows]
    if "does not hold" in verdicts:
        v = "does not hold"
    elif all(x == "holds" for x in verdicts):
        v = "holds"
    else:
        v = CANNOT_TELL
    report.verdict(v, "; ".join(f"{r[0]}: {r[2]} ({r[1]})" for r in rows),
                   "; ".join((note_k, note_s, note_d)))


def _train(report, name, config, overrides, **kw):
    """`train_run`, its timing (ms/step, seconds) kept in the run folder (timing.json), so a
    report regenerated around finished runs (`--reuse-runs`) quotes the training's own."""
    exp, params, summary, wd = train_run(report, name, config, overrides, **kw)
    path = wd / "timing.json"
    key = "ms/step (median, after 2 calls)"
    if key in summary:  # trained now
        timing = {"ms_per_step": float(summary[key]), "seconds": summary["train_seconds"]}
        path.write_text(json.dumps(timing))
    else:  # finished earlier: nothing was trained
        timing = json.loads(path.read_text())
    return exp, params, timing, wd


# --------------------------------------------- 1. saturating vs non-saturating gradient
def _saturation(report, budget, rows, toy):
    from jaxgen.data import get_dataset
    steps = budget.steps(500, 5)
    n = budget.pick(1000, 64)
    exp, params, _, wd = _train(
        report, "saturation_early_D", TOY,
        ["optim.players.generator.learning_rate=0", "optim.warmup_steps=0"],
        steps=steps, batch=M, seed=budget.seed,
        fast_overrides=TOY_FAST, fast=budget.fast)
    tools = exp.objective.tools
    data = np.asarray(get_dataset(exp.config.data, "test").source.get(np.arange(n))["x"])
    rng = np.random.default_rng(budget.seed)
    grad_fn = jax.jit(lambda p, x: gan.generator_loss_gradients(tools.discriminate, p, x))
    pgrad_fn = jax.jit(lambda p, z: gan.generator_param_gradients(
        tools.generate, tools.discriminate, p, z))
    z = tools.latents(jax.random.key(budget.seed + 1), n)
    sets = {}
    for label, (e, p) in {"early D (G at init)": (exp, params),
                          "end of the game (k = 1)": toy}.items():
        fake = np.asarray(e.objective.tools.generate(p, z))
        t = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        path = (1 - t) * fake + t * data[rng.permutation(n)]
        g_fake = jax.tree.map(np.asarray, grad_fn(p, fake))
        g_path = jax.tree.map(np.asarray, grad_fn(p, path))
        sat, ns = (float(v) for v in pgrad_fn(p, z))
        sets[label] = (g_fake, g_path, sat, ns)
    wd_pic = wd / "samples" / "discriminator.png"
    if wd_pic.exists():
        import shutil
        shutil.copy(wd_pic, report.path("early_discriminator.png"))

    # the exact identity: ratio of the two gradient norms = exp(l) = D / (1 − D)
    worst, checked = 0.0, 0
    for g_fake, g_path, _, _ in sets.values():
        for g in (g_fake, g_path):
            ok = (g.nonsaturating > 1e-30) & np.isfinite(g.saturating) & (np.abs(g.logit) < 30)
            ratio = g.saturating[ok].astype(np.float64) / g.nonsaturating[ok]
            err = np.abs(ratio / np.exp(g.logit[ok].astype(np.float64)) - 1)
            worst, checked = max(worst, float(err.max(initial=0.0))), checked + int(ok.sum())
    report.compare("max over points of abs(‖∇ sat‖ / ‖∇ NS‖ / (D / (1 − D)) − 1)", worst, 0.0,
                   f"chain rule through D = σ(l) ({checked} points)", worst < 1e-3)
    g_early, _, sat_p, ns_p = sets["early D (G at init)"]
    d_med = float(np.median(g_early.d))
    frac_conf = float(np.mean(g_early.d < 0.1))
    r_med = float(np.median(g_early.saturating / np.maximum(g_early.nonsaturating, 1e-30)))
    table = []
    for label, (g_fake, _, sat, ns) in sets.items():
        ratio = g_fake.saturating / np.maximum(g_fake.nonsaturating, 1e-30)
        table.append((label, f"{np.median(g_fake.d):.3g}", f"{np.mean(g_fake.d < 0.1):.2f}",
                      f"{np.median(g_fake.saturating):.3g}",
                      f"{np.median(g_fake.nonsaturating):.3g}", f"{np.median(ratio):.3g}",
                      f"{sat:.3g}", f"{ns:.3g}", f"{sat / max(ns, 1e-30):.3g}"))
    report.table(("discriminator", "median D(G(z))", "share D < 0.1", "median ‖∇_x sat‖",
                  "median ‖∇_x NS‖", "median ratio", "‖∇_θG sat‖", "‖∇_θG NS‖",
                  "θ_G ratio"), table,
                 f"{n} samples G(z) per discriminator; sat = log(1 − D(x)), NS = −log D(x); "
                 f"the early D trained {steps} steps against G at its initialisation")
    report.compare("early D: median D(G(z)) (D confident)", d_med, "≈ 0", "deck 001",
                   None if budget.fast else d_med < 0.1)
    report.compare("early D: median ‖∇_x sat‖ / ‖∇_x NS‖ over G's samples", r_med, "≪ 1",
                   "deck 001: \"grad. small when D(G(z)) is small\"",
                   None if budget.fast else r_med < 0.1)
    ratio_p = sat_p / max(ns_p, 1e-30)
    report.compare("early D: ‖∇_θG E sat‖ / ‖∇_θG E NS‖ (all of G's parameters)", ratio_p,
                   "≪ 1", "deck 001", None if budget.fast else ratio_p < 0.1)
    _saturation_figure(report, sets)
    if d_med >= 0.1:
        v = CANNOT_TELL
    else:
        v = "holds" if (r_med < 0.1 and ratio_p < 0.1 and worst < 1e-3) else "does not hold"
    rows.append(("saturating loss's gradient vanishes where D(G(z)) ≈ 0",
                 f"early D: median D(G(z)) {d_med:.2g} ({100 * frac_conf:.0f} % < 0.1); "
                 f"‖∇_x sat‖ / ‖∇_x NS‖ median {r_med:.2g}, θ_G ratio {ratio_p:.2g}; "
                 f"identity D/(1 − D) to {worst:.1g}", v))
    return f"early D: {steps} steps against G at its initialisation"


def _saturation_figure(report, sets):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(13, 4), dpi=100, layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    marks = {"early D (G at init)": "o", "end of the game (k = 1)": "^"}
    for label, (g_fake, g_path, _, _) in sets.items():
        d = np.concatenate([g_fake.d, g_path.d])
        sat = np.concatenate([g_fake.saturating, g_path.saturating])
        ns = np.concatenate([g_fake.nonsaturating, g_path.nonsaturating])
        lg = np.maximum(np.concatenate([g_fake.logit_grad, g_path.logit_grad]), 1e-30)
        m = marks[label]
        ax1.scatter(d, sat, s=3, c="tab:red", marker=m, alpha=0.4, label=f"sat, {label}")
        ax1.scatter(d, ns, s=3, c="tab:blue", marker=m, alpha=0.4, label=f"NS, {label}")
        ax2.scatter(d, sat / lg, s=3, c="tab:red", marker=m, alpha=0.4)
        ax2.scatter(d, ns / lg, s=3, c="tab:blue", marker=m, alpha=0.4)
    u = np.linspace(1e-4, 1 - 1e-4, 400)
    ax2.plot(u, u, "k--", lw=1, label="D (analytic, sat)")
    ax2.plot(u, 1 - u, "k:", lw=1.5, label="1 − D (analytic, NS)")
    ax3.plot(u, np.log(1 - u), c="tab:red", label="log(1 − D) (saturating)")
    ax3.plot(u, -np.log(u), c="tab:blue", label="−log D (non-saturating)")
    ax1.set(yscale="log", xlabel="D(x)", ylabel="‖∇_x loss‖",
            title="at samples and sample-data mixes")
    ax1.legend(fontsize=7, markerscale=3)
    ax2.set(xlabel="D(x)", ylabel="‖∇_x loss‖ / ‖∇_x logit‖",
            title="divided by ‖∇_x l‖, vs the analytic")
    ax2.legend(fontsize=8)
    ax3.set(xlabel="D(G(z))", ylabel="generator loss", title="the losses (deck 001's plot)")
    ax3.legend(fontsize=8)
    report.path("saturation.png").parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(report.path("saturation.png"))
    report.figure("saturation.png", "saturating (red) vs non-saturating (blue) generator "
                  "loss: the gradient w.r.t. the generated point x through trained "
                  "discriminators, against D(x) (circles: D trained against G at its "
                  "initialisation; triangles: D at the end of a k = 1 game)")
    if report.path("early_discriminator.png").exists():
        report.figure("early_discriminator.png", "the early discriminator: D(x) over the "
                      "plane, with the data and the (untrained) generator's samples")


# ------------------------------------------------------- 2. k discriminator steps
def _toy_quality(exp, params, held, toy, seed: int) -> tuple[float, float, int]:
    """(MMD² against the held-out points, high-quality %, modes covered) of len(held)
    samples: `jaxgen eval`'s "mmd" and "modes" metrics, without rebuilding the run."""
    from jaxgen.eval.mmd import mmd2
    from jaxgen.eval.modes import mode_metrics
    x = exp.sample(params, jax.random.key(seed), len(held), chunk=len(held))
    m = mode_metrics(x, toy.modes, toy.std)
    return float(mmd2(jnp.asarray(x), jnp.asarray(held))), m["high_quality_pct"], \
        m["modes_covered"]


def _k_steps(report, budget, rows):
    from jaxgen.data import get_dataset
    steps = budget.steps(3000, 4)
    every = budget.pick(max(1, steps // 10), steps)
    seeds = budget.pick(3, 1)
    ks = budget.pick(KS, (1, 2))
    curves, cost, first = {}, {}, None
    for k in ks:
        for s in range(seeds):
            exp, params, timing, wd = _train(
                report, f"k{k}_seed{s}", TOY,
                [f"objective.n_critic={k}", "optim.warmup_steps=0",
                 f"train.checkpoint_every={every}", "train.max_to_keep=1000",
                 "train.pictures=false", "train.sample_every=0"],
                steps=steps, batch=M * k, seed=budget.seed + s, fast_overrides=TOY_FAST,
                fast=budget.fast)
            if k == 1 and s == 0:
                first = (exp, params)
            ms = timing["ms_per_step"]
            cost.setdefault(k, []).append(ms)
            test = get_dataset(exp.config.data, "test")
            held = np.asarray(test.source.get(np.arange(budget.pick(2000, 200)))["x"])
            pts = []
            for step in range(every, steps + 1, every):
                state, _ = exp.restore(wd, step)
                pts.append((step, step * ms / 1000,
                            *_toy_quality(exp, state.params, held, test.toy, step)))
            curves.setdefault(k, []).append(np.asarray(pts, np.float64))
    report.path("k_steps.json").write_text(json.dumps(
        {"steps": steps, "m": M, "ms_per_step": cost,
         "curves (step, wall s, mmd, high-quality %, modes)": {
             k: [c.tolist() for c in v] for k, v in curves.items()}}, indent=1))
    table, final = [], {}
    for k in ks:
        c = np.stack(curves[k])  # (seeds, points, 5)
        fin = c[:, -1]
        final[k] = fin
        hq = c[:, :, 3].mean(0)  # the seeds' mean high-quality % at each checkpoint
        reach = int(c[0, np.argmax(hq >= 20), 0]) if np.any(hq >= 20) else "never"
        table.append((k, f"{np.mean(cost[k]):.2f}", _mse(fin[:, 2], 4), _mse(fin[:, 3], 3),
                      _mse(fin[:, 4], 2), reach, f"{np.mean(c[:, -1, 1]):.1f}"))
    # equal wall time: the k = 1 runs' last step time; the others' curves interpolated there
    t_eq = float(np.mean(np.stack(curves[ks[0]])[:, -1, 1]))
    at_eq = {k: np.array([np.interp(t_eq, c[:, 1], c[:, 2]) for c in curves[k]]) for k in ks}
    table = [row + (_mse(at_eq[k], 4),) for row, k in zip(table, ks)]
    report.table(("k", "ms / generator step", "final MMD²", "final high-quality %",
                  "final modes of 8", "first step with ≥ 20 % high quality",
                  "wall at the end (s)", f"MMD² at {t_eq:.1f} s"),
                 table, f"ring-8, non-saturating game, {steps} generator steps, m = {M} per "
                 f"update (batch {M} k), mean ± s.e. over {seeds} seeds; wall = generator "
                 "steps x the run's median ms/step (this shared machine)")
    reached = {row[0]: row[5] for row in table if row[5] != "never"}
    soonest = min(reached, key=reached.get) if reached else None
    best = min(ks, key=lambda k: final[k][:, 2].mean())
    report.text("MMD² (against held-out ring-8 points) weighs both where the samples lie and "
                "how they share the modes; the high-quality % counts only whether each sample "
                "is within 3σ of some mode. Here "
                + (f"k = {soonest} was first to put 20 % of its samples on modes (step "
                   f"{reached[soonest]}), " if soonest is not None else "")
                + f"k = {best} ended with the lowest MMD² "
                f"({final[best][:, 2].mean():.2g}, {final[best][:, 4].mean():.1f} modes of 8 "
                "on average).")
    _k_figure(report, curves, ks)
    ms = [np.mean(cost[k]) for k in ks]
    monotone = all(a < b for a, b in zip(ms, ms[1:]))
    report.compare(f"ms per generator step, k = {', '.join(map(str, ks))}",
                   ", ".join(f"{v:.2f}" for v in ms), "rises with k (k = 1 least expensive)",
                   "Goodfellow et al. 2014, Alg. 1", monotone)
    k1 = at_eq[ks[0]]
    better = [k for k in ks[1:] if at_eq[k].mean() + 2 * _se(at_eq[k]) < k1.mean()
              - 2 * _se(k1)]
    mmd_fin = {k: final[k][:, 2] for k in ks}
    per_step_better = [k for k in ks[1:] if mmd_fin[k].mean() + 2 * _se(mmd_fin[k])
                       < mmd_fin[ks[0]].mean() - 2 * _se(mmd_fin[ks[0]])]
    report.compare("k > 1 with lower MMD² than k = 1 after the same generator steps",
                   ", ".join(map(str, per_step_better)) or "none", "\"slightly faster\" "
                   "(deck 001)", "by > 2 s.e.", None)
    report.compare(f"k > 1 with lower MMD² than k = 1 at equal wall time ({t_eq:.1f} s)",
                   ", ".join(map(str, better)) or "none", "none (k = 1 suffices)",
                   "Goodfellow et al. 2014", None if budget.fast else not better)
    if seeds < 3:
        v = CANNOT_TELL
    else:
        v = "holds" if monotone and not better else "does not hold"
    rows.append(("k = 1 is the least expensive k and suffices",
                 f"ms/step {' / '.join(f'{x:.1f}' for x in ms)} for k = "
                 f"{'/'.join(map(str, ks))}; MMD² at equal wall {t_eq:.0f} s: "
                 + ", ".join(f"k={k} {at_eq[k].mean():.2g}" for k in ks), v))
    return first, (f"ring-8: {seeds} seeds x k in {ks} x {steps} generator steps "
                   f"(m = {M}), {sum(map(sum, cost.values())) * steps / 6e4:.1f} min of steps")


def _k_figure(report, curves, ks):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(13, 4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    for k in ks:
        c = np.stack(curves[k])
        for ax, (xi, yi) in zip(axes, ((0, 2), (1, 2), (0, 3))):
            mean, se = c[:, :, yi].mean(0), c[:, :, yi].std(0, ddof=1) / np.sqrt(len(c)) \
                if len(c) > 1 else np.zeros(c.shape[1])
            x = c[:, :, xi].mean(0)
            ax.plot(x, mean, marker="o", ms=3, label=f"k = {k}")
            ax.fill_between(x, mean - se, mean + se, alpha=0.2)
    axes[0].set(xlabel="generator steps", ylabel="MMD²", yscale="log",
                title="sample MMD² vs generator steps")
    axes[1].set(xlabel="wall time (s)", ylabel="MMD²", yscale="log",
                title="sample MMD² vs wall time")
    axes[2].set(xlabel="generator steps", ylabel="% within 3σ of a mode",
                title="high-quality samples")
    for ax in axes:
        ax.legend()
    fig.savefig(report.path("k_steps.png"))
    report.figure("k_steps.png", "k discriminator steps per generator step on ring-8 (mean ± "
                  "s.e. over seeds)")


# ------------------------------------------------------------------------ 3. DCGAN
def _dcgan(report, budget, rows):
    from jaxgen.eval import classifier as clf
    steps = budget.steps(5000, 3)
    exp, params, timing, _ = _train(report, "dcgan", DCGAN, [] if budget.fast else
                                        DCGAN_FULL, steps=steps, batch=64, seed=budget.seed,
                                        fast_overrides=DCGAN_FAST, fast=budget.fast)
    cached = clf.load_cached()
    cparams = cached[0] if cached is not None else None
    if cparams is None and not budget.fast:
        cparams, _ = clf.load_or_train()
    tools = exp.objective.tools
    gen = jax.jit(lambda z: tools.generate(params, z))
    n = budget.pick(2000, 64)
    z = np.asarray(tools.latents(jax.random.key(budget.seed + 7), n))
    x_model = np.concatenate([np.asarray(gen(z[i:i + 500])) for i in range(0, n, 500)])
    x = transforms.postprocess("images", x_model)
    n_train = budget.pick(None, 500)
    train_x, train_y = clf._load_split(exp.config.data, "train",
                                       n_train)
    test_x, _ = clf._load_split(exp.config.data, "test",
                                budget.pick(1000, 64))
    if cparams is not None:
        probs = np.asarray(jax.nn.softmax(clf.logits(cparams, x_model)), np.float64)
    else:  # fast run without the cached classifier: the nearest training image's label
        probs = np.eye(10)[train_y[gtools.nearest_neighbours(x / 255.0, train_x / 255.0)[0]]]
    quality = (clf.sample_quality(cparams, x[:1000], real_for_pr=test_x)
               if cparams is not None else {})
    conf = float(np.mean(probs.max(1)))
    report.text(f"DCGAN: {steps} steps x 64 ({timing['seconds'] / 60:.1f} min, "
                f"{timing['ms_per_step']:.1f} ms/step); {n} samples, the "
                f"classifier's mean top-class probability {conf:.3f}; class histogram "
                + ", ".join(f"{NAMES[c]} {int(v)}" for c, v in
                            enumerate(np.bincount(probs.argmax(1), minlength=10)))
                + (f"; FD {quality['fd']:.1f} (n = {quality['fd_n']}), precision "
                   f"{quality['precision']:.3f}, recall {quality['recall']:.3f}"
                   if quality else ""))
    garments = conf > 0.7
    _interpolation(report, budget, gen, z, rows, garments)
    _arithmetic(report, budget, gen, z, probs, cparams, rows, garments)
    _memorisation(report, budget, x, train_x, test_x, cparams, rows, garments)
    return (f"DCGAN (32 channels) {steps} steps x 64, {timing['seconds'] / 60:.1f} min "
            f"({timing['ms_per_step']:.1f} ms/step)")


def _interpolation(report, budget, gen, z, rows, garments):
    frames, strips = 10, budget.pick(8, 2)
    t = np.linspace(0, 1, frames)[None, :, None]
    za, zb = z[:strips], z[strips:2 * strips]
    path = ((1 - t) * za[:, None] + t * zb[:, None]).reshape(-1, z.shape[1])
    img = transforms.postprocess("images", np.asarray(gen(jnp.asarray(path, jnp.float32))))
    img = img.reshape(strips, frames, *img.shape[1:])
    viz.save_image_rows(list(img), report.path("interpolation.png"),
                        title="G((1 − t) z_a + t z_b), t = 0 … 1")
    report.figure("interpolation.png", f"DCGAN z-interpolation: {strips} strips of {frames} "
                  "frames (linear in z)")
    v = img.reshape(strips, frames, -1).astype(np.float64) / 255.0
    step = np.linalg.norm(np.diff(v, axis=1), axis=-1)  # (strips, frames - 1)
    share = step.max(1) / step.sum(1)
    mean_share = float(np.mean(share))
    report.compare("interpolation: largest frame-to-frame pixel step / the path's length",
                   mean_share, f"≈ 1/{frames - 1} = {1 / (frames - 1):.3f} (smooth)",
                   "Radford et al. 2016, Sec. 6.1", None if budget.fast else
                   mean_share < 2.5 / (frames - 1))
    v_ = ("holds" if mean_share < 2.5 / (frames - 1) else "does not hold") if garments \
        else CANNOT_TELL
    rows.append(("DCGAN: z interpolation is smooth",
                 f"largest step {mean_share:.3f} of the path (uniform: "
                 f"{1 / (frames - 1):.3f}; threshold 2.5x)", v_))


def _arithmetic(report, budget, gen, z, probs, cparams, rows, garments):
    from jaxgen.eval import classifier as clf
    top = budget.pick(8, 2)
    rng = np.random.default_rng(budget.seed)
    pics, table, wins = [], [], 0
    for a, b, c in TRIPLES:
        za, zb, zc = gtools.class_mean_latents(z, probs, (a, b, c), top)
        direction = za - zb
        res = zc + direction
        # the baseline: the same move in random directions of the same length
        r = rng.standard_normal((16, len(zc)))
        r *= np.linalg.norm(direction) / np.linalg.norm(r, axis=1, keepdims=True)
        lat = np.concatenate([np.stack([za, zb, zc, res]), zc + r]).astype(np.float32)
        xm = np.asarray(gen(jnp.asarray(lat)))
        pics.append(transforms.postprocess("images", xm[:4]))
        if cparams is not None:
            p = np.asarray(jax.nn.softmax(clf.logits(cparams, xm)), np.float64)
        else:
            p = np.full((len(lat), 10), 0.1)
        p_res, p_c, p_rand = p[3, a], p[2, a], float(np.mean(p[4:, a]))
        wins += int(p_res > p_rand)
        table.append((f"{NAMES[a]} − {NAMES[b]} + {NAMES[c]}", f"{p_c:.3f}", f"{p_res:.3f}",
                      f"{p_rand:.3f}", NAMES[int(p[3].argmax())]))
    viz.save_image_rows(pics, report.path("arithmetic.png"),
                        row_labels=[f"{NAMES[a]}-{NAMES[b]}+{NAMES[c]}"
                                    for a, b, c in TRIPLES],
                        title="columns: G(z_A), G(z_B), G(z_C), G(z_A - z_B + z_C)")
    report.figure("arithmetic.png", f"latent arithmetic on class-mean latents (each the mean "
                  f"of the {top} latents the classifier finds most typical of the class)")
    report.table(("A − B + C", "p(A | G(z_C))", "p(A | G(z_A − z_B + z_C))",
                  "p(A) after random moves of the same length (16)", "result's class"),
                 table, "the classifier's probability of class A: the arithmetic moves C "
                 "toward A beyond what a move of the same size in a random direction does?")
    report.compare("latent arithmetic: triples where A − B + C scores p(A) above random "
                   "moves", f"{wins} of {len(TRIPLES)}", "the direction z_A − z_B carries A",
                   "Radford et al. 2016, Sec. 6.3", None if budget.fast else
                   wins == len(TRIPLES))
    v = ("holds" if wins == len(TRIPLES) else "does not hold") \
        if garments and cparams is not None else CANNOT_TELL
    rows.append(("DCGAN: latent arithmetic", f"{wins} of {len(TRIPLES)} triples move toward "
                 "A beyond random moves of the same length", v))


def _memorisation(report, budget, x, train_x, test_x, cparams, rows, garments):
    from jaxgen.eval import classifier as clf
    n = budget.pick(1000, 32)
    xs, xt = x[:n], test_x[:n]
    flat = (train_x.reshape(len(train_x), -1) / 255.0).astype(np.float32)
    i_s, d_s = gtools.nearest_neighbours(xs.reshape(len(xs), -1) / 255.0, flat)
    _, d_t = gtools.nearest_neighbours(xt.reshape(len(xt), -1) / 255.0, flat)
    rows_pic, labels = [xs[:10], train_x[i_s[:10]]], ["sample", "nearest (pixels)"]
    table = [("pixels (L2, [0, 1])", f"{np.median(d_s):.3f}", f"{np.median(d_t):.3f}",
              f"{np.min(d_s):.3f}", f"{np.min(d_t):.3f}",
              f"{np.mean(d_s < np.quantile(d_t, 0.01)):.3f}")]
    copies = float(np.mean(d_s < np.quantile(d_t, 0.01)))
    if cparams is not None:
        f_train = clf.embed(cparams, train_x)
        i_f, df_s = gtools.nearest_neighbours(clf.embed(cparams, xs), f_train)
        _, df_t = gtools.nearest_neighbours(clf.embed(cparams, xt), f_train)
        rows_pic.append(train_x[i_f[:10]])
        labels.append("nearest (features)")
        table.append(("classifier features", f"{np.median(df_s):.3f}", f"{np.median(df_t):.3f}",
                      f"{np.min(df_s):.3f}", f"{np.min(df_t):.3f}",
                      f"{np.mean(df_s < np.quantile(df_t, 0.01)):.3f}"))
        copies = max(copies, float(np.mean(df_s < np.quantile(df_t, 0.01))))
    viz.save_image_rows(rows_pic, report.path("nearest.png"), row_labels=labels,
                        title="DCGAN samples and their nearest training images")
    report.figure("nearest.png", f"ten samples (top) over their nearest of the "
                  f"{len(train_x)} training images")
    report.table(("space", "samples: median NN distance", "test images: median NN distance",
                  "samples: min", "test: min", "share of samples closer than the test "
                  "images' 1 % quantile"), table,
                 f"nearest-training-image distances of {n} samples and {n} test images "
                 f"(search over {len(train_x)} training images)")
    far = np.median(d_s) / np.median(d_t)
    report.text(f"The samples' median nearest-training distance is {far:.2f}x the test "
                "images' (pixels)" + (
                    ": no sample is a near copy, but at this budget the samples are also "
                    "further from the data than real images are, so the check says little "
                    "about a generator good enough to copy." if far > 1 else "."))
    report.compare("share of samples nearer a training image than 99 % of test images are",
                   copies, "≈ 0.01 (no copies)", "Goodfellow et al. 2014, Fig. 2",
                   None if budget.fast else copies <= 0.03)
    v = ("holds" if copies <= 0.03 else "does not hold") if garments else CANNOT_TELL
    rows.append(("DCGAN samples are not training copies",
                 f"{100 * copies:.1f} % of samples nearer than the test images' 1 % "
                 f"quantile (pixels{', features' if cparams is not None else ''}); median "
                 f"NN distance {np.median(d_s):.2f} vs test {np.median(d_t):.2f}", v))


def _se(v) -> float:
    v = np.asarray(v, np.float64)
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _mse(v, digits: int) -> str:
    v = np.asarray(v, np.float64)
    return f"{v.mean():.{digits}g} ± {_se(v):.2g}" if len(v) > 1 else f"{v.mean():.{digits}g}"
