"""Feature-space sample-quality metrics: Fréchet distance and improved precision/recall.

Fréchet distance (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium", the FID paper; the formula is Dowson & Landau, 1982):
the squared 2-Wasserstein distance between the Gaussians ``N(mu1, S1)`` and ``N(mu2, S2)``
fitted to two sets of features,

    FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}).

``S1 S2`` is not symmetric, but it is similar to the symmetric PSD matrix
``M = S1^{1/2} S2 S1^{1/2}`` (same eigenvalues), so ``Tr (S1 S2)^{1/2} = sum_i sqrt(l_i(M))``.
This module computes that in float64 with two symmetric eigendecompositions (``eigh``),
clipping eigenvalues that round-off makes slightly negative to 0; it needs no ``sqrtm`` of a
non-symmetric matrix and works for singular covariances (fewer samples than dimensions).
With Inception-v3 pool features this is the FID; any feature extractor can be used.

Improved precision and recall (Kynkäänniemi et al., 2019, "Improved Precision and Recall
Metric for Assessing Generative Models", NeurIPS): a set of feature vectors ``A`` defines the
manifold estimate ``manifold(A) = union_{a in A} B(a, r_k(a))``, ``r_k(a)`` the distance from
``a`` to its k-th nearest neighbour in ``A`` (itself excluded). Then

    precision = fraction of fake features inside manifold(real)   (sample quality),
    recall    = fraction of real features inside manifold(fake)   (coverage / diversity).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

__all__ = ["gaussian_stats", "frechet_distance", "frechet_from_features", "precision_recall",
           "FeatureSpace"]


@dataclasses.dataclass(frozen=True)
class FeatureSpace:
    """A learned feature space that a dataset's Fréchet distance, precision/recall and
    two-sample tests are computed in (its `DatasetSpec.features` names one).

    name: what it is, for the record.
    load: `() -> (params, info)` of the trained feature network (`info["test_accuracy"]`),
      or None when there is none yet.
    embed: `(params, uint8 images) -> (N, d)` features.
    quality: `(params, uint8 samples, uint8 real images) -> dict`: FD against the cached
      reference statistics, and k-NN precision/recall against the real images.
    missing: the record's note when `load` gives None (what to run first).
    """

    name: str
    load: Callable
    embed: Callable
    quality: Callable
    missing: str


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` (divisor ``n - 1``), both float64.

    ``features`` is ``(n, ...)`` with ``n >= 2``; trailing axes are flattened to ``d``.
    """
    f = np.asarray(features, np.float64)
    f = f.reshape(len(f), -1)
    if len(f) < 2:
        raise ValueError(f"Need at least 2 feature vectors, got {len(f)}.")
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / (len(f) - 1)
    return mu, sigma


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via ``eigh`` (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})`` between ``N(mu1, S1)`` and ``N(mu2, S2)``.

    Computed in float64 as ``|mu1 - mu2|^2 + Tr S1 + Tr S2 - 2 sum_i sqrt(l_i)``, ``l_i``
    the eigenvalues of ``S1^{1/2} S2 S1^{1/2}`` (see the module docstring); covariances are
    symmetrised first, negative eigenvalues from round-off clipped to 0, and the result
    clipped at 0 (it is a squared distance). Symmetric in its two Gaussians up to round-off.
    Accuracy: relative ~1e-12 for well-conditioned covariances; with (near-)singular ones a
    round-off ``eps`` in a zero eigenvalue becomes ``sqrt(eps)`` under the square root, so
    expect an absolute error ~1e-8 times the covariance scale.

    Args:
      mu1, mu2: means, shape ``(d,)`` (a scalar is taken as ``d = 1``).
      sigma1, sigma2: covariances, shape ``(d, d)`` (a scalar is a 1-D variance).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"Shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {s2.shape}.")
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_sqrt = float(np.sum(np.sqrt(np.maximum(eig, 0.0))))
    diff = mu1 - mu2
    fd = float(diff @ diff) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * tr_sqrt
    return max(fd, 0.0)


def frechet_from_features(real, fake) -> float:
    """:func:`frechet_distance` between the Gaussians fitted (:func:`gaussian_stats`) to two
    ``(n, ...)`` feature sets (same trailing shape; sizes may differ)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def _sq_dists_chunk(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """``|a_i - b_j|^2`` for a chunk of rows ``a``, clipped at 0 (``b_sq = |b_j|^2``)."""
    d = np.sum(a * a, axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _knn_sq_radii(points: np.ndarray, k: int, chunk_size: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour among the others."""
    sq = np.sum(points * points, axis=1)
    radii = np.empty(len(points))
    for start in range(0, len(points), chunk_size):
        d = _sq_dists_chunk(points[start:start + chunk_size], points, sq)
        # Sorted row: index 0 is the point itself (distance 0), index k its k-th neighbour.
        radii[start:start + chunk_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def _inside_fraction(queries: np.ndarray, refs: np.ndarray, sq_radii: np.ndarray,
                     chunk_size: int) -> float:
    """Fraction of ``queries`` within ``sqrt(sq_radii[j])`` of some ``refs[j]``."""
    sq = np.sum(refs * refs, axis=1)
    inside = 0
    for start in range(0, len(queries), chunk_size):
        d = _sq_dists_chunk(queries[start:start + chunk_size], refs, sq)
        inside += int(np.sum(np.any(d <= sq_radii[None, :], axis=1)))
    return inside / len(queries)


def precision_recall(real_features, fake_features, k: int = 3,
                     chunk_size: int = 1024) -> dict:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-NN manifolds.

    ``precision = mean_{f in fake} 1[exists r in real: |f - r| <= r_k(r)]`` and
    ``recall = mean_{r in real} 1[exists f in fake: |r - f| <= r_k(f)]``, with ``r_k(a)`` the
    distance from ``a`` to its k-th nearest neighbour within its own set (the paper uses
    ``k = 3``). Euclidean distances in float64, computed ``chunk_size`` rows at a time, so
    memory is ``O(chunk_size * max(n_real, n_fake))``; time ``O((n_real + n_fake)^2 d)``.

    Args:
      real_features: ``(n_real, ...)``, ``n_real > k``; trailing axes are flattened.
      fake_features: ``(n_fake, ...)``, ``n_fake > k``, same trailing shape.
      k: neighbour rank that sets each ball's radius.
      chunk_size: rows of the distance matrix held in memory at once.

    Returns:
      ``{"precision": float, "recall": float, "k": k}``.
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    real = real.reshape(len(real), -1)
    fake = fake.reshape(len(fake), -1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature sizes differ: {real.shape} and {fake.shape}.")
    if k < 1 or len(real) <= k or len(fake) <= k:
        raise ValueError(f"Need 1 <= k < n_real, n_fake; got k={k}, "
                         f"n_real={len(real)}, n_fake={len(fake)}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    precision = _inside_fraction(fake, real, _knn_sq_radii(real, k, chunk_size), chunk_size)
    recall = _inside_fraction(real, fake, _knn_sq_radii(fake, k, chunk_size), chunk_size)
    return {"precision": precision, "recall": recall, "k": int(k)}
