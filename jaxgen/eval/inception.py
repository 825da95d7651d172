"""The FID Inception-v3 in Flax: pool features for FID, logits for the Inception Score.

The network is Inception-v3 (Szegedy et al., 2016, "Rethinking the Inception Architecture
for Computer Vision") as TensorFlow's 2015-12-05 ImageNet graph has it, the network behind
the FID (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium") and the Inception Score (Salimans et al., 2016, "Improved Techniques
for Training GANs"). It is built here to compute exactly what pytorch-fid 0.3.0's
``InceptionV3(output_blocks=[3])`` computes (its ``fid_inception_v3``: torchvision's
``Inception3`` with 1008 classes, no auxiliary head, and its Mixed_5b-d, 6b-e, 7b, 7c blocks
changed to follow the TensorFlow graph), with pytorch-fid's published weights converted
once by ``jaxgen inception-weights``. tests/test_inception.py checks features and logits
against pytorch-fid's own network (random weights) to a relative error of 1e-4.

Network (NHWC; every "conv" is conv without bias -> BatchNorm(eps=1e-3, running statistics)
-> ReLU; "avg" pools are 3x3, stride 1, pad 1, averaging only the pixels inside the image):

    299x299x3 -> conv 3x3/2 32 -> conv 3x3 32 -> conv 3x3 pad 1 64 -> max 3x3/2
      -> conv 1x1 80 -> conv 3x3 192 -> max 3x3/2                                   35x35x192
      -> Mixed_5b/5c/5d (A: 1x1 | 1x1,5x5 | 1x1,3x3,3x3 | avg,1x1)                   35x35x288
      -> Mixed_6a (B: 3x3/2 | 1x1,3x3,3x3/2 | max 3x3/2)                             17x17x768
      -> Mixed_6b-6e (C: 1x1 | 1x1,1x7,7x1 | 1x1,7x1,1x7,7x1,1x7 | avg,1x1)          17x17x768
      -> Mixed_7a (D: 1x1,3x3/2 | 1x1,1x7,7x1,3x3/2 | max 3x3/2)                     8x8x1280
      -> Mixed_7b (E, avg pool branch), Mixed_7c (E, max pool 3x3/1 pad 1 branch)   8x8x2048
      -> spatial mean = the 2048-d pool features; fc 2048 -> 1008 = the logits

Mixed_7c's max pool (where the paper's block averages) is what the TensorFlow graph does;
pytorch-fid keeps it, and so does this module.

Input (pytorch-fid's resize_input=True, normalize_input=True): uint8 images x/255 (float
images are taken as already in [0, 1]), a grey image's channel repeated three times,
bilinear resize to 299x299 as torch's ``F.interpolate(mode="bilinear", align_corners=False)``
does it (no antialiasing, also when shrinking: two interpolation matrices built from torch's
source-index formula, applied with einsum), then 2x - 1. Convolutions and matrix products
run at ``Precision.HIGHEST`` (float32 on GPUs too, no TF32).

Logits: ``fc`` of the pool features is ``pool @ W + b``. The Inception Score of
openai/improved-gan (Salimans et al.'s code) multiplies the pool features by the softmax
weights only, and torch-fidelity's IS ("logits_unbiased", its default for the IS) follows it;
``features_fn`` returns those by default and ``pool @ W + b`` with ``logits_bias=True``.

Weights: ``jaxgen inception-weights --pth pt_inception-2015-12-05-6726825d.pth`` converts
pytorch-fid's published file (``WEIGHTS_URL``; needs PyTorch, only for this command) to
``$JAXGEN_CACHE/inception/fid_inception_v3.npz`` (JAXGEN_CACHE defaults to ~/.cache/jaxgen),
flat arrays "params/Mixed_5b/branch1x1/conv/kernel", ... (HWIO kernels) read back with
``allow_pickle=False``. Nothing is downloaded: ``load`` without the file is one error that
says what to fetch and what to run.

    variables, sha = load()
    f = features_fn(variables)
    pool, logits = f(images)                  # uint8 (N, H, W, 1 or 3), any H and W
    acc = ISAccumulator(50000, splits=10)     # then acc.add(logits) per batch
    mean, std = acc.result()                  # = inception_score(all_logits, 10)
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
from pathlib import Path
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.kernel.errors import MissingError, UsageError, UserError
from jaxgen.kernel.registry import Command, register_command

__all__ = ["WEIGHTS_URL", "WEIGHTS_FILE", "INPUT_SIZE", "NUM_CLASSES", "FIDInceptionV3",
           "resize_matrix", "resize_bilinear", "preprocess", "features_fn", "load",
           "default_path", "convert_state_dict", "convert", "inception_score", "ISAccumulator"]

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_FILE = WEIGHTS_URL.rsplit("/", 1)[1]
INPUT_SIZE = 299
NUM_CLASSES = 1008
POOL_DIM = 2048
KIND = "jaxgen.eval.inception"  # marks the .npz files this module writes (ownership)
FORMAT = "fid-inception-v3-1"   # the layout of those files
_HIGHEST = jax.lax.Precision.HIGHEST


# ----------------------------------------------------------------------------- network
def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
    """Conv without bias -> BatchNorm (eps 1e-3, running statistics) -> ReLU."""

    features: int
    kernel_size: int | tuple[int, int]
    strides: int = 1
    padding: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x):
        ph, pw = _pair(self.padding)
        x = nn.Conv(self.features, _pair(self.kernel_size), strides=self.strides,
                    padding=((ph, ph), (pw, pw)), use_bias=False, precision=_HIGHEST,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg3(x):
    """3x3 average, stride 1, pad 1, over the pixels inside the image only."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                       count_include_pad=False)


