"""forward-diffusion: q(x_t | x_0) in closed form against iterating the chain.

Ho et al. (2020), eq. (4): with α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s, iterating
x_t = √α_t x_{t−1} + √(1 − α_t) ε_t from x_0 gives

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),

so a training step can noise x_0 to any t in one draw. Checked three ways, for
the linear (Ho et al.) and cosine (Nichol & Dhariwal) schedules, T = 1000:
  1. exactly: the chain's mean coefficient Π √α_s and its variance recursion
     v_t = α_t v_{t−1} + β_t against √ᾱ_t and 1 − ᾱ_t, at every t;
  2. by sampling from a point: the empirical mean and variance of n chains
     started at one x_0 against the closed form (z-scores);
  3. as distributions: x_0 from the 8-Gaussians toy, x_t by the chain from one
     sample of x_0 and by the closed form from another, independent one, compared
     by an MMD permutation test at several t (p-values uniform under the claim).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data.toy2d import get_toy
from jaxgen.eval.mmd import mmd_test
from jaxgen.processes import diffusion as dp

TITLE = "Forward diffusion: the closed form q(x_t | x_0) equals iterating the chain"
CLAIM = ("Iterating x_t = √α_t x_{t−1} + √(1−α_t) ε_t gives q(x_t | x_0) = "
         "N(√ᾱ_t x_0, (1 − ᾱ_t) I), ᾱ_t = Π_{s≤t} α_s (Ho et al., 2020, eq. 4; the lecture's "
         "\"nice property\" of the forward process).")

T_SHOW = (0, 50, 100, 250, 500, 1000)


def _chain(schedule, x0, key, t_max: int, keep):
    """x_t for t in keep by iterating q_step from x_0 (lax.scan over t = 1 … t_max)."""
    def body(x, t):
        x = dp.q_step(schedule, x, t, jax.random.normal(jax.random.fold_in(key, t), x.shape))
        return x, x
    _, xs = jax.lax.scan(body, x0, jnp.arange(1, t_max + 1))
    return {t: (x0 if t == 0 else xs[t - 1]) for t in keep}


def run(report, budget):
    T = 1000
    n = budget.pick(20000, 400)
    n_mmd = budget.pick(1000, 100)
    perms = budget.pick(500, 50)
    key = jax.random.key(budget.seed)
    rows_exact = []
    for name in ("linear", "cosine"):
        s = dp.make_schedule(name, T)
        a = np.asarray(s.alphas, np.float64)[1:]
        b = 1.0 - a
        coef, var, v = np.cumprod(np.sqrt(a)), np.zeros(T), 0.0
        for t in range(T):
            v = a[t] * v + b[t]
            var[t] = v
        abar = np.cumprod(a)
        err_m = float(np.max(np.abs(coef - np.sqrt(abar))))
        err_v = float(np.max(np.abs(var - (1.0 - abar))))
        rows_exact.append((name, err_m, err_v, float(abar[-1])))
        report.compare(f"{name}: max_t |Π√α_s − √ᾱ_t|", err_m, 0.0, "eq. 4", err_m < 1e-6)
        report.compare(f"{name}: max_t |v_t − (1 − ᾱ_t)|", err_v, 0.0, "eq. 4", err_v < 1e-6)
    report.table(("schedule", "max |mean coef − √ᾱ_t|", "max |var − (1 − ᾱ_t)|", "ᾱ_T"),
                 rows_exact, "1. exact, at every t = 1 … 1000 (float64)")

    # 2. sampling from one point
    s = dp.make_schedule("linear", T)
    x0 = jnp.full((n, 2), jnp.asarray([1.5, -0.5], jnp.float32))
    chain = _chain(s, x0, jax.random.fold_in(key, 1), T, T_SHOW)
    rows = []
    worst = 0.0
    for t in T_SHOW[1:]:
        x = np.asarray(chain[t], np.float64)
        abar = float(s.alpha_bars[t])
        mean_c, var_c = np.sqrt(abar) * np.array([1.5, -0.5]), 1.0 - abar
        z_mean = np.max(np.abs(x.mean(0) - mean_c) / np.sqrt(var_c / n))
        z_var = np.max(np.abs(x.var(0, ddof=1) - var_c) / (var_c * np.sqrt(2.0 / (n - 1))))
        worst = max(worst, z_mean, z_var)
        rows.append((t, f"{x.mean(0)[0]:.4f}, {x.mean(0)[1]:.4f}",
                     f"{mean_c[0]:.4f}, {mean_c[1]:.4f}", float(x.var(0, ddof=1).mean()),
                     var_c, float(z_mean), float(z_var)))
    report.table(("t", "chain mean", "√ᾱ_t x_0", "chain var", "1 − ᾱ_t", "|z| mean", "|z| var"),
                 rows, f"2. {n} chains from x_0 = (1.5, −0.5), linear schedule")
    report.compare(f"largest |z| of chain mean/var vs closed form ({n} chains, 10 numbers)",
                   float(worst), "< 3.3 (p ≈ 0.001 each)", "sampling error only",
                   worst < 3.3 if not budget.fast else None)

    # 3. distributions from the 8-Gaussians toy
    toy = get_toy("8gaussians")
    rng = np.random.default_rng(budget.seed)
    data, data2 = (jnp.asarray(toy.sample(rng, n_mmd), jnp.float32) for _ in range(2))
    chain = _chain(s, data, jax.random.fold_in(key, 2), T, T_SHOW)
    panels_chain, panels_closed, rows, pvals = [], [], [], []
    for t in T_SHOW:
        eps = jax.random.normal(jax.random.fold_in(key, 10_000 + t), data2.shape)
        closed = np.asarray(dp.q_sample(s, data2, t, eps) if t else data2)
        it = np.asarray(chain[t])
        panels_chain.append((f"chain t={t}", it))
        panels_closed.append((f"closed form t={t}", closed))
        if t:
            r = mmd_test(it, closed, num_permutations=perms, seed=budget.seed + t)
            pvals.append(r["p_value"])
            rows.append((t, r["mmd2"], r["p_value"], r["n_x"]))
    report.table(("t", "MMD² (unbiased)", "permutation p-value", "n per side"), rows,
                 f"3. x_0 ~ 8 Gaussians; chain vs closed form, {perms} permutations")
    report.compare("smallest MMD p-value over t (5 tests)", float(min(pvals)),
                   "> 0.01 (no difference)", "eq. 4", min(pvals) > 0.01 if not budget.fast
                   else None)
    report.verdict_from_rows(
        f"the closed form equals the chain to {max(max(r[1], r[2]) for r in rows_exact):.0e} "
        f"(float64), {n} sampled chains stay within |z| ≤ {worst:.2f} of it, and the MMD test "
        f"finds no difference (smallest p {min(pvals):.2f})",
        f"no training; {n} chains, {n_mmd} points per MMD test")
    lim = ((-4.5, 4.5), (-4.5, 4.5))
    viz.save_scatter_panels(panels_chain, report.path("chain.png"), lim=lim,
                            title="iterating the chain")
    viz.save_scatter_panels(panels_closed, report.path("closed_form.png"), lim=lim,
                            title="closed form q(x_t | x_0)")
    report.figure("chain.png", "x_t by iterating x_t = √α_t x_{t−1} + √β_t ε (linear schedule)")
    report.figure("closed_form.png", "x_t drawn in one step from N(√ᾱ_t x_0, (1 − ᾱ_t) I)")
