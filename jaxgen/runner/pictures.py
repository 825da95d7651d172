"""The pictures a run leaves: sample grids, 2-D scatters, 2-D density maps."""

from __future__ import annotations

import contextvars
from pathlib import Path

import jax
import numpy as np

from jaxgen import viz
from jaxgen.kernel import registry

_STAGE_SAY = contextvars.ContextVar("jaxgen_picture_stage", default=None)


def stage(what: str) -> None:
    """One line as an end-of-run picture starts, so a long one (a 1000-step reverse process,
    a likelihood grid) is not silence: families call it before each picture they draw."""
    say = _STAGE_SAY.get()
    if say is not None:
        say(f"End-of-run pictures: {what} ...")


def _data_points(dataset, n: int) -> np.ndarray | None:
    if dataset is None:
        return None
    n = min(n, len(dataset.source))
    return np.asarray(dataset.source.get(np.arange(n))["x"])


def write_samples(exp, params, rng, dataset, path: Path, main: bool = True,
                  num: int | None = None) -> Path | None:
    """Images: a grid of 64 (or `num`); points: a scatter of samples beside the data.

    Every process computes (params are global arrays); only process 0 writes.
    Objectives that cannot sample (`objective.sample` is None, e.g. image-to-image
    translation, which needs an input) get no grid: returns None.
    """
    if exp.objective.sample is None:
        return None
    decoder = registry.dataset_decoder(exp.config.data)
    if exp.info.kind == "images":
        x = exp.sample(params, rng, num or 64, chunk=64)
        if main:
            viz.save_image_grid(x, path)
    elif exp.info.kind == "tokens" or decoder is not None:
        x = exp.sample(params, rng, num or 64, chunk=64)
        path, _ = write_decoded(exp, x, path, decoder, main)
    else:
        x = exp.sample(params, rng, num or exp.config.sample.num)
        if main:
            if x.shape[-1] == 2:
                viz.save_scatter(x, path, data=_data_points(dataset, len(x)),
                                 title=f"{exp.objective.name}: {path.stem}")
            else:
                path = path.with_suffix(".npy")
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, x)
    return path


def code_maps_as_images(codes, num_tokens: int) -> np.ndarray:
    """Grey maps of the code indices (k -> 255 k / (K − 1)), 4x upsampled, for a grid."""
    g = np.asarray(codes, np.float64) * 255.0 / max(1, num_tokens - 1)
    g = np.repeat(np.repeat(g, 4, axis=1), 4, axis=2)
    return g.round().astype(np.uint8)[..., None]


def decoded_images(exp, samples, decoder) -> tuple[np.ndarray | None, str]:
    """(images, what they show) of samples of a model of another run's latents or codes:
    their decoding (`decoder`, the dataset's `Decoder`); when they cannot be decoded, grey
    code maps (tokens), or None (latent vectors, which are kept as arrays)."""
    images = None if decoder is None else decoder.decode(samples)
    if images is not None:
        return images, "samples decoded by their autoencoder"
    note = decoder.missing if decoder is not None else ""
    if exp.info.kind != "tokens":
        return None, note or "latent vectors"
    return code_maps_as_images(samples, exp.info.num_tokens or 2), note or "grey code maps"


def write_decoded(exp, samples, path: Path, decoder, main: bool = True) -> tuple[Path, str]:
    """The grid of `decoded_images`, or the latent vectors as .npy beside `path` when they
    cannot be drawn. Returns (path written, what it shows)."""
    images, note = decoded_images(exp, samples, decoder)
    if images is None:
        path = path.with_suffix(".npy")
        if main:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.asarray(samples))
    elif main:
        viz.save_image_grid(images, path)
    return path, note


def write_temperature_rows(exp, params, rng, path: Path, main: bool = True,
                           temperatures=(0.5, 0.7, 0.85, 1.0), per_row: int = 10) -> Path:
    """Images: one row of samples per prior temperature (same noise, rescaled)."""
    rows = [exp.sample(params, rng, per_row, chunk=per_row, temperature=t) for t in temperatures]
    if main:
        viz.save_image_rows(rows, path, row_labels=[f"T = {t:g}" for t in temperatures])
    return path


def write_density(exp, params, rng, dataset, path: Path, n: int = 100, ode_steps: int = 32,
                  samples: np.ndarray | None = None) -> tuple[Path, float]:
    """2-D: the model's exact density on a grid, beside the data, the true density and samples.

    The picture uses `ode_steps` RK4 steps (enough for the eye); `jaxgen eval` uses eval.*.
    """
    data = _data_points(dataset, 2000)
    lim = viz.auto_lim(data if data is not None else samples)
    # Prefer an exact likelihood (e.g. diffusion's probability-flow ODE over its VLB).
    liks = exp.objective.likelihoods
    name = next((k for k, v in liks.items() if v.kind == "exact"), None)
    grid = viz.density_grid(exp.log_prob_points(params, jax.random.fold_in(rng, 1), ode_steps,
                                                name),
                            lim, n=n, chunk_size=min(n * n, 5000))
    true_grid = None
    toy = getattr(dataset, "toy", None)
    if toy is not None and toy.log_prob is not None:
        true_grid = viz.density_grid(toy.log_prob, lim, n=n).logp
    viz.save_density(path, grid.logp, lim, data=data, samples=samples, true_logp_grid=true_grid)
    mass = float(np.sum(np.exp(grid.logp)) * grid.cell_area)
    return path, mass


def write_end_of_run(exp, params, rng, dataset, folder: Path, main: bool = True,
                     say=None) -> list[tuple[Path, str]]:
    """The pictures a finished run leaves in `folder` (also `jaxgen pictures`).

    2-D points with a likelihood: density.png; then the family's own
    (`Objective.pictures`). `say` gets one line as each picture starts (`stage`).
    Returns (path, note) pairs.
    """
    token = _STAGE_SAY.set(say)
    try:
        return _end_of_run(exp, params, rng, dataset, Path(folder), main)
    finally:
        _STAGE_SAY.reset(token)


def _end_of_run(exp, params, rng, dataset, folder: Path, main: bool):
    out = []
    info = exp.info
    if (info.kind == "points" and info.event_shape == (2,) and exp.objective.likelihoods
            and jax.process_count() == 1):
        samples = None
        stage("the model's density from its likelihood (a 100 x 100 grid)")
        if exp.objective.sample is not None:
            samples = exp.sample(params, rng, min(2000, exp.config.sample.num))
        path, mass = write_density(exp, params, rng, dataset, folder / "density.png",
                                   samples=samples)
        out.append((path, f"model density from its likelihood; its mass on the plotted "
                          f"square: {mass:.3f}"))
    family = exp.objective.pictures
    if family is not None:
        out += [(p, "") for p in family(exp, params, rng, dataset, folder, main)]
    return out