def _max3_stride2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(64, 1, name="branch1x1")(x)
        b5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
        b5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(b5)
        b3 = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(b3)
        b3 = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(b3)
        bp = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(384, 3, strides=2, name="branch3x3")(x)
        bd = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = BasicConv2d(96, 3, strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max3_stride2(x)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv2d(192, 1, name="branch1x1")(x)
        b7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
        b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv2d(192, 1, name="branch_pool")(_avg3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
        b3 = BasicConv2d(320, 3, strides=2, name="branch3x3_2")(b3)
        b7 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
        b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv2d(192, 3, strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max3_stride2(x)], axis=-1)


class InceptionE(nn.Module):
    """pool: "avg" (Mixed_7b) or "max" (Mixed_7c, 3x3 stride 1 pad 1, as the TF graph)."""

    pool: str = "avg"

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv2d(320, 1, name="branch1x1")(x)
        b3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
        b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)],
                             axis=-1)
        bd = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
        bd = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate(
            [BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
             BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
        if self.pool == "max":
            pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        else:
            pooled = _avg3(x)
        bp = BasicConv2d(192, 1, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """(N, 299, 299, 3) in [-1, 1] -> (pool (N, 2048), logits (N, 1008) = fc(pool)).

    Submodules carry torchvision's names (Conv2d_1a_3x3, Mixed_5b/branch1x1, ..., fc), so
    a torch state-dict key maps to one variable by replacing "." with "/"."""

    @nn.compact
    def __call__(self, x):
        x = BasicConv2d(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
        x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = _max3_stride2(x)
        x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
        x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max3_stride2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                         ("Mixed_6e", 192)):
            x = InceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        pool = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_CLASSES, precision=_HIGHEST, name="fc")(pool)
        return pool, logits


# ------------------------------------------------------------------------------- input
def resize_matrix(in_size: int, out_size: int = INPUT_SIZE) -> np.ndarray:
    """The (out_size, in_size) float32 matrix of torch's 1-D linear interpolation with
    align_corners=False and no antialiasing (``F.interpolate(..., mode="bilinear")``).

    Output pixel d reads the source coordinate s = max(scale (d + 0.5) - 0.5, 0) with the
    roundings of torch's CPU kernel for float32 images: scale = in_size / out_size in
    float32, the product and difference in float64 (its C++ promotes ``d + 0.5`` to double),
    s rounded once to float32; i0 = min(floor(s), in - 1), i1 = i0 + 1 unless i0 is the last
    pixel, weights 1 - l and l with l = s - i0 in float32, clipped to [0, 1]. When
    shrinking, each output pixel still reads only two input pixels."""
    if in_size < 1 or out_size < 1:
        raise UserError(f"resize sizes must be >= 1, got {in_size} -> {out_size}.")
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    src = (scale * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = i0 + (i0 < in_size - 1)
    lam = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1))
    m = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(m, (rows, i0), np.float32(1) - lam)
    np.add.at(m, (rows, i1), lam)
    return m


def resize_bilinear(x, size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)):
    """(N, H, W, C) float -> (N, size[0], size[1], C), as torch's bilinear
    ``F.interpolate(align_corners=False)`` (antialias off) on the NCHW tensor."""
    mh = resize_matrix(x.shape[1], size[0])
    mw = resize_matrix(x.shape[2], size[1])
    x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=_HIGHEST)
    return jnp.einsum("pw,nowc->nopc", mw, x, precision=_HIGHEST)


