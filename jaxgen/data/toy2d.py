"""2-D toy densities: numpy samplers and, where one exists, the exact log-density.

Every dataset is a `Toy2D` (see `get_toy`):

=============  ==================================================  =================
name           what                                                exact log p
=============  ==================================================  =================
8gaussians     8 Gaussians on the compass/diagonal directions      yes
ring8          8 Gaussians on a circle of radius 2                 yes
grid25         5x5 grid of Gaussians                               yes
checkerboard   uniform on 8 squares of side 2 in [-4, 4)^2         yes (-log 32)
random_mixture random anisotropic Gaussians, unequal weights       yes
moons          two noisy interleaved half circles                  no
swissroll      noisy 2-D swiss roll                                no
pinwheel       5 curved arms                                       no
=============  ==================================================  =================

Parameters follow the papers that made these sets standard (cited on each
builder below); the mixtures' std can be overridden (`get_toy(name, std=...)`),
`std=None` meaning the paper's value. All samplers are functions of a
`np.random.Generator` only, so a seeded generator gives the same points on
every machine, and return float32 `(n, 2)`; log-densities take any `(n, 2)`
array and return float64 `(n,)` in nats.

`random_mixture` is data no config was tuned on: `random_mixture(seed, k)`
draws k full-covariance Gaussians with random means, orientations, anisotropy
and unequal weights, deterministically from `seed` (see `random_mixture`).
Every Gaussian mixture carries its components (`weights`, `covs`), so its
samples can be assigned to components (`jaxgen.eval.sample_quality`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from jaxgen.kernel.errors import UserError

TOY_DATASETS = ("8gaussians", "ring8", "grid25", "moons", "checkerboard", "swissroll", "pinwheel",
                "random_mixture")

Sampler = Callable[[np.random.Generator, int], np.ndarray]
LogProb = Callable[[np.ndarray], np.ndarray]


# eq=False: the generated __eq__ would compare the `modes` arrays with `==`,
# which numpy cannot turn into one bool; identity equality/hashing is kept.
@dataclasses.dataclass(frozen=True, eq=False)
class Toy2D:
    """A 2-D toy distribution.

    Attributes:
      name: one of `TOY_DATASETS`.
      sample: `sample(rng: np.random.Generator, n) -> float32 (n, 2)`.
      log_prob: `log_prob(x: (n, 2)) -> float64 (n,)` exact log-density in nats,
        or None where no closed form exists (moons, swissroll, pinwheel).
      modes: `(K, 2)` float64 means of a Gaussian mixture, else None.
      std: per-coordinate std of each mixture component when all are isotropic with
        one std (8gaussians, ring8, grid25), else None.
      weights: `(K,)` float64 component weights of a Gaussian mixture (sum 1), else None.
      covs: `(K, 2, 2)` float64 component covariances of a Gaussian mixture, else None.
    """

    name: str
    sample: Sampler
    log_prob: LogProb | None
    modes: np.ndarray | None
    std: float | None
    weights: np.ndarray | None = None
    covs: np.ndarray | None = None


# --------------------------------------------------------------------- helpers


def _check_n(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise UserError(f"n must be a non-negative int, got {n!r}")
    return int(n)


def _as_points(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise UserError(f"expected points of shape (n, 2), got shape {x.shape}")
    return x


def _mixture_sampler(modes: np.ndarray, std: float) -> Sampler:
    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        n = _check_n(n)
        k = rng.integers(len(modes), size=n)
        eps = rng.standard_normal((n, 2))
        return (modes[k] + std * eps).astype(np.float32)

    return sample


def _mixture_log_prob(modes: np.ndarray, std: float) -> LogProb:
    """log p(x) = logsumexp_k log N(x; mu_k, std^2 I) - log K (equal weights)."""
    log_norm = -math.log(len(modes)) - math.log(2.0 * math.pi * std * std)
    chunk = 65536  # bounds the (chunk, K) temporary

    def log_prob(x) -> np.ndarray:
        x = _as_points(x)
        out = np.empty(len(x), dtype=np.float64)
        for lo in range(0, len(x), chunk):
            xc = x[lo:lo + chunk]
            a = np.empty((len(xc), len(modes)))
            for k, mu in enumerate(modes):
                a[:, k] = -0.5 * ((xc - mu) ** 2).sum(axis=1) / (std * std)
            m = a.max(axis=1)
            out[lo:lo + chunk] = m + np.log(np.exp(a - m[:, None]).sum(axis=1))
        return out + log_norm

    return log_prob


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _mixture(name: str, modes, std: float) -> Toy2D:
    modes = _frozen(modes)
    k = len(modes)
    return Toy2D(name, _mixture_sampler(modes, std), _mixture_log_prob(modes, std), modes,
                 float(std), _frozen(np.full(k, 1.0 / k)),
                 _frozen(np.broadcast_to(std * std * np.eye(2), (k, 2, 2))))


# ------------------------------------------------------------------- mixtures

EIGHT_GAUSSIANS_SCALE = 4.0
EIGHT_GAUSSIANS_DIVISOR = 1.414  # FFJORD divides by 1.414, not sqrt(2); kept for fidelity
EIGHT_GAUSSIANS_STD = 0.5 / EIGHT_GAUSSIANS_DIVISOR
RING8_RADIUS = 2.0
RING8_STD = 0.02
GRID25_STD = 0.05


def _eight_gaussians(std: float | None) -> Toy2D:
    """8 Gaussians, as in FFJORD's toy data (Grathwohl et al., 2019, `toy_data.py`).

    FFJORD puts centers `4 * c` on the 8 unit directions
    c in {(+-1, 0), (0, +-1), (+-1/sqrt2, +-1/sqrt2)}, adds N(0, 0.5^2 I) noise and
    divides everything by 1.414, so the mixture has means `4 c / 1.414` and
    std `0.5 / 1.414 ~= 0.354`. `std` overrides that final std.
    """
    s = 1.0 / math.sqrt(2.0)
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
    modes = EIGHT_GAUSSIANS_SCALE * np.asarray(directions) / EIGHT_GAUSSIANS_DIVISOR
    return _mixture("8gaussians", modes, EIGHT_GAUSSIANS_STD if std is None else std)


def _ring8(std: float | None) -> Toy2D:
    """8 Gaussians evenly on a circle of radius 2, std 0.02.

    The "2D ring" of VEEGAN (Srivastava et al., 2017), reused by PacGAN
    (Lin et al., 2018): means `2 (cos(2 pi k / 8), sin(2 pi k / 8))`, k = 0..7.
    """
    angles = 2.0 * np.pi * np.arange(8) / 8
    modes = RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _mixture("ring8", modes, RING8_STD if std is None else std)


def _grid25(std: float | None) -> Toy2D:
    """5x5 grid of Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.

    The "2D grid" of VEEGAN (Srivastava et al., 2017) as used by PacGAN
    (Lin et al., 2018) to count modes.
    """
    v = np.arange(-4.0, 5.0, 2.0)
    modes = np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(-1, 2)
    return _mixture("grid25", modes, GRID25_STD if std is None else std)


# ------------------------------------------------------------- random mixture

RANDOM_MIXTURE_SEED = 1  # data.mixture_seed's default
RANDOM_MIXTURE_COMPONENTS = 6  # data.components' default
RANDOM_MIXTURE_MAX_COMPONENTS = 8
RANDOM_MIXTURE_BOX = 2.5  # means uniform in [-2.5, 2.5]^2
RANDOM_MIXTURE_MAJOR_STD = (0.2, 0.5)  # std along the major axis, uniform in this range
RANDOM_MIXTURE_ANISOTROPY = (2.0, 4.0)  # major / minor std, uniform in this range
RANDOM_MIXTURE_WEIGHT_RATIO = 4.0  # unnormalised weights uniform in [1, 4]
RANDOM_MIXTURE_SEPARATION = 4.0  # |mu_i - mu_j| >= 4 (s_i(u) + s_j(u)), u their direction


def gaussian_mixture_log_prob(x, weights, means, covs) -> np.ndarray:
    """log sum_k w_k N(x; mu_k, Sigma_k) in float64, for x `(n, 2)`; returns `(n,)`."""
    return logsumexp_rows(component_log_probs(x, weights, means, covs))


def component_log_probs(x, weights, means, covs) -> np.ndarray:
    """`(n, K)` float64: log w_k + log N(x; mu_k, Sigma_k) (the unnormalised log
    responsibilities; argmax over k is the most probable component of x)."""
    x = _as_points(x)
    out = np.empty((len(x), len(means)))
    for k, (w, mu, cov) in enumerate(zip(weights, means, covs)):
        chol = np.linalg.cholesky(cov)
        z = np.linalg.solve(chol, (x - mu).T)  # L^-1 (x - mu), (2, n)
        out[:, k] = (math.log(w) - math.log(2.0 * math.pi) - np.log(np.diag(chol)).sum()
                     - 0.5 * (z * z).sum(axis=0))
    return out


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=1)
    return m + np.log(np.exp(a - m[:, None]).sum(axis=1))


def _separated(mu, cov, means, covs) -> bool:
    for m2, c2 in zip(means, covs):
        d = mu - m2
        dist = float(np.linalg.norm(d))
        u = d / dist
        if dist < RANDOM_MIXTURE_SEPARATION * (math.sqrt(u @ cov @ u) + math.sqrt(u @ c2 @ u)):
            return False
    return True


def random_mixture(seed: int = RANDOM_MIXTURE_SEED,
                   components: int = RANDOM_MIXTURE_COMPONENTS) -> Toy2D:
    """A random mixture of `components` anisotropic 2-D Gaussians, a function of `seed` only.

    From `np.random.default_rng([seed, components])`, component by component:

    * covariance R(a) diag(s^2, (s/r)^2) R(a)^T with orientation a ~ U[0, pi), major
      std s ~ U[0.2, 0.5] and anisotropy r ~ U[2, 4] (minor std 0.05 to 0.25);
    * mean ~ U[-2.5, 2.5]^2, redrawn until it lies at least 4 (s_i(u) + s_j(u)) from
      every earlier mean, s(u) a component's std along the direction u between the
      two means (so a sample's most probable component is its own but for < 1e-4 of
      the mass, and mode weights can be read off samples); after 1000 redraws the
      whole mixture is redrawn;
    * weight proportional to U[1, 4], then normalised (unequal weights).

    The numbers are drawn in a fixed order from one generator, so a seed gives the
    same mixture on every machine.

    Raises:
      UserError: seed not a non-negative int, or components outside [1, 8].
    """
    for what, v, lo, hi in (("seed", seed, 0, None),
                            ("components", components, 1, RANDOM_MIXTURE_MAX_COMPONENTS)):
        if (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < lo
                or (hi is not None and v > hi)):
            rng_txt = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise UserError(f"random_mixture: {what} must be an int {rng_txt}, got {v!r}")
    rng = np.random.default_rng([int(seed), int(components)])
    while True:
        means, covs, weights = [], [], []
        for _ in range(components):
            a = rng.uniform(0.0, math.pi)
            s = rng.uniform(*RANDOM_MIXTURE_MAJOR_STD)
            r = rng.uniform(*RANDOM_MIXTURE_ANISOTROPY)
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            cov = rot @ np.diag([s * s, (s / r) ** 2]) @ rot.T
            for _ in range(1000):
                mu = rng.uniform(-RANDOM_MIXTURE_BOX, RANDOM_MIXTURE_BOX, size=2)
                if _separated(mu, cov, means, covs):
                    break
            else:
                break  # crowded: redraw the whole mixture
            means.append(mu)
            covs.append(0.5 * (cov + cov.T))
            weights.append(rng.uniform(1.0, RANDOM_MIXTURE_WEIGHT_RATIO))
        if len(means) == components:
            break
    weights = _frozen(np.asarray(weights) / np.sum(weights))
    means, covs = _frozen(means), _frozen(covs)
    chols = np.linalg.cholesky(covs)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        n = _check_n(n)
        k = rng.choice(len(weights), size=n, p=weights)
        eps = rng.standard_normal((n, 2))
        return (means[k] + np.einsum("nij,nj->ni", chols[k], eps)).astype(np.float32)

    def log_prob(x) -> np.ndarray:
        return gaussian_mixture_log_prob(x, weights, means, covs)

    return Toy2D("random_mixture", sample, log_prob, means, None, weights, covs)


# ---------------------------------------------------------------- checkerboard

CHECKERBOARD_AREA = 32.0


def _checkerboard_log_prob(x) -> np.ndarray:
    """-log 32 on the support, -inf elsewhere.

    Support (derived from FFJORD's sampler, see `_checkerboard`): the squares
    [2i, 2i+2) x [2j, 2j+2) with i, j in {-2, -1, 0, 1} and i + j even --
    8 squares of area 4, total area 32.
    """
    x = _as_points(x)
    cell = np.floor(x / 2.0)
    inside = np.all((cell >= -2) & (cell <= 1), axis=1) & ((cell.sum(axis=1) % 2) == 0)
    return np.where(inside, -math.log(CHECKERBOARD_AREA), -np.inf)


def _checkerboard_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    """FFJORD's checkerboard sampler (Grathwohl et al., 2019, `toy_data.py`).

        x1 ~ U[-2, 2),  x2 = U[0, 1) - 2 * randint{0, 1} + (floor(x1) mod 2),  x = 2 (x1, x2)

    computed in float64; the float32 result is then clipped into the float64
    point's own half-open square, so rounding can never carry a point just
    below a square's edge onto the next (empty) square.
    """
    n = _check_n(n)
    x1 = rng.random(n) * 4.0 - 2.0
    x2 = rng.random(n) - 2.0 * rng.integers(0, 2, size=n) + np.floor(x1) % 2
    x = 2.0 * np.stack([x1, x2], axis=1)
    lo = 2.0 * np.floor(x / 2.0)
    x32 = x.astype(np.float32)
    hi32 = np.nextafter((lo + 2.0).astype(np.float32), np.float32(-np.inf))
    return np.clip(x32, lo.astype(np.float32), hi32)


def _checkerboard(std: float | None) -> Toy2D:
    """Checkerboard of FFJORD (Grathwohl et al., 2019): uniform on 8 squares of side 2.

    Working through FFJORD's sampler: for x1 in [k, k+1) (k = -2..1) the offset
    floor(x1) mod 2 is 0 for even k and 1 for odd k, so x2 lies in
    [0, 1) u [-2, -1) (k even) or [1, 2) u [-1, 0) (k odd), each with probability
    1/2. After the factor 2 this is the squares [2i, 2i+2) x [2j, 2j+2) with
    i + j even, each with mass 1/8 and uniform inside: density 1/32.
    """
    del std
    return Toy2D("checkerboard", _checkerboard_sample, _checkerboard_log_prob, None, None)


# ------------------------------------------------------- no closed-form density


def _moons_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    n = _check_n(n)
    upper = rng.random(n) < 0.5
    theta = rng.random(n) * np.pi
    x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x, y], axis=1) + 0.1 * rng.standard_normal((n, 2))
    return (2.0 * pts + np.array([-1.0, -0.2])).astype(np.float32)


def _moons(std: float | None) -> Toy2D:
    """Two moons as in FFJORD (Grathwohl et al., 2019, `toy_data.py`).

    FFJORD calls `sklearn.datasets.make_moons(noise=0.1)` and maps x -> 2x + (-1, -0.2):
    upper moon (cos t, sin t), lower moon (1 - cos t, 1/2 - sin t), t in [0, pi],
    plus N(0, 0.1^2 I). sklearn spaces t evenly and splits n exactly in half;
    here t ~ U[0, pi] and the moon is a fair coin, so the points are i.i.d.
    Range about [-3.2, 3.2] x [-1.4, 2.0].
    """
    del std
    return Toy2D("moons", _moons_sample, None, None, None)


def _swissroll_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    n = _check_n(n)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.standard_normal((n, 2))
    return (pts / 5.0).astype(np.float32)


def _swissroll(std: float | None) -> Toy2D:
    """Swiss roll as in FFJORD (Grathwohl et al., 2019, `toy_data.py`).

    FFJORD keeps columns (0, 2) of `sklearn.datasets.make_swiss_roll(noise=1.0)`
    and divides by 5: t ~ 1.5 pi (1 + 2 U[0, 1)), x = (t cos t, t sin t) + N(0, I),
    then x / 5. Range about [-3, 3]^2.
    """
    del std
    return Toy2D("swissroll", _swissroll_sample, None, None, None)


PINWHEEL_ARMS = 5
PINWHEEL_RADIAL_STD = 0.3
PINWHEEL_TANGENTIAL_STD = 0.1
PINWHEEL_RATE = 0.25


def _pinwheel_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    n = _check_n(n)
    arm = rng.integers(PINWHEEL_ARMS, size=n)
    f = rng.standard_normal((n, 2)) * np.array([PINWHEEL_RADIAL_STD, PINWHEEL_TANGENTIAL_STD])
    f[:, 0] += 1.0
    angle = 2.0 * np.pi * arm / PINWHEEL_ARMS + PINWHEEL_RATE * np.exp(f[:, 0])
    c, s = np.cos(angle), np.sin(angle)
    # FFJORD: einsum("ti,tij->tj", f, R) with R = [[c, -s], [s, c]], i.e. f @ R.
    pts = np.stack([f[:, 0] * c + f[:, 1] * s, -f[:, 0] * s + f[:, 1] * c], axis=1)
    return (2.0 * pts).astype(np.float32)


def _pinwheel(std: float | None) -> Toy2D:
    """Pinwheel as in FFJORD (Grathwohl et al., 2019, `toy_data.py`).

    5 arms, radial std 0.3, tangential std 0.1, rate 0.25: a feature
    f ~ (1 + 0.3 N, 0.1 N) is rotated by 2 pi k / 5 + 0.25 exp(f_0), then scaled
    by 2. FFJORD gives each arm exactly n // 5 points; here the arm is drawn
    uniformly so the points are i.i.d. and any n works. Range about [-3.5, 3.5]^2.
    """
    del std
    return Toy2D("pinwheel", _pinwheel_sample, None, None, None)


_BUILDERS = {
    "8gaussians": _eight_gaussians,
    "ring8": _ring8,
    "grid25": _grid25,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "swissroll": _swissroll,
    "pinwheel": _pinwheel,
    "random_mixture": None,  # random_mixture(seed, components), see get_toy
}
_MIXTURES = ("8gaussians", "ring8", "grid25")
assert tuple(_BUILDERS) == TOY_DATASETS


def get_toy(name: str, std: float | None = None, *, mixture_seed: int | None = None,
            components: int | None = None) -> Toy2D:
    """The toy distribution `name` (one of `TOY_DATASETS`).

    Args:
      name: dataset name.
      std: per-coordinate std of every mixture component for the Gaussian
        mixtures (8gaussians, ring8, grid25); None keeps the paper's value.
        Passing a std for another dataset is an error (it would be ignored).
      mixture_seed, components: random_mixture only (None: its defaults, seed 1 and
        6 components); an error for any other dataset.

    Raises:
      ValueError: unknown name (the message lists the valid ones), or a bad std.
    """
    if name not in _BUILDERS:
        raise UserError(
            f"unknown toy dataset {name!r}; valid names: {', '.join(TOY_DATASETS)}")
    if name == "random_mixture":
        if std is not None:
            raise UserError(f"std={std!r} does not apply to random_mixture (its covariances "
                            "are drawn from mixture_seed); leave it unset (None)")
        return random_mixture(RANDOM_MIXTURE_SEED if mixture_seed is None else mixture_seed,
                              RANDOM_MIXTURE_COMPONENTS if components is None else components)
    if mixture_seed is not None or components is not None:
        raise UserError(f"mixture_seed / components only apply to random_mixture, not to "
                        f"{name!r}; leave them unset (None)")
    if std is not None:
        if name not in _MIXTURES:
            raise UserError(
                f"std={std!r} only applies to the Gaussian mixtures "
                f"({', '.join(_MIXTURES)}), not to {name!r}; leave it unset (None)")
        if not (isinstance(std, (int, float, np.floating)) and math.isfinite(std) and std > 0):
            raise UserError(f"std must be a positive finite number, got {std!r}")
        std = float(std)
    return _BUILDERS[name](std)


def entropy(toy: Toy2D, n: int = 200_000, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo estimate of the differential entropy H = -E_p[log p] in nats.

    Draws `n` samples with `np.random.default_rng(seed)` and returns
    `(estimate, stderr)` where stderr = std(log p) / sqrt(n). For the
    checkerboard log p is constant, so the estimate is log 32 up to float error
    and the stderr is 0.

    Raises:
      ValueError: the toy has no closed-form log-density, or n < 2.
    """
    if toy.log_prob is None:
        raise UserError(f"{toy.name!r} has no closed-form log-density; entropy needs one")
    n = _check_n(n)
    if n < 2:
        raise UserError(f"n must be at least 2 for a standard error, got {n}")
    x = toy.sample(np.random.default_rng(seed), n)
    lp = toy.log_prob(x)
    if not np.all(np.isfinite(lp)):
        raise RuntimeError(f"{toy.name}: sampler produced points outside the support")
    return float(-lp.mean()), float(lp.std(ddof=1) / math.sqrt(n))
