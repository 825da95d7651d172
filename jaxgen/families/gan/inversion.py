"""`jaxgen invert` and `jaxgen edit`: GAN inversion and latent editing on a trained run.

Both take a restored Experiment of a GAN run (its objective's `tools`, a `GANTools`:
generate, latents, latent_dim, conditional) and write into a folder;
the math is in `jaxgen.families.gan.tools`.

invert (`run_inversion`):
  (a) generated targets: z_true ~ N(0, I), the target is G(z_true) saved as an
      8-bit picture (quantised: what a person would hand in; points are used as
      they are). Reported: reconstruction mse of G(z*) vs the target, the latent
      error ‖z* − z_true‖ / √d (a random z from N(0, I) is at ≈ √2), and the mse of
      G(z*) vs G(z_true) (noise-free). A GAN need not be injective, so z* ≠ z_true
      with G(z*) ≈ G(z_true) is possible: the latent error is a diagnostic.
  (b) real held-out targets: reconstruction mse, and as the reference that
      inversion must beat the mse of the nearest (in mse) of `num_reference`
      random samples G(z), z ~ N(0, I) (conditional models: 1000 samples with
      the target's own class).
  Conditional GANs are inverted with the label known (generated: 0, 1, ...,
  C − 1 repeated; real: the test label).
  Writes inversion_generated.png and inversion_real.png (rows: target, G(z*),
  and for real targets the nearest random sample; 2-D points: scatter panels)
  and inversion.json.

edit (`run_edit`), images only:
  1. an attribute labeler: by default a pixel logistic regression
     (`gan_tools.attribute_classifier`) on labelled real training images, its
     held-out test accuracy reported; any `model-space images -> probability`
     function can be passed instead (`labeler=`);
  2. n latents z ~ N(0, I), y = [labeler(G(z)) > threshold] (threshold 0.5, or
     "median": the upper half, for a generator that rarely makes the attribute);
  3. a logistic regression on z (80% of the latents; accuracy on them and on the
     held-out 20%); its unit normal n points toward the attribute;
  4. fresh latents z ~ N(0, I) that the latent classifier puts *without* the
     attribute (signed distance s(z) = (z·w + b) / ‖w‖ < 0); the first `num`
     become the rows of edit.png: G(z + t·n), t in linspace(0, T, 9), with
     T = 2 · max over the rows of |s(z)| (unless t_max is given): every row then
     crosses the hyperplane (at t = |s(z)|) and ends at least as far beyond it
     as it started before it;
  5. the mean attribute probability labeler(G(z + t·n)) at each t, over the rows
     and over all the fresh latents without the attribute (up to 512): it should
     rise along the strip. Written to edit.json.
  Conditional GANs are refused: there the class label, not z, decides
  class-level attributes such as footwear.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxgen import viz
from jaxgen.families.gan import tools as gan_tools
from jaxgen.families.gan.gan import GANTools
from jaxgen.kernel import transforms
from jaxgen.kernel.contract import require_tools
from jaxgen.kernel.errors import UsageError, UserError

INVERSION_FILES = ("inversion.json", "inversion_generated.png", "inversion_real.png")
EDIT_FILES = ("edit.json", "edit.png")


def gan_tools_of(exp, command: str) -> GANTools:
    """The GAN objective's tools, or a UsageError naming the command."""
    return require_tools(exp.objective, GANTools, f"jaxgen {command}")


def _chunked(fn, *arrays, chunk: int = 500) -> np.ndarray:
    """fn over the leading axis in chunks (None arrays pass through as None); with
    several chunks the last is padded to full size (one compilation)."""
    n = len(next(a for a in arrays if a is not None))
    outs = []
    for lo in range(0, n, chunk):
        part = [None if a is None else np.asarray(a[lo:lo + chunk]) for a in arrays]
        m = len(next(a for a in part if a is not None))
        if n > chunk and m < chunk:
            part = [None if a is None else np.concatenate([a, np.repeat(a[-1:], chunk - m, 0)])
                    for a in part]
        outs.append(np.asarray(fn(*part))[:m])
    return np.concatenate(outs)