def _check_images(images):
    shape, dtype = tuple(np.shape(images)), np.dtype(images.dtype)
    if len(shape) != 4 or shape[3] not in (1, 3) or min(shape) < 1:
        raise UserError(f"Inception features need images (N, H, W, C) with C = 1 or 3, got "
                        f"shape {shape}.")
    if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
        raise UserError(f"Inception features need uint8 images (or floats in [0, 1]), got "
                        f"{dtype}.")


@jax.jit
def preprocess(images):
    """uint8 (or [0, 1] float) (N, H, W, 1|3) -> the network's (N, 299, 299, 3) in [-1, 1]:
    x/255, grey repeated to RGB, torch's bilinear resize, 2x - 1 (pytorch-fid's
    resize_input=True, normalize_input=True)."""
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
        x = x / jnp.float32(255)
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    x = resize_bilinear(x)
    return 2 * x - 1


@functools.partial(jax.jit, static_argnames=("logits_bias",))
def _network(variables, x, logits_bias: bool):
    pool, logits = FIDInceptionV3().apply(variables, x)
    if not logits_bias:
        logits = jnp.dot(pool, variables["params"]["fc"]["kernel"], precision=_HIGHEST)
    return pool, logits


def features_fn(variables, logits_bias: bool = False):
    """``f(images) -> (pool (N, 2048), logits (N, 1008))``, float32 jax arrays.

    images: uint8 (N, H, W, C), any H and W, C = 1 or 3 (floats are taken as in [0, 1]).
    The input step is compiled per image shape, the network once per batch size.
    logits: ``pool @ W`` (False, the default: the Inception Score's logits as
    openai/improved-gan and torch-fidelity compute them) or ``fc(pool) = pool @ W + b``
    (True: pytorch-fid's / torchvision's ``fc``)."""
    def f(images):
        _check_images(images)
        return _network(variables, preprocess(images), logits_bias=bool(logits_bias))
    return f


# ----------------------------------------------------------------------------- weights
def default_path() -> Path:
    """``$JAXGEN_CACHE/inception/fid_inception_v3.npz`` (JAXGEN_CACHE: ~/.cache/jaxgen)."""
    root = os.environ.get("JAXGEN_CACHE") or "~/.cache/jaxgen"
    return Path(root).expanduser() / "inception" / "fid_inception_v3.npz"


