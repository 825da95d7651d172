"""Sample quality on a Gaussian mixture with known components: sliced Wasserstein-1
against a true sample (in units of its two-true-sample floor) and the mode-weight
total variation.

* **Sliced W1** (Rabin et al., 2011; Bonneel et al., 2015):
  SW1(P, Q) = E_θ W1(<θ, X>, <θ, Y>), θ uniform on the unit circle. In 1-D, W1 between
  two equal-size point sets is the mean |x_(i) − y_(i)| of the sorted values (the
  monotone coupling is optimal). In 2-D the directions here are `num_directions`
  equally spaced angles in [0, π) (θ and −θ give the same W1) with a random phase, a
  midpoint rule whose error for a smooth integrand falls like 1/L²; in d > 2 they are
  random unit vectors. A shift Y = X + v gives exactly the mean of |<v, θ>| over the
  directions, → 2|v|/π for uniform θ in 2-D.
* **Floor**: SW1 between two independent true samples of the same size n: what SW1
  reads for a perfect model at this n (it shrinks like 1/√n). A model "within 4x the
  floor" has SW1(samples, true) ≤ 4 · floor.
* **Mode-weight TV**: each sample goes to its most probable component,
  argmax_k w_k N(x; μ_k, Σ_k) (the posterior responsibility); p̂ is the histogram
  over the K components (a non-finite sample counts in an extra bin of true weight 0),
  and TV = ½ Σ_k |p̂_k − w_k| (0: every component has its weight; 1 − w_k when all
  mass goes to component k). On the random mixtures (`toy2d.random_mixture`) a true
  sample's own component is its most probable one but for < 1e-4 of the mass, so a
  true sample's TV is sampling noise alone (`tv_floor`, reported beside it).
"""

from __future__ import annotations

import math

import numpy as np

from jaxgen.kernel.errors import UserError

__all__ = ["sliced_w1", "sliced_w1_floor", "assign_components", "mode_weight_tv",
           "mixture_sample_metrics", "W1_FLOOR_FACTOR", "MODE_TV_TARGET"]

W1_FLOOR_FACTOR = 4.0  # samplers' target: SW1 within 4x the two-true-sample floor
MODE_TV_TARGET = 0.1  # and a mode-weight TV below 0.1


def _points(x, what: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise UserError(f"{what} must be a non-empty (n, d) array, got shape {x.shape}")
    return x


def directions(dim: int, num: int, rng: np.random.Generator) -> np.ndarray:
    """`(num, dim)` unit vectors: equally spaced angles in [0, π) with a random phase
    (dim 2), else random directions (normalised Gaussians)."""
    if dim == 2:
        a = (np.arange(num) + rng.uniform()) * (math.pi / num)
        return np.stack([np.cos(a), np.sin(a)], axis=1)
    g = rng.standard_normal((num, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def sliced_w1(x, y, num_directions: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 between two equal-size point sets `(n, d)` (module doc).

    Raises:
      UserError: shapes differ, non-finite points, or num_directions < 1.
    """
    x, y = _points(x, "x"), _points(y, "y")
    if x.shape != y.shape:
        raise UserError(f"sliced_w1 compares equal-size sets (exact 1-D W1 by sorting); got "
                        f"{x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise UserError("sliced_w1: the points must be finite")
    if num_directions < 1:
        raise UserError(f"num_directions must be >= 1, got {num_directions}")
    theta = directions(x.shape[1], num_directions, np.random.default_rng(seed))
    px = np.sort(x @ theta.T, axis=0)  # (n, L)
    py = np.sort(y @ theta.T, axis=0)
    return float(np.mean(np.abs(px - py)))


def sliced_w1_floor(sample, n: int, repeats: int = 5, seed: int = 0,
                    num_directions: int = 256) -> float:
    """Mean over `repeats` of SW1 between two independent true samples of size n;
    `sample(rng, n)` draws the true distribution (a `Toy2D.sample`)."""
    rng = np.random.default_rng([seed, 77])
    return float(np.mean([sliced_w1(sample(rng, n), sample(rng, n), num_directions, seed + r)
                          for r in range(repeats)]))


def assign_components(x, weights, means, covs) -> np.ndarray:
    """(n,) index of each point's most probable component (−1 for a non-finite point)."""
    from jaxgen.data.toy2d import component_log_probs
    x = np.asarray(x, np.float64)
    finite = np.all(np.isfinite(x), axis=1)
    k = np.full(len(x), -1)
    if finite.any():
        k[finite] = np.argmax(component_log_probs(x[finite], weights, means, covs), axis=1)
    return k


def mode_weight_tv(assignments, weights) -> float:
    """½ Σ_k |p̂_k − w_k| for component indices in [0, K) (−1: no component, weight 0)."""
    a = np.asarray(assignments)
    w = np.asarray(weights, np.float64)
    if a.ndim != 1 or len(a) == 0:
        raise UserError(f"assignments must be a non-empty 1-D array, got shape {a.shape}")
    if a.min() < -1 or a.max() >= len(w):
        raise UserError(f"assignments must lie in [-1, {len(w) - 1}]")
    counts = np.bincount(a + 1, minlength=len(w) + 1)
    p = counts / len(a)
    return float(0.5 * (p[0] + np.sum(np.abs(p[1:] - w))))


def mixture_sample_metrics(samples, held_out, toy, seed: int = 0) -> dict:
    """{"sliced_w1", "sliced_w1_floor", "sliced_w1_ratio", "mode_tv", "mode_tv_floor"} of
    model `samples` against the equal-size true sample `held_out`, on a Toy2D with
    components (`weights`, `covs`): the module doc's metrics."""
    samples = np.asarray(samples, np.float64)
    held_out = np.asarray(held_out, np.float64)
    n = len(samples)
    finite = np.all(np.isfinite(samples), axis=1)
    sw = (sliced_w1(samples, held_out, seed=seed) if finite.all() else float("inf"))
    floor = sliced_w1_floor(toy.sample, n, seed=seed)
    tv = mode_weight_tv(assign_components(samples, toy.weights, toy.modes, toy.covs),
                        toy.weights)
    tv_floor = mode_weight_tv(assign_components(held_out, toy.weights, toy.modes, toy.covs),
                              toy.weights)
    return {"sliced_w1": sw, "sliced_w1_floor": floor, "sliced_w1_ratio": sw / floor,
            "mode_tv": tv, "mode_tv_floor": tv_floor, "quality_samples": n}
