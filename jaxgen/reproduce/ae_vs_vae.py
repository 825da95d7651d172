"""ae-vs-vae: a plain autoencoder against the VAE with the same networks, as generators.

The lecture: "AE are very good at compression but bad at generation"; the VAE encodes
each x as a Gaussian, which smooths the latent space so that decoding z ~ N(0, I) gives
coherent images. Measured here with the VAE family's two settings of the same 2-d
latent model (configs/vae/vae2d_fashion_mnist.py and ae2d_fashion_mnist.py: the same
conv encoder / decoder and discretised logistic decoder; the autoencoder has
objective.encoder = "deterministic", z = μ(x), no noise and no KL, so these two terms
are the only difference), each trained through the one trainer over 3 seeds:

  * the test set's codes in the plane, coloured by class (AE beside VAE);
  * decoded prior draws z ~ N(0, I) of both, scored by FD in the feature space of
    jaxgen's Fashion-MNIST classifier (`jaxgen.eval.classifier`, n = 1000 samples
    against the 10 000 test images); and the AE decoding draws from a Gaussian fitted
    to its own training codes (the "ex-post density" that gives a deterministic AE a
    fair generative chance), likewise the VAE;
  * reconstruction error of held-out images (compression);
  * interpolation strips between test images.

The verdict: holds when every seed's AE prior-draw FD is above every seed's VAE FD (the
AE is worse at generation from the prior), does not hold when the AE's mean FD is at or
below the VAE's, cannot tell otherwise.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data import get_dataset
from jaxgen.kernel import transforms
from jaxgen.reproduce.runs import train_run

TITLE = "Autoencoder vs VAE with the same networks: generation from the prior"
CLAIM = ("\"Problem: AE are very good at compression but bad at generation\" (lecture deck 000, "
         "\"Autoencoder: Types of Encoders\"; deck 004: \"los AE son muy buenos en compresión "
         "pero malos para generación\"); the VAE encodes each x as a Gaussian, which \"smooths\" "
         "the latent space \"enabling meaningful transitions from one point to another and "
         "generating coherent new data\" (deck 000; deck 001: an autoencoder maps each input to "
         "a deterministic vector, a VAE to a distribution).")

MODELS = {"AE": "vae/ae2d_fashion_mnist.py", "VAE": "vae/vae2d_fashion_mnist.py"}
# The VAE's conv networks at a width that trains in minutes on 2 CPU cores (both models);
# the runs' own end-of-run pictures are skipped (the report draws its own).
NETS = ["model.channels=(16, 32)", "model.hidden=128", "train.pictures=false"]
FAST_NETS = ["model.channels=(4, 8)", "model.hidden=16", "train.data_in_memory_mb=0"]


def test_images(exp, n: int):
    """(uint8 images, labels, model-space images as the likelihood sees them) of the first
    n test images."""
    source = get_dataset(exp.config.data, "test").source
    batch = source.get(np.arange(min(n, len(source))))
    x = transforms.preprocess(exp.info.kind, batch["x"], jax.random.key(0),
                              dequantize=exp.dequantize)
    return batch["x"], np.asarray(batch["label"]), jnp.asarray(x)


def train_images(exp, n: int):
    source = get_dataset(exp.config.data, "train").source
    raw = source.get(np.arange(min(n, len(source))))["x"]
    return jnp.asarray(transforms.preprocess(exp.info.kind, raw, jax.random.key(1),
                                             dequantize=exp.dequantize))


def encode(exp, params, x, chunk: int = 500) -> np.ndarray:
    enc = jax.jit(exp.objective.tools.encode)
    return np.concatenate([np.asarray(enc(params, x[i:i + chunk]))
                           for i in range(0, len(x), chunk)])


def decode_pixels(exp, params, z) -> np.ndarray:
    """uint8 images of the decoder's mean at codes z."""
    x = jax.jit(exp.objective.tools.decode)(params, jnp.asarray(z, jnp.float32))
    return transforms.postprocess(exp.info.kind, np.asarray(x))


def classifier(report, fast: bool):
    """(params, reference stats) of jaxgen's feature classifier (fast: the cached one or a
    tiny one, against 200 test images)."""
    from jaxgen.eval import classifier as clf
    from jaxgen.reproduce.runs import feature_classifier
    cached = clf.load_cached() if fast else None
    params, _ = cached or feature_classifier(report, fast)
    if fast:
        return params, clf.reference_stats(params, report.path("runs") / "classifier", n=200)
    return params, clf.reference_stats(params)


