"""Toy 2-D densities: the samplers draw from the densities they claim."""

import math

import numpy as np
import pytest

from jaxgen.data import toy2d
from jaxgen.data.toy2d import TOY_DATASETS, entropy, get_toy

MIXTURES = ["8gaussians", "ring8", "grid25"]
LOG_2PI = math.log(2.0 * math.pi)


def _mixture_grid(toy, h_per_std=3.0, margin_std=8.0):
    """Cell-centred grid over the modes' bounding box +- margin, spacing std / h_per_std."""
    h = toy.std / h_per_std
    lo = toy.modes.min(0) - margin_std * toy.std
    hi = toy.modes.max(0) + margin_std * toy.std
    gx = np.arange(lo[0], hi[0], h) + h / 2
    gy = np.arange(lo[1], hi[1], h) + h / 2
    xx, yy = np.meshgrid(gx, gy, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], 1), h * h


def _closed_form_entropy(k, std):
    """Entropy of k equal-weight isotropic 2-D Gaussians that do not overlap."""
    return math.log(k) + 1.0 + LOG_2PI + 2.0 * math.log(std)


# --------------------------------------------------------------------- naming


def test_names_and_unknown_name_lists_all():
    assert TOY_DATASETS == ("8gaussians", "ring8", "grid25", "moons", "checkerboard",
                            "swissroll", "pinwheel", "random_mixture")
    with pytest.raises(ValueError) as e:
        get_toy("9gaussians")
    for name in TOY_DATASETS:
        assert name in str(e.value)


def test_paper_parameters():
    t = get_toy("8gaussians")
    assert t.std == pytest.approx(0.5 / 1.414)
    np.testing.assert_allclose(np.sort(np.linalg.norm(t.modes, axis=1)), np.full(8, 4 / 1.414))
    np.testing.assert_allclose(t.modes[0], [4 / 1.414, 0.0])
    t = get_toy("ring8")
    assert t.std == 0.02
    np.testing.assert_allclose(np.linalg.norm(t.modes, axis=1), 2.0)
    t = get_toy("grid25")
    assert t.std == 0.05
    assert sorted(set(t.modes.ravel())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(m) for m in t.modes}) == 25
    for name in ["moons", "swissroll", "pinwheel"]:
        t = get_toy(name)
        assert t.log_prob is None and t.modes is None and t.std is None
    t = get_toy("checkerboard")
    assert t.log_prob is not None and t.modes is None


def test_std_override_and_bad_std():
    assert get_toy("ring8", std=0.1).std == 0.1
    assert get_toy("8gaussians", std=0.2).std == 0.2
    x = get_toy("grid25", std=0.3).sample(np.random.default_rng(0), 50_000)
    spread = x - np.round(x / 2) * 2  # offset from the nearest grid node
    assert np.std(spread[:, 0]) == pytest.approx(0.3, rel=0.02)
    with pytest.raises(ValueError, match="only applies"):
        get_toy("moons", std=0.1)
    for bad in [0.0, -1.0, float("nan")]:
        with pytest.raises(ValueError, match="positive"):
            get_toy("ring8", std=bad)


# -------------------------------------------------------------------- samplers


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_sampler_shape_dtype_determinism(name):
    toy = get_toy(name)
    a = toy.sample(np.random.default_rng(7), 1000)
    b = toy.sample(np.random.default_rng(7), 1000)
    c = toy.sample(np.random.default_rng(8), 1000)
    assert a.shape == (1000, 2) and a.dtype == np.float32
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert toy.sample(np.random.default_rng(0), 0).shape == (0, 2)
    with pytest.raises(ValueError):
        toy.sample(np.random.default_rng(0), -1)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_samples_roughly_in_box(name):
    x = get_toy(name).sample(np.random.default_rng(0), 20_000)
    assert np.mean(np.all(np.abs(x) < 4.5, axis=1)) > 0.999
    assert np.abs(x).max() < 6.0


# -------------------------------------------------------- mixtures: densities


@pytest.mark.parametrize("name,std", [(n, None) for n in MIXTURES] + [("grid25", 0.3),
                                                                     ("8gaussians", 1.0)])
