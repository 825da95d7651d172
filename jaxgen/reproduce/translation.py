"""translation: pix2pix's L1 / cGAN ablation and CycleGAN until its translations are
recognisable, on Fashion-MNIST.

Deck 001 gives image-to-image translation two objectives. With pairs (Isola et al.,
2017), "conditional GAN + regression loss", G* = argmin_G max_D L_cGAN(G, D) + λ L_L1(G);
Isola et al.'s ablation (§4.2, Fig. 4, Table 1) finds L1 alone "reasonable but blurry",
the cGAN alone sharper but with artifacts and less faithful, and the two together best.
Without pairs (Zhu et al., 2017), two GANs and a cycle loss, x → G(x) → F(G(x)) ≈ x.
Measured here through the one trainer:

  * pix2pix, edges → garment (configs/gan/pix2pix_fashion_mnist.py), three generators
    that differ only in their loss: L1 alone (objective.adv_weight = 0), cGAN alone
    (objective.l1_weight = 0), and both (λ = 100, the paper's), two seeds each. On the
    first n test images: the L1 to the true image (faithfulness), sharpness as the
    translations' high-frequency spectral energy over the true images' (1 = as sharp),
    the FD of the translations against the test set in jaxgen's classifier features
    (realism), and the share the classifier puts in the source image's class (Isola et
    al.'s FCN-score, with a Fashion-MNIST classifier for the segmentation net);
  * CycleGAN, sneakers (7) ↔ ankle boots (9) (configs/gan/cyclegan_fashion_mnist.py),
    one seed: the share of G(x) the classifier calls an ankle boot and of F(y) it calls
    a sneaker, and the cycle L1 |F(G(x)) − x| against the L1 between two different
    sneakers (what "≈ x" is measured against).

The verdict: holds when L1 alone is the blurriest (lowest sharpness) of the three, both
terms are more faithful (lower L1) than the cGAN alone and more realistic (lower FD) than
L1 alone, and CycleGAN's G and F each reach 80 % of their target class with a cycle L1
under half the between-image L1; does not hold when a pix2pix comparison goes the other
way by more than the seed spread; cannot tell otherwise.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxgen import viz
from jaxgen.kernel import transforms
from jaxgen.reproduce.ae_vs_vae import classifier, fd, mean_sd, step_ms, test_images
from jaxgen.reproduce.runs import high_frequency_energy, train_run

TITLE = "Image-to-image translation: pix2pix's L1 / cGAN ablation and CycleGAN"
CLAIM = ("Deck 001: paired translation as a \"conditional GAN + regression loss\", G* = "
         "argmin_G max_D L_cGAN(G, D) + λ L_L1(G) (Isola et al., 2017: L1 alone is blurry, "
         "the cGAN alone sharp but less faithful, both together best); unpaired translation "
         "by two GANs \"with cycle consistency\", x → G(x) → F(G(x)) ≈ x (Zhu et al., 2017).")

PIX2PIX = "gan/pix2pix_fashion_mnist.py"
CYCLEGAN = "gan/cyclegan_fashion_mnist.py"
ABLATION = {"L1 alone": ["objective.adv_weight=0.0"],
            "cGAN alone": ["objective.l1_weight=0.0"],
            "L1 + cGAN": []}
COMMON = ["train.pictures=false", "train.sample_every=0"]
FAST_NETS = ["model.g_channels=4", "model.d_channels=4", "model.groups=2",
             "train.data_in_memory_mb=0"]
SNEAKER, BOOT = 7, 9
RECOGNISED = 0.8  # the share of translations the classifier must put in the target class


def _batched(fn, params, x, chunk: int = 500) -> np.ndarray:
    f = jax.jit(fn)
    return np.concatenate([np.asarray(f(params, x[i:i + chunk]))
                           for i in range(0, len(x), chunk)])


def _pixels(x) -> np.ndarray:
    return transforms.postprocess("images", np.asarray(x))


def _class_share(cls, images_uint8, label) -> np.ndarray:
    """Per image: 1 where the classifier's argmax is `label` (an int or one per image)."""
    from jaxgen.eval import classifier as clf
    pred = np.argmax(clf.embed(cls[0], images_uint8, "logits"), -1)
    return (pred == np.asarray(label)).astype(np.float64)


