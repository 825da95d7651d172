"""End-of-run pictures of a GAN run (also `jaxgen pictures --workdir DIR`).

2-D: discriminator.png, the discriminator's D(x) = σ(logit) (a critic's f(x))
on a grid, with the data and the generator's samples on top: where D is
confident the generator has not reached. Images: truncation.png (rows of
samples at truncation ψ = 0.5, 1, 2 and none, same noise), and for
conditional models classes.png (a row per class); for a discriminator with a
class head (CAN) class_posterior.png, the histogram of the entropy of
D_c(·|G(z)) next to that of real images.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data import class_names
from jaxgen.kernel import transforms
from jaxgen.runner.pictures import stage


def write_discriminator_map(exp, params, rng, dataset, path: Path, main: bool = True,
                            n: int = 120) -> Path:
    tools = exp.objective.tools
    data = np.asarray(dataset.source.get(np.arange(min(2000, len(dataset.source))))["x"])
    samples = exp.sample(params, rng, 2000)
    x0, x1, y0, y1 = viz.auto_lim(data, samples)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
    out = np.asarray(jax.jit(lambda p, g: tools.discriminate(p, g)[0])(params, grid))
    value = np.asarray(tools.game.show(out))
    if main:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(6, 5), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        im = ax.imshow(value.reshape(n, n), origin="lower", extent=(x0, x1, y0, y1),
                       cmap="RdBu_r", aspect="auto")
        fig.colorbar(im, ax=ax, label=tools.game.label)
        ax.scatter(data[:, 0], data[:, 1], s=1, c="k", alpha=0.3, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=1, c="yellow", alpha=0.5, label="G(z)")
        ax.legend(loc="upper right", markerscale=8)
        ax.set(title=f"{tools.loss}: discriminator with data and samples", xlim=(x0, x1),
               ylim=(y0, y1))
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def write_truncation_rows(exp, params, rng, path: Path, main: bool = True,
                          psis=(0.5, 1.0, 2.0, 0.0), per_row: int = 10) -> Path:
    rows = [exp.sample(params, rng, per_row, chunk=per_row, truncation=p) for p in psis]
    if main:
        viz.save_image_rows(rows, path, row_labels=[f"psi {p:g}" if p else "no trunc."
                                                    for p in psis],
                            title="truncation trick: z ~ N(0, I) truncated to [-psi, psi]")
    return path


def write_class_rows(exp, params, rng, path: Path, main: bool = True, per_class: int = 10):
    c = exp.info.num_classes
    labels = np.repeat(np.arange(c), per_class)
    x = exp.sample(params, rng, len(labels), chunk=len(labels), labels=labels)
    if main:
        viz.save_image_rows([x[labels == k] for k in range(c)], path,
                            row_labels=class_names(exp.info.name, c),
                            title="conditional samples G(z, y), one row per class y")
    return path


def class_posterior_entropy(exp, params, x_model) -> np.ndarray:
    """Entropy (nats) of the class head's posterior D_c(·|x) for model-space x."""
    fn = jax.jit(lambda p, x: exp.objective.tools.discriminate(p, x)[1])
    logits = np.asarray(fn(params, jnp.asarray(x_model)), np.float64)
    logp = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                  keepdims=True)) - logits.max(-1, keepdims=True)
    return -np.sum(np.exp(logp) * logp, -1)


def write_class_posterior(exp, params, rng, dataset, path: Path, main: bool = True,
                          n: int = 1000) -> Path:
    raw = dataset.source.get(np.arange(min(n, len(dataset.source))))["x"]
    real = transforms.preprocess("images", raw, rng, dequantize=exp.dequantize)
    fake = exp.objective.sample(params, rng, n, exp.sample_settings)
    h_real = class_posterior_entropy(exp, params, real)
    h_fake = class_posterior_entropy(exp, params, fake)
    if main:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(6, 3.5), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        bins = np.linspace(0, np.log(exp.info.num_classes), 40)
        ax.hist(h_real, bins, alpha=0.6, label=f"real (mean {h_real.mean():.2f})")
        ax.hist(h_fake, bins, alpha=0.6, label=f"G(z) (mean {h_fake.mean():.2f})")
        ax.axvline(np.log(exp.info.num_classes), color="k", ls="--", label="log K")
        ax.set(title="entropy of the class head D_c(.|x)", xlabel="nats")
        ax.legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def write_all(exp, params, rng, dataset, folder: Path, main: bool = True) -> list[Path]:
    folder = Path(folder)
    tools = exp.objective.tools
    if exp.info.kind == "points":
        if exp.info.event_shape == (2,):
            stage("the discriminator's output over the plane")
            return [write_discriminator_map(exp, params, rng, dataset,
                                            folder / "discriminator.png", main)]
        return []
    stage("samples at several truncations")
    paths = [write_truncation_rows(exp, params, rng, folder / "truncation.png", main)]
    if tools.conditional:
        stage("samples per class")
        paths.append(write_class_rows(exp, params, rng, folder / "classes.png", main))
    if tools.class_head:
        stage("the class posterior of generated images")
        paths.append(write_class_posterior(exp, params, rng, dataset,
                                           folder / "class_posterior.png", main))
    return paths