def _pairwise_mse(x, g) -> np.ndarray:
    """(n, m) mean squared differences of flattened x (n, ...) and g (m, ...)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    g = np.asarray(g, np.float64).reshape(len(g), -1)
    d2 = (x * x).sum(1)[:, None] - 2 * x @ g.T + (g * g).sum(1)[None]
    return np.maximum(d2, 0.0) / x.shape[1]


def _as_picture(kind, x):
    return transforms.postprocess(kind, x)


def _write_rows(kind, rows, labels, path: Path, title: str) -> None:
    if kind == "images":
        viz.save_image_rows([_as_picture(kind, r) for r in rows], path, row_labels=labels,
                            title=title)
    elif np.asarray(rows[0]).shape[-1] == 2:
        viz.save_scatter_panels([(lab, np.asarray(r)) for lab, r in zip(labels, rows)], path,
                                title=title)


def run_inversion(exp, params, test_source, folder, *, num: int = 16, steps: int = 500,
                  restarts: int = 4, lr: float = 0.05, prior_weight: float = 0.0,
                  seed: int = 0, num_reference: int = 1000) -> dict:
    """See the module docstring; returns the results written to inversion.json."""
    tools = gan_tools_of(exp, "invert")
    generate, d = tools.generate, int(tools.latent_dim)
    conditional, kind = bool(tools.conditional), exp.info.kind
    folder = Path(folder)
    rng = np.random.default_rng([seed, 11])
    gen = jax.jit(generate)
    prep = jax.jit(functools.partial(transforms.preprocess, kind, rng=None, dequantize=False))

    def inv(x, label):
        z0 = rng.standard_normal((restarts, len(x), d)).astype(np.float32)
        return gan_tools.invert_with_restarts(generate, params, x, None, latent_dim=d,
                                              restarts=restarts, steps=steps, lr=lr,
                                              prior_weight=prior_weight, label=label, z0=z0)

    def norm(z):
        return np.linalg.norm(np.asarray(z, np.float64), axis=-1) / math.sqrt(d)

    # (a) targets the generator made itself, from known latents
    z_true = rng.standard_normal((num, d)).astype(np.float32)
    lab_a = np.arange(num) % int(exp.model.num_classes) if conditional else None
    g_true = np.asarray(gen(params, z_true, lab_a))
    target_a = (np.asarray(prep(transforms.postprocess(kind, g_true))) if kind == "images"
                else g_true)
    out_a = inv(target_a, lab_a)
    g_star_a = np.asarray(gen(params, out_a.z, lab_a))
    lat_err = norm(np.asarray(out_a.z) - z_true)
    lat_ref = norm(rng.standard_normal((num, d)) - z_true)
    g_mse = _pairwise_mse(g_star_a, g_true).diagonal()
    generated = {
        "reconstruction_mse": float(np.mean(out_a.mse)),
        "latent_error": float(np.mean(lat_err)),
        "latent_error_random_z": float(np.mean(lat_ref)),
        "mse_vs_noise_free": float(np.mean(g_mse)),
        "reconstruction_mse_per_example": np.asarray(out_a.mse).tolist(),
        "latent_error_per_example": lat_err.tolist(),
    }

    # (b) real held-out targets
    n_test = len(test_source)
    idx = np.sort(rng.choice(n_test, min(num, n_test), replace=False))
    batch = test_source.get(idx)
    if conditional and "label" not in batch:
        raise UserError("a conditional GAN needs the test labels to invert real data; "
                         "the test split has none.")
    lab_b = np.asarray(batch["label"]) if conditional else None
    target_b = np.asarray(prep(batch["x"]))
    out_b = inv(target_b, lab_b)
    g_star_b = np.asarray(gen(params, out_b.z, lab_b))
    nearest_mse = np.zeros(len(idx))
    nearest = np.zeros(target_b.shape, np.float32)
    for c in (np.unique(lab_b) if conditional else [None]):
        z_ref = rng.standard_normal((num_reference, d)).astype(np.float32)
        lab = None if c is None else np.full((num_reference,), c, np.int32)
        samples = _chunked(lambda z, y: gen(params, z, y), z_ref, lab)
        rows = np.arange(len(idx)) if c is None else np.flatnonzero(lab_b == c)
        m = _pairwise_mse(target_b[rows], samples)
        nearest_mse[rows] = m.min(1)
        nearest[rows] = samples[m.argmin(1)]
    mse_b = np.asarray(out_b.mse)
    real = {
        "reconstruction_mse": float(np.mean(mse_b)),
        "nearest_sample_mse": float(np.mean(nearest_mse)),
        "num_reference": int(num_reference),
        "beats_nearest_fraction": float(np.mean(mse_b < nearest_mse)),
        "test_indices": idx.tolist(),
        "reconstruction_mse_per_example": mse_b.tolist(),
        "nearest_sample_mse_per_example": nearest_mse.tolist(),
    }
    result = {"num": int(num), "steps": int(steps), "restarts": int(restarts), "lr": float(lr),
              "prior_weight": float(prior_weight), "seed": int(seed), "latent_dim": d,
              "space": "model space ([-1, 1] for images)" if kind == "images" else "data space",
              "generated": generated, "real": real}
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(kind, [target_a, g_star_a], ["G(z_true) (8-bit)", "G(z*)"],
                folder / "inversion_generated.png",
                f"inversion of generated targets: mse {generated['reconstruction_mse']:.4f}, "
                f"|z*-z|/sqrt(d) {generated['latent_error']:.2f}")
    _write_rows(kind, [target_b, g_star_b, nearest], ["test image", "G(z*)",
                                                      f"nearest of {num_reference}"],
                folder / "inversion_real.png",
                f"inversion of test images: mse {real['reconstruction_mse']:.4f} "
                f"(nearest sample {real['nearest_sample_mse']:.4f})")
    (folder / "inversion.json").write_text(json.dumps(result, indent=2))
    return result


def inversion_rows(r: dict) -> list[tuple[str, object]]:
    g, x = r["generated"], r["real"]
    return [("generated: reconstruction mse", g["reconstruction_mse"]),
            ("generated: mse G(z*) vs G(z_true)", g["mse_vs_noise_free"]),
            ("generated: |z* - z_true| / sqrt(d)", g["latent_error"]),
            ("generated: same for a random z", g["latent_error_random_z"]),
            ("real: reconstruction mse", x["reconstruction_mse"]),
            (f"real: nearest of {x['num_reference']} samples mse", x["nearest_sample_mse"]),
            ("real: inversion beats nearest", x["beats_nearest_fraction"])]


# --------------------------------------------------------------------- editing
def _sample_labels(source, n: int, rng: np.random.Generator):
    idx = np.sort(rng.choice(len(source), min(n, len(source)), replace=False))
    b = source.get(idx)
    return b["x"], b.get("label")


def pixel_labeler(kind, train_source, test_source, positive, num_train: int = 10000,
                  num_test: int = 5000, seed: int = 0) -> gan_tools.PixelClassifier:
    """`gan_tools.attribute_classifier` on (subsets of) a run's labelled splits."""
    if kind != "images":
        raise UserError("the pixel attribute classifier needs image data; pass your own "
                         "labeler for points.")
    rng = np.random.default_rng([seed, 7])
    xtr, ytr = _sample_labels(train_source, num_train, rng)
    xte, yte = _sample_labels(test_source, num_test, rng)
    if ytr is None or yte is None:
        raise UserError("the attribute classifier needs labelled images; this data has no "
                         "labels.")
    c = getattr(train_source, "num_classes", None)
    if c is not None and max(positive) >= c:
        raise UserError(f"the attribute's classes {tuple(positive)} do not all exist in data "
                         f"with {c} classes (0..{c - 1}).")
    pre = functools.partial(transforms.preprocess, kind, rng=None, dequantize=False)
    return gan_tools.attribute_classifier(pre(xtr), ytr, pre(xte), yte, positive)


