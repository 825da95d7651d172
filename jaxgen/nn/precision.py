"""Mixed precision: a model's matmuls and convolutions in bfloat16, its params in float32.

`with_compute_dtype(model, "bfloat16")` returns a stand-in for a Flax module
whose `apply` runs the module with every linear layer computing in bfloat16:
Flax's (Dense, DenseGeneral, Conv, ConvTranspose, Einsum) and every layer
written by hand that declares `honours_compute_dtype = True` (ProGAN's
equalised-learning-rate layers, BigGAN's spectral-normalised ones, PixelCNN's
masked convolutions). The interceptor sets such a layer's `dtype` (None, the
default, computes in float32 as before) for the call: the layer's floating
inputs and its kernel are cast on the way in (as PyTorch's autocast does for
matmuls and convolutions). Elementwise work, normalisation statistics, the
spectral-norm power iteration, time embeddings and the model's floating
outputs stay in float32, so the objective's loss, log-determinants and
likelihoods are computed in float32 on the model's outputs. `init` is the
module's own: params (and so the optimizer state and the EMA) are float32,
the master copy, and gradients arrive in float32 through the casts.

A layer written by hand honours the compute dtype with a field
`dtype: Any = None`, the class attribute `honours_compute_dtype = True`, and its
conv / dot on `x.astype(dtype)` and `kernel.astype(dtype)` when `dtype` is set
(the params stay float32). Linear algebra outside such a layer (a `jnp.einsum`
on a module's own `self.param`) is not cast. `bf16_flop_share` measures, from a
lowered program's StableHLO, how much of the convolution and matmul work runs
on bfloat16 operands; every registered model's train step keeps at least 95 %
there (tests/test_bf16_share.py), or its class says why not and how much with
`BF16_EXCEPTION = (lowest_share, "reason")`. Exact likelihoods lose precision when the layers that
compute them run in bfloat16: evaluate in float32
(`--config.train.compute_dtype=float32`).

`matmul_precision(name)` is the float32 matmul precision (`train.matmul_precision`,
`eval.matmul_precision`) as a context manager.
"""

from __future__ import annotations

import contextlib
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.kernel.errors import UserError

__all__ = ["DTYPES", "LINEAR", "MixedPrecisionModel", "with_compute_dtype", "honours_compute_dtype",
           "bf16_flop_share", "hlo_matmul_ops", "matmul_precision", "MATMUL_PRECISIONS"]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


LINEAR = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.Einsum)


def honours_compute_dtype(module) -> bool:
    """Whether the interceptor sets `module.dtype` (a Flax linear layer, or a hand-written
    layer with the class attribute `honours_compute_dtype = True`) and it is unset."""
    honours = isinstance(module, LINEAR) or getattr(type(module), "honours_compute_dtype", False)
    return bool(honours) and getattr(module, "dtype", False) is None


def _cast_floats(tree, dtype):
    def cast(v):
        if hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating):
            return v.astype(dtype)
        return v
    return jax.tree.map(cast, tree)