def _flatten(tree, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def _unflatten(flat: dict) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


@functools.cache
def _expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every variable of FIDInceptionV3 ("params/.../kernel", "batch_stats/.../mean") and
    its shape."""
    abstract = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                              jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
    return {k: tuple(v.shape) for k, v in _flatten(abstract).items()}


# torch leaf -> (collection, flax leaf)
_LEAVES = {"conv.weight": ("params", "conv/kernel"), "bn.weight": ("params", "bn/scale"),
           "bn.bias": ("params", "bn/bias"), "bn.running_mean": ("batch_stats", "bn/mean"),
           "bn.running_var": ("batch_stats", "bn/var"), "fc.weight": ("params", "fc/kernel"),
           "fc.bias": ("params", "fc/bias")}


def _flax_name(key: str) -> str | None:
    """A torch state-dict key -> its flat variable name (None: not a known kind of key)."""
    for leaf, (collection, flax_leaf) in _LEAVES.items():
        if key == leaf or key.endswith("." + leaf):
            module = key[:-len(leaf)].rstrip(".").replace(".", "/")
            return "/".join(p for p in (collection, module, flax_leaf) if p)
    return None


def _mismatch_error(what: str, missing, unexpected, wrong_shape) -> UserError:
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("wrong shape", wrong_shape)):
        if items:
            shown = ", ".join(sorted(items)[:4]) + (" ..." if len(items) > 4 else "")
            parts.append(f"{len(items)} {label} ({shown})")
    return UserError(f"{what} is not pytorch-fid's FID Inception-v3: " + "; ".join(parts)
                     + f". Use pytorch-fid's {WEIGHTS_FILE} ({WEIGHTS_URL}).")


def convert_state_dict(state_dict: Mapping, what: str = "the state dict") -> dict:
    """pytorch-fid's ``fid_inception_v3().state_dict()`` (tensors or arrays) -> the flat
    float32 arrays of FIDInceptionV3's variables: conv weights OIHW -> HWIO, fc weight
    transposed, BatchNorm weight/bias -> params scale/bias, running mean/var -> batch_stats.
    BatchNorm's num_batches_tracked counters are dropped. Every variable must be there with
    its shape, and nothing else (one UserError listing what differs)."""
    expected = _expected_shapes()
    out, unexpected, wrong, seen = {}, [], [], set()
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        name = _flax_name(key)
        if name is None or name not in expected:
            unexpected.append(key)
            continue
        seen.add(name)
        arr = np.asarray(value, dtype=np.float32)
        if name.endswith("conv/kernel") and arr.ndim == 4:
            arr = arr.transpose(2, 3, 1, 0)
        elif name.endswith("fc/kernel") and arr.ndim == 2:
            arr = arr.T
        if arr.shape != expected[name]:
            wrong.append(f"{key} {tuple(np.shape(value))}")
            continue
        out[name] = np.ascontiguousarray(arr)
    missing = [k for k in expected if k not in seen]
    if missing or unexpected or wrong:
        raise _mismatch_error(what, [_torch_key(k) for k in missing], unexpected, wrong)
    return out


def _torch_key(name: str) -> str:
    """A flat variable name -> the torch state-dict key it comes from."""
    collection, *path = name.split("/")
    module, leaf = path[:-2], "/".join(path[-2:])
    torch_leaf = next(t for t, (c, f) in _LEAVES.items() if c == collection and f == leaf)
    return ".".join([*module, torch_leaf])


def file_sha256(path) -> str:
    """The SHA-256 hex digest of a file (the weights', a statistics file's)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_ours(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as f:
            return "__kind__" in f.files and str(f["__kind__"]) == KIND
    except Exception:  # unreadable or not an npz: not ours
        return False


def convert(pth, out=None, force: bool = False) -> tuple[Path, str]:
    """Converts pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (or any state dict of
    ``fid_inception_v3``) to the .npz that ``load`` reads; returns (out path, its sha256).

    Needs PyTorch (``torch.load(..., weights_only=True)``: tensors only, no code run). A
    file at ``out`` that this function did not write is replaced only with ``force``."""
    pth = Path(pth).expanduser()
    out = default_path() if out is None else Path(out).expanduser()
    if not pth.is_file():
        raise MissingError(f"--pth {pth}: no such file. Download {WEIGHTS_URL} and pass it.")
    if out.exists() and not force and not _is_ours(out):
        raise UserError(f"--out {out} exists and was not written by jaxgen inception-weights; "
                        "pass --force to replace it, or choose another --out.")
    try:
        import torch
    except ImportError as e:
        raise UserError("converting the weights needs PyTorch (only this command does): "
                        "pip install torch==2.13.0, then run jaxgen inception-weights "
                        "again.") from e
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file, or one that holds more than tensors
        raise UserError(f"--pth {pth} cannot be read as a PyTorch state dict "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:200]}).") from e
    if not isinstance(state, Mapping):
        raise UserError(f"--pth {pth} holds a {type(state).__name__}, not a state dict.")
    return write_weights(convert_state_dict(state, what=f"--pth {pth}"), out,
                         source_sha256=file_sha256(pth))


