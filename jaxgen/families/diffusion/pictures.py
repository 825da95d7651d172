"""End-of-run pictures of a diffusion run: forward-noising strip, reverse-process
strip, and (class-conditional models) sample grids per class and guidance scale."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data import class_names
from jaxgen.kernel import transforms
from jaxgen.processes import diffusion as dp
from jaxgen.runner.pictures import stage


def strip_steps(T: int, n: int = 8) -> list[int]:
    """n steps 0 … T, denser near 0 where the picture changes fastest."""
    return sorted({int(round(T * f)) for f in np.linspace(0.0, 1.0, n) ** 1.5})


def write_forward_strip(exp, dataset, path: Path, rng, main: bool = True, rows: int = 6) -> Path:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for a few data points, t = 0 … T (same ε per row)."""
    s = exp.objective.tools.schedule
    steps = strip_steps(s.num_steps)
    kind = exp.info.kind
    n = rows if kind == "images" else min(2000, len(dataset.source))
    raw = dataset.source.get(np.arange(n))["x"]
    x0 = transforms.preprocess(kind, raw, rng, dequantize=exp.dequantize)
    eps = jax.random.normal(jax.random.fold_in(rng, 1), x0.shape, jnp.float32)
    xs = [np.asarray(dp.q_sample(s, x0, t, eps)) for t in steps]
    if main:
        if kind == "images":
            cols = [transforms.postprocess(kind, x) for x in xs]  # (rows,) per step
            strips = [np.stack([c[i] for c in cols]) for i in range(n)]
            viz.save_image_rows(strips, path, title="forward process q(x_t | x_0), t = "
                                + ", ".join(map(str, steps)))
        else:
            viz.save_scatter_panels([(f"t = {t}", x) for t, x in zip(steps, xs)], path,
                                    title="forward process q(x_t | x_0)")
    return path


def write_reverse_strip(exp, params, rng, path: Path, main: bool = True, rows: int = 6) -> Path:
    """One ancestral (DDPM) run, x_T … x_0, shown at a few steps."""
    tools = exp.objective.tools
    T = tools.num_steps
    kind = exp.info.kind
    n = rows if kind == "images" else 2000
    settings = dataclasses.replace(exp.sample_settings, sampler="ddpm")
    fn = jax.jit(functools.partial(tools.draw, settings=settings, return_path=True),
                 static_argnums=2)
    _, path_x = fn(params, rng, n)
    steps = strip_steps(T)[::-1]  # x_T first
    xs = [np.asarray(path_x[T - t]) for t in steps]  # path[i] = x_{T-i}
    if main:
        if kind == "images":
            cols = [transforms.postprocess(kind, x) for x in xs]
            strips = [np.stack([c[i] for c in cols]) for i in range(n)]
            viz.save_image_rows(strips, path, title="reverse process p(x_{t-1} | x_t), t = "
                                + ", ".join(map(str, steps)))
        else:
            viz.save_scatter_panels([(f"t = {t}", x) for t, x in zip(steps, xs)], path,
                                    title="reverse process (ancestral sampling)")
    return path


def write_class_grids(exp, params, rng, folder: Path, main: bool = True, per_class: int = 8,
                      guidance_scales=None) -> list[Path]:
    """One picture per guidance scale w: a row of samples per class (same noise per row)."""
    c = exp.info.num_classes
    scales = guidance_scales or tuple(exp.sample_settings.guidance_grid)
    labels = np.repeat(np.arange(c), per_class)
    paths = []
    for w in scales:
        x = exp.sample(params, rng, len(labels), chunk=len(labels), labels=labels,
                       guidance=float(w))
        p = Path(folder) / f"classes_w{float(w):g}.png"
        if main:
            viz.save_image_rows([x[labels == k] for k in range(c)], p,
                                row_labels=class_names(exp.info.name, c),
                                title=f"classifier-free guidance w = {float(w):g}")
        paths.append(p)
    return paths


def write_all(exp, params, rng, dataset, folder: Path, main: bool = True) -> list[Path]:
    folder = Path(folder)
    if exp.info.kind == "points" and exp.info.dim != 2:
        return []  # the strips are 2-D scatters or image rows; other points have no picture
    stage("the forward process q(x_t | x_0)")
    paths = [write_forward_strip(exp, dataset, folder / "forward_process.png", rng, main)]
    stage(f"the reverse process ({exp.objective.tools.num_steps} ancestral steps)")
    paths.append(write_reverse_strip(exp, params, jax.random.fold_in(rng, 1),
                                     folder / "reverse_process.png", main))
    if exp.info.kind == "images" and exp.info.num_classes and getattr(
            exp.model, "num_classes", None):
        stage("samples per class at each guidance scale")
        paths += write_class_grids(exp, params, jax.random.fold_in(rng, 2), folder, main)
    return paths