def test_mixture_density_integrates_to_one(name, std):
    toy = get_toy(name, std=std)
    grid, area = _mixture_grid(toy)
    lp = toy.log_prob(grid)
    assert lp.dtype == np.float64 and lp.shape == (len(grid),)
    assert np.exp(lp).sum() * area == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_entropy_grid_matches_samples(name):
    """-integral p log p on a grid (density only) vs -mean log p(samples) (sampler)."""
    toy = get_toy(name)
    grid, area = _mixture_grid(toy)
    lp = toy.log_prob(grid)
    h_grid = -np.sum(np.exp(lp) * lp) * area
    h_mc, se = entropy(toy, n=100_000, seed=1)
    assert abs(h_mc - h_grid) < 5 * se + 1e-4


@pytest.mark.parametrize("name,std", [("ring8", None), ("grid25", None), ("8gaussians", 0.2)])
def test_samples_within_3_std_and_equal_weights(name, std):
    toy = get_toy(name, std=std)
    n = 100_000
    x = toy.sample(np.random.default_rng(3), n).astype(np.float64)
    d2 = ((x[:, None, :] - toy.modes[None]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    within = np.sqrt(d2.min(1)) < 3 * toy.std
    # P(|z| < 3) for a standard 2-D Gaussian = 1 - exp(-9/2) = 0.98889
    assert within.mean() == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    k = len(toy.modes)
    counts = np.bincount(nearest, minlength=k)
    p = 1.0 / k
    assert np.all(np.abs(counts - n * p) < 5 * math.sqrt(n * p * (1 - p)))


def test_entropy_closed_form_for_separated_modes():
    # grid25 with a custom std 0.1: nodes 2 apart = 20 std, overlap is negligible
    toy = get_toy("grid25", std=0.1)
    h, se = entropy(toy, n=200_000, seed=0)
    assert 0 < se < 0.01
    assert abs(h - _closed_form_entropy(25, 0.1)) < 4 * se
    toy = get_toy("ring8")
    h, se = entropy(toy, n=200_000, seed=0)
    assert abs(h - _closed_form_entropy(8, 0.02)) < 4 * se


def test_log_prob_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        get_toy("ring8").log_prob(np.zeros((4, 3)))


def test_mixture_log_prob_single_point_value():
    toy = get_toy("ring8")
    # at a mode, the other modes contribute nothing: log(1/8 * 1/(2 pi s^2))
    expected = -math.log(8) - LOG_2PI - 2 * math.log(0.02)
    assert toy.log_prob(toy.modes[:1])[0] == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- checkerboard


def test_checkerboard_support_points():
    lp = get_toy("checkerboard").log_prob
    c = -math.log(32)
    pts = np.array([[1, 1], [1, -1], [-1, -1], [-3, 3], [-3, 1], [4.0, 0.0], [-4.0, -4.0],
                    [3.9, 3.9], [-4.01, -3.0], [0.0, 0.0], [2.0, 0.0]])
    want = [c, -np.inf, c, -np.inf, c, -np.inf, c, c, -np.inf, c, -np.inf]
    np.testing.assert_array_equal(lp(pts), want)


def test_checkerboard_density_integrates_to_one_and_has_area_32():
    lp = get_toy("checkerboard").log_prob
    h = 0.02
    g = np.arange(-5, 5, h) + h / 2  # cell-centred: square edges fall between points
    xx, yy = np.meshgrid(g, g, indexing="ij")
    vals = lp(np.stack([xx.ravel(), yy.ravel()], 1))
    assert np.isfinite(vals).sum() * h * h == pytest.approx(32.0, rel=1e-9)
    assert np.exp(vals).sum() * h * h == pytest.approx(1.0, rel=1e-9)


def test_checkerboard_sampler_matches_density():
    toy = get_toy("checkerboard")
    n = 400_000
    x = toy.sample(np.random.default_rng(0), n)
    assert np.all(np.isfinite(toy.log_prob(x)))  # every float32 sample inside the support
    assert x.min() >= -4.0 and x.max() < 4.0
    cell = np.floor(x.astype(np.float64) / 2).astype(int)
    ids = (cell[:, 0] + 2) * 4 + (cell[:, 1] + 2)
    counts = np.bincount(ids, minlength=16)
    occupied = counts > 0
    assert occupied.sum() == 8
    p = 1 / 8
    assert np.all(np.abs(counts[occupied] - n * p) < 5 * math.sqrt(n * p * (1 - p)))
    # uniform inside a square: the offset in the square is U[0, 2)^2
    off = x - 2 * cell
    assert off.mean(0) == pytest.approx([1.0, 1.0], abs=0.01)
    assert off.var(0) == pytest.approx([4 / 12, 4 / 12], abs=0.01)


def test_checkerboard_entropy_is_log32():
    h, se = entropy(get_toy("checkerboard"), n=200_000)
    assert h == pytest.approx(math.log(32), abs=1e-12)
    assert se == 0.0


def test_checkerboard_float32_rounding_stays_in_square():
    # Draws whose float64 value lies just below an edge round up to it in float32;
    # the sampler must clip them back into their own square.
    class EdgeRng:
        def random(self, n):
            return np.full(n, 1.0 - 2.0**-40)

        def integers(self, lo, hi, size):
            return np.ones(size, dtype=np.int64)

    x = toy2d._checkerboard_sample(EdgeRng(), 3)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(get_toy("checkerboard").log_prob(x)))
    assert np.all(x < 4.0)


# -------------------------------------------------------------- no closed form


@pytest.mark.parametrize("name", ["moons", "swissroll", "pinwheel"])
def test_entropy_needs_log_prob(name):
    with pytest.raises(ValueError, match="closed-form"):
        entropy(get_toy(name), n=100)


def test_moons_and_pinwheel_structure():
    x = get_toy("moons").sample(np.random.default_rng(0), 20_000).astype(np.float64)
    # undo the affine map: points lie within noise of one of the two unit half circles
    u = (x - np.array([-1.0, -0.2])) / 2
    r_upper = np.hypot(u[:, 0], u[:, 1])
    r_lower = np.hypot(u[:, 0] - 1.0, u[:, 1] - 0.5)
    dist = np.minimum(np.abs(r_upper - 1), np.abs(r_lower - 1))
    assert np.median(dist) < 0.1
    y = get_toy("pinwheel").sample(np.random.default_rng(0), 20_000).astype(np.float64)
    r = np.hypot(y[:, 0], y[:, 1]) / 2  # radius = |feature|, ~ 1 + 0.3 N
    assert np.median(r) == pytest.approx(1.0, abs=0.05)


# -------------------------------------------------------------- random mixture


def _scipy_mixture_log_prob(toy, x):
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal
    comps = [np.log(w) + multivariate_normal(mu, cov).logpdf(x)
             for w, mu, cov in zip(toy.weights, toy.modes, toy.covs)]
    return logsumexp(np.stack(comps, 1), axis=1)


@pytest.mark.parametrize("seed,k", [(1, 6), (2, 5), (3, 8), (11, 1), (4, 8)])
def test_random_mixture_is_random_anisotropic_unequal_and_deterministic(seed, k):
    toy = toy2d.random_mixture(seed, k)
    assert toy.modes.shape == (k, 2) and toy.covs.shape == (k, 2, 2) and toy.std is None
    assert toy.weights.sum() == pytest.approx(1.0, abs=1e-12)
    ratio = toy.weights.max() / toy.weights.min()
    assert (k == 1 and ratio == 1.0) or 1.0 < ratio <= 4.0  # unequal: U[1, 4] normalised
    s = np.sqrt(np.linalg.eigvalsh(toy.covs))  # (k, 2) minor, major std
    assert np.all((s[:, 1] >= 0.2 - 1e-12) & (s[:, 1] <= 0.5 + 1e-12))
    assert np.all((s[:, 1] / s[:, 0] >= 2 - 1e-9) & (s[:, 1] / s[:, 0] <= 4 + 1e-9))
    assert np.all(np.abs(toy.modes) <= 2.5)
    again = toy2d.random_mixture(seed, k)  # a function of (seed, k) only
    for a, b in [(toy.weights, again.weights), (toy.modes, again.modes), (toy.covs, again.covs)]:
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(toy.modes[:1], toy2d.random_mixture(seed + 100, k).modes[:1])
    with pytest.raises(ValueError):
        toy.modes[0, 0] = 0.0  # read-only


def test_random_mixture_log_prob_matches_scipy_and_integrates_to_one():
    toy = toy2d.random_mixture(1, 6)
    x = np.random.default_rng(0).uniform(-4, 4, size=(2000, 2))
    lp = toy.log_prob(x)
    assert lp.dtype == np.float64
    np.testing.assert_allclose(lp, _scipy_mixture_log_prob(toy, x), rtol=0, atol=1e-10)
    h = 0.02  # >= 2.5 grid steps per minor std: the midpoint rule is exact to ~1e-9 here
    g = np.arange(-5.0, 5.0, h) + h / 2
    xx, yy = np.meshgrid(g, g, indexing="ij")
    assert np.exp(toy.log_prob(np.stack([xx.ravel(), yy.ravel()], 1))).sum() * h * h == \
        pytest.approx(1.0, abs=1e-6)


def test_random_mixture_samples_match_weights_moments_and_components():
    toy = toy2d.random_mixture(3, 8)
    n = 200_000
    x = toy.sample(np.random.default_rng(5), n).astype(np.float64)
    w, mu, cov = toy.weights, toy.modes, toy.covs
    mean = w @ mu
    second = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu))
    np.testing.assert_allclose(x.mean(0), mean, atol=5 * np.sqrt(np.diag(second)).max()
                               / np.sqrt(n))
    np.testing.assert_allclose(np.cov(x.T), second - np.outer(mean, mean), atol=0.02)
    # separated: a sample's most probable component is its own (but for < 1e-3 here)
    k = np.argmax(toy2d.component_log_probs(x, w, mu, cov), axis=1)
    counts = np.bincount(k, minlength=len(w))
    assert np.all(np.abs(counts - n * w) < 5 * np.sqrt(n * w * (1 - w)) + 1e-3 * n)
    # within one component, the Mahalanobis radius^2 is chi^2(2): P(r^2 < 2 log 2) = 1/2
    d = x - mu[k]
    r2 = np.einsum("ni,nij,nj->n", d, np.linalg.inv(cov)[k], d)
    assert np.median(r2) == pytest.approx(2 * math.log(2), rel=0.02)
    h, se = entropy(toy, n=100_000, seed=1)
    assert abs(h + np.mean(_scipy_mixture_log_prob(toy, x[:100_000]))) < 6 * se


