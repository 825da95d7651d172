"""The probability-flow ODE likelihood with the smooth schedule vs the former one.

    python benchmarks/pf_ode_schedule.py                          # the exact Gaussian case
    python benchmarks/pf_ode_schedule.py --workdir runs/ddpm_toy2d  # + a trained DDPM's NLL

`log ᾱ(u)` for continuous u is the natural cubic spline through the T grid points
(`jaxgen.processes.diffusion.log_alpha_bar_continuous`). Until then it was
linear between them, so d log ᾱ/du jumped at every inner grid point. "linear" below is that
former interpolation, rebuilt here (and patched into the module for the run that uses it).

1. Exact case: data N(0.5, 0.3²) per dimension and the exact ε, for which log p(x) is
   known in closed form (tests/test_ddpm.py derives it); max |error| over 64 points of the
   RK4 log-likelihood (exact divergence) against the number of steps, d = 2 and 16.
2. With --workdir (a trained DDPM on a 2-D toy density): `jaxgen eval`'s PF-ODE NLL of the
   test points with either interpolation, beside the true NLL (the density's own).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

STEPS = (25, 50, 100, 200, 400)


def linear_log_alpha_bar(s, u):
    """The former interpolation: log ᾱ linear between the grid points (u T, log ᾱ_t)."""
    import jax.numpy as jnp
    T = s.num_steps
    y = jnp.clip(jnp.asarray(u, jnp.float32) * T, 0.0, float(T))
    k = jnp.clip(jnp.floor(y).astype(jnp.int32), 0, T - 1)
    f = s.log_alpha_bar
    return f[k] + (y - k) * (f[k + 1] - f[k])


def linear_dlog_alpha_bar_du(s, u):
    import jax.numpy as jnp
    T = s.num_steps
    y = jnp.clip(jnp.asarray(u, jnp.float32) * T, 0.0, float(T))
    k = jnp.clip(jnp.floor(y).astype(jnp.int32), 0, T - 1)
    f = s.log_alpha_bar
    return T * (f[k + 1] - f[k])


@contextlib.contextmanager
def interpolation(kind: str):
    """Patches `jaxgen.processes.diffusion`'s continuous schedule for the block."""
    from jaxgen.processes import diffusion as dp
    saved = dp.log_alpha_bar_continuous, dp.dlog_alpha_bar_du
    if kind == "linear":
        dp.log_alpha_bar_continuous, dp.dlog_alpha_bar_du = (linear_log_alpha_bar,
                                                             linear_dlog_alpha_bar_du)
    try:
        yield
    finally:
        dp.log_alpha_bar_continuous, dp.dlog_alpha_bar_du = saved


def gaussian_errors(dim: int, steps, mu: float = 0.5, std: float = 0.3) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxgen.processes import diffusion as dp
    from jaxgen.samplers import ode
    from jaxgen.samplers.ddpm import probability_flow_velocity
    s = dp.make_schedule("linear", 1000)

    def eps(x, u):  # E[ε | x_u] for N(mu, std²) data
        ab = jnp.exp(dp.log_alpha_bar_continuous(s, u))
        a, b = jnp.sqrt(ab), jnp.sqrt(1.0 - ab)
        return b * (x - a * mu) / (a ** 2 * std ** 2 + b ** 2)

    x = mu + std * jax.random.normal(jax.random.key(0), (64, dim))
    ab0, abT = float(s.alpha_bars[1]), float(s.alpha_bars[-1])
    v0, vT = ab0 * std ** 2 + 1 - ab0, abT * std ** 2 + 1 - abT
    z = math.sqrt(abT) * mu + (x - math.sqrt(ab0) * mu) * math.sqrt(vT / v0)
    want = dp.sum_event(dp.normal_log_prob(z, 0.0, 1.0)) + 0.5 * dim * math.log(vT / v0)
    v = probability_flow_velocity(eps, s, 1.0 / 1000)
    out = {}
    for n in steps:
        logp, _ = jax.jit(lambda xx, n=n: ode.log_likelihood(
            v, xx, num_steps=n, method="rk4", divergence="exact"))(x)
        out[n] = float(jnp.max(jnp.abs(logp - want)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", default="2,16")
    p.add_argument("--workdir", default=None, help="a trained DDPM run on a 2-D toy density")
    p.add_argument("--eval-steps", type=int, default=100, help="RK4 steps of the eval")
    args = p.parse_args(argv)
    from jaxgen.runner.logging import format_table

    rows = []
    for dim in (int(d) for d in args.dims.split(",")):
        for kind in ("spline", "linear"):
            with interpolation(kind):
                err = gaussian_errors(dim, STEPS)
            rows.append((dim, kind, *(f"{err[n]:.2e}" for n in STEPS)))
            print(f"d={dim} {kind}: {err}", flush=True)
    print(format_table(rows, header=("d", "log ᾱ(u)", *(f"RK4 x {n}" for n in STEPS)), title=(
        "\nPF-ODE log-likelihood, exact ε of N(0.5, 0.3²) data: max |error| (nats) over "
        "64 points")))

    if args.workdir:
        from jaxgen.eval.evaluate import evaluate
        from jaxgen.kernel import config as config_lib
        cfg = config_lib.from_json_file(f"{args.workdir}/config.json")
        res = {}
        for kind in ("spline", "linear"):
            with interpolation(kind):
                res[kind] = evaluate(cfg, args.workdir, write=False, progress=False, force=True,
                                     overrides=[f"eval.ode_steps={args.eval_steps}"])
        keys = sorted(k for k in res["spline"] if isinstance(res["spline"][k], (int, float)))
        print(format_table([(k, res["spline"][k], res["linear"][k]) for k in keys],
                           header=("metric", "spline log ᾱ (now)", "linear log ᾱ (before)"),
                           title=f"\njaxgen eval of {args.workdir}, either interpolation"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
