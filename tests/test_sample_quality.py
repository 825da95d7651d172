"""jaxgen.eval.sample_quality: sliced W1, its two-true-sample floor and the mode-weight TV,
against exact values."""

import math

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from jaxgen.data import toy2d
from jaxgen.eval import sample_quality as sq


def test_sliced_w1_of_a_shift_is_the_mean_projection_and_2v_over_pi():
    x = np.random.default_rng(0).normal(size=(500, 2))
    v = np.array([0.3, -0.4])  # |v| = 0.5
    theta = sq.directions(2, 256, np.random.default_rng(3))
    # sorting commutes with a shift, so every direction contributes |<v, theta>| exactly
    got = sq.sliced_w1(x, x + v, num_directions=256, seed=3)
    assert got == pytest.approx(np.mean(np.abs(theta @ v)), abs=1e-12)
    # uniform directions on the circle: E|<v, theta>| = 2 |v| / pi (midpoint rule, 256 angles)
    assert got == pytest.approx(2 * 0.5 / math.pi, abs=1e-5)
    # two point masses are a shift too
    a, b = np.zeros((10, 2)), np.tile([3.0, 4.0], (10, 1))
    assert sq.sliced_w1(a, b) == pytest.approx(2 * 5.0 / math.pi, abs=1e-4)


def test_sliced_w1_in_1d_is_scipys_w1_and_a_metric_on_point_sets():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 1)), rng.exponential(size=(300, 1))
    assert sq.sliced_w1(x, y, num_directions=3) == pytest.approx(
        wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-12)
    x2, y2 = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) * 2
    assert sq.sliced_w1(x2, x2[::-1]) == 0.0  # the same set in another order
    assert sq.sliced_w1(x2, y2) == pytest.approx(sq.sliced_w1(y2, x2), rel=1e-12)


def test_sliced_w1_refuses_unequal_sizes_and_non_finite_points():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="equal-size"):
        sq.sliced_w1(x, np.zeros((6, 2)))
    with pytest.raises(ValueError, match="finite"):
        sq.sliced_w1(x, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="num_directions"):
        sq.sliced_w1(x, x, num_directions=0)


def test_floor_shrinks_like_one_over_sqrt_n():
    toy = toy2d.random_mixture(1, 6)
    f1 = sq.sliced_w1_floor(toy.sample, 500, repeats=8)
    f4 = sq.sliced_w1_floor(toy.sample, 2000, repeats=8)
    assert f4 / f1 == pytest.approx(0.5, rel=0.15)


def test_mode_weight_tv_of_known_histograms():
    w = np.array([0.5, 0.3, 0.2])
    assert sq.mode_weight_tv([0] * 5 + [1] * 3 + [2] * 2, w) == pytest.approx(0.0, abs=1e-15)
    assert sq.mode_weight_tv([1] * 10, w) == pytest.approx(1 - 0.3)  # all mass on one mode
    # p_hat = (0.5, 0.25, 0) and a quarter non-finite: 0.5 (0 + 0.05 + 0.2 + 0.25) = 0.25
    assert sq.mode_weight_tv([0, 0, 1, -1], w) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="lie in"):
        sq.mode_weight_tv([3], w)


def test_assignment_is_the_most_probable_component_not_the_nearest_mean():
    w = np.array([0.5, 0.5])
    means = np.array([[0.0, 0.0], [3.0, 0.0]])
    covs = np.array([np.diag([4.0, 0.01]), 0.01 * np.eye(2)])  # A long along x, B tiny
    x = np.array([[2.0, 0.0], [3.0, 0.0], [0.0, 0.0], [np.nan, 0.0]])
    # (2, 0): 1 std from A, 10 std from B although nearer B's mean
    np.testing.assert_array_equal(sq.assign_components(x, w, means, covs), [0, 1, 0, -1])


def test_true_samples_sit_at_the_floor():
    toy = toy2d.random_mixture(3, 8)
    rng = np.random.default_rng(11)
    m = sq.mixture_sample_metrics(toy.sample(rng, 2000), toy.sample(rng, 2000), toy)
    assert 0.4 < m["sliced_w1_ratio"] < 2.0  # one draw of the floor's own distribution
    assert m["mode_tv"] < 0.05 and m["mode_tv_floor"] < 0.05
    # a sample that drops a component and is shifted fails both targets
    x = toy.sample(rng, 4000)
    k = sq.assign_components(x, toy.weights, toy.modes, toy.covs)
    bad = x[k != np.argmax(toy.weights)][:2000] + 0.3
    m = sq.mixture_sample_metrics(bad, toy.sample(rng, 2000), toy)
    assert m["sliced_w1_ratio"] > sq.W1_FLOOR_FACTOR
    assert m["mode_tv"] >= toy.weights.max() - 0.05