def test_random_mixture_bad_arguments():
    for bad in [-1, 1.5, True]:
        with pytest.raises(ValueError, match="seed"):
            toy2d.random_mixture(bad, 6)
    for bad in [0, 9]:
        with pytest.raises(ValueError, match="components"):
            toy2d.random_mixture(1, bad)
    with pytest.raises(ValueError, match="does not apply to random_mixture"):
        get_toy("random_mixture", std=0.1)
    with pytest.raises(ValueError, match="only apply to random_mixture"):
        get_toy("ring8", mixture_seed=2)
    t = get_toy("random_mixture")  # the defaults: seed 1, 6 components
    np.testing.assert_array_equal(t.modes, toy2d.random_mixture(1, 6).modes)


def test_mixture_components_of_the_paper_mixtures():
    t = get_toy("ring8")
    np.testing.assert_array_equal(t.weights, np.full(8, 1 / 8))
    np.testing.assert_allclose(t.covs, np.broadcast_to(0.02 ** 2 * np.eye(2), (8, 2, 2)))
    x = np.random.default_rng(0).normal(size=(100, 2)) * 2
    np.testing.assert_allclose(t.log_prob(x), toy2d.gaussian_mixture_log_prob(
        x, t.weights, t.modes, t.covs), rtol=1e-12)


def test_random_mixture_data_settings():
    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    cfg = config_lib.load_config("flow_matching/toy2d", [
        "data.name=random_mixture", "data.mixture_seed=2", "data.components=5",
        "data.num_train=100", "data.num_eval=50"])
    d = get_dataset(cfg.data, "test")
    assert len(d.source) == 50 and d.toy.weights.shape == (5,)
    np.testing.assert_array_equal(d.toy.modes, toy2d.random_mixture(2, 5).modes)
    for over, msg in [(["data.name=ring8", "data.mixture_seed=2"], "does not apply"),
                      (["data.name=random_mixture", "data.std=0.1"], "does not apply"),
                      (["data.name=random_mixture", "data.components=9"], "components")]:
        with pytest.raises(ValueError, match=msg):
            get_dataset(config_lib.load_config("flow_matching/toy2d", over).data, "train")