def write_weights(arrays: Mapping, out, source_sha256: str = "") -> tuple[Path, str]:
    """Writes flat weights ({"params/Conv2d_1a_3x3/conv/kernel": array, ...}, the names
    `load` expects) as the .npz `load` reads, whole or not at all; returns (path, sha256)."""
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, __kind__=np.array(KIND), __format__=np.array(FORMAT),
                     __source_sha256__=np.array(source_sha256), **dict(arrays))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, file_sha256(out)


def load(path=None) -> tuple[dict, str]:
    """The converted weights -> (variables {"params", "batch_stats"} of FIDInceptionV3 as
    jax arrays, the sha256 hex digest of the file). No torch, no download, no pickle."""
    given = path is not None
    path = default_path() if path is None else Path(path).expanduser()
    if not path.is_file():
        out = f" --out {path}" if given else ""
        raise MissingError(
            f"no FID Inception weights at {path}. Download pytorch-fid's weights, {WEIGHTS_URL}, "
            f"then run: jaxgen inception-weights --pth {WEIGHTS_FILE}{out}")
    try:
        with np.load(path, allow_pickle=False) as f:
            kind = str(f["__kind__"]) if "__kind__" in f.files else ""
            fmt = str(f["__format__"]) if "__format__" in f.files else ""
            flat = {k: f[k] for k in f.files if not k.startswith("__")}
    except Exception as e:
        raise UserError(f"{path} cannot be read as an .npz ({type(e).__name__}); convert the "
                        f"weights again: jaxgen inception-weights --pth {WEIGHTS_FILE}") from e
    if kind != KIND or fmt != FORMAT:
        raise UserError(f"{path} was not written by this version of jaxgen inception-weights "
                        f"(format {fmt or 'none'}, expected {FORMAT}); convert the weights "
                        f"again: jaxgen inception-weights --pth {WEIGHTS_FILE} --force")
    expected = _expected_shapes()
    wrong = [k for k in expected if k in flat and flat[k].shape != expected[k]]
    if set(flat) != set(expected) or wrong:
        raise _mismatch_error(str(path), set(expected) - set(flat), set(flat) - set(expected),
                              wrong)
    variables = _unflatten({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()})
    return variables, file_sha256(path)


