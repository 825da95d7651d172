"""nash-toy: gradient play on min_x max_y x·y, simultaneous vs alternating.

The lecture's GANs are a two-player game whose solution is a Nash equilibrium, and their
training "unstable". The smallest game that shows why is the bilinear one, f(x, y) = x·y,
min over x (the generator), max over y (the discriminator), whose only equilibrium is
(0, 0). With step size η, gradients taken by `jax.grad` of f:

  simultaneous  (x, y) <- (x − η y, y + η x): the map [[1, −η], [η, 1]] multiplies the
                distance to the equilibrium by exactly √(1 + η²) every step: it spirals out.
  alternating   x <- x − η y, then y <- y + η x (the new x), as jaxgen's trainer updates
                its players in turn: the map [[1, −η], [η, 1 − η²]] has determinant 1 and
                trace 2 − η², so for η < 2 its eigenvalues lie on the unit circle and
                H = x² + y² − η x y is conserved: it orbits, neither converging nor
                diverging.

(Gidel et al., 2019, "Negative Momentum for Improved Game Dynamics", Sec. 3: simultaneous
gradient steps diverge on bilinear games, alternating ones stay bounded.) Measured here:
each step's growth factor against √(1 + η²), the conserved H to float32 rounding, and the
range of the alternating radius against the bound its ellipse gives, √((1 + η/2)/(1 − η/2)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import viz

TITLE = "Gradient play on min_x max_y xy: simultaneous steps spiral out, alternating ones orbit"
CLAIM = ("The GAN game's solution is a Nash equilibrium, and its training is unstable "
         "(deck 000); on the bilinear game min_x max_y xy, simultaneous gradient steps "
         "spiral away from the equilibrium while alternating steps orbit it (Gidel et al., "
         "2019).")

ETAS = (0.05, 0.1, 0.2, 0.5)


def value(x, y):
    return x * y


def play(z0, eta: float, steps: int, alternating: bool):
    """(steps + 1, N, 2) states of gradient play from z0 (N, 2): x descends, y ascends."""
    gx, gy = jax.grad(value, 0), jax.grad(value, 1)
    grad_x, grad_y = jax.vmap(gx), jax.vmap(gy)

    def step(z, _):
        x, y = z[:, 0], z[:, 1]
        if alternating:  # the min player moves, then the max player sees its move
            x = x - eta * grad_x(x, y)
            y = y + eta * grad_y(x, y)
        else:
            x, y = x - eta * grad_x(x, y), y + eta * grad_y(x, y)
        z = jnp.stack([x, y], axis=1)
        return z, z

    _, zs = jax.lax.scan(step, z0, None, length=steps)
    return np.concatenate([np.asarray(z0)[None], np.asarray(zs)], axis=0)


def run(report, budget):
    steps = budget.steps(600, 120)
    z0 = jnp.asarray([[1.0, 0.0], [0.0, 0.8], [-0.6, -0.6], [0.4, -0.3]], jnp.float32)
    rows, worst_growth, worst_h, worst_range = [], 0.0, 0.0, 0.0
    for eta in ETAS:
        sim, alt = play(z0, eta, steps, False), play(z0, eta, steps, True)
        r_sim = np.linalg.norm(sim.astype(np.float64), axis=-1)
        growth = r_sim[1:] / r_sim[:-1]
        exact = np.sqrt(1 + eta ** 2)
        worst_growth = max(worst_growth, float(np.max(np.abs(growth / exact - 1))))
        a = alt.astype(np.float64)
        h = a[..., 0] ** 2 + a[..., 1] ** 2 - eta * a[..., 0] * a[..., 1]
        h_dev = float(np.max(np.abs(h / h[0] - 1)))
        worst_h = max(worst_h, h_dev)
        r_alt = np.linalg.norm(a, axis=-1)
        spread = float(np.max(r_alt.max(0) / r_alt.min(0)))
        bound = float(np.sqrt((1 + eta / 2) / (1 - eta / 2)))
        worst_range = max(worst_range, spread / bound)
        rows.append((eta, float(np.mean(r_sim[-1] / r_sim[0])), float(exact ** steps),
                     float(np.mean(r_alt[-1] / r_alt[0])), spread, bound, h_dev))
    report.table(("η", "simultaneous r_N / r_0", "(1 + η²)^(N/2)", "alternating r_N / r_0",
                  "alternating max r / min r", "ellipse bound", "max abs(H_k / H_0 − 1)"),
                 rows, f"{steps} steps from 4 starting points (mean over them where a ratio)")
    report.compare("simultaneous: max over steps of abs(growth / √(1 + η²) − 1)", worst_growth,
                   0.0, "the linear map's exact factor", worst_growth < 1e-4)
    report.compare("alternating: max abs(H_k / H_0 − 1), H = x² + y² − η x y", worst_h, 0.0,
                   "conserved by the alternating map", worst_h < 1e-3)
    report.compare("alternating: radius range over its ellipse bound (≤ 1: bounded orbit)",
                   round(worst_range, 6), "≤ 1", "det = 1, trace in (−2, 2)",
                   worst_range <= 1 + 1e-4)
    report.verdict_from_rows(
        f"simultaneous steps grow the radius by √(1 + η²) per step to {worst_growth:.1e}; "
        f"alternating steps conserve H to {worst_h:.1e} and stay within their ellipse",
        f"{steps} steps from 4 starts at {len(ETAS)} step sizes; no training")
    eta = 0.1
    lim = ((-4.0, 4.0), (-4.0, 4.0))
    viz.save_trajectories(play(z0, eta, steps, False), report.path("simultaneous.png"),
                          lim=lim, title=f"simultaneous steps, η = {eta}")
    viz.save_trajectories(play(z0, eta, steps, True), report.path("alternating.png"),
                          lim=lim, title=f"alternating steps, η = {eta}")
    report.figure("simultaneous.png", f"simultaneous gradient play, η = {eta}, {steps} steps: "
                                      "the spiral away from (0, 0) (its end points, about "
                                      "20x as far out as the starts at full budget, are off "
                                      "the plot)")
    report.figure("alternating.png", f"alternating gradient play, η = {eta}, {steps} steps: "
                                     "closed orbits around (0, 0)")