def run(report, budget):
    fast = budget.fast
    seeds = budget.pick((0, 1), (0,))
    batch = budget.pick(32, 4)
    n = budget.pick(1000, 16)
    cls = classifier(report, fast)
    p_steps = budget.steps(1000, 3)
    res = {name: {"l1": [], "sharp": [], "fd": [], "acc": []} for name in ABLATION}
    ms, strip = {}, {}
    raw = labels = x_in = None
    for name, overrides in ABLATION.items():
        for s in seeds:
            exp, params, _, wd = train_run(
                report, f"pix2pix {name.replace(' + ', '+')} seed{s}", PIX2PIX,
                [*overrides, *COMMON], steps=p_steps, batch=batch, seed=s,
                fast_overrides=FAST_NETS, fast=fast)
            tools = exp.objective.tools
            if raw is None:
                raw, labels, y = test_images(exp, n)
                x_in = jax.jit(tools.task_input)(y, jax.random.key(0))
                hf_real = high_frequency_energy(raw).mean()
                strip["input"] = _pixels(x_in[:10])
                strip["target"] = raw[:10]
            out = _batched(tools.translate, params, x_in)
            out_px = _pixels(out)
            r = res[name]
            r["l1"].append(float(np.mean(np.abs(out - np.asarray(y)))))
            r["sharp"].append(float(high_frequency_energy(out_px).mean() / hf_real))
            r["fd"].append(fd(cls, out_px))
            r["acc"].append(float(_class_share(cls, out_px, labels).mean()))
            ms.setdefault(name, []).append(step_ms(wd))
            if s == seeds[0]:
                strip[name] = out_px[:10]
    rows = [(name, *(f"{mean_sd(res[name][k])[0]:.3f} ± {mean_sd(res[name][k])[1]:.3f}"
                     for k in ("l1", "sharp")),
             f"{mean_sd(res[name]['fd'])[0]:.1f} ± {mean_sd(res[name]['fd'])[1]:.1f}",
             f"{mean_sd(res[name]['acc'])[0]:.3f}", f"{np.mean(ms[name]):.0f}")
            for name in ABLATION]
    report.table(("generator loss", "L1 to the true image", "sharpness (HF energy / true)",
                  "FD of translations", "classifier: source class", "ms per step"), rows,
                 f"pix2pix edges → garment, the first {n} test images; L1 per pixel in model "
                 f"space [−1, 1]; mean ± sd over {len(seeds)} seeds, {p_steps} steps x batch "
                 f"{batch} each; the true images' own class share is the classifier's accuracy")
    names = ["input", *ABLATION, "target"]
    viz.save_image_rows([strip[k] for k in names], report.path("pix2pix_ablation.png"),
                        row_labels=names, title="edges -> garment, held-out images")
    report.figure("pix2pix_ablation.png", "the same held-out edge maps translated by each "
                  "loss (first seed), with the true images")

    def m(name, k):
        return mean_sd(res[name][k])

    def beyond(a, b, k):
        """How far a's mean is above b's, in units of the larger seed sd (inf when sd 0)."""
        (ma, sa), (mb, sb) = m(a, k), m(b, k)
        sd = max(sa, sb)
        return (ma - mb) / sd if sd > 0 else np.sign(ma - mb) * np.inf

    judged = not fast
    blur = min(beyond("cGAN alone", "L1 alone", "sharp"), beyond("L1 + cGAN", "L1 alone",
                                                                 "sharp"))
    faithful = beyond("cGAN alone", "L1 + cGAN", "l1")
    realism = beyond("L1 alone", "L1 + cGAN", "fd")
    report.compare("sharpness: L1 alone below both others (in seed sds)", blur,
                   "> 0: \"L1 alone ... blurry\"", "Isola et al. 2017, Fig. 4",
                   blur > 0 if judged else None)
    report.compare("L1 error: cGAN alone above L1 + cGAN (in seed sds)", faithful,
                   "> 0", "Isola et al. 2017, Table 1", faithful > 0 if judged else None)
    report.compare("FD: L1 alone above L1 + cGAN (in seed sds)", realism, "> 0",
                   "Isola et al. 2017, §4.2", realism > 0 if judged else None)

    c_steps = budget.steps(2000, 3)
    cyc = {"G(x) is a boot": [], "F(y) is a sneaker": [], "cycle x": [], "cycle y": []}
    pair_l1, c_ms, c_strip = None, [], None
    for s in seeds[:1]:
        exp, params, _, wd = train_run(
            report, f"cyclegan seed{s}", CYCLEGAN, COMMON, steps=c_steps, batch=batch,
            seed=s, fast_overrides=FAST_NETS, fast=fast)
        c_ms.append(step_ms(wd))
        tools = exp.objective.tools
        raw_c, lab_c, xy = test_images(exp, 2 * n)
        xs, ys = xy[lab_c == SNEAKER], xy[lab_c == BOOT]
        gx = _batched(tools.g_xy, params, xs)
        fy = _batched(tools.g_yx, params, ys)
        fgx = _batched(tools.g_yx, params, gx)
        gfy = _batched(tools.g_xy, params, fy)
        cyc["G(x) is a boot"].append(_class_share(cls, _pixels(gx), BOOT).mean())
        cyc["F(y) is a sneaker"].append(_class_share(cls, _pixels(fy), SNEAKER).mean())
        cyc["cycle x"].append(float(np.mean(np.abs(fgx - np.asarray(xs)))))
        cyc["cycle y"].append(float(np.mean(np.abs(gfy - np.asarray(ys)))))
        if pair_l1 is None:
            xs_np = np.asarray(xs)
            pair_l1 = float(np.mean(np.abs(xs_np - np.roll(xs_np, 1, 0))))
            c_strip = [_pixels(xs[:10]), _pixels(gx[:10]), _pixels(fgx[:10]),
                       _pixels(ys[:10]), _pixels(fy[:10]), _pixels(gfy[:10])]
    real_x = _class_share(cls, raw_c[lab_c == SNEAKER], SNEAKER).mean()
    real_y = _class_share(cls, raw_c[lab_c == BOOT], BOOT).mean()
    report.table(("quantity", *(f"seed {s}" for s in seeds[:1]), "reference"),
                 [("G(x) classified as ankle boot", *(f"{v:.3f}" for v in
                                                      cyc["G(x) is a boot"]),
                   f"true boots: {real_y:.3f}"),
                  ("F(y) classified as sneaker", *(f"{v:.3f}" for v in
                                                   cyc["F(y) is a sneaker"]),
                   f"true sneakers: {real_x:.3f}"),
                  ("cycle L1 ‖F(G(x)) − x‖₁", *(f"{v:.3f}" for v in cyc["cycle x"]),
                   f"two different sneakers: {pair_l1:.3f}"),
                  ("cycle L1 ‖G(F(y)) − y‖₁", *(f"{v:.3f}" for v in cyc["cycle y"]), "")],
                 f"CycleGAN sneaker ↔ ankle boot, the test images of the two classes among the "
                 f"first {2 * n}; {c_steps} steps x batch {batch} per seed, "
                 f"{np.mean(c_ms):.0f} ms per step")
    viz.save_image_rows(c_strip, report.path("cyclegan.png"),
                        row_labels=["x (sneaker)", "G(x)", "F(G(x))", "y (ankle boot)", "F(y)",
                                    "G(F(y))"], title="CycleGAN, held-out images (seed 0)")
    report.figure("cyclegan.png", "held-out sneakers and ankle boots, translated and back")
    recog = min(min(cyc["G(x) is a boot"]), min(cyc["F(y) is a sneaker"]))
    cycle = max(max(cyc["cycle x"]), max(cyc["cycle y"]))
    report.compare("CycleGAN: the lower share of translations in their target class", recog,
                   f"≥ {RECOGNISED} (recognisable)", "Zhu et al. 2017",
                   recog >= RECOGNISED if judged else None)
    report.compare("CycleGAN: worst cycle L1 / L1 of two different sneakers",
                   cycle / pair_l1, "< 0.5 (F(G(x)) ≈ x)", "deck 001",
                   cycle / pair_l1 < 0.5 if judged else None)

    pix_ok = blur > 0 and faithful > 0 and realism > 0
    cyc_ok = recog >= RECOGNISED and cycle / pair_l1 < 0.5
    if pix_ok and cyc_ok:
        verdict = "holds"
    elif min(blur, faithful, realism) < -1:
        verdict = "does not hold"
    else:
        verdict = "cannot tell at this budget"
    why = (f"pix2pix: sharpness {m('L1 alone', 'sharp')[0]:.2f} (L1) / "
           f"{m('cGAN alone', 'sharp')[0]:.2f} (cGAN) / {m('L1 + cGAN', 'sharp')[0]:.2f} "
           f"(both) of the true images', L1 error {m('L1 alone', 'l1')[0]:.3f} / "
           f"{m('cGAN alone', 'l1')[0]:.3f} / {m('L1 + cGAN', 'l1')[0]:.3f}, FD "
           f"{m('L1 alone', 'fd')[0]:.1f} / {m('cGAN alone', 'fd')[0]:.1f} / "
           f"{m('L1 + cGAN', 'fd')[0]:.1f}; CycleGAN: at least {recog:.0%} of translations in "
           f"their target class, cycle L1 at most {cycle / pair_l1:.2f} of the between-image L1")
    report.verdict(verdict, why, f"pix2pix 3 losses x {len(seeds)} seeds x {p_steps} steps, "
                   f"CycleGAN 1 seed x {c_steps} steps, batch {batch}")
