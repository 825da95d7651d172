"""truncation: BigGAN's fidelity/variety trade-off over the truncation ψ, with and without
orthogonal regularisation of G.

Two class-conditional BigGANs (configs/gan/biggan_fashion_mnist.py: hinge loss, spectral
norm in D, conditional BN and self-attention) are trained with the same seed and steps, one
with objective.ortho_weight = 1e-4 (Brock et al., 2018, Sec. 3.1) and one with 0. Each then
samples n images (labels 0..9 repeated) at every ψ of PSIS, z ~ N(0, I) truncated to
[−ψ, ψ] (sample.truncation), from its EMA generator, and is scored in the feature space of
jaxgen's Fashion-MNIST classifier (`jaxgen classifier`): FD against the test set, k-NN
precision (fidelity) and recall (variety) against n test images, and the classifier's mean
class-posterior entropy (nats; lower = each sample more clearly one class) and its agreement
with the label the sample was drawn for. Writes truncation.json, a table in report.md and
truncation.png (precision vs recall and FD over ψ, both models).
"""

from __future__ import annotations

import json

import jax
import numpy as np

TITLE = "The truncation trick with and without orthogonal regularisation (BigGAN)"
CLAIM = ("Truncating z trades sample fidelity against variety, and orthogonal regularisation "
         "of G makes the trade-off smooth: as ψ falls, precision (fidelity) rises and recall "
         "(variety) falls steadily (Brock et al., 2018, Sec. 3.1 and Fig. 4/17).")

CONFIG = "gan/biggan_fashion_mnist"
PSIS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
MODELS = (("ortho", 1e-4), ("no_ortho", 0.0))
FAST = ["model.g_channels=4", "model.d_channels=4", "model.latent_dim=8", "model.embed_dim=4",
        "train.pictures=false"]


def _entropy_and_agreement(cparams, samples, labels) -> tuple[float, float]:
    from jaxgen.eval import classifier as clf
    log_p = np.asarray(jax.nn.log_softmax(clf.logits(cparams, clf._to_model_space(samples))),
                       np.float64)
    ent = float(np.mean(-np.sum(np.exp(log_p) * log_p, -1)))
    return ent, float(np.mean(np.argmax(log_p, -1) == labels))


def _monotone(values, decreasing: bool) -> float:
    """The share of consecutive ψ steps in the expected direction."""
    d = np.diff(np.asarray(values, np.float64))
    return float(np.mean(d <= 0 if decreasing else d >= 0))


def run(report, budget):
    from jaxgen.eval import classifier as clf
    from jaxgen.reproduce.runs import train_run
    steps = budget.steps(2000, 3)
    batch = budget.pick(64, 16)
    n = budget.pick(1000, 100)
    cached = clf.load_cached()
    cparams = cached[0] if cached is not None else None
    if cparams is None and not budget.fast:
        cparams, _ = clf.load_or_train()
    real = clf._load_split(None, "test", n)[0] if cparams is not None else None
    ref = clf.reference_stats(cparams) if cparams is not None else None
    results = {"psis": list(PSIS), "steps": steps, "batch_size": batch, "num_samples": n,
               "models": {}}
    rows = []
    for name, weight in MODELS:
        exp, params, summary, wd = train_run(
            report, name, CONFIG, [f"objective.ortho_weight={weight}"], steps=steps,
            batch=batch, seed=budget.seed, fast_overrides=FAST, fast=budget.fast)
        labels = np.arange(n) % exp.info.num_classes
        per = []
        for psi in PSIS:
            x = exp.sample(params, jax.random.key(budget.seed + 1), n, chunk=n, labels=labels,
                           truncation=psi)
            r = {"psi": psi}
            if cparams is not None:
                q = clf.sample_quality(cparams, x, ref=ref, real_for_pr=real)
                ent, agree = _entropy_and_agreement(cparams, x, labels)
                r.update(fd=q["fd"], precision=q["precision"], recall=q["recall"],
                         class_entropy=ent, label_agreement=agree)
                rows.append((name, psi, q["fd"], q["precision"], q["recall"], ent, agree))
            per.append(r)
        results["models"][name] = {"ortho_weight": weight, "per_psi": per,
                                   "ms_per_step": summary.get("ms/step (median, after 2 calls)"),
                                   "train_seconds": summary["train_seconds"],
                                   "final_loss": summary.get("final loss"), "workdir": str(wd)}
    report.path("truncation.json").write_text(json.dumps(results, indent=1) + "\n")
    if cparams is None:
        report.text("No cached feature classifier (`jaxgen classifier` once): the models were "
                    "trained and sampled, but nothing was scored.")
        return
    report.table(("model", "ψ", "FD", "precision", "recall", "class entropy (nats)",
                  "label agreement"), rows,
                 f"{steps} steps x batch {batch} per model, seed {budget.seed}; {n} samples per "
                 f"ψ (labels 0..9 repeated), FD against the 10k test set, precision/recall "
                 f"(k = 3) against {n} test images, in the classifier's feature space")
    for name, _ in MODELS:
        per = results["models"][name]["per_psi"]
        p_mono = _monotone([r["precision"] for r in per], decreasing=True)
        r_mono = _monotone([r["recall"] for r in per], decreasing=False)
        report.compare(f"{name}: share of ψ steps with precision ↓ / recall ↑ as ψ grows",
                       f"{p_mono:.2f} / {r_mono:.2f}", "1.00 / 1.00 (a smooth trade-off)",
                       "Brock et al. 2018, Sec. 3.1")
    ortho = results["models"][MODELS[0][0]]["per_psi"]
    p_mono = _monotone([r["precision"] for r in ortho], decreasing=True)
    r_mono = _monotone([r["recall"] for r in ortho], decreasing=False)
    smooth = p_mono >= 0.75 and r_mono >= 0.75
    report.verdict("holds" if smooth else "does not hold",
                   f"for the regularised G, precision falls at {p_mono:.0%} and recall rises at "
                   f"{r_mono:.0%} of the ψ steps (a smooth trade-off needs both)",
                   f"{steps} steps x batch {batch} per model, one seed")
    _plot(report, results)
    report.figure("truncation.png", "precision vs recall (points labelled by ψ) and FD over ψ")


def _plot(report, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, m in results["models"].items():
        per = m["per_psi"]
        rec, prec = [r["recall"] for r in per], [r["precision"] for r in per]
        ax1.plot(rec, prec, "o-", label=f"{name} (β = {m['ortho_weight']:g})")
        for r in per:
            ax1.annotate(f"{r['psi']:g}", (r["recall"], r["precision"]), fontsize=7)
        ax2.plot([r["psi"] for r in per], [r["fd"] for r in per], "o-", label=name)
    ax1.set_xlabel("recall (variety)")
    ax1.set_ylabel("precision (fidelity)")
    ax1.legend()
    ax2.set_xlabel("truncation ψ")
    ax2.set_ylabel("FD (classifier features)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(report.path("truncation.png"), dpi=100)
    plt.close(fig)
