"""optimal-discriminator: D* = p_data/(p_data + p_g) and C(G) = 2·JSD − log 4.

Goodfellow et al. (2014): for a fixed G the discriminator maximising
V(G, D) = E_{p_data} log D(x) + E_{p_g} log(1 − D(x)) is

    D*_G(x) = p_data(x) / (p_data(x) + p_g(x))                  (Proposition 1),

and its value is C(G) = max_D V(G, D) = −log 4 + 2·JSD(p_data ‖ p_g) (Theorem 1),
minimal (−log 4) iff p_g = p_data. Measured here on 2-D densities known in
closed form (p_data = the 8-Gaussians toy, p_g = N(μ, s² I)):

  1. the one trainer, minimax loss, generator frozen (per-player learning rate 0)
     at a linear G(z) = s z + μ: the trained D against D* where both densities
     have mass (mean |D − D*|, correlation) and V(D) against V(D*);
  2. C(G) for a family of p_g (shifting μ, scaling s, and p_g = N(0, I) vs
     itself): V(G, D*) by Monte Carlo from samples of both densities against
     2·JSD − log 4 with the JSD by quadrature on a grid, two computations that
     share nothing but the densities.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.data.toy2d import get_toy
from jaxgen.families.gan import gan

TITLE = "The optimal discriminator and the value of the game"
CLAIM = ("For fixed G, D*(x) = p_data(x)/(p_data(x) + p_g(x)) (Goodfellow et al., 2014, "
         "Prop. 1), and max_D V(G, D) = 2·JSD(p_data ‖ p_g) − log 4 (Thm. 1).")

CONFIG = "gan/minimax_toy2d"  # a shipped config (jaxgen.configs)


def _gauss(mu, s):
    mu = np.asarray(mu, np.float64)
    return lambda x: np.exp(-np.sum((x - mu) ** 2, -1) / (2 * s**2)) / (2 * np.pi * s**2)


def _experiment(steps: int, seed: int):
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(CONFIG, [
        "model.g_features=()", "model.d_features=(64, 64, 64)", "optim.learning_rate=3e-3",
        "optim.b1=0.9", "optim.players.generator.learning_rate=0.0", "data.name=8gaussians",
        f"train.steps={steps}", f"seed={seed}"])
    return Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))


def run(report, budget):
    steps = budget.steps(3000, 30)
    batch = 512
    toy = get_toy("8gaussians")
    p_data = lambda x: np.exp(toy.log_prob(x))  # noqa: E731
    mu, s = np.array([0.3, -0.2]), 2.0
    p_g = _gauss(mu, s)
    rng = np.random.default_rng(budget.seed)

    # 1. train D through the one trainer, G frozen at G(z) = s z + mu
    exp = _experiment(steps, budget.seed)
    state = exp.init_state({"x": np.zeros((batch, 2), np.float32)})
    params = dict(state.params)
    params["generator"] = jax.tree.map(jnp.zeros_like, params["generator"])
    params["generator"]["out"] = {"kernel": s * jnp.eye(2, dtype=jnp.float32),
                                  "bias": jnp.asarray(mu, jnp.float32)}
    state = state.replace(params=params)
    step = exp.train_step()
    for _ in range(steps):
        state, _ = step(state, {"x": toy.sample(rng, batch).astype(np.float32)})
    discriminate = jax.jit(lambda p, x: jax.nn.sigmoid(exp.objective.tools.discriminate(p, x)[0]))
    n = budget.pick(8000, 500)
    xd, xg = toy.sample(rng, n), mu + s * rng.normal(size=(n, 2))
    xs = np.concatenate([xd, xg])
    d_star = gan.optimal_discriminator(p_data(xs), p_g(xs))
    d = np.asarray(discriminate(state.params, xs.astype(np.float32)), np.float64)
    err = float(np.mean(np.abs(d - d_star)))
    corr = float(np.corrcoef(d, d_star)[0, 1])
    v = float(np.mean(np.log(d[:n])) + np.mean(np.log1p(-d[n:])))
    v_star = float(np.mean(np.log(d_star[:n])) + np.mean(np.log1p(-d_star[n:])))
    full = not budget.fast
    report.compare(f"mean |D − D*| ({n} + {n} points of p_data, p_g)", err, 0.0,
                   "Prop. 1", err < 0.05 if full else None)
    report.compare("corr(D, D*)", corr, 1.0, "Prop. 1", corr > 0.95 if full else None)
    report.compare("V(G, D) of the trained D vs V(G, D*)", f"{v:.4f} vs {v_star:.4f}",
                   "V(D) ≤ V(D*), equal at D*", "Prop. 1",
                   (v_star - 0.05 < v <= v_star + 0.01) if full else None)
    report.text(f"The trained discriminator: {steps} minimax steps of batch {batch} through "
                "`jaxgen.train` (configs/gan/minimax_toy2d.py, D = 3 x 64 MLP, Adam 3e-3), the "
                f"generator frozen at G(z) = {s:g} z + ({mu[0]:g}, {mu[1]:g}) by a per-player "
                "learning rate of 0, so p_g = N(μ, 4 I) exactly.")
    _heatmaps(report, discriminate, state.params, p_data, p_g)

    # 2. C(G) = 2 JSD − log 4 over a family of generators
    g = np.linspace(-8, 8, budget.pick(801, 201))
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    area = (g[1] - g[0]) ** 2
    m = budget.pick(200_000, 5000)
    rows, worst = [], 0.0
    pd_grid = p_data(grid) * area
    for mu_g, s_g, label in [((0.0, 0.0), 1.0, "N(0, I)"), ((0.0, 0.0), 2.0, "N(0, 4I)"),
                             ((1.0, 0.0), 1.0, "N((1, 0), I)"), ((3.0, 3.0), 0.5, "N((3, 3), I/4)"),
                             ((6.0, -6.0), 0.3, "N((6, −6), 0.09 I)")]:
        pg = _gauss(mu_g, s_g)
        xd, xg = toy.sample(rng, m), np.asarray(mu_g) + s_g * rng.normal(size=(m, 2))
        dd, dg = (gan.optimal_discriminator(p_data(x), pg(x)) for x in (xd, xg))
        value = float(np.mean(np.log(dd)) + np.mean(np.log1p(-dg)))
        pg_grid = pg(grid) * area
        jsd = float(gan.jsd(_mass(pd_grid), _mass(pg_grid)))
        target = 2 * jsd - math.log(4)
        worst = max(worst, abs(value - target))
        rows.append((label, value, target, jsd, value - target))
    # p_g = p_data: D* = 1/2 everywhere, C = −log 4 exactly
    rows.append(("p_g = p_data (D* = ½ exactly)", -math.log(4), -math.log(4), 0.0, 0.0))
    report.table(("p_g", "V(G, D*) Monte Carlo", "2·JSD − log 4 (quadrature)", "JSD (nats)",
                  "difference"), rows,
                 f"C(G) for p_data = 8 Gaussians; {m} samples of each density, "
                 f"{len(g)}² grid on [−8, 8]²")
    report.compare("max |V(G, D*) − (2·JSD − log 4)| over 5 generators", worst, 0.0, "Thm. 1",
                   worst < 0.01 if full else None)
    report.compare("JSD of disjoint supports (p_g at (6, −6))", rows[4][3],
                   f"log 2 = {math.log(2):.4f}", "Thm. 1 (C = 0)",
                   abs(rows[4][3] - math.log(2)) < 1e-3 if full else None)
    report.verdict_from_rows(f"the trained D is within {err:.3f} of D* on average (corr "
                             f"{corr:.3f}), and V(G, D*) = 2·JSD − log 4 to {worst:.1e} over 5 "
                             "generators", f"{steps} discriminator steps x batch {batch}")


def _mass(p):
    """Grid masses as float32 for gan.jsd, masses under 1e-30 set to 0 (float32 would
    flush them to denormals whose halves underflow, giving log 0)."""
    p = np.where(p < 1e-30, 0.0, p)
    return jnp.asarray(p / p.sum(), jnp.float32)


def _heatmaps(report, discriminate, params, p_data, p_g):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = np.linspace(-5, 5, 121)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    ds = gan.optimal_discriminator(p_data(grid), p_g(grid)).reshape(len(g), len(g))
    d = np.asarray(discriminate(params, grid.astype(np.float32))).reshape(len(g), len(g))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    for ax, img, title, cmap, vmax in [(axes[0], ds, "D* = p_data / (p_data + p_g)", "viridis", 1),
                                       (axes[1], d, "trained D", "viridis", 1),
                                       (axes[2], np.abs(d - ds), "|D − D*|", "magma", 0.5)]:
        im = ax.imshow(img, origin="lower", extent=(-5, 5, -5, 5), vmin=0, vmax=vmax, cmap=cmap)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.savefig(report.path("discriminator.png"), dpi=90)
    plt.close(fig)
    report.figure("discriminator.png", "the optimal and the trained discriminator on [−5, 5]²")
