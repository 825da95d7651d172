"""Flow matching on the variance-preserving path with x1-prediction, in one file.

The network predicts the data point itself, x̂1_θ(x_t, t), on the cosine (VP) path

    x_t = sin(π t / 2) x1 + cos(π t / 2) x0,   x0 ~ N(0, I),   L = E ‖x̂1_θ(x_t, t) − x1‖² / D,

and the family converts x̂1 to the velocity u = α' x̂1 + σ' (x_t − α x̂1) / max(σ, 0.05) for
sampling and the exact ODE likelihood (`jaxgen.processes.paths`: the floor keeps the field
smooth near t = 1, where σ -> 0). Config: vp_x1_flow_matching_config.py.
"""

import dataclasses

import jax
import jax.numpy as jnp

import jaxgen
from jaxgen.families.flow_matching import objective as flow_matching
from jaxgen.families.flow_matching.config import FlowMatchingSample, FlowMatchingSettings


def vp_x1_loss(params, batch, rng, *, apply_fn, path, prediction):
    """E ‖x̂1_θ(x_t, t) − x1‖² / D on the VP path."""
    x1 = batch["x"]
    k0, kt = jax.random.split(rng)
    x0 = jax.random.normal(k0, x1.shape)
    t = jax.random.uniform(kt, (x1.shape[0],))
    a = jnp.sin(0.5 * jnp.pi * t)[:, None]
    s = jnp.cos(0.5 * jnp.pi * t)[:, None]
    x1_hat = apply_fn(params["model"], a * x1 + s * x0, t)
    mse = jnp.mean(jnp.square(x1_hat - x1))
    return mse, {"x1_mse": mse}


@jaxgen.objective(sample=FlowMatchingSample)
def make(ctx):
    """VP-path x1-prediction flow matching."""
    fm = FlowMatchingSettings(path="cosine", prediction="x1")
    return flow_matching.make(dataclasses.replace(ctx, settings=fm), loss=vp_x1_loss)
