"""Mixed precision: a model's matmuls and convolutions in bfloat16, its params in float32.

`with_compute_dtype(model, "bfloat16")` returns a stand-in for a Flax module
whose `apply` runs the module with every Flax linear layer (Dense,
DenseGeneral, Conv, ConvTranspose, Einsum) computing in bfloat16: the layer's
floating inputs and its params are cast on the way in (as PyTorch's autocast
does for matmuls and convolutions). Elementwise work, normalisation statistics,
time embeddings and the model's floating outputs stay in float32, so the
objective's loss, log-determinants and likelihoods are computed in float32 on
the model's outputs. `init` is the module's own: params (and so the optimizer
state and the EMA) are float32, the master copy, and gradients arrive in
float32 through the casts.

Linear algebra a module writes by hand (`jnp.einsum` on its own `self.param`)
is not cast. Exact likelihoods lose precision when the layers that compute
them run in bfloat16: evaluate in float32 (`--config.train.compute_dtype=float32`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


LINEAR = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.Einsum)


def _cast_floats(tree, dtype):
    def cast(v):
        if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating):
            return v.astype(dtype)
        return v
    return jax.tree.map(cast, tree)


class MixedPrecisionModel:
    """Wraps a Flax module: `apply` with linear layers in `dtype`; all else the module's own."""

    def __init__(self, module, dtype):
        self.module = module
        self.compute_dtype = dtype

    def _interceptor(self, next_fun, args, kwargs, context):
        module = context.module
        if (context.method_name == "__call__" and isinstance(module, LINEAR)
                and module.dtype is None):
            # The layer's own `dtype` for this call: Flax then casts its inputs and params.
            object.__setattr__(module, "dtype", self.compute_dtype)
            try:
                return next_fun(*args, **kwargs)
            finally:
                object.__setattr__(module, "dtype", None)
        return next_fun(*args, **kwargs)

    def apply(self, variables, *args, **kwargs):
        with nn.intercept_methods(self._interceptor):
            out = self.module.apply(variables, *args, **kwargs)
        return _cast_floats(out, jnp.float32)

    def init(self, *args, **kwargs):
        return self.module.init(*args, **kwargs)

    def __getattr__(self, name):  # attributes and methods (`method=model.encode`)
        return getattr(self.module, name)

    @property
    def __class__(self):  # isinstance(model, VQVAEConv) etc. see the wrapped module's class
        return type(self.module)


def with_compute_dtype(model, dtype: str):
    """`model` itself for float32; a `MixedPrecisionModel` for bfloat16 / float16."""
    if dtype not in DTYPES:
        raise UserError(f"train.compute_dtype={dtype!r}: choose one of {', '.join(DTYPES)}.")
    if dtype == "float32":
        return model
    return MixedPrecisionModel(model, DTYPES[dtype])
