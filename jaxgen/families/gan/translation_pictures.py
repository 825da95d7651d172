"""End-of-run pictures of image-to-image translation (also `jaxgen pictures --workdir DIR`).

pix2pix: translations.png, for held-out images y: a row of task inputs x_in
(edge maps or images with a hole), a row of translations G(x_in) and a row of
targets y.
CycleGAN: translations.png, rows x, G(x), F(G(x)) for held-out images of
objective.class_x and y, F(y), G(F(y)) for images of objective.class_y.
Pictures use held-out ("test") images when the dataset has them.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data import class_names, get_dataset
from jaxgen.kernel import transforms
from jaxgen.runner.pictures import stage


def held_out_source(exp, dataset):
    """The test split's source, else (user arrays without data.eval_path) the given dataset's."""
    try:
        return get_dataset(exp.config.data, "test").source
    except Exception:  # noqa: BLE001 - user arrays without eval_path: use what we have
        return dataset.source


def _model_space(exp, raw) -> jnp.ndarray:
    return transforms.preprocess(exp.info.kind, raw, None, dequantize=False)


def _pixels(exp, x) -> np.ndarray:
    return transforms.postprocess(exp.info.kind, np.asarray(x))


def write_pix2pix(exp, params, rng, dataset, folder: Path, main: bool = True,
                  n: int = 10) -> list[Path]:
    stage("translations of held-out inputs")
    tools = exp.objective.tools
    source = held_out_source(exp, dataset)
    raw = source.get(np.arange(min(n, len(source))))["x"]
    y = _model_space(exp, raw)

    @jax.jit
    def run(p, y, k):
        x_in = tools.task_input(y, k)
        return x_in, tools.translate(p, x_in)

    x_in, out = run(params, y, rng)
    path = Path(folder) / "translations.png"
    if main:
        viz.save_image_rows([_pixels(exp, x_in), _pixels(exp, out), _pixels(exp, y)], path,
                            row_labels=["input", "G(input)", "target"],
                            title=f"pix2pix ({tools.task}) on held-out images")
    return [path]


def domain_examples(source, cls: int, n: int, scan: int = 5000) -> np.ndarray:
    """Up to n raw images of class `cls` among the first `scan` examples of `source`."""
    batch = source.get(np.arange(min(scan, len(source))))
    if "label" not in batch:
        return batch["x"][:0]
    return batch["x"][np.flatnonzero(batch["label"] == cls)[:n]]


def write_cyclegan(exp, params, rng, dataset, folder: Path, main: bool = True,
                   n: int = 10) -> list[Path]:
    del rng
    stage("translations both ways and their cycles")
    tools = exp.objective.tools
    source = held_out_source(exp, dataset)
    cx, cy = tools.class_x, tools.class_y
    names = class_names(exp.info.name, exp.info.num_classes or max(cx, cy) + 1)

    xs, ys = domain_examples(source, cx, n), domain_examples(source, cy, n)
    both = _model_space(exp, np.concatenate([xs, ys]))
    if not len(both):
        print(f"No held-out images of classes {cx} or {cy}; translations.png not written.")
        return []

    # Both domains in one batch, each network called twice on it: each compiles once.
    g_xy, g_yx = jax.jit(tools.g_xy), jax.jit(tools.g_yx)
    g, f = g_xy(params, both), g_yx(params, both)
    g, fg, f, gf = (_pixels(exp, a) for a in (g, g_yx(params, g), f, g_xy(params, f)))
    v, k = _pixels(exp, both), len(xs)
    rows, labels = [], []
    if len(xs):
        rows += [v[:k], g[:k], fg[:k]]
        labels += [f"x ({names[cx]})", "G(x)", "F(G(x))"]
    if len(ys):
        rows += [v[k:], f[k:], gf[k:]]
        labels += [f"y ({names[cy]})", "F(y)", "G(F(y))"]
    path = Path(folder) / "translations.png"
    if main:
        viz.save_image_rows(rows, path, row_labels=labels,
                            title="CycleGAN on held-out images: G: X -> Y, F: Y -> X")
    return [path]
