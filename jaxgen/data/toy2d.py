"""2-D toy densities: numpy samplers and, where one exists, the exact log-density.

Every dataset is a `Toy2D` (see `get_toy`):

=============  ==================================================  =================
name           what                                                exact log p
=============  ==================================================  =================
8gaussians     8 Gaussians on the compass/diagonal directions      yes
ring8          8 Gaussians on a circle of radius 2                 yes
grid25         5x5 grid of Gaussians                               yes
checkerboard   uniform on 8 squares of side 2 in [-4, 4)^2         yes (-log 32)
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
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from jaxgen.core.errors import UserError

TOY_DATASETS = ("8gaussians", "ring8", "grid25", "moons", "checkerboard", "swissroll", "pinwheel")

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
      std: per-coordinate std of each mixture component, else None.
    """

    name: str
    sample: Sampler
    log_prob: LogProb | None
    modes: np.ndarray | None
    std: float | None


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


def _mixture(name: str, modes, std: float) -> Toy2D:
    modes = np.asarray(modes, dtype=np.float64)
    modes.setflags(write=False)
    return Toy2D(name, _mixture_sampler(modes, std), _mixture_log_prob(modes, std), modes,
                 float(std))


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
}
_MIXTURES = ("8gaussians", "ring8", "grid25")
assert tuple(_BUILDERS) == TOY_DATASETS


def get_toy(name: str, std: float | None = None) -> Toy2D:
    """The toy distribution `name` (one of `TOY_DATASETS`).

    Args:
      name: dataset name.
      std: per-coordinate std of every mixture component for the Gaussian
        mixtures (8gaussians, ring8, grid25); None keeps the paper's value.
        Passing a std for another dataset is an error (it would be ignored).

    Raises:
      ValueError: unknown name (the message lists the valid ones), or a bad std.
    """
    if name not in _BUILDERS:
        raise UserError(
            f"unknown toy dataset {name!r}; valid names: {', '.join(TOY_DATASETS)}")
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
