"""End-of-run pictures of the VAE family (also `jaxgen pictures --workdir DIR`).

VAE (images): reconstructions.png (held-out images above their reconstructions
decode(encode(x))), interpolation.png (the lecture's strip: a real image x0,
the decoded (1 − α) z0 + α z1 for α = 0 … 1, the real image x1), manifold.png
(latent_dim = 2: decoded Gaussian quantiles, Kingma & Welling's fig. 4),
traversals.png (latent_dim ≤ 16: one row per latent dimension, most-used first,
that dimension swept over −3 … 3 with the others at one image's posterior mean;
the β-VAE's picture), kl_per_dim.png (the held-out mean KL of each latent
dimension: collapsed dimensions sit at 0; a deterministic encoder's
code_variance.png instead, the held-out variance of each z_d).
VQ-VAE: reconstructions.png and code_usage.png (how often each code is used on
held-out images, sorted; dead codes at 0).
2-D toy VAE: latents.png (held-out points coloured by angle beside their
posterior means, and the prior's draws decoded beside the data).
Pictures use held-out ("test") images when the dataset has them.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz
from jaxgen.data import get_dataset
from jaxgen.distributions import kl_standard_normal
from jaxgen.kernel import transforms
from jaxgen.runner.pictures import stage


def held_out_images(exp, dataset, n: int, rng) -> np.ndarray:
    """n model-space images of the test split (else the training data), as the trainer sees them."""
    try:
        source = get_dataset(exp.config.data, "test").source
    except Exception:  # noqa: BLE001 - user arrays without eval_path: use what we have
        source = dataset.source
    n = min(n, len(source))
    raw = source.get(np.arange(n))["x"]
    return np.asarray(transforms.preprocess(exp.info.kind, raw, rng, dequantize=exp.dequantize))


def _pixels(exp, x) -> np.ndarray:
    return transforms.postprocess(exp.info.kind, np.asarray(x))


def write_reconstructions(exp, params, x, path: Path, reconstruct, main: bool = True,
                          per_row: int = 10) -> Path:
    """Rows of (data, reconstruction) pairs."""
    x_hat = np.asarray(jax.jit(reconstruct)(params, jnp.asarray(x)))
    rows, labels = [], []
    for lo in range(0, len(x), per_row):
        rows += [_pixels(exp, x[lo:lo + per_row]), _pixels(exp, x_hat[lo:lo + per_row])]
        labels += ["data", "recon"]
    if main:
        viz.save_image_rows(rows, path, row_labels=labels,
                            title="held-out images and their reconstructions")
    return path


def write_interpolation(exp, params, x, path: Path, main: bool = True, n: int = 10) -> Path:
    """x0 | decode((1 − α) z0 + α z1), α = 0 … 1 | x1, for consecutive pairs of x."""
    tools = exp.objective.tools
    x0, x1 = x[0::2], x[1::2]
    m = min(len(x0), len(x1))
    strips = np.asarray(tools.interpolate(params, jnp.asarray(x0[:m]), jnp.asarray(x1[:m]), n))
    rows = [np.concatenate([_pixels(exp, x0[i:i + 1]), _pixels(exp, strips[i]),
                            _pixels(exp, x1[i:i + 1])]) for i in range(m)]
    if main:
        viz.save_image_rows(rows, path, title=f"x0 | decoded (1-a) z0 + a z1, a = 0 ... 1 "
                            f"({n} steps) | x1")
    return path


def write_manifold(exp, params, path: Path, main: bool = True, n: int = 20) -> Path:
    grid = np.asarray(exp.objective.tools.manifold_grid(params, n))
    if main:
        viz.save_image_grid(_pixels(exp, grid.reshape(n * n, *grid.shape[2:])), path, nrow=n)
    return path


def posterior_kl_per_dim(exp, params, x) -> np.ndarray:
    """Held-out mean KL(q(z_d|x) ‖ N(0, 1)) of each latent dimension d (nats); for a
    deterministic encoder (codes without a posterior variance) the variance of z_d."""
    stats = exp.objective.held_out_stats
    out = jax.jit(stats.batch)(params, jnp.asarray(x), jax.random.key(0))
    if "log_var" not in out:
        return np.asarray(jnp.var(out["mean"], 0))
    return np.asarray(jnp.mean(kl_standard_normal(out["mean"], out["log_var"]), 0))


def write_traversals(exp, params, x, path: Path, kl: np.ndarray, main: bool = True,
                     n: int = 9, span: float = 3.0) -> Path:
    """One row per latent dimension (largest held-out KL first): z_d swept over ±span."""
    tools = exp.objective.tools
    dims = tuple(int(d) for d in np.argsort(-kl))
    imgs = np.asarray(tools.traversals(params, jnp.asarray(x[0]), dims, n, span))
    rows = [_pixels(exp, r) for r in imgs]
    if main:
        viz.save_image_rows(rows, path, row_labels=[f"z{d} KL {kl[d]:.2f}" for d in dims],
                            title=f"latent traversals: z_d = -{span:g} ... {span:g}")
    return path


def write_bars(values, path: Path, title: str, xlabel: str, ylabel: str,
               main: bool = True) -> Path:
    if main:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(7, 3), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.bar(np.arange(len(values)), values, width=1.0 if len(values) > 40 else 0.8)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def write_toy_latents(exp, params, rng, dataset, path: Path, main: bool = True) -> Path:
    """2-D data coloured by angle, and the same points' posterior means (same colours)."""
    x = held_out_images(exp, dataset, 2000, rng)  # points: preprocess is the identity
    z = np.asarray(jax.jit(exp.objective.tools.encode)(params, jnp.asarray(x)))
    if main:
        from matplotlib.figure import Figure
        colour = np.arctan2(x[:, 1], x[:, 0])
        fig = Figure(figsize=(8, 4), dpi=100, layout="constrained")
        for i, (pts, title) in enumerate([(x, "data x"), (z, "posterior means E_q[z | x]")]):
            ax = fig.add_subplot(1, 2, i + 1)
            ax.scatter(pts[:, 0], pts[:, 1], c=colour, s=2, cmap="hsv")
            ax.set(title=title, aspect="equal")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def write_vae(exp, params, rng, dataset, folder: Path, main: bool = True) -> list[Path]:
    folder = Path(folder)
    tools = exp.objective.tools
    if exp.info.kind != "images":
        if tools.latent_dim == 2:
            stage("the posterior means in the latent plane")
            return [write_toy_latents(exp, params, rng, dataset, folder / "latents.png", main)]
        return []
    stage("reconstructions, interpolation, latent manifold and KL per dimension")
    x = held_out_images(exp, dataset, 200, rng)
    pick = lambda lo, hi: x[np.arange(lo, hi) % len(x)]  # noqa: E731 - small held-out sets wrap
    paths = [write_reconstructions(exp, params, x[:30], folder / "reconstructions.png",
                                   lambda p, xx: tools.decode(p, tools.encode(p, xx)), main),
             write_interpolation(exp, params, pick(30, 42), folder / "interpolation.png", main)]
    if tools.latent_dim == 2:
        paths.append(write_manifold(exp, params, folder / "manifold.png", main))
    kl = posterior_kl_per_dim(exp, params, x)
    if exp.objective.autoencoder.posterior_draw is None:  # a deterministic encoder
        paths.append(write_bars(kl, folder / "code_variance.png",
                                "held-out variance of z_d = mu_d(x) per latent dimension",
                                "latent dimension d", "variance", main))
    else:
        paths.append(write_bars(kl, folder / "kl_per_dim.png",
                                "held-out KL(q(z_d|x) || N(0,1)) per latent dimension",
                                "latent dimension d", "nats", main))
    if tools.latent_dim <= 16:
        stage("latent traversals")
        paths.append(write_traversals(exp, params, pick(42, 43), folder / "traversals.png", kl,
                                      main))
    return paths


def write_vqvae(exp, params, rng, dataset, folder: Path, main: bool = True) -> list[Path]:
    folder = Path(folder)
    tools = exp.objective.tools
    stage("reconstructions and code usage on held-out images")
    x = held_out_images(exp, dataset, 1000, rng)
    paths = [write_reconstructions(exp, params, x[:30], folder / "reconstructions.png",
                                   tools.reconstruct, main)]
    if tools.encode_levels is None:
        levels = {"": jax.jit(tools.encode_codes)(params, jnp.asarray(x))}
    else:  # VQ-VAE-2: one picture per level, code_usage_top.png, ...
        levels = {f"_{k}": v for k, v in
                  jax.jit(tools.encode_levels)(params, jnp.asarray(x)).items()}
    for suffix, codes in levels.items():
        counts = np.bincount(np.asarray(codes).reshape(-1), minlength=tools.num_codes)
        paths.append(write_bars(np.sort(counts)[::-1], folder / f"code_usage{suffix}.png",
                                f"{suffix[1:]} code usage on {len(x)} held-out images "
                                f"({int(np.sum(counts > 0))} of {tools.num_codes} codes used)",
                                "codes, most used first", "count", main))
    return paths