# --------------------------------------------------------------------- inception score
class ISAccumulator:
    """The Inception Score of ``num`` examples fed in chunks of logits, in float64.

    IS = exp(E_x KL(p(y|x) || p(y))) per split, p(y) the split's mean of p(y|x) (Salimans
    et al., 2016); the ``splits`` splits are contiguous blocks of examples by index,
    [k num // splits, (k+1) num // splits), as openai/improved-gan splits its predictions;
    returns the mean and the standard deviation (ddof = 0) of the split scores.
    (torch-fidelity computes the same per split, after shuffling the examples with a seed.)

    Per split it keeps sum_x p(y|x) and sum_x sum_y p log p, each summed one example after
    another, so any chunking gives bit-for-bit the same result as one ``add`` of all;
    KL mean = (1/n) sum_x sum_y p log p - sum_y p(y) log p(y)."""

    def __init__(self, num: int, splits: int = 10):
        if int(splits) < 1 or int(num) < int(splits):
            raise UserError(f"the Inception Score needs 1 <= splits <= num examples, got "
                            f"splits={splits}, num={num}.")
        self.num, self.splits = int(num), int(splits)
        self.bounds = [k * self.num // self.splits for k in range(self.splits + 1)]
        self.seen = 0
        self._p_sum: np.ndarray | None = None   # (splits, classes)
        self._plogp_sum = np.zeros(self.splits)

    def add(self, logits) -> None:
        """Adds the next examples' logits, (n, classes)."""
        z = np.asarray(logits, np.float64)
        if z.ndim != 2 or z.shape[1] < 2:
            raise UserError(f"logits must be (n, classes) with classes >= 2, got {z.shape}.")
        if self._p_sum is None:
            self._p_sum = np.zeros((self.splits, z.shape[1]))
        elif z.shape[1] != self._p_sum.shape[1]:
            raise UserError(f"logits have {z.shape[1]} classes, earlier ones "
                            f"{self._p_sum.shape[1]}.")
        if self.seen + len(z) > self.num:
            raise UserError(f"the Inception Score was set up for {self.num} examples; "
                            f"{self.seen + len(z)} were added.")
        if not np.all(np.isfinite(z)):
            raise UserError("logits hold NaN or inf.")
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        p = np.exp(log_p)
        plogp = np.sum(p * log_p, axis=1)
        start = self.seen
        for k in range(self.splits):
            lo, hi = max(self.bounds[k], start), min(self.bounds[k + 1], start + len(z))
            if lo >= hi:
                continue
            rows = slice(lo - start, hi - start)
            # cumulative sums: one example after another, whatever the chunks
            self._p_sum[k] = np.cumsum(np.concatenate([self._p_sum[k][None], p[rows]]),
                                       axis=0)[-1]
            self._plogp_sum[k] = np.cumsum(np.concatenate([[self._plogp_sum[k]],
                                                           plogp[rows]]))[-1]
        self.seen += len(z)

    def scores(self) -> np.ndarray:
        """The score of each split (all ``num`` examples must have been added)."""
        if self.seen != self.num:
            raise UserError(f"the Inception Score needs all {self.num} examples; "
                            f"{self.seen} were added.")
        n = np.diff(self.bounds).astype(np.float64)
        q = self._p_sum / n[:, None]
        q_log_q = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), axis=1)
        return np.exp(self._plogp_sum / n - q_log_q)

    def result(self) -> tuple[float, float]:
        """(mean, std) of the split scores."""
        s = self.scores()
        return float(np.mean(s)), float(np.std(s))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``splits`` contiguous splits of the
    (n, classes) logits (see ``ISAccumulator``; float64)."""
    logits = np.asarray(logits)
    acc = ISAccumulator(len(logits), splits)
    acc.add(logits)
    return acc.result()


# ----------------------------------------------------------------------------- command
def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pth", required=True,
                   help=f"pytorch-fid's {WEIGHTS_FILE} (download it from {WEIGHTS_URL})")
    p.add_argument("--out", default=None,
                   help="default: $JAXGEN_CACHE/inception/fid_inception_v3.npz "
                        "(JAXGEN_CACHE: ~/.cache/jaxgen)")
    p.add_argument("--force", action="store_true",
                   help="replace a file at --out that this command did not write")


def _run(args, overrides) -> None:
    if overrides:
        raise UsageError("jaxgen inception-weights takes no --config overrides.")
    out, sha = convert(args.pth, args.out, force=args.force)
    print(f"wrote {out} (sha256 {sha}), FID Inception-v3 weights for jaxgen.eval.inception")


register_command(Command("inception-weights",
                         "convert pytorch-fid's FID Inception-v3 weights (.pth) for FID / IS",
                         _configure, _run))
