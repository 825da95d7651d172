"""Image grids and labelled image rows, written as PNG files.

Every function takes ``uint8`` numpy-compatible arrays (``np.asarray`` is applied,
so JAX arrays work too), creates the parent folders of ``path`` and writes only
``path``.  Matplotlib is used through :class:`matplotlib.figure.Figure` with an
explicit Agg canvas, so importing or calling this module never changes
matplotlib's global backend or pyplot state.

Conventions
-----------
* Images are ``(N, H, W, C)`` with ``C`` in ``{1, 3}``, or ``(N, H, W)`` for
  grayscale.  Convert model outputs to ``uint8`` before calling (these helpers do
  not guess whether floats live in ``[0, 1]`` or ``[-1, 1]``).
* ``nrow`` follows the torchvision convention: it is the number of images **per
  row** of the grid.
* A grid has ``padding`` pixels around every image, including the outer border:
  ``H' = rows * (H + padding) + padding`` and ``W' = cols * (W + padding) + padding``.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["make_grid", "save_image_grid", "save_image_rows"]

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------
# Shared helpers (also used by ``jaxgen.viz.plots2d``).
# ----------------------------------------------------------------------------


def _prepare_path(path: PathLike) -> pathlib.Path:
    """Return ``path`` as a :class:`pathlib.Path` after creating its parent folders."""
    p = pathlib.Path(os.fspath(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _new_figure(figsize: tuple[float, float], dpi: int = 100, layout: str | None = None):
    """A standalone Agg-backed figure that is not registered with pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path: PathLike, **savefig_kwargs: Any) -> str:
    """Write ``fig`` to ``path`` (PNG unless the suffix names another supported format)."""
    p = _prepare_path(path)
    suffix = p.suffix.lower().lstrip(".")
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    savefig_kwargs.setdefault("facecolor", "white")
    fig.savefig(p, format=fmt, **savefig_kwargs)
    return str(p)


