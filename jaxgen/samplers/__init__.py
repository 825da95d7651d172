"""Samplers: numerical procedures that turn a trained model into samples or
likelihoods.

``ode``: fixed-step ODE solvers (Euler, Heun, RK4) in one compiled loop, flow
sampling, and the exact (or Hutchinson-estimated) log-likelihood of a
continuous flow via the instantaneous change of variables.

``ddpm``: ancestral sampling (the lecture's Algorithm 2), DDIM, DPM-Solver++(2M)
(``dpm_solver_pp``, a second-order multistep solver of the probability-flow ODE), and
the probability-flow ODE of a diffusion as a velocity (integrated by ``ode``).

``langevin``: Langevin dynamics and annealed Langevin over a noise ladder (NCSN).
"""

from jaxgen.samplers.ode import (
    METHODS,
    divergence_exact,
    divergence_hutchinson,
    log_likelihood,
    odeint,
    sample,
    standard_normal_logpdf,
)

__all__ = [
    "METHODS",
    "divergence_exact",
    "divergence_hutchinson",
    "log_likelihood",
    "odeint",
    "sample",
    "standard_normal_logpdf",
]
