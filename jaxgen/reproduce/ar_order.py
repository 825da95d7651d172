"""ar-order: an autoregressive model's finite memory and its generation order, measured.

Deck 000 writes the chain rule p(x) = Π_d p(x_d | x_<d), then "in practice, models have
finite memory ... Distant past is ignored with a context window",
p(x_d | x_<d) ≈ p(x_d | x_{d−k}, …, x_{d−1}), and lists among the cons "Quality depends
on generation order". Measured here on Fashion-MNIST (8-bit, 256-way conditionals, exact
bits/dim of held-out images) through the one trainer:

  * the window: the lecture's finite-memory MLP (configs/autoregressive/
    mlp_fashion_mnist.py, an MLP over the last k pixels plus a position embedding) for
    k = 1, 28 (a row), 112 (four rows) and 784 (every earlier pixel: full context, the
    same network), in raster order and in one fixed random order (objective.order=random),
    where the last k pixels of the permutation lie anywhere in the image;
  * two seeds per cell (the seed drives init, batches and, in random order, the
    permutation), at one budget of steps x batch for every model.

Bits/dim is −log₂ P(x) / 784 of the 8-bit test images (the first n), exact for every
model (no bound); uniform logits score 8.

The verdict: holds when (a) raster bits/dim falls with the window, from k = 1 to the
largest k by more than four seed spreads, and (b) every model is worse in random order
than in raster order by more than four seed spreads, at the smallest window, at a row
and at full context; does not hold when either goes the
other way by that margin; cannot tell otherwise.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxgen import viz
from jaxgen.kernel import transforms
from jaxgen.reproduce.ae_vs_vae import mean_sd, step_ms, test_images
from jaxgen.reproduce.runs import train_run

TITLE = "Autoregressive models: the context window k and the generation order"
CLAIM = ("Deck 000: p(x) = Π_t p(x_t | x_<t), but \"in practice, models have finite memory — "
         "they can't condition on the entire past. Distant past is ignored with a context "
         "window\", p(x_t | x_<t) ≈ p(x_t | x_{t−k}, …, x_{t−1}); among the autoregressive "
         "models' cons: \"Quality depends on generation order\".")

MLP = "autoregressive/mlp_fashion_mnist.py"
WINDOWS = (1, 28, 112, 784)
MLP_NET = ["model.features=(64, 64)"]
FAST_NET = ["model.features=(8,)", "train.data_in_memory_mb=0"]
COMMON = ["train.pictures=false", "train.sample_every=0"]


def bits_per_dim(exp, params, x, chunk: int = 250) -> float:
    """Mean exact bits/dim of model-space images x (bin centres) under the run's model."""
    log_probs = jax.jit(exp.objective.tools.log_probs)
    nll = np.concatenate([-np.asarray(log_probs(params, x[i:i + chunk]), np.float64).sum(1)
                          for i in range(0, len(x), chunk)])
    return float(nll.mean() / (np.log(2) * x[0].size))


