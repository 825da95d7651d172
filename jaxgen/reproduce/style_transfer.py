"""style-transfer: the lecture's "Other" — content and Gram-style losses (Gatys et al.,
2016), optimising an image, with the feature maps of jaxgen's Fashion-MNIST classifier.

For a content image c and a style image s, with F_l(x) the (h_l, w_l, C_l)
ReLU maps of conv layer l and G_l(x) = F_lᵀ F_l / (h_l w_l) their C_l x C_l
Gram matrix,

    L(x) = α Σ_{l ∈ content} mean (F_l(x) − F_l(c))² + β Σ_{l ∈ style} mean (G_l(x) − G_l(s))²,

minimised over the pixels of x = tanh(u) (model space, in (−1, 1)) by Adam from
x = c. Measured: how far the style loss falls (vs the content image itself and a
pixel blend ½c + ½s), how much content loss it costs, and what the classifier
says the result is (content class, style class or neither) — the test of
whether the "style" of a 28 x 28 grey image in these features means anything.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import viz
from jaxgen.reproduce.runs import high_frequency_energy

TITLE = "Style transfer with the jaxgen classifier's features"
CLAIM = ("Content (feature maps) and style (Gram matrices of feature maps) can be separated: "
         "optimising an image to match one image's content and another's Gram statistics "
         "gives the first image \"in the style\" of the second (Gatys et al., 2016; the "
         "lecture's \"Other\" slide).")

CONTENT_LAYERS = (1,)  # the deeper conv layer (7 x 7)
STYLE_LAYERS = (0, 1)


def gram(f):
    """(B, h, w, C) -> (B, C, C) = Fᵀ F / (h w)."""
    b, h, w, c = f.shape
    f = f.reshape(b, h * w, c)
    return jnp.einsum("bpc,bpd->bcd", f, f) / (h * w)


def losses(params, x, content, style, conv_activations):
    fx, fc, fs = (conv_activations(params, v) for v in (x, content, style))
    lc = sum(jnp.mean(jnp.square(fx[i] - fc[i]), axis=(1, 2, 3)) for i in CONTENT_LAYERS)
    ls = sum(jnp.mean(jnp.square(gram(fx[i]) - gram(fs[i])), axis=(1, 2)) for i in STYLE_LAYERS)
    return lc, ls


def run(report, budget):
    from jaxgen.data import get_dataset
    from jaxgen.eval import classifier as clf
    from jaxgen.kernel import transforms
    from jaxgen.reproduce.runs import feature_classifier
    cparams, cinfo = feature_classifier(report, budget.fast)
    steps, alpha, lr = budget.steps(500, 10), 1.0, 0.05
    betas = budget.pick((1.0, 10.0, 100.0, 1000.0), (10.0,))
    src = get_dataset({"name": "fashion_mnist", "path": "", "classes": ()}, "test").source
    batch = src.get(np.arange(200))
    x_all, y_all = batch["x"], batch["label"]
    # 10 pairs: content of class k, style of class (k + 5) mod 10
    ci = np.array([np.flatnonzero(y_all == k)[0] for k in range(10)])
    si = np.array([np.flatnonzero(y_all == (k + 5) % 10)[0] for k in range(10)])
    pre = lambda v: transforms.preprocess("images", v, None, dequantize=False)  # noqa: E731
    content, style = pre(x_all[ci]), pre(x_all[si])
    conv = clf.conv_activations

    def objective(u, beta):
        lc, ls = losses(cparams, jnp.tanh(u), content, style, conv)
        return jnp.sum(alpha * lc + beta * ls), (lc, ls)

    tx = optax.adam(lr)

    @jax.jit
    def optimise(u, beta):
        def body(carry, _):
            u, o = carry
            g, _ = jax.grad(objective, has_aux=True)(u, beta)
            upd, o = tx.update(g, o, u)
            return (optax.apply_updates(u, upd), o), None
        (u, _), _ = jax.lax.scan(body, (u, tx.init(u)), None, length=steps)
        return u

    u0 = jnp.arctanh(jnp.clip(content, -0.999, 0.999))
    candidates = [("content image", content), ("style image", style),
                  ("pixel blend ½c + ½s", 0.5 * (content + style))]
    candidates += [(f"result, β = {b:g}", jnp.tanh(optimise(u0, jnp.float32(b)))) for b in betas]
    rows, table = {}, []
    for name, x in candidates:
        lc, ls = (np.asarray(v) for v in losses(cparams, x, content, style, conv))
        pred = np.asarray(jnp.argmax(clf.logits(cparams, x), -1))
        pix = transforms.postprocess("images", np.asarray(x))
        table.append((name, float(lc.mean()), float(ls.mean()),
                      f"{np.mean(pred == y_all[ci]):.0%}", f"{np.mean(pred == y_all[si]):.0%}",
                      float(high_frequency_energy(pix).mean())))
        rows[name] = pix
    report.table(("image", "content loss", "style (Gram) loss", "classified as content's class",
                  "as style's class", "high-freq. energy"), table,
                 f"10 pairs (content class k, style class k + 5 mod 10), {steps} Adam steps from "
                 f"the content image, α = {alpha:g}; classifier test accuracy "
                 f"{cinfo['test_accuracy']:.4f}")
    viz.save_image_rows(list(rows.values()), report.path("style_transfer.png"),
                        row_labels=list(rows))
    report.figure("style_transfer.png", "content, style, pixel blend, and the optimised images "
                  "for each style weight β")
    by = {r[0]: r for r in table}
    mid = f"result, β = {betas[min(1, len(betas) - 1)]:g}"
    ls_c, ls_r = by["content image"][2], by[mid][2]
    judge = None if budget.fast else True
    report.compare(f"style loss: {mid} / content image", ls_r / max(ls_c, 1e-12),
                   "< 0.5 (falls)",
                   "Gatys et al. (2016)", judge and ls_r < 0.5 * ls_c)
    report.compare(f"{mid}: classified as the content's / the style's class",
                   f"{by[mid][3]} / {by[mid][4]}", "content kept, style ≠ class",
                   "Gatys et al. (2016)", None)
    report.compare(f"{mid}: high-frequency energy vs content, style",
                   f"{by[mid][5]:.3f} vs {by['content image'][5]:.3f}, "
                   f"{by['style image'][5]:.3f}", "style's texture, not noise", "-", None)
    # The mechanism row is judged; whether the transfer is meaningful is the reading below,
    # which these 7 x 7-receptive-field features cannot support either way.
    report.verdict(
        "cannot tell at this budget" if ls_r < 0.5 * ls_c else "does not hold",
        f"the Gram loss falls to {ls_r / max(ls_c, 1e-12):.2f}x with the content class kept "
        f"({by[mid][3]}), but the change is speckle texture: jaxgen's classifier sees 7 x 7 "
        "pixels, too small to carry a style (the lecture's claim rests on VGG-19)",
        f"{steps} Adam steps per image, 10 pairs")
    report.text(
        "Reading. The optimisation does what the losses ask: the Gram (style) loss falls by "
        "the factor above while the classifier still sees the content's class. But what "
        "moves is texture at the scale of these features: two 3 x 3 stride-2 convolutions "
        "see at most 7 x 7 pixels, so their Gram matrices describe local edge and stroke "
        "statistics, and matching another garment's statistics adds speckle to the "
        "background and the fabric (the high-frequency energy rises above both images'), "
        "not a recognisable style. On 28 x 28 grey Fashion-MNIST, style and class are the "
        "same thing (a sandal's \"style\" is its shape), and the lecture's examples rest on "
        "features with large receptive fields trained on textured natural images (VGG-19 "
        "conv1_1 … conv5_1 in Gatys et al.). Verdict: the mechanism is reproduced; a "
        "meaningful transfer is not, with these features. It would need a deeper network "
        "with multi-scale receptive fields trained on colour, textured images.")