def check_editable(exp) -> GANTools:
    """The GAN tools of an unconditional image GAN, else a UsageError saying why not."""
    tools = gan_tools_of(exp, "edit")
    if tools.conditional:
        raise UsageError("jaxgen edit works on unconditional GANs: in a conditional GAN the "
                         "class label, not z, decides class-level attributes (compare classes "
                         "with jaxgen sample --classes).")
    if exp.info.kind != "images":
        raise UsageError("jaxgen edit needs an image GAN (its attribute labeler reads pixels).")
    return tools


def run_edit(exp, params, folder, labeler: Callable, *, name: str = "attribute",
             num: int = 8, n_latents: int = 4000, threshold: float | str = 0.5,
             t_max: float | None = None, num_t: int = 9, seed: int = 0,
             extra: dict | None = None, log: Callable[[str], None] = print) -> dict:
    """Steps 2-5 of the module docstring; `labeler`: model-space images -> P(attribute).
    `extra` entries are added to edit.json (e.g. the labeler's accuracy)."""
    tools = check_editable(exp)
    generate, d = tools.generate, int(tools.latent_dim)
    folder = Path(folder)
    rng = np.random.default_rng([seed, 13])
    prob_of_z = jax.jit(lambda p, z: labeler(generate(p, z, None)))
    gen = jax.jit(lambda p, z: generate(p, z, None))

    z = rng.standard_normal((n_latents, d)).astype(np.float32)
    p = _chunked(lambda zz: prob_of_z(params, zz), z)
    thr = float(np.median(p)) if threshold == "median" else float(threshold)
    y = p > thr
    if min(int(y.sum()), int((~y).sum())) < 5:
        raise UserError(f"{int(y.sum())} of {n_latents} generated images have the attribute "
                         f"(probability > {thr:.3g}); a direction needs both kinds (>= 5 each): "
                         "raise --n-latents, or use --threshold median.")
    n_fit = max(1, int(0.8 * n_latents))
    fit = gan_tools.fit_linear_direction(z[:n_fit], y[:n_fit].astype(np.float32), steps=500,
                                         lr=0.05, l2=1e-3)
    w, b = np.asarray(fit.w, np.float64), float(fit.b)
    held = z[n_fit:] @ w + b > 0
    held_acc = float(np.mean(held == y[n_fit:])) if n_latents > n_fit else float("nan")
    log(f"latent classifier: accuracy {float(fit.accuracy):.3f} on {n_fit} latents, "
        f"{held_acc:.3f} on {n_latents - n_fit} held out "
        f"({float(np.mean(y)):.1%} of G(z) with the attribute)")

    fresh = rng.standard_normal((512, d)).astype(np.float32)
    s = (fresh @ w + b) / np.linalg.norm(w)  # signed distance to the hyperplane
    neg = np.flatnonzero(s < 0)
    if len(neg) == 0:
        raise UserError("the latent classifier puts every fresh latent on the attribute side; "
                         "nothing to edit.")
    z0, dist = fresh[neg], -s[neg]
    shown = min(num, len(neg))
    T = float(t_max) if t_max is not None else 2.0 * float(dist[:shown].max())
    ts = np.linspace(0.0, T, num_t)
    zs = gan_tools.edit_latents(z0, fit.normal, ts)  # (M, num_t, d)
    flat = np.asarray(zs).reshape(-1, d)
    probs = _chunked(lambda zz: prob_of_z(params, zz), flat).reshape(len(neg), num_t)
    rows = _chunked(lambda zz: gen(params, zz), flat[:shown * num_t]).reshape(
        shown, num_t, *exp.info.event_shape)
    mean_rows, mean_all = probs[:shown].mean(0), probs.mean(0)
    folder.mkdir(parents=True, exist_ok=True)
    viz.save_image_rows(
        [_as_picture("images", r) for r in rows], folder / "edit.png",
        row_labels=[f"p {a:.2f}->{b:.2f}" for a, b in zip(probs[:shown, 0], probs[:shown, -1])],
        title=f"{name}: G(z + t n), t = 0 ... {T:.2f} ({num_t} steps); "
              f"hyperplane crossed at t = dist(z)")
    result = {
        "attribute": name, "threshold": thr, "n_latents": int(n_latents),
        "fraction_with_attribute": float(np.mean(y)),
        "latent_accuracy": float(fit.accuracy), "latent_heldout_accuracy": held_acc,
        "t": ts.tolist(), "t_max": T,
        "t_rule": "given" if t_max is not None else "2 x max distance of the rows to the "
                                                     "hyperplane",
        "rows": int(shown), "mean_prob_rows": mean_rows.tolist(),
        "num_without_attribute": int(len(neg)), "mean_prob_all": mean_all.tolist(),
        "crossing_t_rows": dist[:shown].tolist(),
        "fraction_crossing_all": float(np.mean(dist <= T)),
        "rises": bool(mean_all[-1] > mean_all[0] and mean_rows[-1] > mean_rows[0]),
        "prob_rows": probs[:shown].tolist(),
        **(extra or {}),
    }
    (folder / "edit.json").write_text(json.dumps(result, indent=2))
    return result


def edit_rows(r: dict) -> list[tuple[str, object]]:
    n = r["num_without_attribute"]
    return [(f"t = {t:.3g}", f"{a:.3f}   (all {n}: {b:.3f})")
            for t, a, b in zip(r["t"], r["mean_prob_rows"], r["mean_prob_all"])]
