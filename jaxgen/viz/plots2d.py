"""Plots for 2-D toy problems: scatter plots, density heat maps, ODE trajectories.

All functions take numpy-compatible arrays (JAX arrays work), create the parent
folders of ``path``, write only ``path`` (PNG unless its suffix names another
matplotlib format) and return it as a string.  Figures are standalone
:class:`matplotlib.figure.Figure` objects with an Agg canvas, so matplotlib's
global backend and pyplot state are never touched.

Axis limits (``lim``)
---------------------
Wherever a ``lim`` is accepted it may be

* a positive scalar ``L``: the square ``[-L, L]^2``;
* a pair ``(lo, hi)``: the square ``[lo, hi]^2``;
* a 4-tuple ``(xmin, xmax, ymin, ymax)`` (matplotlib's ``extent`` order).

When omitted, :func:`auto_lim` derives limits from the pooled 0.5/99.5
percentiles of the points being plotted plus a 10% margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxgen.viz.images import PathLike, _new_figure, _save_figure

__all__ = [
    "DensityGrid",
    "auto_lim",
    "density_grid",
    "save_density",
    "save_scatter",
    "save_scatter_panels",
    "save_trajectories",
]

Extent = tuple[float, float, float, float]

_CMAP = "viridis"  # perceptually uniform
_PANEL_INCHES = 4.0
_DATA_COLOR = "C0"
_SAMPLE_COLOR = "C1"


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _as_points(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 ``(N, 2)`` array; raises on any other shape."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {a.shape}")
    return a


def _finite_rows(a: np.ndarray) -> np.ndarray:
    """Rows of an ``(N, 2)`` array whose coordinates are both finite."""
    return a[np.isfinite(a).all(axis=1)]


def _as_extent(lim: Any) -> Extent:
    """Normalise a ``lim`` argument (see module docstring) to ``(xmin, xmax, ymin, ymax)``."""
    v = np.asarray(lim, dtype=np.float64).reshape(-1)
    if v.size == 1:
        if not v[0] > 0:
            raise ValueError(f"a scalar lim must be positive, got {lim!r}")
        v = np.array([-v[0], v[0], -v[0], v[0]])
    elif v.size == 2:
        v = np.array([v[0], v[1], v[0], v[1]])
    elif v.size != 4:
        raise ValueError(f"lim must be a scalar, (lo, hi) or (xmin, xmax, ymin, ymax); got {lim!r}")
    if not (np.isfinite(v).all() and v[0] < v[1] and v[2] < v[3]):
        raise ValueError(f"lim must be finite with min < max, got {lim!r}")
    return tuple(float(t) for t in v)  # type: ignore[return-value]


def _scatter_alpha(n: int) -> float:
    """Marker transparency that keeps both small and large point clouds readable."""
    return float(np.clip(30.0 / math.sqrt(max(n, 1)), 0.1, 0.8))


def _scatter_panel(ax, points: np.ndarray, extent: Extent, title: str | None, color: str) -> None:
    """Draw a small-marker scatter of ``points`` with fixed limits and equal aspect."""
    pts = _finite_rows(points)
    ax.scatter(
        pts[:, 0], pts[:, 1], s=2, c=color, alpha=_scatter_alpha(len(pts)), linewidths=0,
        rasterized=True,
    )
    _style_axes(ax, extent, title)


def _style_axes(ax, extent: Extent, title: str | None) -> None:
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)


def _relative_density(logp_grid: Any) -> np.ndarray:
    """``exp(logp - max logp)`` with non-finite values handled.

    ``-inf`` and ``nan`` map to 0, ``+inf`` to the largest finite value (1 after
    normalisation).  Normalising by the maximum avoids overflow for very peaked
    densities and leaves the linear colour map unchanged.
    """
    a = np.array(logp_grid, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"log-density grid must be 2-D, got shape {a.shape}")
    finite = np.isfinite(a)
    if not finite.any():
        # Only +inf entries carry information when nothing is finite.
        return np.isposinf(a).astype(np.float64)
    top = a[finite].max()
    a = np.where(np.isposinf(a), top, a)
    a = np.where(np.isnan(a), -np.inf, a)
    return np.exp(a - top)


def _density_panel(ax, logp_grid: Any, extent: Extent, title: str | None) -> None:
    ax.imshow(
        _relative_density(logp_grid),
        origin="lower",
        extent=extent,
        cmap=_CMAP,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        aspect="equal",
    )
    _style_axes(ax, extent, title)


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


def auto_lim(
    *point_sets: Any, lower: float = 0.5, upper: float = 99.5, margin: float = 0.1
) -> Extent:
    """Axis limits ``(xmin, xmax, ymin, ymax)`` covering the pooled point sets.

    Per axis, the ``lower``/``upper`` percentiles of all finite points (``None``
    sets are skipped) are widened by ``margin`` times their span.  Returns
    ``(-1, 1, -1, 1)`` when there is no finite point.
    """
    sets = [_finite_rows(_as_points(p, "points")) for p in point_sets if p is not None]
    pts = np.concatenate(sets, axis=0) if sets else np.zeros((0, 2))
    if len(pts) == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    lo = np.percentile(pts, lower, axis=0)
    hi = np.percentile(pts, upper, axis=0)
    span = hi - lo
    # Degenerate (constant) coordinates still get a visible window.
    span = np.where(span > 0, span, np.maximum(np.abs(lo), 1.0))
    pad = margin * span
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0]),
            float(lo[1] - pad[1]), float(hi[1] + pad[1]))


class DensityGrid(NamedTuple):
    """Result of :func:`density_grid` (unpacks as ``xs, ys, logp, cell_area``).

    Attributes:
      xs: ``(n,)`` x coordinates of the cell centres.
      ys: ``(n,)`` y coordinates of the cell centres.
      logp: ``(n, n)`` float64 with ``logp[j, i] = log p(xs[i], ys[j])`` (rows are y,
        ready for ``imshow(..., origin="lower", extent=lim)``).
      cell_area: area of one grid cell; ``exp(logp).sum() * cell_area`` approximates
        the probability mass inside ``lim`` (midpoint rule).
    """

    xs: np.ndarray
    ys: np.ndarray
    logp: np.ndarray
    cell_area: float


def density_grid(
    log_prob_fn: Callable[[Any], Any], lim: Any, n: int = 200, chunk_size: int = 10000
) -> DensityGrid:
    """Evaluate a batched 2-D log-density on the centres of an ``n x n`` grid.

    ``log_prob_fn`` maps float32 points ``(B, 2)`` to log-densities ``(B,)``; it may
    be a numpy or a (jitted) JAX function.  It is called on chunks of exactly
    ``min(chunk_size, n * n)`` points, so memory stays flat and a jitted function
    compiles once: the final chunk is padded by repeating its last point and the
    padded outputs are discarded (``log_prob_fn`` must therefore act row-wise).

    Args:
      log_prob_fn: batched log-density.
      lim: plotting window (scalar, ``(lo, hi)`` or ``(xmin, xmax, ymin, ymax)``).
      n: cells per axis.
      chunk_size: maximum points per call (default 10000).

    Returns:
      :class:`DensityGrid` ``(xs, ys, logp, cell_area)``.
    """
    n = int(n)
    chunk_size = int(chunk_size)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    xmin, xmax, ymin, ymax = _as_extent(lim)
    dx = (xmax - xmin) / n
    dy = (ymax - ymin) / n
    xs = xmin + (np.arange(n) + 0.5) * dx
    ys = ymin + (np.arange(n) + 0.5) * dy
    gx, gy = np.meshgrid(xs, ys)  # gx[j, i] = xs[i], gy[j, i] = ys[j]
    points = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)

    total = points.shape[0]
    chunk = min(chunk_size, total)
    logp = np.empty(total, dtype=np.float64)
    for start in range(0, total, chunk):
        batch = points[start : start + chunk]
        m = batch.shape[0]
        if m < chunk:
            batch = np.concatenate([batch, np.repeat(batch[-1:], chunk - m, axis=0)], axis=0)
        values = np.asarray(log_prob_fn(batch), dtype=np.float64).reshape(-1)
        if values.shape[0] != chunk:
            raise ValueError(
                f"log_prob_fn returned {values.shape[0]} values for a batch of {chunk} points"
            )
        logp[start : start + m] = values[:m]
    return DensityGrid(xs, ys, logp.reshape(n, n), float(dx * dy))


def save_scatter(
    samples: Any,
    path: PathLike,
    data: Any = None,
    title: str | None = None,
    lim: Any = None,
) -> str:
    """Scatter plot of 2-D samples, optionally next to the training data.

    With ``data``, two panels side by side ("data", "samples") share the same
    axis limits.  Markers are small and translucent, aspect is equal, and
    non-finite points are dropped.

    Args:
      samples: ``(N, 2)`` model samples.
      path: output file.
      data: optional ``(M, 2)`` reference points.
      title: optional figure title.
      lim: axis limits (see module docstring); default :func:`auto_lim` over
        samples and data pooled.

    Returns:
      ``path`` as a string.
    """
    samples = _as_points(samples, "samples")
    panels: list[tuple[str, np.ndarray, str]] = []
    if data is not None:
        data = _as_points(data, "data")
        panels.append(("data", data, _DATA_COLOR))
    panels.append(("samples", samples, _SAMPLE_COLOR))
    extent = _as_extent(lim) if lim is not None else auto_lim(samples, data)

    k = len(panels)
    fig = _new_figure((_PANEL_INCHES * k, _PANEL_INCHES + (0.4 if title else 0.1)),
                      layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, (name, pts, color) in zip(axes, panels):
        _scatter_panel(ax, pts, extent, name if k > 1 else None, color)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path)


def save_scatter_panels(
    panels: Sequence[tuple[str, Any]],
    path: PathLike,
    lim: Any = None,
    title: str | None = None,
) -> str:
    """A row of scatter panels sharing one extent, e.g. a diffusion strip x_0 … x_T.

    Args:
      panels: ``(panel title, (N, 2) points)`` pairs, left to right.
      path: output file.
      lim: axis limits (see module docstring); default :func:`auto_lim` over all panels.
      title: optional figure title.
    """
    panels = [(str(name), _as_points(pts, f"panel {name!r}")) for name, pts in panels]
    if not panels:
        raise ValueError("panels must hold at least one (title, points) pair")
    extent = _as_extent(lim) if lim is not None else auto_lim(*(p for _, p in panels))
    k = len(panels)
    size = 2.6
    fig = _new_figure((size * k, size + (0.4 if title else 0.1)), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for i, (ax, (name, pts)) in enumerate(zip(axes, panels)):
        _scatter_panel(ax, pts, extent, name, _SAMPLE_COLOR if i else _DATA_COLOR)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path)


_DEFAULT_DENSITY_TITLES = {
    "data": "data",
    "model": "model density",
    "true": "true density",
    "samples": "samples",
}


def save_density(
    path: PathLike,
    logp_grid: Any,
    lim: Any,
    data: Any = None,
    samples: Any = None,
    true_logp_grid: Any = None,
    titles: Mapping[str, str] | Sequence[str] | None = None,
    title: str | None = None,
) -> str:
    """Heat maps of a learned (and optionally the true) 2-D density, with scatters.

    Panels, in one row and only when given: ``[data scatter] [model density]
    [true density] [samples scatter]``.  Densities are drawn as ``exp(logp)``
    with ``imshow(origin="lower", extent=lim)`` and the perceptual ``viridis``
    colour map; each heat map is scaled to its own maximum (``-inf``/``nan`` log
    densities show as zero density, ``+inf`` as the maximum).  All panels share
    ``lim``.

    Args:
      path: output file.
      logp_grid: ``(ny, nx)`` model log-density, e.g. ``density_grid(...).logp``
        computed over the same ``lim`` (row ``j`` is the ``j``-th y value from the bottom).
      lim: the window the grid covers (see module docstring).
      data: optional ``(M, 2)`` training points.
      samples: optional ``(N, 2)`` model samples.
      true_logp_grid: optional ``(ny', nx')`` ground-truth log-density over ``lim``.
      titles: panel titles; a mapping with any of the keys ``"data"``, ``"model"``,
        ``"true"``, ``"samples"`` overriding the defaults, or a sequence with one
        title per panel shown, in panel order.
      title: optional figure title.

    Returns:
      ``path`` as a string.
    """
    extent = _as_extent(lim)
    panels: list[tuple[str, Any]] = []
    if data is not None:
        panels.append(("data", _as_points(data, "data")))
    panels.append(("model", logp_grid))
    if true_logp_grid is not None:
        panels.append(("true", true_logp_grid))
    if samples is not None:
        panels.append(("samples", _as_points(samples, "samples")))

    if titles is None:
        panel_titles = [_DEFAULT_DENSITY_TITLES[key] for key, _ in panels]
    elif isinstance(titles, Mapping):
        unknown = set(titles) - set(_DEFAULT_DENSITY_TITLES)
        if unknown:
            raise ValueError(f"unknown panel keys in titles: {sorted(unknown)}")
        merged = {**_DEFAULT_DENSITY_TITLES, **titles}
        panel_titles = [merged[key] for key, _ in panels]
    else:
        panel_titles = list(titles)
        if len(panel_titles) != len(panels):
            raise ValueError(f"got {len(panel_titles)} titles for {len(panels)} panels")

    k = len(panels)
    fig = _new_figure((_PANEL_INCHES * k, _PANEL_INCHES + (0.4 if title else 0.1)),
                      layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, (key, payload), panel_title in zip(axes, panels, panel_titles):
        if key in ("model", "true"):
            _density_panel(ax, payload, extent, panel_title)
        else:
            color = _DATA_COLOR if key == "data" else _SAMPLE_COLOR
            _scatter_panel(ax, payload, extent, panel_title, color)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save_figure(fig, path)


def save_trajectories(
    paths: Any,
    path: PathLike,
    lim: Any = None,
    max_lines: int = 256,
    title: str | None = None,
) -> str:
    """Plot 2-D trajectories of an ODE/SDE solve.

    Draws the start points (``paths[0]``), the end points (``paths[-1]``) and
    faint polylines through every time step for an evenly spaced subset of at
    most ``max_lines`` trajectories.

    Args:
      paths: ``(T + 1, N, 2)`` states along the solve.
      path: output file.
      lim: axis limits (see module docstring); default :func:`auto_lim` over the
        start and end points pooled.
      max_lines: maximum number of trajectories drawn as lines.
      title: optional figure title.

    Returns:
      ``path`` as a string.
    """
    from matplotlib.collections import LineCollection

    traj = np.asarray(paths, dtype=np.float64)
    if traj.ndim != 3 or traj.shape[-1] != 2 or traj.shape[0] < 1:
        raise ValueError(f"paths must have shape (T + 1, N, 2), got {traj.shape}")
    start, end = traj[0], traj[-1]
    extent = _as_extent(lim) if lim is not None else auto_lim(start, end)

    fig = _new_figure((5.0, 5.0 + (0.3 if title else 0.0)), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    n = traj.shape[1]
    n_lines = min(n, max(int(max_lines), 0))
    if n_lines > 0 and traj.shape[0] > 1:
        idx = np.unique(np.linspace(0, n - 1, n_lines).round().astype(int))
        segments = np.transpose(traj[:, idx, :], (1, 0, 2))  # (K, T + 1, 2)
        ax.add_collection(LineCollection(segments, colors="0.3", linewidths=0.5, alpha=0.25,
                                         rasterized=True))
    for pts, color, label in ((start, _DATA_COLOR, "start"), (end, _SAMPLE_COLOR, "end")):
        pts = _finite_rows(pts)
        ax.scatter(
            pts[:, 0], pts[:, 1], s=3, c=color, alpha=_scatter_alpha(len(pts)),
            linewidths=0, label=label, rasterized=True,
        )
    _style_axes(ax, extent, title)
    legend = ax.legend(loc="upper right", fontsize=8, markerscale=3)
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return _save_figure(fig, path)
