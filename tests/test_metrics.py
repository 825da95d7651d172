"""Property tests for the two-sample and sample-quality metrics: the MMD permutation test
(jaxgen.eval.mmd.mmd_test), the classifier two-sample test (jaxgen.eval.two_sample) and the
Fréchet distance / improved precision-recall (jaxgen.eval.frechet). Random inputs with fixed
seeds; every check is cheap (the only XLA compiles are two small C2ST training loops and
one mmd2)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from jaxgen.eval.frechet import (
    frechet_distance,
    frechet_from_features,
    gaussian_stats,
    precision_recall,
)
from jaxgen.eval.mmd import _permuted_mmd2, mmd2, mmd_test
from jaxgen.eval.two_sample import binomial_tail, c2st

try:
    import scipy.linalg
    import scipy.stats
except ImportError:  # scipy is optional: the checks that use it are skipped
    scipy = None


def _normal(seed, shape, shift=0.0, scale=1.0):
    return shift + scale * np.random.default_rng(seed).standard_normal(shape)


def _binom_pmf(i, n, p):
    return math.comb(n, i) * p**i * (1 - p) ** (n - i)


def _binom_band(n, p, tail=1e-3):
    """Counts [lo, hi] with Pr(Binom(n, p) < lo) <= tail and Pr(Binom(n, p) > hi) <= tail."""
    pmf = [_binom_pmf(i, n, p) for i in range(n + 1)]
    lo = 0
    while sum(pmf[:lo + 1]) <= tail:
        lo += 1
    hi = n
    while sum(pmf[hi:]) <= tail:
        hi -= 1
    return lo, hi


def _random_spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# --------------------------------------------------------------------------------------------
# MMD permutation test


def _mmd2_definition(x, y, sigmas):
    """Unbiased MMD^2 from its definition, float64 loops over pairs."""
    def k(a, b):
        return sum(math.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in sigmas)
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_permuted_statistics_match_the_definition():
    """The vectorised quadratic forms give the definitional MMD^2_u of each re-split."""
    z = _normal(0, (11, 3))
    n, sigmas = 4, [0.7, 2.0]
    d2 = np.sum((z[:, None] - z[None]) ** 2, axis=-1)
    k0 = sum(np.exp(-d2 / (2 * s * s)) for s in sigmas)
    np.fill_diagonal(k0, 0.0)
    rng = np.random.default_rng(1)
    perms = np.stack([rng.permutation(11) for _ in range(5)])
    in_x = np.zeros((5, 11))
    in_x[np.arange(5)[:, None], perms[:, :n]] = 1.0
    got = _permuted_mmd2(k0, in_x, n)
    want = [_mmd2_definition(z[p[:n]], z[p[n:]], sigmas) for p in perms]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_mmd_test_statistic_matches_mmd2_and_output_contract():
    x, y = _normal(2, (30, 2)), _normal(3, (25, 2), shift=0.3)
    out = mmd_test(x, y, num_permutations=50, seed=4)
    assert set(out) == {"mmd2", "p_value", "num_permutations", "n_x", "n_y", "bandwidths"}
    assert (out["num_permutations"], out["n_x"], out["n_y"]) == (50, 30, 25)
    assert len(out["bandwidths"]) == 5
    # Same unbiased estimate and median-heuristic bandwidths as the jitted float32 mmd2.
    np.testing.assert_allclose(out["mmd2"], float(mmd2(x, y)), atol=1e-5)
    np.testing.assert_allclose(out["mmd2"], _mmd2_definition(x, y, out["bandwidths"]),
                               rtol=1e-9)
    # Explicit bandwidths are used and reported as given.
    given = mmd_test(x, y, bandwidths=[0.5, 2.0], num_permutations=50)
    assert given["bandwidths"] == [0.5, 2.0]
    np.testing.assert_allclose(given["mmd2"], _mmd2_definition(x, y, [0.5, 2.0]), rtol=1e-9)
    # p-value: a multiple of 1/(P+1) in [1/(P+1), 1]; deterministic given the seed;
    # trailing axes are flattened.
    k = out["p_value"] * 51
    assert abs(k - round(k)) < 1e-9 and 1 <= round(k) <= 51
    again = mmd_test(x.reshape(30, 2, 1), y.reshape(25, 1, 2), num_permutations=50, seed=4)
    assert again["p_value"] == out["p_value"]
    np.testing.assert_allclose(again["mmd2"], out["mmd2"], rtol=1e-12)
    # Degenerate pooled sample: statistic 0, every split ties, p = 1.
    flat = mmd_test(np.ones((5, 2)), np.ones((4, 2)), num_permutations=20)
    assert abs(flat["mmd2"]) < 1e-12 and flat["p_value"] == 1.0
    with pytest.raises(ValueError):
        mmd_test(x[:1], y)
    with pytest.raises(ValueError):
        mmd_test(x, y[:, :1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mmd_test_same_distribution_vs_one_std_shift(seed):
    """n = 200 per sample in 2-D. Same law: |MMD^2_u| small (its null sd here is 0.0076,
    measured over 100 draws; bound ~5 sd) and p not small. Mean shifted by one standard
    deviation: MMD^2_u clearly positive (0.37-0.54 on these seeds) and the smallest
    attainable p-value 1/(P+1) < 0.01 (no permuted statistic reaches the observed one)."""
    x = _normal(10 * seed, (200, 2))
    y = _normal(10 * seed + 1, (200, 2))
    z = _normal(10 * seed + 2, (200, 2), shift=np.array([1.0, 0.0]))
    same, shifted = mmd_test(x, y, seed=seed), mmd_test(x, z, seed=seed)
    assert abs(same["mmd2"]) < 0.04, same
    assert same["p_value"] > 0.01, same
    assert shifted["mmd2"] > 0.15, shifted
    assert shifted["p_value"] < 0.01, shifted
    assert shifted["p_value"] == 1.0 / 201


def test_mmd_test_calibrated_under_the_null():
    """200 independent null draws (n = m = 40, 2-D, P = 100). The permutation test is exact:
    with continuous data, Pr(p <= 0.05) = floor(0.05 * 101) / 101 = 5/101. The number of
    rejections must lie in the central band of Binomial(200, 5/101) (0.1 % per tail), and
    the p-values must look uniform: mean near 1/2 (sd of the mean ~0.02) and every decile
    populated (>= 6 of an expected ~20 per decile)."""
    draws, perms, alpha = 200, 100, 0.05
    p_values = np.array([
        mmd_test(_normal(1000 + 2 * i, (40, 2)), _normal(1001 + 2 * i, (40, 2)),
                 num_permutations=perms, seed=i)["p_value"]
        for i in range(draws)])
    size = math.floor(alpha * (perms + 1)) / (perms + 1)
    lo, hi = _binom_band(draws, size)
    assert (lo, hi) == (2, 21)  # documents the band: rate in [0.01, 0.105]
    rejections = int(np.sum(p_values <= alpha))
    assert lo <= rejections <= hi, (rejections, lo, hi)
    assert 0.4 <= p_values.mean() <= 0.6, p_values.mean()
    counts = np.histogram(p_values, bins=10, range=(0.0, 1.0))[0]
    assert counts.min() >= 6, counts


# --------------------------------------------------------------------------------------------
# Classifier two-sample test


def test_binomial_tail_matches_brute_force():
    for n in (1, 2, 7, 20, 41):
        for p in (0.5, 0.3):
            q = Fraction(p).limit_denominator(10)
            for k in range(-1, n + 2):
                exact = sum(math.comb(n, i) * q**i * (1 - q) ** (n - i)
                            for i in range(max(k, 0), n + 1))
                got = binomial_tail(k, n, p)
                assert got == pytest.approx(float(exact), rel=1e-12, abs=1e-300), (n, p, k)
    # Large n, far tail: log-space sum stays accurate where naive products underflow.
    exact = Fraction(sum(math.comb(2000, i) for i in range(1500, 2001)), 2**2000)
    assert binomial_tail(1500, 2000) == pytest.approx(float(exact), rel=1e-9)
    if scipy is not None:
        for k in (0, 480, 500, 530, 700):
            want = scipy.stats.binom.sf(k - 1, 1000, 0.5)
            assert binomial_tail(k, 1000) == pytest.approx(want, rel=1e-9, abs=1e-300)


def test_c2st_null_is_chance_and_separated_blobs_are_detected():
    x = _normal(20, (200, 2))
    null = c2st(x, _normal(21, (200, 2)), seed=0)
    assert set(null) == {"accuracy", "p_value", "n_test", "n_train"}
    assert (null["n_test"], null["n_train"]) == (200, 200)
    assert 0.4 <= null["accuracy"] <= 0.6 and null["p_value"] > 0.01, null
    # Over independent null draws the held-out accuracy averages to 1/2 (single-draw sd
    # 0.030 measured over 60 draws, so the mean of 8 has sd ~0.011; bound ~4.7 sd).
    accs = [c2st(_normal(30 + 2 * s, (200, 2)), _normal(31 + 2 * s, (200, 2)),
                 seed=s)["accuracy"] for s in range(8)]
    assert abs(np.mean(accs) - 0.5) < 0.05, accs
    # Blobs 6 standard deviations apart (same shapes: no new compile).
    far = c2st(x, _normal(22, (200, 2), shift=np.array([6.0, 0.0])), seed=0)
    assert far["accuracy"] > 0.9 and far["p_value"] < 1e-6, far
    assert far["p_value"] == binomial_tail(round(far["accuracy"] * 200), 200)


def test_c2st_flattens_balances_and_logistic_regression():
    x, y = _normal(40, (200, 2)), _normal(41, (260, 2), shift=np.array([3.0, 0.0]))
    flat = c2st(x, y, seed=3)
    # Any trailing shape is flattened: identical result.
    assert c2st(x.reshape(200, 1, 2), y.reshape(260, 2, 1), seed=3) == flat
    # The larger sample is subsampled to 200: 100 + 100 train, 100 + 100 test.
    assert (flat["n_test"], flat["n_train"]) == (200, 200)
    odd = c2st(x[:51], y[:90], seed=3, test_fraction=0.3, steps=10)
    assert (odd["n_test"], odd["n_train"]) == (2 * 15, 2 * 36)
    # hidden=(): logistic regression; a linear boundary suffices for shifted blobs
    # (Bayes accuracy Phi(1.5) = 0.933).
    logistic = c2st(x, y, seed=3, hidden=())
    assert logistic["accuracy"] > 0.85 and logistic["p_value"] < 1e-6, logistic
    with pytest.raises(ValueError):
        c2st(x, y[:, :1])
    with pytest.raises(ValueError):
        c2st(x, y, test_fraction=1.0)


# --------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_zero_for_identical_stats_and_small_for_same_gaussian():
    rng = np.random.default_rng(50)
    for d in (1, 3, 16):
        mu, s = rng.standard_normal(d), _random_spd(rng, d, scale=10.0)
        assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)
    # Two large samples of one Gaussian: FD is tiny relative to the scale Tr S = 8 and
    # to a unit mean shift (FD ~ 1).
    d, n = 8, 5000
    s = _random_spd(rng, d)
    chol, mu = np.linalg.cholesky(s), rng.standard_normal(d)
    a = mu + _normal(51, (n, d)) @ chol.T
    b = mu + _normal(52, (n, d)) @ chol.T
    shift = np.eye(d)[0]
    same = frechet_from_features(a, b)
    assert 0.0 <= same < 0.005 * np.trace(s), same
    assert frechet_from_features(a, b + shift) == pytest.approx(1.0, abs=0.05)
    mu_a, s_a = gaussian_stats(a.reshape(n, 2, 4))
    assert mu_a.dtype == s_a.dtype == np.float64 and s_a.shape == (d, d)
    np.testing.assert_allclose(s_a, np.cov(a, rowvar=False), rtol=1e-12)


def test_frechet_closed_forms():
    rng = np.random.default_rng(60)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2, variances given as scalars or 1x1.
    for m1, s1, m2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.3), (3.0, 0.1, 3.0, 5.0)]:
        want = (m1 - m2) ** 2 + (s1 - s2) ** 2
        assert frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx(want, rel=1e-12)
        assert frechet_distance([m1], [[s1**2]], [m2], [[s2**2]]) == pytest.approx(want,
                                                                                 rel=1e-12)
    # Commuting (diagonal) covariances, including zero variances (singular).
    d = 6
    a, b = rng.uniform(0.0, 4.0, d), rng.uniform(0.0, 4.0, d)
    a[0] = b[1] = 0.0
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    want = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # The same pair in a rotated basis (no longer diagonal, still commuting): unchanged.
    # Round-off eps in a zero eigenvalue becomes sqrt(eps) ~ 1e-8 after the square root,
    # so singular covariances agree to ~1e-8 (not 1e-12) once they are not diagonal.
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    rotated = frechet_distance(q @ m1, q @ np.diag(a) @ q.T, q @ m2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(want, abs=1e-6)


def test_frechet_non_commuting_pair_symmetry_and_triangle_inequality():
    rng = np.random.default_rng(70)
    d = 7
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d, scale=3.0)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    assert np.linalg.norm(s1 @ s2 - s2 @ s1) > 0.1  # genuinely non-commuting
    got = frechet_distance(m1, s1, m2, s2)
    # Reference 1: Tr (S1 S2)^{1/2} from the (real, positive) eigenvalues of S1 S2.
    eig = np.linalg.eigvals(s1 @ s2)
    ref = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2) - 2 * np.sum(np.sqrt(eig.real))
    assert got == pytest.approx(ref, rel=1e-9)
    if scipy is not None:  # Reference 2: the trace formula with scipy's sqrtm.
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        ref2 = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean))
        assert got == pytest.approx(ref2, rel=1e-8)
    assert frechet_distance(m2, s2, m1, s1) == pytest.approx(got, rel=1e-10)
    # sqrt(FD) is the 2-Wasserstein distance between Gaussians: a metric.
    for _ in range(20):
        g = [(rng.standard_normal(d), _random_spd(rng, d, scale=rng.uniform(0.1, 3)))
             for _ in range(3)]
        w = {(i, j): math.sqrt(frechet_distance(*g[i], *g[j])) for i in range(3)
             for j in range(3)}
        assert w[0, 2] <= w[0, 1] + w[1, 2] + 1e-9
    with pytest.raises(ValueError):
        frechet_distance(m1, s1, m2[:3], s2)


# --------------------------------------------------------------------------------------------
# Improved precision / recall


def test_precision_recall_hand_made_sets():
    a = _normal(80, (150, 2))
    b = _normal(81, (150, 2), shift=np.array([20.0, 0.0]))
    real = np.concatenate([a, b])
    same = precision_recall(real, real.copy())
    assert same == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = precision_recall(real, real + 100.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # Fake = exactly one of the two real clusters: every fake point is a real one, and
    # exactly the real points of that cluster are covered.
    sub = precision_recall(real, a)
    assert sub["precision"] == 1.0 and sub["recall"] == 0.5
    # Fake = fresh draws from one cluster's law: precision ~1, recall ~1/2.
    fresh = precision_recall(real, _normal(82, (150, 2)))
    assert fresh["precision"] >= 0.9 and 0.4 <= fresh["recall"] <= 0.5, fresh
    # Chunking does not change anything; trailing axes are flattened.
    chunked = precision_recall(real.reshape(300, 1, 2), _normal(82, (150, 2)), chunk_size=7)
    assert chunked == fresh


def test_precision_recall_radius_is_kth_neighbour():
    """A fake point at distance t from an isolated real pair/triple is inside iff t is at
    most the k-th neighbour distance of that real point (brute-force check on 1-D data)."""
    real = np.array([[0.0], [1.0], [3.0], [7.0]])  # 2nd-NN radius of 0.0 is 3.0
    for k, radius_at_0 in [(1, 1.0), (2, 3.0), (3, 7.0)]:
        inside = precision_recall(real, np.array([[-radius_at_0]] * 4), k=k)["precision"]
        outside = precision_recall(real, np.array([[-radius_at_0 - 1e-6]] * 4), k=k)
        assert inside == 1.0 and outside["precision"] == 0.0, k
    with pytest.raises(ValueError):
        precision_recall(real, real, k=4)
