"""Visualisation helpers: image grids, labelled image rows and 2-D toy plots.

Everything takes numpy-compatible arrays, writes one image file (PNG by default)
after creating its parent folders, and returns the path as a string.  Matplotlib
is used through standalone Agg figures, so importing ``jaxgen.viz`` never changes
matplotlib's global backend.
"""

from jaxgen.viz.images import make_grid, save_image_grid, save_image_rows
from jaxgen.viz.plots2d import (
    DensityGrid,
    auto_lim,
    density_grid,
    save_density,
    save_scatter,
    save_scatter_panels,
    save_trajectories,
)

__all__ = [
    "DensityGrid",
    "auto_lim",
    "density_grid",
    "make_grid",
    "save_density",
    "save_image_grid",
    "save_image_rows",
    "save_scatter",
    "save_scatter_panels",
    "save_trajectories",
]
