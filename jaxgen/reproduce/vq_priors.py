"""vq-priors: the VQ-VAE's and the VQ-VAE-2's autoregressive priors, trained until their
decoded samples are garments.

Deck 001 closes the VAE section with the VQ-VAE (van den Oord et al., 2017): a discrete
code map per image, and "fit an autoregressive prior over the latents" to generate;
VQ-VAE-2 (Razavi et al., 2019) stacks a coarse top map over a fine bottom one, with a
prior p(top) and a prior p(bottom | top). Measured here on Fashion-MNIST through the one
trainer, each step a run in REPORT/runs:

  * the VQ-VAE (configs/vae/vqvae_fashion_mnist.py, K = 128 codes on 7 x 7 maps) and the
    VQ-VAE-2 (configs/vae/vqvae2_fashion_mnist.py, 7 x 7 top, 14 x 14 bottom);
  * their code maps exported with `jaxgen codes` (train and test);
  * the priors (configs/autoregressive/vqvae_prior.py, vqvae2_top_prior.py,
    vqvae2_bottom_prior.py: causal transformers; the bottom prior reads [top ; bottom]
    with the top as a given prefix, and samples its top from the top prior);
  * n samples of each prior, decoded by its autoencoder, scored against the test set in
    jaxgen's classifier features (FD) and by the share the classifier assigns to a class
    with probability ≥ 0.9 ("recognisably a garment"), beside two references decoded by
    the same autoencoder: the test images' own codes (the reconstructions: what a perfect
    prior would give) and uniformly random codes (what no prior gives: blobs).

The verdict: holds when each prior's decoded samples close at least 90 % of the FD gap
from the random codes to the reconstructions (samples nearly as close to the test set as
the autoencoder's own reconstructions); does not hold when a prior's samples score no
better than random codes; cannot tell otherwise. The confidently-classified share is
reported beside it but does not decide: decoded random codes are often classified
confidently too (as a bag, say), so it does not tell garments from blobs.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxgen import viz
from jaxgen.reproduce.ae_vs_vae import classifier, fd, step_ms, test_images
from jaxgen.reproduce.runs import train_run

TITLE = "VQ-VAE and VQ-VAE-2: autoregressive priors whose samples are garments"
CLAIM = ("Deck 001: a VQ-VAE learns discrete codes, then \"fit an autoregressive prior over "
         "the latents\" to generate (van den Oord et al., 2017); VQ-VAE-2 (Razavi et al., "
         "2019) models a top map and the bottom map given the top, each with its own prior.")

CONFIDENT = 0.9  # the classifier's top-class probability that counts as recognisable
CLOSED = 0.9  # the share of the FD gap (random codes -> reconstructions) samples must close
# the autoencoders and priors at widths that train in minutes on 2 CPU cores
PRIOR_NET = ["model.d_model=64", "model.num_heads=4", "model.num_layers=2"]
FAST_AE = ["model.channels=(4, 8)", "train.data_in_memory_mb=0"]
FAST_PRIOR = ["model.d_model=8", "model.num_heads=1", "model.num_layers=1"]
COMMON = ["train.pictures=false", "train.sample_every=0"]


def _confident(cls, images) -> float:
    """The share of images the classifier puts in one class with probability ≥ CONFIDENT."""
    from jaxgen.eval import classifier as clf
    logits = clf.embed(cls[0], images, "logits").astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return float(np.mean(p.max(-1) / p.sum(-1) >= CONFIDENT))


def _export(wd, out_dir, name: str, num: int | None = None):
    """`jaxgen codes` of the run in wd (the first `num` images of each split, None: all),
    train and test: the two .npz paths."""
    import argparse

    from jaxgen.families.vae.commands import codes
    paths = []
    for split in ("train", "test"):
        path = out_dir / f"{name}_codes_{split}.npz"
        if not path.exists():
            codes(argparse.Namespace(workdir=str(wd), out=str(path), split=split, num=num,
                                     batch_size=500, step=None, raw_params=False,
                                     force=False), [])
        paths.append(path)
    return paths


def _scores(cls, images) -> tuple[float, float]:
    return fd(cls, images), _confident(cls, images)


def run(report, budget):
    from jaxgen.composed.decoding import decode
    fast = budget.fast
    n = budget.pick(1000, 16)
    cls = classifier(report, fast)
    ae_steps, ae_batch = budget.steps(1500, 3), budget.pick(128, 8)
    p_steps, p_batch = budget.steps(1500, 3), budget.pick(64, 8)
    runs = report.path("runs")
    rng = np.random.default_rng(budget.seed)
    rows, strips, judged, ms = [], [], {}, {}

    def prior(name, config, train, test, extra=()):
        exp, params, _, wd = train_run(
            report, name, config, [*PRIOR_NET, *COMMON, f"data.path={train}",
                                   f"data.eval_path={test}", "data.decoder_workdir=", *extra],
            steps=p_steps, batch=p_batch, seed=budget.seed, fast_overrides=FAST_PRIOR,
            fast=fast)
        ms[name] = step_ms(wd)
        return exp, params, wd

    def references(exp_ae, params_ae):
        """Decoded reconstructions of the test images and decoded uniform random codes."""
        ae = exp_ae.objective.autoencoder
        recon = _decode(exp_ae, params_ae, _codes(exp_ae, params_ae, test_images(exp_ae, n)[2]))
        rand = _decode(exp_ae, params_ae, rng.integers(0, ae.num_codes, (n, *ae.latent_shape)))
        return recon, rand

    # one level: VQ-VAE, codes, prior
    exp_v, params_v, _, wd_v = train_run(
        report, "vqvae", "vae/vqvae_fashion_mnist.py", COMMON, steps=ae_steps, batch=ae_batch,
        seed=budget.seed, fast_overrides=FAST_AE, fast=fast)
    ms["vqvae"] = step_ms(wd_v)
    num = budget.pick(None, 200)
    train, test = _export(wd_v, runs, "vqvae", num)
    exp_p, params_p, _ = prior("vqvae_prior", "autoregressive/vqvae_prior.py", train, test)
    recon, rand = references(exp_v, params_v)
    sampled = decode(exp_p.config, np.asarray(exp_p.sample(params_p, jax.random.key(1), n,
                                                           chunk=n)))
    # two levels: VQ-VAE-2, codes, top prior, bottom prior given the top
    exp_2, params_2, _, wd_2 = train_run(
        report, "vqvae2", "vae/vqvae2_fashion_mnist.py", COMMON, steps=ae_steps,
        batch=ae_batch, seed=budget.seed, fast_overrides=FAST_AE, fast=fast)
    ms["vqvae2"] = step_ms(wd_2)
    train2, test2 = _export(wd_2, runs, "vqvae2", num)
    _, _, wd_top = prior("vqvae2_top_prior", "autoregressive/vqvae2_top_prior.py", train2,
                         test2)
    exp_b, params_b, _ = prior("vqvae2_bottom_prior", "autoregressive/vqvae2_bottom_prior.py",
                               train2, test2, [f"sample.prefix_workdir={wd_top}"])
    recon2, rand2 = references(exp_2, params_2)
    sampled2 = decode(exp_b.config, np.asarray(exp_b.sample(params_b, jax.random.key(2), n,
                                                            chunk=n)))

    for label, (rec, rnd, smp) in {"VQ-VAE": (recon, rand, sampled),
                                   "VQ-VAE-2": (recon2, rand2, sampled2)}.items():
        (fd_rec, c_rec), (fd_rnd, c_rnd), (fd_smp, c_smp) = (_scores(cls, a)
                                                           for a in (rec, rnd, smp))
        # (no gap to close when the random codes decode as well as the reconstructions)
        closed = (fd_rnd - fd_smp) / (fd_rnd - fd_rec) if fd_rnd - fd_rec > 1 else float("nan")
        judged[label] = (closed, c_smp / max(c_rec, 1e-9), fd_smp >= fd_rnd)
        rows.append((label, f"{fd_smp:.1f}", f"{c_smp:.3f}", f"{fd_rec:.1f} / {c_rec:.3f}",
                     f"{fd_rnd:.1f} / {c_rnd:.3f}", f"{closed:.2f}"))
        strips += [smp[:12], rec[:12], rnd[:12]]
        report.compare(f"{label}: share of the FD gap random codes → reconstructions that the "
                       "prior's samples close", closed, f"≥ {CLOSED} (garments, not blobs)",
                       "van den Oord et al. 2017; Razavi et al. 2019",
                       None if fast else closed >= CLOSED)
    report.table(("model", "FD of prior samples", f"share with p(class) ≥ {CONFIDENT}",
                  "reconstructions: FD / share", "random codes: FD / share",
                  "FD gap closed"), rows,
                 f"n = {n} decoded images each against the test set (jaxgen's classifier "
                 f"features); autoencoders {ae_steps} steps x {ae_batch}, priors {p_steps} "
                 f"steps x {p_batch} (ms/step: "
                 + ", ".join(f"{k} {v:.0f}" for k, v in ms.items()) + ")")
    labels = [f"{m}: {w}" for m in ("VQ-VAE", "VQ-VAE-2")
              for w in ("prior samples", "test reconstructions", "random codes")]
    viz.save_image_rows(strips, report.path("samples.png"), row_labels=labels,
                        title="decoded by each autoencoder")
    report.figure("samples.png", "prior samples beside the test set's reconstructions and "
                  "random codes, each decoded by the same autoencoder")
    ok = all(c >= CLOSED for c, _, _ in judged.values())
    bad = any(worse for _, _, worse in judged.values())
    verdict = "holds" if ok else "does not hold" if bad else "cannot tell at this budget"
    why = "; ".join(f"{m}: the samples close {c:.0%} of the FD gap from random codes to the "
                    f"reconstructions (their confident share is {s:.0%} of the "
                    "reconstructions'; random codes' is similar, so it does not decide)"
                    for m, (c, s, _) in judged.items())
    report.verdict(verdict, why, f"autoencoders {ae_steps} x {ae_batch}, priors {p_steps} x "
                   f"{p_batch}; n = {n}")


def _codes(exp, params, x, chunk: int = 500) -> np.ndarray:
    """The autoencoder's codes of model-space images x (VQ-VAE-2: top then bottom, flat)."""
    fn = jax.jit(exp.objective.autoencoder.encode)
    return np.concatenate([np.asarray(fn(params, x[i:i + chunk]))
                           for i in range(0, len(x), chunk)])


def _decode(exp, params, codes, chunk: int = 500) -> np.ndarray:
    """uint8 images of codes through the autoencoder's decoder."""
    from jaxgen.kernel import transforms
    fn = jax.jit(exp.objective.autoencoder.decode)
    codes = np.asarray(codes, np.int32)
    return np.concatenate([transforms.postprocess(exp.info.kind, fn(params, codes[i:i + chunk]))
                           for i in range(0, len(codes), chunk)])