def run(report, budget):
    steps = budget.steps(500, 3)
    batch = budget.pick(32, 4)
    seeds = budget.pick((0, 1), (0,))
    windows = budget.pick(WINDOWS, (1, 4, 16))
    n = budget.pick(1000, 16)
    fast = budget.fast
    res, ms, grids = {}, {}, {}
    x = None

    def cell(model: str, order: str, seed: int, config: str, overrides, fast_overrides):
        nonlocal x
        name = f"{model.replace(' ', '')}_{order}_seed{seed}"
        exp, params, _, wd = train_run(
            report, name, config, [*overrides, *COMMON, f"objective.order={order}",
                                   f"objective.order_seed={seed}"],
            steps=steps, batch=batch, seed=seed, fast_overrides=fast_overrides, fast=fast)
        if x is None:
            x = test_images(exp, n)[2]
        res.setdefault((model, order), []).append(bits_per_dim(exp, params, x))
        ms.setdefault(model, []).append(step_ms(wd))
        if seed == seeds[0]:
            grids[(model, order)] = transforms.postprocess(
                "images", exp.sample(params, jax.random.key(3), 12, chunk=12))

    for k in windows:
        for order in ("raster", "random"):
            for s in seeds:
                cell(f"MLP k={k}", order, s, MLP, [*MLP_NET, f"model.context={k}"], FAST_NET)

    models = [f"MLP k={k}" for k in windows]
    rows = []
    for m in models:
        (r, r_sd), (q, q_sd) = mean_sd(res[(m, "raster")]), mean_sd(res[(m, "random")])
        rows.append((m, f"{r:.3f} ± {r_sd:.3f}", f"{q:.3f} ± {q_sd:.3f}", f"{q - r:+.3f}",
                     f"{np.mean(ms[m]):.0f}"))
    report.table(("model", "raster order", "random order", "random − raster",
                  "ms per training step"), rows,
                 f"exact bits/dim of the first {n} test images (8-bit, lower is better), mean ± "
                 f"sd over {len(seeds)} seeds; {steps} steps x batch {batch} each; "
                 f"MLP {budget.pick('(64, 64)', '(8,)')} hidden; k = "
                 f"{windows[-1]} is every earlier pixel")
    _plot(report, res, windows, seeds, steps, batch, n)
    viz.save_image_rows([grids[(m, o)] for m in models for o in ("raster", "random")],
                        report.path("samples.png"),
                        row_labels=[f"{m}, {o}" for m in models for o in ("raster", "random")],
                        title="samples (temperature 1), each model's first seed")
    report.figure("samples.png", "samples of every window, in raster and in random order")

    def spread(*cells):
        return max(mean_sd(res[c])[1] for c in cells) if len(seeds) > 1 else 0.0

    k0, k1 = f"MLP k={windows[0]}", f"MLP k={windows[-1]}"
    gain = mean_sd(res[(k0, "raster")])[0] - mean_sd(res[(k1, "raster")])[0]
    margin = 4 * spread((k0, "raster"), (k1, "raster"))
    window_helps = gain > margin
    raster = [mean_sd(res[(f"MLP k={k}", "raster")])[0] for k in windows]
    report.compare(f"raster bits/dim, k = {windows[0]} minus k = {windows[-1]}", gain,
                   "> 0 (the distant past carries information)", "deck 000",
                   None if fast else window_helps)
    report.text("Raster bits/dim against k: "
                + ", ".join(f"k = {k}: {b:.3f}" for k, b in zip(windows, raster)) + ".")
    order_gaps = {}
    for m in dict.fromkeys((k0, f"MLP k={28 if 28 in windows else windows[1]}", k1)):
        gap = mean_sd(res[(m, "random")])[0] - mean_sd(res[(m, "raster")])[0]
        order_gaps[m] = (gap, 4 * spread((m, "random"), (m, "raster")))
        report.compare(f"{m}: random − raster bits/dim", gap, "> 0 (order matters)",
                       "deck 000", None if fast else gap > order_gaps[m][1])
    order_matters = all(g > mg for g, mg in order_gaps.values())
    if window_helps and order_matters:
        verdict = "holds"
    elif gain < -margin or any(g < -mg for g, mg in order_gaps.values()):
        verdict = "does not hold"
    else:
        verdict = "cannot tell at this budget"
    why = (f"raster bits/dim falls from {raster[0]:.3f} at k = {windows[0]} to {raster[-1]:.3f} "
           f"at k = {windows[-1]}; a random order costs "
           + ", ".join(f"{g:+.3f} ({m})" for m, (g, _) in order_gaps.items())
           + f" bits/dim, against a seed sd of at most {spread(*res):.3f}")
    report.verdict(verdict, why, f"{len(models)} windows x 2 orders x {len(seeds)} seeds, "
                   f"{steps} steps x batch {batch}; bits/dim on {n} test images")


def _plot(report, res, windows, seeds, steps, batch, n):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for order, marker in (("raster", "o"), ("random", "s")):
        m = [mean_sd(res[(f"MLP k={k}", order)]) for k in windows]
        ax.errorbar(windows, [a for a, _ in m], yerr=[b for _, b in m], marker=marker,
                    capsize=3, label=f"MLP over the last k pixels, {order} order")
    ax.set_xscale("log")
    ax.set_xticks(windows, [str(k) for k in windows])
    ax.minorticks_off()
    ax.set(xlabel="context window k (pixels)", ylabel="bits/dim (test)",
           title=f"{steps} steps x batch {batch}, {len(seeds)} seeds, {n} test images")
    ax.legend(fontsize=8)
    fig.savefig(report.path("bits_per_dim.png"))
    report.figure("bits_per_dim.png", "exact test bits/dim against the window k, raster and "
                  "random order (the largest k is every earlier pixel)")
