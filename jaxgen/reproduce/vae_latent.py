"""vae-latent: the VAE's latent space (interpolation, the 2-D manifold) and its blur.

The lecture shows a VAE's smooth latent space (decoded interpolations, the 2-D
manifold of Kingma & Welling, 2014, Fig. 4) and says VAE samples are blurry:
the Gaussian/logistic decoder averages over what the posterior leaves
uncertain. Measured here, every model trained by the one trainer on
Fashion-MNIST at the same budget (steps x batch):

  * pictures: the interpolation strip between held-out images (32-d VAE) and the
    20 x 20 decoded grid of a 2-d VAE;
  * blur: the fraction of spectral power above 0.25 cycles/pixel
    (`runs.high_frequency_energy`, lower = blurrier) of samples of the VAE, a
    flow (RealNVP), a diffusion model (DDPM, DDIM sampling) and a GAN (DCGAN),
    against real test images; and, where `jaxgen classifier` has cached the
    feature classifier, FD / precision / recall of each at the same n.
"""

from __future__ import annotations

import shutil

import numpy as np

from jaxgen import viz
from jaxgen.data import get_dataset
from jaxgen.reproduce.runs import FAMILIES, high_frequency_energy, timed_samples, train_run

TITLE = "The VAE's latent space, and how blurry its samples are"
CLAIM = ("A VAE's latent space is smooth (decoded interpolations and the 2-D manifold, Kingma "
         "& Welling, 2014, Fig. 4), and its samples are blurrier than those of models without "
         "a factorised pixel decoder (the lecture's \"VAEs blur\").")


def run(report, budget):
    steps = budget.steps(2000, 2)
    batch = budget.pick(64, 8)
    n = budget.pick(1000, 16)
    fast = budget.fast
    models = {}
    for name, (config, small) in FAMILIES.items():
        models[name] = train_run(report, name, config, [], steps=steps, batch=batch,
                                 seed=budget.seed, fast_overrides=small, fast=fast)
    _, _, _, wd2 = train_run(report, "VAE 2-d latent", "vae/vae2d_fashion_mnist.py", [],
                             steps=steps, batch=batch, seed=budget.seed,
                             fast_overrides=FAMILIES["VAE"][1], fast=fast)
    vae_wd = models["VAE"][3]
    for src, dst, caption in [
            (vae_wd / "samples" / "interpolation.png", "interpolation.png",
             "decoded (1 − α) z_0 + α z_1 between held-out pairs (32-d VAE), α = 0 … 1"),
            (wd2 / "samples" / "manifold.png", "manifold.png",
             "the 2-d VAE's decoder over a 20 x 20 grid of Gaussian quantiles")]:
        if src.exists():
            shutil.copy(src, report.path(dst))
            report.figure(dst, caption)

    real = get_dataset(models["VAE"][0].config.data, "test").source.get(np.arange(n))["x"]
    hf_real = high_frequency_energy(real)
    rows, pics, hf_means = [("real test images", _mean_se(hf_real), 1.0, "-", "-", "-", "-")], \
        [real[:10]], {}
    from jaxgen.eval import classifier as clf
    cached = clf.load_cached()
    ref = clf.reference_stats(cached[0]) if cached else None
    for name, (exp, params, _summary, _) in models.items():
        x, per_s = timed_samples(exp, params, n, budget.seed)
        hf = high_frequency_energy(x)
        hf_means[name] = hf.mean()
        q = (clf.sample_quality(cached[0], x, ref=ref, real_for_pr=real) if cached else {})
        rows.append((name, _mean_se(hf), hf.mean() / hf_real.mean(),
                     _f(q.get("fd")), _f(q.get("precision")), _f(q.get("recall")),
                     f"{per_s:.1f}"))
        pics.append(x[:10])
    report.table(("samples", "high-frequency energy (mean ± s.e.)", "x real", "FD",
                  "precision", "recall", "samples/s"), rows,
                 f"{n} samples of each model, {steps} steps x batch {batch} each; FD / "
                 f"precision / recall (k = 3) in the jaxgen classifier's feature space, n = {n}, "
                 "reference = 10 000 test images" if cached else
                 f"{n} samples of each model, {steps} steps x batch {batch} each (FD skipped: "
                 "run `jaxgen classifier` once)")
    viz.save_image_rows(pics, report.path("samples.png"),
                        row_labels=["real"] + list(models), title="samples at a matched budget")
    report.figure("samples.png", "ten samples of each model (top: real test images)")
    others = [k for k in hf_means if k != "VAE"]
    blurriest = min(hf_means, key=hf_means.get)
    report.compare("blurriest model (lowest high-frequency energy)", blurriest, "VAE",
                   "lecture: \"VAEs blur\"", None if fast else blurriest == "VAE")
    report.compare("VAE high-frequency energy / real",
                   float(hf_means["VAE"] / hf_real.mean()), "< 1 (blurrier than data)",
                   "lecture", None if fast else hf_means["VAE"] < hf_real.mean())
    report.compare("VAE / mean of the other models",
                   float(hf_means["VAE"] / np.mean([hf_means[k] for k in others])), "< 1",
                   "lecture", None if fast else hf_means["VAE"] < min(hf_means[k]
                                                                      for k in others))
    report.verdict_from_rows(
        f"the VAE's samples keep {hf_means['VAE'] / hf_real.mean():.2f}x the real images' "
        f"high-frequency energy, the blurriest of the models ({blurriest} lowest)",
        "the same steps x batch per model (the command's budget); the comparison models are "
        "at that budget too")


def _mean_se(v) -> str:
    v = np.asarray(v, np.float64)
    return f"{v.mean():.4f} ± {v.std(ddof=1) / np.sqrt(len(v)):.4f}"


def _f(v) -> str:
    return "-" if v is None else f"{v:.3g}"
