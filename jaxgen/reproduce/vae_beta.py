"""vae-beta: the β-VAE's trade between reconstruction and KL, and why the VAE needs a
posterior: log p(x) by Monte Carlo with z from the prior converges slowly.

Deck 001 writes log p(x) = log ∫ p(x|z) p(z) dz and dismisses the Monte-Carlo estimate
with z_j from the prior, (1/K) Σ_j p(x|z_j), as "expensive and hard to converge"; it
then trains the VAE on the ELBO, and the β-VAE (Higgins et al., 2017) weighs the KL by
β > 1 "to put more emphasis on the similarity of q(Z|x) and p(Z)". Measured here on
Fashion-MNIST with the VAE family (configs/vae/beta_vae_fashion_mnist.py: 10-d latent,
discretised logistic decoder, a KL warm-up over the first fifth of the steps), one run
per β through the one trainer:

  * β ∈ {0, 0.25, 1, 4, 16}: held-out reconstruction −E_q log p(x|z) and KL (the two
    ELBO terms, nats per image), Burda et al.'s active units (Cov_x(E_q[z_u]) > 0.01),
    FD of decoded prior draws (jaxgen's classifier features, n = 1000) and a sample grid;
  * on the β = 1 model: the prior estimator log (1/K) Σ p(x|z_k), z_k ~ N(0, I)
    (`jaxgen.families.vae.vae.prior_mc_bound`), against IWAE (Burda et al., 2016) with
    z_k ~ q(z|x), for K = 1, 10, 100, 1000 on 200 test images, over 3 seeds of the
    Monte-Carlo draws (`LatentTools.log_px`). Both are lower bounds on log p(x) in
    expectation that rise with K (tests/test_vae_beta.py checks both against a closed
    form).

The verdict: holds when the prior estimator at the largest K is still below IWAE at
K = 1 (a single posterior sample) by more than its seed spread, and the KL falls and the
reconstruction term rises with β across the sweep; does not hold when neither is so;
cannot tell otherwise.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxgen import viz
from jaxgen.families.vae.vae import posterior_collapse_stats
from jaxgen.reproduce.ae_vs_vae import (
    FAST_NETS,
    NETS,
    classifier,
    fd,
    fmt,
    mean_sd,
    step_ms,
    test_images,
)
from jaxgen.reproduce.runs import train_run

TITLE = "β-VAE: reconstruction against KL, and log p(x) by sampling the prior"
CLAIM = ("Deck 001: log p(x) = log ∫ p(x|z) p(z) dz by \"Monte Carlo sampling approx.? sample "
         "z_j's iid from p(z)\", (1/K) Σ_j p(x|z_j), is \"expensive and hard to converge\", so "
         "the VAE maximises the ELBO E_q log p(x|z) − KL(q(z|x) ‖ p(z)) ≤ log p(x); the β-VAE "
         "objective weighs the KL by β > 1 \"to put more emphasis on the similarity of "
         "q(Z|x) and p(Z)\" (Higgins et al., 2017).")

CONFIG = "vae/beta_vae_fashion_mnist.py"
BETAS = (0.0, 0.25, 1.0, 4.0, 16.0)


def run(report, budget):
    steps = budget.steps(1000, 3)
    batch = budget.pick(64, 8)
    betas = budget.pick(BETAS, (1.0,))
    n = budget.pick(1000, 16)
    fast = budget.fast
    cls = classifier(report, fast)
    rows, grid, trained, train_s = [], [], {}, []
    terms = {}
    for beta in betas:
        exp, params, _, wd = train_run(
            report, f"beta_{beta:g}", CONFIG,
            [*NETS, f"objective.beta={beta}", f"objective.kl_warmup_steps={max(1, steps // 5)}"],
            steps=steps, batch=batch, seed=budget.seed, fast_overrides=FAST_NETS, fast=fast)
        train_s.append(step_ms(wd))
        trained[beta] = (exp, params)
        _, _, x = test_images(exp, n)
        obj = exp.objective
        elbo = jax.jit(obj.likelihoods["elbo"].fn)
        stats = jax.jit(obj.held_out_stats.batch)
        parts = [(elbo(params, x[i:i + 500], jax.random.key(i)),
                  stats(params, x[i:i + 500], None)) for i in range(0, len(x), 500)]
        recon = np.concatenate([np.asarray(p[0][1]["recon"]) for p in parts])
        kl = np.concatenate([np.asarray(p[0][1]["kl"]) for p in parts])
        collapse = posterior_collapse_stats(
            {k: np.concatenate([np.asarray(p[1][k]) for p in parts]) for k in ("mean",
                                                                               "log_var")})
        samples = exp.sample(params, jax.random.key(7), n, chunk=n)
        terms[beta] = (recon.mean(), kl.mean())
        rows.append((f"{beta:g}", f"{recon.mean():.1f}", f"{kl.mean():.2f}",
                     f"{-(recon + kl).mean():.1f}", f"{collapse['active_units']} of "
                     f"{collapse['latent_dim']}", f"{fd(cls, samples):.1f}"))
        grid.append(samples[:12])
    report.table(("β", "reconstruction −E_q log p(x|z)", "KL(q ‖ p(z))", "ELBO (β = 1 bound)",
                  "active units (A_u > 0.01)", "FD of prior draws"), rows,
                 f"held-out: the first {n} test images, nats per image; FD of n = {n} decoded "
                 f"z ~ N(0, I) against {cls[1]['n']} test images; one run per β, {steps} steps "
                 f"x batch {batch}")
    viz.save_image_rows(grid, report.path("samples.png"),
                        row_labels=[f"beta = {b:g}" for b in betas],
                        title="decoded z ~ N(0, I) (the decoder's mean image)")
    report.figure("samples.png", "prior draws of each β's model")
    b_sorted = sorted(terms)
    kl_falls = all(terms[a][1] > terms[b][1] for a, b in zip(b_sorted, b_sorted[1:]))
    recon_rises = all(terms[a][0] < terms[b][0] for a, b in zip(b_sorted, b_sorted[1:]))
    report.compare("KL falls as β grows", kl_falls, True, "deck 001 (β-VAE)",
                   None if fast else kl_falls)
    report.compare("reconstruction −E_q log p(x|z) rises as β grows", recon_rises, True,
                   "deck 001 (β-VAE): the price of the KL's weight", None if fast else recon_rises)

    exp, params = trained[1.0]
    ks = budget.pick((1, 10, 100, 1000), (1, 10))
    mc_seeds = budget.pick((0, 1, 2), (0,))
    n_mc = budget.pick(200, 8)
    _, _, x = test_images(exp, n_mc)
    est = {p: {k: [] for k in ks} for p in ("posterior", "prior")}
    log_px = jax.jit(exp.objective.tools.log_px, static_argnums=(3, 4, 5))
    for s in mc_seeds:
        for proposal in est:
            for k in ks:
                v = np.concatenate([np.asarray(log_px(params, x[i:i + 50],
                                                      jax.random.key(1000 * s + i), k,
                                                      proposal, min(k, 100)))
                                    for i in range(0, len(x), 50)])
                est[proposal][k].append(float(v.mean()))
    _plot(report, est, ks, n_mc, len(mc_seeds))
    names = {"posterior": "IWAE, z ~ q(z|x)", "prior": "prior MC, z ~ N(0, I)"}
    report.table(["estimator"] + [f"K = {k}" for k in ks],
                 [[names[p]] + [fmt(est[p][k]) for k in ks] for p in est],
                 f"mean log p(x) estimate over {n_mc} test images (nats per image), mean ± sd "
                 f"over {len(mc_seeds)} seeds of the draws; β = 1 model")
    kmax = ks[-1]
    prior_top, prior_sd = mean_sd(est["prior"][kmax])
    iwae1, iwae1_sd = mean_sd(est["posterior"][1])
    iwae_top = mean_sd(est["posterior"][kmax])[0]
    mc_slow = prior_top + 2 * prior_sd < iwae1 - 2 * iwae1_sd
    mc_fails = prior_top >= iwae_top - 2 * prior_sd
    report.compare(f"prior MC at K = {kmax} − IWAE at K = 1 (nats)", prior_top - iwae1,
                   "< 0 (hard to converge)", "deck 001", None if fast else mc_slow)
    report.compare(f"IWAE at K = {kmax} − K = 1 (nats)", iwae_top - iwae1, "> 0 (Burda et al.)",
                   "Burda et al., 2016", None if fast else iwae_top > iwae1)
    rise = {p: [mean_sd(est[p][b])[0] - mean_sd(est[p][a])[0] for a, b in zip(ks, ks[1:])]
            for p in est}
    report.text("Gain per tenfold K (nats), "
                + "; ".join(f"{names[p]}: " + ", ".join(f"{r:.2f}" for r in rise[p])
                            for p in est) + ".")
    if mc_slow and kl_falls and recon_rises:
        verdict = "holds"
    elif mc_fails and not (kl_falls or recon_rises):
        verdict = "does not hold"
    else:
        verdict = "cannot tell at this budget"
    why = (f"on {n_mc} test images the prior estimator at K = {kmax} reaches {prior_top:.1f} ± "
           f"{prior_sd:.2g} nats, below IWAE's single posterior sample ({iwae1:.1f}) and its "
           f"K = {kmax} bound ({iwae_top:.1f}); over β = {', '.join(f'{b:g}' for b in b_sorted)} "
           f"the KL goes {' → '.join(f'{terms[b][1]:.1f}' for b in b_sorted)} nats and the "
           f"reconstruction {' → '.join(f'{terms[b][0]:.0f}' for b in b_sorted)}")
    report.verdict(verdict, why, f"{len(betas)} β x {steps} steps x batch {batch}, 10-d latent, "
                   f"conv nets {budget.pick('(16, 32) / 128', '(4, 8) / 16')}, "
                   f"{np.mean(train_s):.0f} ms per training step; "
                   f"estimators: {n_mc} images x {len(mc_seeds)} seeds, K ≤ {kmax}")


def _plot(report, est, ks, n_mc: int, n_seeds: int):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for p, label in (("posterior", "IWAE: z ~ q(z|x)"), ("prior", "prior MC: z ~ N(0, I)")):
        m = np.array([np.mean(est[p][k]) for k in ks])
        sd = np.array([mean_sd(est[p][k])[1] for k in ks])
        ax.errorbar(ks, m, yerr=sd, marker="o", capsize=3, label=label)
    ax.set(xscale="log", xlabel="K (samples per image)",
           ylabel="mean estimate of log p(x) (nats)",
           title=f"log (1/K) sum_k w_k on {n_mc} test images (bars: sd over {n_seeds} seeds)")
    ax.legend()
    fig.savefig(report.path("estimators.png"))
    report.figure("estimators.png", "the two Monte-Carlo estimates of log p(x) against K (β = 1 "
                  "model)")