def fd(cls, images) -> float:
    from jaxgen.eval import classifier as clf
    return float(clf.sample_quality(cls[0], images, ref=cls[1])["fd"])


def step_ms(workdir) -> float:
    """The mean training step time a run logged (ms; also when the run was reused)."""
    import json
    rows = [json.loads(r) for r in (Path(workdir) / "metrics.jsonl").read_text().splitlines()
            if r.strip()]
    return float(np.mean([r["perf/step_time_ms"] for r in rows if "perf/step_time_ms" in r]
                         or [np.nan]))


def mean_sd(v) -> tuple[float, float]:
    v = np.asarray(v, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def fmt(v) -> str:
    m, s = mean_sd(v)
    return f"{m:.4g} ± {s:.2g}"


def run(report, budget):
    steps = budget.steps(1000, 3)
    batch = budget.pick(64, 8)
    seeds = budget.pick((0, 1, 2), (0,))
    n = budget.pick(1000, 16)
    fast = budget.fast
    cls = classifier(report, fast)
    res = {m: {"prior": [], "fitted": [], "rmse": [], "code_kl": []} for m in MODELS}
    first = {}
    train_s = []
    for seed in seeds:
        for m, config in MODELS.items():
            exp, params, _, wd = train_run(
                report, f"{m}_seed{seed}", config, NETS, steps=steps, batch=batch, seed=seed,
                fast_overrides=FAST_NETS, fast=fast)
            train_s.append(step_ms(wd))
            raw, labels, x = test_images(exp, budget.pick(2000, n))
            res_n = {"test": raw, "train": budget.pick(10000, n)}
            z = encode(exp, params, x)
            recon = decode_pixels(exp, params, z)
            res[m]["rmse"].append(float(np.sqrt(np.mean(
                (recon.astype(np.float64) - raw.astype(np.float64)) ** 2))))
            prior = exp.sample(params, jax.random.key(100 + seed), n, chunk=n)
            res[m]["prior"].append(fd(cls, prior))
            zt = encode(exp, params, train_images(exp, res_n["train"]))
            mu, cov = zt.mean(0), np.cov(zt, rowvar=False)
            zf = np.random.default_rng(seed).multivariate_normal(mu, cov, n)
            fitted = decode_pixels(exp, params, zf)
            res[m]["fitted"].append(fd(cls, fitted))
            # KL(N(mu, cov) || N(0, I)) of the codes' Gaussian: how far from the prior they sit
            res[m]["code_kl"].append(0.5 * float(np.trace(cov) + mu @ mu - len(mu)
                                                 - np.linalg.slogdet(cov)[1]))
            if seed == seeds[0]:
                first[m] = dict(exp=exp, params=params, z=z, labels=labels, x=x,
                                prior=prior, fitted=fitted, mu=mu, cov=cov)

    _figures(report, first)
    real = get_dataset(first["AE"]["exp"].config.data, "test").source.get(np.arange(n))["x"]
    fd_real = fd(cls, real)
    report.table(
        ("model", "FD, z ~ N(0, I)", "FD, z ~ Gaussian fitted to the training codes",
         "reconstruction RMSE (pixels, 0-255)", "KL(codes' Gaussian ‖ N(0, I)), nats"),
        [(m, fmt(r["prior"]), fmt(r["fitted"]), fmt(r["rmse"]), fmt(r["code_kl"]))
         for m, r in res.items()] + [("real test images", f"{fd_real:.4g}", "-", "-", "-")],
        f"mean ± sd over {len(seeds)} seeds, {steps} steps x batch {batch} each; FD of "
        f"n = {n} decoded images (the decoder's mean) in jaxgen's classifier features, "
        f"reference = {cls[1]['n']} test images (lower is better; {n} real test images score "
        f"the last row); reconstructions of {len(res_n['test'])} test images, the codes' "
        f"Gaussian from {res_n['train']} training images")
    ae, vae_ = (np.asarray(res[m]["prior"]) for m in MODELS)
    report.compare("FD of decoded N(0, I) draws, AE / VAE", float(ae.mean() / vae_.mean()),
                   "> 1 (AE bad at generation)", "deck 000", None if fast else
                   bool(ae.min() > vae_.max()))
    report.compare("reconstruction RMSE, AE / VAE", float(np.mean(res["AE"]["rmse"])
                                                         / np.mean(res["VAE"]["rmse"])),
                   "≤ 1 (AE good at compression)", "deck 000",
                   None if fast else bool(np.mean(res["AE"]["rmse"]) <= np.mean(
                       res["VAE"]["rmse"])))
    aef = np.asarray(res["AE"]["fitted"])
    report.compare("AE FD: fitted Gaussian / N(0, I)", float(aef.mean() / ae.mean()),
                   "-", "ex-post density (not in the deck)", None)
    vaef = np.asarray(res["VAE"]["fitted"])
    report.text(
        "The AE's codes are not tied to N(0, I) (the KL of their Gaussian to the prior: "
        f"{fmt(res['AE']['code_kl'])} nats, the VAE's {fmt(res['VAE']['code_kl'])}), so prior "
        "draws land where the decoder has seen no code; the same decoder fed draws from a "
        "Gaussian fitted to its codes shows how much of the AE's bad generation is that "
        f"mismatch: its FD goes from {fmt(ae)} to {fmt(aef)}, "
        + ("below" if aef.mean() < vae_.mean() else "not below")
        + f" the VAE's prior draws ({fmt(vae_)}; the VAE's own fitted Gaussian: {fmt(vaef)}).")
    if ae.min() > vae_.max():
        verdict = "holds"
    elif ae.mean() <= vae_.mean():
        verdict = "does not hold"
    else:
        verdict = "cannot tell at this budget"
    why = (f"FD of decoded N(0, I) draws (n = {n}): AE {fmt(ae)}, VAE {fmt(vae_)} over "
           f"{len(seeds)} seeds (real images {fd_real:.3g}); with a Gaussian fitted to its "
           f"codes the AE scores {fmt(aef)}; reconstruction RMSE AE {fmt(res['AE']['rmse'])}, "
           f"VAE {fmt(res['VAE']['rmse'])}")
    nets = budget.pick("(16, 32) / 128", "(4, 8) / 16")
    report.verdict(verdict, why, f"2 models x {len(seeds)} seeds x {steps} steps x batch "
                   f"{batch}, 2-d latent, conv nets {nets}; {np.mean(train_s):.0f} ms per "
                   "training step")


def _figures(report, first):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 5), dpi=100, layout="constrained")
    t = np.linspace(0, 2 * np.pi, 200)
    for i, (m, d) in enumerate(first.items()):
        ax = fig.add_subplot(1, 2, i + 1)
        sc = ax.scatter(d["z"][:, 0], d["z"][:, 1], c=d["labels"], cmap="tab10", s=3,
                        vmin=-0.5, vmax=9.5)
        for r in (1, 2):
            ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=0.8)
        ax.set(title=f"{m}: test codes z = μ(x) (dashed: N(0, I) at 1σ, 2σ)",
               xlabel="z1", ylabel="z2", aspect="equal")
    fig.colorbar(sc, ax=fig.axes, ticks=range(10), label="class")
    fig.savefig(report.path("latents.png"))
    report.figure("latents.png", "2-d codes of the test images coloured by class, AE beside "
                  "VAE (first seed), over circles of N(0, I)")

    rows, labels = [], []
    for m, d in first.items():
        rows += [d["prior"][:16], d["fitted"][:16]]
        labels += [f"{m}: z ~ N(0, I)", f"{m}: fitted Gaussian"]
    viz.save_image_rows(rows, report.path("samples.png"), row_labels=labels,
                        title="decoded draws (the decoder's mean image)")
    report.figure("samples.png", "decoded draws of both models: from the prior N(0, I) and "
                  "from a Gaussian fitted to the training codes (first seed)")

    rows, labels = [], []
    for m, d in first.items():
        exp, x = d["exp"], d["x"]
        strips = np.asarray(jax.jit(exp.objective.tools.interpolate, static_argnums=3)(
            d["params"], x[0:8:2], x[1:8:2], 10))
        for i, s in enumerate(strips):
            rows.append(np.concatenate([transforms.postprocess(exp.info.kind, np.asarray(
                x[2 * i:2 * i + 1])), transforms.postprocess(exp.info.kind, s),
                transforms.postprocess(exp.info.kind, np.asarray(x[2 * i + 1:2 * i + 2]))]))
            labels.append(m)
    viz.save_image_rows(rows, report.path("interpolation.png"), row_labels=labels,
                        title="x0 | decoded (1-a) z0 + a z1, a = 0 ... 1 | x1")
    report.figure("interpolation.png", "interpolations between the same test pairs, AE rows "
                  "then VAE rows (first seed)")
