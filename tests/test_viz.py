"""Tests for jaxgen.viz: files are written to tmp_path and reopened with Pillow."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from PIL import Image

from jaxgen.viz import (
    DensityGrid,
    auto_lim,
    density_grid,
    make_grid,
    save_density,
    save_image_grid,
    save_image_rows,
    save_scatter,
    save_trajectories,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _digits(n: int = 16, h: int = 28, w: int = 28, channels: int | None = None) -> np.ndarray:
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    return _rng(n).integers(0, 256, size=shape, dtype=np.uint8)


def _std_normal_logp(x):
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * np.sum(x**2, axis=-1) - np.log(2 * np.pi)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float64)


# ----------------------------------------------------------------------------
# make_grid
# ----------------------------------------------------------------------------


def test_make_grid_shape_and_positions():
    imgs = _digits(16, channels=1)
    grid = make_grid(imgs, padding=2)
    assert grid.dtype == np.uint8
    assert grid.shape == (4 * 30 + 2, 4 * 30 + 2, 1)
    for k in (0, 5, 15):
        r, c = divmod(k, 4)
        y0, x0 = 2 + r * 30, 2 + c * 30
        np.testing.assert_array_equal(grid[y0 : y0 + 28, x0 : x0 + 28], imgs[k])
    # Border and gaps carry pad_value.
    assert (grid[:2] == 255).all() and (grid[:, 30:32] == 255).all()


def test_make_grid_rgb_partial_row_and_pad_colour():
    imgs = _digits(5, 8, 6, channels=3)
    grid = make_grid(imgs, nrow=3, padding=1, pad_value=(10, 20, 30))
    assert grid.shape == (2 * 9 + 1, 3 * 7 + 1, 3)
    np.testing.assert_array_equal(grid[10:18, 8:14], imgs[4])  # row 1, col 1
    # The unused last cell is filled with the pad colour.
    np.testing.assert_array_equal(grid[10:18, 15:21], np.broadcast_to([10, 20, 30], (8, 6, 3)))


def test_make_grid_grayscale_3d_input_and_validation():
    imgs = _digits(3, 4, 4)
    grid = make_grid(imgs, nrow=10, padding=0)
    assert grid.shape == (4, 12, 1)  # nrow capped at N
    np.testing.assert_array_equal(grid[:, 4:8, 0], imgs[1])
    with pytest.raises(TypeError):
        make_grid(imgs.astype(np.float32))
    with pytest.raises(ValueError):
        make_grid(np.zeros((2, 4, 4, 2), np.uint8))


# ----------------------------------------------------------------------------
# save_image_grid / save_image_rows
# ----------------------------------------------------------------------------


def test_save_image_grid_grayscale_exact_size_and_pixels(tmp_path):
    imgs = _digits(16, channels=1)
    out = tmp_path / "new" / "dir" / "grid.png"
    ret = save_image_grid(imgs, out, scale=2)
    assert ret == str(out) and out.exists()
    with Image.open(out) as img:
        assert img.mode == "L"
        assert img.size == (244, 244)  # (4 * (28 + 2) + 2) * 2
        arr = np.asarray(img)
    # Image k=6 sits at row 1, col 2; every source pixel becomes a 2x2 block.
    y0, x0 = (2 + 1 * 30) * 2, (2 + 2 * 30) * 2
    np.testing.assert_array_equal(arr[y0 : y0 + 56 : 2, x0 : x0 + 56 : 2], imgs[6, ..., 0])
    np.testing.assert_array_equal(arr[y0 + 1 : y0 + 56 : 2, x0 + 1 : x0 + 56 : 2], imgs[6, ..., 0])
    assert (arr[:4] == 255).all()


def test_save_image_grid_rgb(tmp_path):
    imgs = _digits(6, 10, 12, channels=3)
    out = save_image_grid(imgs, tmp_path / "rgb.png", nrow=3, scale=1)
    with Image.open(out) as img:
        assert img.mode == "RGB"
        assert img.size == (3 * 14 + 2, 2 * 12 + 2)
        arr = np.asarray(img)
    np.testing.assert_array_equal(arr[2:12, 2:14], imgs[0])
    np.testing.assert_array_equal(arr[14:24, 30:42], imgs[5])


def test_save_image_rows_labelled(tmp_path):
    rows = [_digits(8, channels=1), _digits(5, channels=1), _digits(8, channels=3)]
    out = save_image_rows(rows, tmp_path / "rows" / "temps.png",
                          row_labels=["T=0.5", "T=1.0", 2.0], title="temps")
    with Image.open(out) as img:
        w, h = img.size
    # At least the strips themselves (scale 2), labels add width.
    assert w >= 8 * 30 * 2 and h >= 3 * 30 * 2
    assert _pixels(out).std() > 0
    with pytest.raises(ValueError):
        save_image_rows(rows, tmp_path / "bad.png", row_labels=["only one"])
    assert not (tmp_path / "bad.png").exists()


# ----------------------------------------------------------------------------
# 2-D plots
# ----------------------------------------------------------------------------


def test_density_grid_normalises_standard_normal():
    grid = density_grid(_std_normal_logp, 6.0, n=200)
    assert isinstance(grid, DensityGrid)
    xs, ys, logp, cell_area = grid
    assert xs.shape == ys.shape == (200,) and logp.shape == (200, 200)
    assert cell_area == pytest.approx((12 / 200) ** 2)
    assert np.exp(logp).sum() * cell_area == pytest.approx(1.0, abs=1e-4)
    # logp[j, i] = log p(xs[i], ys[j]).
    assert logp[3, 150] == pytest.approx(_std_normal_logp([xs[150], ys[3]]), rel=1e-5)


def test_density_grid_chunks_have_fixed_size_and_jax_works():
    sizes = []

    def counting_logp(x):
        sizes.append(x.shape)
        # Asymmetric so a transposed grid would be caught.
        return _std_normal_logp(x) + 0.1 * x[:, 0]

    xs, ys, logp, _ = density_grid(counting_logp, (-3, 3, -2, 2), n=150)
    assert sizes == [(10000, 2)] * 3  # 22500 points padded to 3 equal chunks
    assert logp[10, 140] == pytest.approx(
        float(counting_logp(np.array([[xs[140], ys[10]]]))[0]), rel=1e-5)

    import jax
    import jax.numpy as jnp

    jax_logp = jax.jit(lambda x: jax.scipy.stats.norm.logpdf(x).sum(-1))
    _, _, logp_jax, area = density_grid(jax_logp, (-6, 6), n=50, chunk_size=1000)
    assert np.isfinite(logp_jax).all()
    assert float(jnp.exp(logp_jax).sum() * area) == pytest.approx(1.0, abs=1e-3)


def test_auto_lim_and_lim_forms():
    pts = _rng().normal(size=(2000, 2))
    pts[0] = [np.nan, 1.0]
    pts[1] = [1e9, 1e9]  # an outlier beyond the 99.5th percentile is ignored
    xmin, xmax, ymin, ymax = auto_lim(pts)
    assert -5 < xmin < -2 and 2 < xmax < 5 and -5 < ymin < -2 and 2 < ymax < 5
    assert auto_lim(np.full((3, 2), np.nan)) == (-1.0, 1.0, -1.0, 1.0)


def test_save_scatter_non_blank(tmp_path):
    rng = _rng(1)
    data = rng.normal(size=(500, 2))
    samples = rng.normal(size=(400, 2)) + 1.0
    single = save_scatter(samples, tmp_path / "s1.png", title="samples only")
    double = save_scatter(samples, tmp_path / "plots" / "s2.png", data=data, title="two panels",
                          lim=4)
    w1 = Image.open(single).size[0]
    w2 = Image.open(double).size[0]
    assert w2 > w1  # the data panel is added side by side
    assert _pixels(single).std() > 0 and _pixels(double).std() > 0


def test_save_density_non_blank_and_handles_inf(tmp_path):
    rng = _rng(2)
    lim = (-4.0, 4.0)
    _, _, logp, _ = density_grid(_std_normal_logp, lim, n=64)
    bad = logp.copy()
    bad[:10] = -np.inf
    bad[10, 10] = np.nan
    bad[20, 20] = np.inf
    out = save_density(
        tmp_path / "d" / "density.png",
        bad,
        lim,
        data=rng.normal(size=(300, 2)),
        samples=rng.normal(size=(300, 2)),
        true_logp_grid=logp,
        titles={"model": "flow"},
        title="density",
    )
    arr = _pixels(out)
    assert arr.std() > 0
    # All -inf must not raise either.
    out2 = save_density(tmp_path / "allinf.png", np.full((8, 8), -np.inf), 3.0, titles=["empty"])
    assert _pixels(out2).shape[0] > 0
    with pytest.raises(ValueError):
        save_density(tmp_path / "x.png", logp, lim, titles=["a", "b"])


def test_save_trajectories_non_blank(tmp_path):
    rng = _rng(3)
    x0 = rng.normal(size=(300, 2))
    ts = np.linspace(0.0, 1.0, 11)[:, None, None]
    paths = (1 - ts) * x0 + ts * (x0 * 0.3 + np.array([2.0, -1.0]))
    out = save_trajectories(paths, tmp_path / "traj.png", max_lines=50, title="ODE")
    assert _pixels(out).std() > 0
    with pytest.raises(ValueError):
        save_trajectories(paths[0], tmp_path / "bad.png")


def test_backend_untouched_and_only_requested_files(tmp_path):
    backend = matplotlib.get_backend()
    save_scatter(_rng().normal(size=(50, 2)), tmp_path / "only.png")
    assert matplotlib.get_backend() == backend
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only.png"]
