"""Host-to-model transforms, run inside the jitted step.

Images are stored and fed as uint8 (4x less to move than float32) and turned
into model space here:

    y = (x + u) / 256,  u ~ U[0, 1)^D         (uniform dequantisation)
    z = 2·y − 1  ∈ [−1, 1)

so a continuous density p(z) over model space gives a lower bound on the
probability of the 8-bit image; see `jaxgen.eval.likelihood` for the bits/dim
convention every family shares. Points ("points" data) are used as they are;
"tokens" (integer code maps, e.g. a VQ-VAE's) reach the model as float32 ids
k ∈ {0, …, K−1}, never dequantised (only autoregressive models take them).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.errors import UserError

# z = SCALE * (x + u) / 256 + SHIFT for 8-bit images.
IMAGE_SCALE = 2.0
IMAGE_SHIFT = -1.0


def preprocess(kind: str, x, rng=None, dequantize: bool = True):
    """Raw batch `x` -> model-space float32. `rng` draws the dequantisation noise."""
    if kind in ("points", "tokens"):
        return jnp.asarray(x, jnp.float32)
    if kind == "images":
        x = jnp.asarray(x, jnp.float32)
        if dequantize:
            if rng is None:
                raise UserError("Dequantising images needs an rng.")
            u = jax.random.uniform(rng, x.shape, jnp.float32)
        else:
            u = 0.5
        return IMAGE_SCALE * (x + u) / 256.0 + IMAGE_SHIFT
    raise UserError(f"Unknown data kind {kind!r}; expected 'points', 'images' or 'tokens'.")


def postprocess(kind: str, z, xp=np):
    """Model space -> what a person looks at: uint8 images, float points. `xp=jnp` keeps
    a device array on its devices (in a jitted function too)."""
    z = xp.asarray(z)
    if kind == "points":
        return z.astype(xp.float32)
    if kind == "tokens":
        return xp.rint(z).astype(xp.int32)
    y = (z - IMAGE_SHIFT) / IMAGE_SCALE * 256.0
    return xp.clip(xp.floor(y), 0, 255).astype(xp.uint8)


def log_det_to_discrete(kind: str, event_shape) -> float:
    """log|det| of the map from dequantised pixel units (x+u) to model space.

    log P(x) >= E_u[log p_model(z(x+u))] + this constant (per example).
    """
    if kind != "images":
        return 0.0
    d = math.prod(event_shape)
    return d * math.log(IMAGE_SCALE / 256.0)