class MixedPrecisionModel:
    """Wraps a Flax module: `apply` with linear layers in `dtype`; all else the module's own.

    `clone` and `copy` return the wrapped module's clone, wrapped (an objective that sets a
    field, `model.clone(num_outputs=...)`, keeps the compute dtype); `bind` returns the
    bound module whose methods run with the same interception."""

    def __init__(self, module, dtype):
        self.module = module
        self.compute_dtype = dtype

    def _interceptor(self, next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and honours_compute_dtype(module):
            # The layer's own `dtype` for this call: it then casts its inputs and kernel.
            object.__setattr__(module, "dtype", self.compute_dtype)
            try:
                return next_fun(*args, **kwargs)
            finally:
                object.__setattr__(module, "dtype", None)
        return next_fun(*args, **kwargs)

    def _run(self, fn, *args, **kwargs):
        with nn.intercept_methods(self._interceptor):
            out = fn(*args, **kwargs)
        return _cast_floats(out, jnp.float32)

    def apply(self, variables, *args, **kwargs):
        return self._run(self.module.apply, variables, *args, **kwargs)

    def init(self, *args, **kwargs):
        return self.module.init(*args, **kwargs)

    def clone(self, **kwargs):
        return MixedPrecisionModel(self.module.clone(**kwargs), self.compute_dtype)

    def copy(self, **kwargs):
        return MixedPrecisionModel(self.module.copy(**kwargs), self.compute_dtype)

    def bind(self, *args, **kwargs):
        return _MixedBound(self.module.bind(*args, **kwargs), self)

    def __getattr__(self, name):  # attributes and methods (`method=model.encode`)
        return getattr(self.module, name)

    @property
    def __class__(self):  # isinstance(model, VQVAEConv) etc. see the wrapped module's class
        return type(self.module)

    def __repr__(self):
        return f"MixedPrecisionModel({self.module!r}, {jnp.dtype(self.compute_dtype).name})"


class _MixedBound:
    """A bound module (`MixedPrecisionModel.bind`): its methods and submodules, called,
    run with the linear layers in the compute dtype and return float32."""

    def __init__(self, bound, mixed: MixedPrecisionModel):
        self._bound, self._mixed = bound, mixed

    def __call__(self, *args, **kwargs):
        return self._mixed._run(self._bound, *args, **kwargs)

    def __getattr__(self, name):
        attr = getattr(self._bound, name)
        if isinstance(attr, nn.Module):
            return _MixedBound(attr, self._mixed)
        if callable(attr):
            return lambda *args, **kwargs: self._mixed._run(attr, *args, **kwargs)
        return attr


def with_compute_dtype(model, dtype: str):
    """`model` itself for float32; a `MixedPrecisionModel` for bfloat16 / float16."""
    if dtype not in DTYPES:
        raise UserError(f"train.compute_dtype={dtype!r}: choose one of {', '.join(DTYPES)}.")
    if dtype == "float32":
        return model
    return MixedPrecisionModel(model, DTYPES[dtype])


# ------------------------------------------------------------ matmul precision
MATMUL_PRECISIONS = ("default", "high", "highest")


def matmul_precision(name: str):
    """The float32 matmul and convolution precision of the code run inside, as a context
    manager: `with matmul_precision(config.train.matmul_precision): ...`.

    "default" leaves the backend's own choice (a null context): on an H100 / A100 a float32
    matmul or convolution then runs in TF32 (10 bits of mantissa), on a TPU in one bfloat16
    pass, on a CPU in full float32. "high": TF32-class precision on a GPU, three bfloat16
    passes on a TPU. "highest": full float32 everywhere (slower on a GPU or TPU), what
    exact likelihoods want (`eval.matmul_precision` defaults to it). It sets
    `jax.default_matmul_precision`, which is read when a function is traced: enter it
    around the tracing (the first call of a jitted function, or its `.lower`), and it
    reaches every float32 `dot_general` / `convolution` whose precision is not given
    explicitly. It governs float32 operands: bfloat16 ones (`train.compute_dtype=bfloat16`)
    are multiplied in bfloat16 whatever it says.
    """
    if name not in MATMUL_PRECISIONS:
        raise UserError(f"matmul precision {name!r}: choose one of "
                        f"{', '.join(MATMUL_PRECISIONS)}.")
    if name == "default":
        return contextlib.nullcontext()
    return jax.default_matmul_precision(name)


# ----------------------------------------------------- bfloat16 share of the FLOPs
_OP = re.compile(r"=\s*stablehlo\.(convolution|dot_general|dot)\b")
_TENSOR = re.compile(r"tensor<([^>]*)>")


def _tensor_type(text: str):
    """"2x8x8x4xbf16" -> ((2, 8, 8, 4), "bf16")."""
    *dims, elem = text.split("x")
    return tuple(int(d) for d in dims), elem


def _signature(line: str):
    """The operand types and the result type of one op's line."""
    head, _, result = line.rpartition("->")
    sig = head[head.rindex(": (") + 3:]
    return ([_tensor_type(t) for t in _TENSOR.findall(sig)],
            _tensor_type(_TENSOR.search(result).group(1)))


def _flops(kind: str, line: str, operands, result) -> int:
    out = math.prod(result[0])
    if kind == "convolution":
        # rhs dims as [0, 1, i, o]: every output element is a dot over the kernel's
        # spatial window and its input features (in-features / groups)
        rhs_spec = re.search(r"\]x\[([^\]]*)\]->", line).group(1).split(",")
        o = [s.strip() for s in rhs_spec].index("o")
        kernel = operands[1][0]
        return 2 * out * math.prod(kernel) // kernel[o]
    if kind == "dot":
        return 2 * out * (operands[0][0][-1] if operands[0][0] else 1)
    m = re.search(r"contracting_dims\s*=\s*\[([^\]]*)\]", line)
    dims = [int(d) for d in m.group(1).split(",") if d.strip()] if m else []
    return 2 * out * math.prod(operands[0][0][d] for d in dims)


def hlo_matmul_ops(lowered_text: str) -> list[dict]:
    """Every `stablehlo.convolution` / `dot_general` / `dot` of a lowered program's text
    (`jax.jit(f).lower(...).as_text()`): {"op", "operands" (element types), "result",
    "flops"}; FLOPs 2 · output elements · contraction size (a convolution's: kernel window
    times in-features per group). Each op counts once where it is written: the body of a
    loop (`nn.scan`, a while) once, not per iteration."""
    ops = []
    for line in lowered_text.splitlines():
        m = _OP.search(line)
        if not m:
            continue
        operands, result = _signature(line)
        ops.append({"op": m.group(1), "operands": tuple(e for _, e in operands),
                    "result": result[1], "flops": _flops(m.group(1), line, operands, result)})
    return ops


def bf16_flop_share(lowered_text: str, dtype: str = "bf16"):
    """(share, details): the fraction of the convolution and matmul FLOPs of a lowered
    program (`lowered.as_text()`, StableHLO) whose operands are all `dtype` (MLIR's name:
    "bf16", "f16", "f32"). details: "total_flops", "flops_by_operands" ({"bf16": ...,
    "f32": ..., "bf16,f32": ...}), "ops" (`hlo_matmul_ops`). A program with no such op has
    share 1.0 (nothing left in another dtype)."""
    ops = hlo_matmul_ops(lowered_text)
    by = {}
    for op in ops:
        key = ",".join(sorted(set(op["operands"])))
        by[key] = by.get(key, 0) + op["flops"]
    total = sum(by.values())
    share = by.get(dtype, 0) / total if total else 1.0
    return share, {"total_flops": total, "flops_by_operands": by, "ops": ops}
