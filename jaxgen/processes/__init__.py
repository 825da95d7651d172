"""Noise processes and probability paths: the shared mathematics that families and
samplers import (never the other way round).

``diffusion``: DDPM schedules (discrete and their continuous-time log ᾱ), the forward
marginal q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0), prediction-type converters.
``paths``: flow-matching paths x_t between noise x_0 and data x_1 and their velocities.
``noise``: noise-level ladders (NCSN's geometric σ's).
"""