def _as_uint8_images(images: Any) -> np.ndarray:
    """Validate and convert a batch of images to ``uint8`` ``(N, H, W, C)``."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, H, W[, C]), got {x.shape}")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("cannot build a grid from zero images")
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * 255
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError("integer images must lie in [0, 255]")
        return x.astype(np.uint8)
    raise TypeError(
        f"expected uint8 images, got dtype {x.dtype}; convert first, e.g. "
        "np.clip(np.round(x * 255), 0, 255).astype(np.uint8) for x in [0, 1]"
    )


def _pad_fill(pad_value: Any, channels: int) -> np.ndarray:
    """The per-channel fill colour for grid padding as a ``(C,)`` uint8 array."""
    v = np.asarray(pad_value)
    if v.ndim == 0:
        v = np.full((channels,), v)
    if v.shape != (channels,):
        raise ValueError(
            f"pad_value must be a scalar or have {channels} entries, got {pad_value!r}")
    if v.min() < 0 or v.max() > 255:
        raise ValueError(f"pad_value must lie in [0, 255], got {pad_value!r}")
    return v.astype(np.uint8)


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def make_grid(
    images: Any, nrow: int | None = None, padding: int = 2, pad_value: Any = 255
) -> np.ndarray:
    """Tile a batch of images into one image.

    Args:
      images: ``uint8`` array ``(N, H, W, C)`` with ``C`` in ``{1, 3}`` or ``(N, H, W)``.
      nrow: images per grid row; defaults to ``ceil(sqrt(N))`` (capped at ``N``).
      padding: pixels between images and around the border.
      pad_value: padding colour, a scalar or one value per channel, in ``[0, 255]``.

    Returns:
      ``uint8`` array ``(H', W', C)`` (``C == 1`` for grayscale input), with
      ``H' = ceil(N / nrow) * (H + padding) + padding`` and
      ``W' = nrow * (W + padding) + padding``.  Image ``k`` sits at grid row
      ``k // nrow``, column ``k % nrow``; unused cells are filled with ``pad_value``.
    """
    x = _as_uint8_images(images)
    n, h, w, c = x.shape
    padding = int(padding)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if int(nrow) < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    ncols = min(int(nrow), n)
    nrows = math.ceil(n / ncols)

    grid = np.empty((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c), np.uint8)
    grid[...] = _pad_fill(pad_value, c)
    for k in range(n):
        r, col = divmod(k, ncols)
        y0 = padding + r * (h + padding)
        x0 = padding + col * (w + padding)
        grid[y0 : y0 + h, x0 : x0 + w] = x[k]
    return grid


def save_image_grid(
    images: Any,
    path: PathLike,
    nrow: int | None = None,
    scale: int = 2,
    padding: int = 2,
    pad_value: Any = 255,
) -> str:
    """Save a batch of images as one grid image with Pillow.

    Grayscale input is written as an ``'L'`` image, colour input as ``'RGB'``.
    ``scale`` is an integer nearest-neighbour upsampling factor applied to the
    whole grid (padding included), so 28x28 digits stay crisp and visible.

    The file format follows the suffix of ``path`` when Pillow knows it, else PNG.

    Returns:
      ``path`` as a string.
    """
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    img = Image.fromarray(np.ascontiguousarray(grid[..., 0] if grid.shape[-1] == 1 else grid))
    p = _prepare_path(path)
    fmt = None if p.suffix.lower() in Image.registered_extensions() else "PNG"
    img.save(p, format=fmt)
    return str(p)


def save_image_rows(
    rows: Sequence[Any],
    path: PathLike,
    row_labels: Sequence[Any] | None = None,
    scale: int = 2,
    padding: int = 2,
    pad_value: Any = 255,
    title: str | None = None,
    dpi: int = 100,
) -> str:
    """Save several image strips, one labelled row each, in a single figure.

    Typical uses: sample grids at several temperatures or guidance scales,
    latent interpolation strips, reconstructions next to their inputs.

    Args:
      rows: sequence of ``uint8`` batches ``(N_i, H_i, W_i, C_i)`` (or ``(N_i, H_i, W_i)``);
        each becomes one horizontal strip of ``N_i`` images.  Rows may differ in
        length, image size and channel count; strips are left-aligned.
      path: output file (PNG unless the suffix names another matplotlib format).
      row_labels: optional labels, one per row, drawn left of each strip
        (non-strings are formatted with ``str``; ``None`` entries are skipped).
      scale: on-screen pixels per image pixel.
      padding, pad_value: as in :func:`make_grid`.
      title: optional title above the figure.
      dpi: figure resolution.

    Returns:
      ``path`` as a string.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows must contain at least one batch of images")
    if row_labels is not None:
        row_labels = list(row_labels)
        if len(row_labels) != len(rows):
            raise ValueError(f"got {len(row_labels)} row_labels for {len(rows)} rows")
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")

    strips = []
    for r in rows:
        batch = _as_uint8_images(r)
        strips.append(make_grid(batch, nrow=batch.shape[0], padding=padding, pad_value=pad_value))

    width_px = max(s.shape[1] for s in strips) * scale
    height_px = sum(s.shape[0] for s in strips) * scale
    fig = _new_figure((width_px / dpi, height_px / dpi), dpi=dpi)

    top = height_px
    for i, strip in enumerate(strips):
        h, w = strip.shape[0] * scale, strip.shape[1] * scale
        top -= h
        ax = fig.add_axes((0.0, top / height_px, w / width_px, h / height_px))
        if strip.shape[-1] == 1:
            ax.imshow(strip[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                      aspect="auto")
        else:
            ax.imshow(strip, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        if row_labels is not None and row_labels[i] is not None:
            ax.annotate(
                str(row_labels[i]),
                xy=(0.0, 0.5),
                xycoords="axes fraction",
                xytext=(-4, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=9,
            )
    if title:
        fig.text(0.5, 1.0, title, ha="center", va="bottom", fontsize=10)
    # ``bbox_inches="tight"`` grows the canvas to include labels and title drawn
    # outside the axes area.
    return _save_figure(fig, path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
