"""A Fashion-MNIST classifier that jaxgen trains and caches itself: the feature space for
sample-quality metrics in place of Inception-v3.

FID (Heusel et al., 2017) measures samples in the pool features of an ImageNet Inception-v3,
a network that has never seen 28x28 grey clothes. Here the judge is a small CNN trained on the
Fashion-MNIST training split (conv 3x3/2 32 -> conv 3x3/2 64 -> dense 128 "features" ->
dense 10; Adam on cross-entropy, 4000 steps of 128 images by default), and its 128-d
penultimate ReLU activations are the features that `jaxgen.eval.frechet` compares:

    FD   = |mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_g S_r)^{1/2})   (Gaussians fitted to features)
    P, R = improved precision / recall (Kynkäänniemi et al., 2019), k-NN balls in feature space

FD is biased by the number n of generated images (the covariance estimate is noisy, and the
noise adds to FD: roughly +c/n for a fixed pair of distributions), so FD values are
comparable only at the same n, computed against the same reference statistics with the same
classifier. That is why `sample_quality` returns `fd_n` and `fd_ref_n` and every caller must
print them beside the score. Precision/recall likewise depend on n and k (`pr_n`, `pr_k`).
With this judge (fmnist-cnn-2), uniform noise gets FD ~590 (real images ~4.5, blurred ones
~85, n = 1000) and recall 0, but k-NN precision ~0.5, not 0 (still ~0.5 at n = 5000): the
judge maps most noise into one tight cluster (it calls them "Bag"), and the k-NN balls of a
few outlying real images cover it. Precision alone does not flag collapsed junk; read it with
recall and FD.

Images enter in model space, z = 2 (x + 0.5) / 256 - 1 for uint8 pixels x fed as bin centres
(`transforms.preprocess("images", x, None, dequantize=False)`).

Training (`train_classifier`) goes through the one trainer, `jaxgen.runner.loop.
train_and_evaluate`: the network "fmnist_cnn" (`FmnistCNN`) and the objective "classifier"
(softmax cross-entropy on the labels; no sample, no likelihood) are registered like any
other (`jaxgen.eval.metrics`), and it trains a config built on `base_config()` whose data
are the training images written to an .npz in a temporary run folder and read back as
data.name=array.

Caching (`load_or_train`): params go to `<cache_dir>/params.npz` (flattened leaves, keys
"conv0/kernel", ...) and the record to `<cache_dir>/info.json`; the default cache_dir is
`$JAXGEN_CACHE/fmnist_classifier` (JAXGEN_CACHE defaults to ~/.cache/jaxgen). A cache is used
only if its VERSION, architecture hash and training recipe match the request; otherwise it is
retrained (and says why). Reference statistics (`reference_stats`) are cached beside it as
`ref_<split>_<n>.npz`, stamped with the params' fingerprint and recomputed when the classifier
changes. Files in the cache dir that this module did not write are never overwritten.

    python -m jaxgen.eval.classifier [--force] [--cache-dir D]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen.eval.frechet import FeatureSpace, frechet_distance, gaussian_stats, precision_recall
from jaxgen.kernel.contract import BuildContext, Objective, Player
from jaxgen.kernel.errors import UserError

__all__ = [
    "VERSION", "FmnistCNN", "features", "logits", "embed", "train_classifier", "load_or_train",
    "reference_stats", "sample_quality", "default_cache_dir", "params_fingerprint", "main",
]

# Bump when anything that changes what a trained classifier is changes (layout, training,
# preprocessing): every cache made by another version is then retrained, never used.
VERSION = "fmnist-cnn-2"
KIND = "jaxgen.eval.classifier"  # marks the files this module writes (ownership)
LAYOUT = ("z=2(x+0.5)/256-1; conv3x3/s2 SAME relu per width; flatten; "
          "dense relu (features); dense (logits)")
DEFAULT_ARCH = {"widths": (32, 64), "feature_dim": 128}
NUM_CLASSES = 10
DEFAULT_STEPS = 4000
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 2e-3
DEFAULT_DATA = {"name": "fashion_mnist", "path": "", "source_dir": ""}
_EVAL_CHUNK = 1000  # images per compiled forward pass (the last chunk is padded)


# ----------------------------------------------------------------------------------- model


class FmnistCNN(nn.Module):
    """conv 3x3 stride 2 (+ReLU) per entry of `widths` -> dense `feature_dim` (+ReLU) ->
    dense `num_classes`. Input (B, 28, 28, 1) in model space [-1, 1]; returns
    (features (B, feature_dim), logits (B, num_classes))."""

    widths: tuple[int, ...] = DEFAULT_ARCH["widths"]
    feature_dim: int = DEFAULT_ARCH["feature_dim"]
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(w, (3, 3), strides=2, padding="SAME", name=f"conv{i}")(x))
        x = x.reshape(x.shape[0], -1)
        f = nn.relu(nn.Dense(self.feature_dim, name="features")(x))
        return f, nn.Dense(self.num_classes, name="head")(f)


# ------------------------------------------------------------------------------- objective


def classifier_loss(params, batch, rng, *, model):
    """Mean softmax cross-entropy of the logits vs batch["label"] (nats), with the batch's
    accuracy beside it."""
    del rng  # deterministic; images arrive as bin centres (dequantize=False)
    _, lg = model.apply({"params": params["model"]}, batch["x"])
    xent = optax.softmax_cross_entropy_with_integer_labels(lg, batch["label"]).mean()
    accuracy = jnp.mean((jnp.argmax(lg, -1) == batch["label"]).astype(jnp.float32))
    return xent, {"xent": xent, "accuracy": accuracy}


def classifier_init(rng, batch, *, model):
    return {"model": model.init(rng, batch["x"])["params"]}


def make_objective(ctx: BuildContext) -> Objective:
    """The "classifier" objective: one player, "model", trained on cross-entropy."""
    if not ctx.data.num_classes:
        raise UserError(f"objective classifier needs labelled data; {ctx.data.name} has no "
                        "labels.")
    return Objective(
        name="classifier",
        players=(Player("model", functools.partial(classifier_loss, model=ctx.model)),),
        init=functools.partial(classifier_init, model=ctx.model),
        dequantize=False,
    )


def _arch(arch: dict | None) -> dict:
    a = {**DEFAULT_ARCH, **(arch or {})}
    unknown = set(a) - set(DEFAULT_ARCH)
    if unknown:
        raise UserError(f"unknown arch keys {sorted(unknown)}; expected {sorted(DEFAULT_ARCH)}")
    return {"widths": [int(w) for w in a["widths"]], "feature_dim": int(a["feature_dim"])}


def _module_for(params) -> FmnistCNN:
    """The module whose parameters `params` are (read off the kernel shapes)."""
    widths, i = [], 0
    while f"conv{i}" in params:
        widths.append(int(params[f"conv{i}"]["kernel"].shape[-1]))
        i += 1
    return FmnistCNN(tuple(widths), int(params["features"]["kernel"].shape[-1]),
                     int(params["head"]["kernel"].shape[-1]))


def arch_hash(arch: dict | None = None) -> str:
    """sha256 (16 hex) of the layout description and the sizes: what the params mean."""
    a = _arch(arch)
    desc = {"layout": LAYOUT, "num_classes": NUM_CLASSES, **a}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


@functools.partial(jax.jit, static_argnums=0)
def _apply(module: FmnistCNN, params, x):
    return module.apply({"params": params}, x)


def _as_nhwc(x) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    return x[..., None] if x.ndim == 3 else x


def features(params, x) -> jax.Array:
    """Penultimate activations relu(W x + b), (B, feature_dim), of model-space images x
    (B, 28, 28, 1) or (B, 28, 28) in [-1, 1]."""
    return _apply(_module_for(params), params, _as_nhwc(x))[0]


def logits(params, x) -> jax.Array:
    """Class logits (B, 10) of model-space images x."""
    return _apply(_module_for(params), params, _as_nhwc(x))[1]


def conv_activations(params, x) -> list[jax.Array]:
    """The ReLU outputs of every conv layer, [(B, 14, 14, w0), (B, 7, 7, w1), ...], of
    model-space images x: the feature maps a content / Gram-style loss compares."""
    h, out, i = _as_nhwc(x), [], 0
    while f"conv{i}" in params:
        k = params[f"conv{i}"]
        conv = nn.Conv(int(k["kernel"].shape[-1]), (3, 3), strides=2, padding="SAME")
        h = nn.relu(conv.apply({"params": k}, h))
        out.append(h)
        i += 1
    return out


def _to_model_space(images_uint8) -> jax.Array:
    from jaxgen.kernel import transforms
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        raise TypeError(f"expected uint8 images (N, 28, 28[, 1]), got {x.dtype} {x.shape}; "
                        "generated samples in model space go through "
                        "transforms.postprocess('images', z) first")
    return _as_nhwc(transforms.preprocess("images", x, None, dequantize=False))


def embed(params, images_uint8, which: str = "features") -> np.ndarray:
    """features (or logits, `which="logits"`) of uint8 images (N, 28, 28[, 1]) as float32
    numpy, computed in fixed-size chunks of 1000 (one compile for any N)."""
    x = np.asarray(images_uint8)
    module = _module_for(params)
    out = []
    for lo in range(0, len(x), _EVAL_CHUNK):
        chunk = x[lo:lo + _EVAL_CHUNK]
        m = len(chunk)
        if m < _EVAL_CHUNK and len(x) > _EVAL_CHUNK:  # pad to the compiled shape
            chunk = np.concatenate([chunk, np.zeros((_EVAL_CHUNK - m, *chunk.shape[1:]),
                                                    chunk.dtype)])
        f, lg = _apply(module, params, _to_model_space(chunk))
        out.append(np.asarray(f if which == "features" else lg)[:m])
    if not out:
        raise UserError("no images")
    return np.concatenate(out)


def params_fingerprint(params) -> str:
    """sha256 (16 hex) of every leaf's path, dtype, shape and bytes: which classifier this is."""
    h = hashlib.sha256()
    for key, v in sorted(_flatten(params).items()):
        v = np.ascontiguousarray(np.asarray(v))
        h.update(f"{key}|{v.dtype.str}|{v.shape}|".encode())
        h.update(v.tobytes())
    return h.hexdigest()[:16]


def _flatten(params) -> dict[str, np.ndarray]:
    from flax.traverse_util import flatten_dict
    return {"/".join(k): np.asarray(v) for k, v in flatten_dict(dict(params)).items()}


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    from flax.traverse_util import unflatten_dict
    return unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in flat.items()})


# -------------------------------------------------------------------------------- training


def _load_split(data_config, split: str, num: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `num` (all if None) uint8 images and int labels of a split."""
    from jaxgen.data import get_dataset
    src = get_dataset(data_config or DEFAULT_DATA, split).source
    n = len(src) if num is None else int(num)
    if not 0 < n <= len(src):
        raise UserError(f"asked for {n} {split} images; the split has {len(src)}")
    b = src.get(np.arange(n))
    if "label" not in b:
        raise UserError(f"the {split} split has no labels; the classifier needs them")
    x = np.asarray(b["x"])
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype != np.uint8 or x.shape[1:] != (28, 28, 1):
        raise UserError(f"expected uint8 (N, 28, 28, 1) images, got {x.dtype} {x.shape}")
    return x, np.asarray(b["label"], np.int32)


def _recipe(steps: int, batch_size: int, seed: int, lr: float, arch: dict | None,
            data_config, num_train: int | None, num_test: int | None) -> dict:
    """What a trained classifier depends on besides VERSION (also the cache key)."""
    name = (data_config or DEFAULT_DATA)
    name = name.get("name") if isinstance(name, dict) else getattr(name, "name", None)
    return {"steps": int(steps), "batch_size": int(batch_size), "seed": int(seed),
            "lr": float(lr), "arch": _arch(arch), "data": name,
            "num_train": None if num_train is None else int(num_train),
            "num_test": None if num_test is None else int(num_test)}


def _train_config(npz_path: Path, *, steps: int, batch_size: int, seed: int, lr: float,
                  arch: dict, progress: bool):
    """The resolved trainer config of one classifier run on the images in `npz_path`."""
    from jaxgen.kernel import config as config_lib
    cfg = config_lib.base_config()
    cfg.seed = int(seed)
    cfg.data.name = "array"
    cfg.data.path = str(npz_path)
    cfg.model.name = "fmnist_cnn"
    with cfg.model.unlocked():
        cfg.model.widths = tuple(arch["widths"])
        cfg.model.feature_dim = int(arch["feature_dim"])
    cfg.objective.name = "classifier"
    o = cfg.optim
    o.name, o.learning_rate, o.schedule = "adam", float(lr), "cosine"
    o.end_lr_factor, o.warmup_steps, o.grad_clip = 0.05, 0, 0.0
    t = cfg.train
    t.steps, t.batch_size, t.log_every = int(steps), int(batch_size), 1
    t.checkpoint_every, t.sample_every, t.ema_decay = int(steps), 0, 0.0
    t.progress = bool(progress)
    return config_lib.resolve(cfg)


def train_classifier(*, steps: int = DEFAULT_STEPS, batch_size: int = DEFAULT_BATCH_SIZE,
                     seed: int = 0, lr: float = DEFAULT_LR, arch: dict | None = None,
                     data_config=None, num_train: int | None = None,
                     num_test: int | None = None, progress: bool = True) -> tuple[dict, dict]:
    """Trains `FmnistCNN` with Adam on cross-entropy through the one trainer, then scores it
    on the test split.

    The first `num_train` training images (all if None) and their labels are written to an
    .npz in a temporary run folder and trained on as data.name=array by
    `jaxgen.runner.loop.train_and_evaluate` (objective "classifier", model "fmnist_cnn"): the
    trainer's init, its data order (a fresh permutation per epoch) and Adam with a cosine
    decay from `lr` to `lr / 20` over `steps`, no warmup, no gradient clipping, no EMA (the
    raw params are returned). Deterministic given `seed` (the config's seed). Test accuracy
    is over the first `num_test` test images (all 10 000 if None).

    Args:
      data_config: a `get_dataset` config (default: Fashion-MNIST); "train" and "test"
        splits with labels and (N, 28, 28[, 1]) uint8 images.
      arch: {"widths": conv channels, "feature_dim": penultimate width} (default 32, 64; 128).

    Returns:
      (params, info); info = {"test_accuracy", "steps", "batch_size", "seed",
      "train_seconds" (the trainer's run incl. compile), "feature_dim", "lr", "arch",
      "num_train", "num_test", "data", "loss_first", "loss_last" (mean loss over the first
      and last 10 % of steps, from the run's metrics.jsonl)}.
    """
    from jaxgen.runner.experiment import Experiment, read_run_info
    from jaxgen.runner.logging import read_metrics
    from jaxgen.runner.loop import train_and_evaluate

    recipe = _recipe(steps, batch_size, seed, lr, arch, data_config, num_train, num_test)
    a = recipe["arch"]
    x_train, y_train = _load_split(data_config, "train", num_train)
    with tempfile.TemporaryDirectory(prefix="jaxgen_classifier_") as tmp:
        npz = Path(tmp) / "train.npz"
        np.savez(npz, x=x_train, label=y_train)
        cfg = _train_config(npz, steps=steps, batch_size=batch_size, seed=seed, lr=lr, arch=a,
                            progress=progress)
        workdir = Path(tmp) / "run"
        t0 = time.perf_counter()
        train_and_evaluate(cfg, workdir)
        train_seconds = time.perf_counter() - t0
        exp = Experiment(cfg, read_run_info(workdir))
        state, _ = exp.restore(workdir)
        params = state.params["model"]
        losses = np.asarray([m["loss"] for m in read_metrics(workdir)], np.float64)
    if len(losses) != steps:
        raise RuntimeError(f"the classifier run logged {len(losses)} losses for {steps} steps")

    x_test, y_test = _load_split(data_config, "test", num_test)
    pred = np.argmax(embed(params, x_test, "logits"), -1)
    tail = max(1, steps // 10)
    info = {"test_accuracy": float(np.mean(pred == y_test)), "steps": int(steps),
            "batch_size": int(batch_size), "seed": int(seed),
            "train_seconds": round(train_seconds, 2), "feature_dim": a["feature_dim"],
            "lr": recipe["lr"], "arch": a, "data": recipe["data"], "num_train": len(x_train),
            "num_test": len(x_test), "loss_first": float(losses[:tail].mean()),
            "loss_last": float(losses[-tail:].mean())}
    return params, info


# --------------------------------------------------------------------------------- caching


def default_cache_dir() -> Path:
    """`$JAXGEN_CACHE/fmnist_classifier`, JAXGEN_CACHE defaulting to ~/.cache/jaxgen."""
    root = os.environ.get("JAXGEN_CACHE") or "~/.cache/jaxgen"
    return Path(root).expanduser() / "fmnist_classifier"


def _dir(cache_dir) -> Path:
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


def _npz_is_ours(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as f:
            return "__kind__" in f.files and str(f["__kind__"]) == KIND
    except Exception:  # unreadable / not an npz: not ours
        return False


def _json_is_ours(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
    except Exception:
        return None
    return d if isinstance(d, dict) and d.get("kind") == KIND else None


def _refuse_foreign(path: Path) -> None:
    """Raises if `path` exists and this module did not write it."""
    if not path.exists():
        return
    ours = _npz_is_ours(path) if path.suffix == ".npz" else _json_is_ours(path) is not None
    if not ours:
        raise FileExistsError(f"{path} exists and was not written by {__name__}; not "
                              "overwriting it. Choose another --cache-dir or move the file.")


def _atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over `path`: no half-written cache files."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_npz(path: Path, arrays: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, __kind__=np.array(KIND), **arrays)
    _atomic_write(path, write)


def _load_params(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return _unflatten({k: f[k] for k in f.files if k != "__kind__"})


def _same_structure(params, arch: dict) -> bool:
    module = FmnistCNN(tuple(arch["widths"]), arch["feature_dim"], NUM_CLASSES)
    want = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    from flax.traverse_util import flatten_dict
    shapes = lambda t: {k: (tuple(v.shape), np.dtype(v.dtype))  # noqa: E731
                        for k, v in flatten_dict(dict(t)).items()}
    return shapes(params) == shapes(want)


_TRAIN_KWARGS = {"steps", "batch_size", "seed", "lr", "arch", "data_config", "num_train",
                 "num_test", "progress"}


def load_or_train(cache_dir=None, *, force: bool = False, **train_kwargs) -> tuple[dict, dict]:
    """The cached classifier in `cache_dir` (default `default_cache_dir()`), or a new one.

    The cache is used only if info.json's "version" is VERSION, its "arch_hash" matches the
    requested architecture and its "recipe" the requested training settings
    (`train_kwargs` with defaults filled in; `progress` aside), and the params' fingerprint
    matches the recorded one. Anything else is retrained and overwritten, with a printed
    reason; `force=True` always retrains. Files there that this module did not write raise
    FileExistsError instead of being overwritten.

    Returns:
      (params, info): `train_classifier`'s info plus "kind", "version", "arch_hash",
      "recipe", "fingerprint"; loading returns exactly what training wrote.
    """
    d = _dir(cache_dir)
    unknown = set(train_kwargs) - _TRAIN_KWARGS
    if unknown:
        raise TypeError(f"unknown train_classifier arguments {sorted(unknown)}; "
                        f"expected some of {sorted(_TRAIN_KWARGS)}")
    kw = {k: v for k, v in train_kwargs.items() if k != "progress"}
    recipe = _recipe(kw.get("steps", DEFAULT_STEPS), kw.get("batch_size", DEFAULT_BATCH_SIZE),
                     kw.get("seed", 0), kw.get("lr", DEFAULT_LR), kw.get("arch"),
                     kw.get("data_config"), kw.get("num_train"), kw.get("num_test"))
    want = {"version": VERSION, "arch_hash": arch_hash(recipe["arch"]), "recipe": recipe}
    params_path, info_path = d / "params.npz", d / "info.json"

    reason = "forced (--force)" if force else None
    if not force:
        if not info_path.exists() and not params_path.exists():
            reason = f"no cached classifier in {d}"
        else:
            _refuse_foreign(info_path)
            _refuse_foreign(params_path)
            info = _json_is_ours(info_path) if info_path.exists() else None
            if info is None or not params_path.exists():
                reason = f"incomplete cache in {d}"
            else:
                stale = [k for k in want if info.get(k) != want[k]]
                if stale:
                    reason = "cache mismatch (" + ", ".join(
                        f"{k}: cached {info.get(k)!r} != wanted {want[k]!r}" for k in stale) + ")"
                else:
                    params = _load_params(params_path)
                    if not _same_structure(params, recipe["arch"]):
                        reason = "cached params do not match the architecture"
                    elif params_fingerprint(params) != info.get("fingerprint"):
                        reason = "cached params do not match their recorded fingerprint"
                    else:
                        print(f"classifier: loaded from {d} (test accuracy "
                              f"{info['test_accuracy']:.4f})", flush=True)
                        return params, info
    print(f"classifier: training ({reason}); cache {d}", flush=True)
    d.mkdir(parents=True, exist_ok=True)
    _refuse_foreign(info_path)
    _refuse_foreign(params_path)
    params, info = train_classifier(**train_kwargs)
    info = {**info, "kind": KIND, **want, "fingerprint": params_fingerprint(params)}
    _save_npz(params_path, _flatten(params))
    _atomic_write(info_path, lambda tmp: tmp.write_text(json.dumps(info, indent=1) + "\n"))
    # Hand back what a later load returns (json round trip: lists, not tuples).
    return _load_params(params_path), json.loads(info_path.read_text())


def load_cached(cache_dir=None) -> tuple[dict, dict] | None:
    """The cached classifier whatever recipe trained it, or None (nothing trains here).

    For consumers (`jaxgen eval`) that should use the classifier `jaxgen classifier`
    left, not train one: the cache counts if it is ours, of this VERSION, and its
    params match their architecture and recorded fingerprint.
    """
    d = _dir(cache_dir)
    info_path, params_path = d / "info.json", d / "params.npz"
    if not (info_path.exists() and params_path.exists()):
        return None
    info = _json_is_ours(info_path)
    if info is None or info.get("version") != VERSION or not _npz_is_ours(params_path):
        return None
    params = _load_params(params_path)
    arch = (info.get("recipe") or {}).get("arch")
    if not _same_structure(params, arch) or params_fingerprint(params) != info.get("fingerprint"):
        return None
    return params, info


# ------------------------------------------------------------------------- sample quality


def reference_stats(params, cache_dir=None, n: int = 10000, split: str = "test",
                    data_config=None) -> dict:
    """Gaussian statistics (mean, covariance) of the features of the first `n` images of
    `split`: the real side of FD.

    Cached as `<cache_dir>/ref_<split>_<n>.npz` with the classifier's fingerprint and the
    dataset name; a file made with other params (or data) is recomputed and overwritten.

    Returns:
      {"mu" (d,), "sigma" (d, d) float64, "n", "split", "fingerprint"}.
    """
    d = _dir(cache_dir)
    path = d / f"ref_{split}_{int(n)}.npz"
    fp = params_fingerprint(params)
    cfg = data_config or DEFAULT_DATA
    data = cfg.get("name") if isinstance(cfg, dict) else getattr(cfg, "name", None)
    if path.exists():
        _refuse_foreign(path)
        with np.load(path, allow_pickle=False) as f:
            cached = {k: f[k] for k in f.files}
        if str(cached["fingerprint"]) == fp and str(cached["data"]) == str(data):
            return {"mu": cached["mu"], "sigma": cached["sigma"], "n": int(cached["n"]),
                    "split": str(cached["split"]), "fingerprint": fp}
        print(f"reference stats {path}: made with another classifier or dataset; recomputing",
              flush=True)
    x, _ = _load_split(data_config, split, n)
    mu, sigma = gaussian_stats(embed(params, x))
    d.mkdir(parents=True, exist_ok=True)
    _save_npz(path, {"mu": mu, "sigma": sigma, "n": np.array(int(n)), "split": np.array(split),
                     "fingerprint": np.array(fp), "data": np.array(str(data))})
    return {"mu": mu, "sigma": sigma, "n": int(n), "split": split, "fingerprint": fp}


def sample_quality(params, images_uint8, *, ref: dict | None = None, real_for_pr=None,
                   k: int = 3) -> dict:
    """FD and precision/recall of uint8 images (N, 28, 28[, 1]) in the classifier's features.

    fd: Fréchet distance between the Gaussian fitted to the N images' features and `ref`
    (default `reference_stats(params)`: all 10 000 test images, default cache dir). FD is
    biased upward by a term that shrinks with N, so scores compare only at equal `fd_n` (and
    equal `fd_ref_n`, same classifier): always print n beside FD.

    precision/recall (k-NN manifolds, `frechet.precision_recall`): against the features of
    `real_for_pr` (uint8 real images); the first m = min(N, len(real_for_pr)) of each set
    are used so both sides have the same size (`pr_n` = m). None without `real_for_pr`.

    Returns:
      {"fd", "fd_n", "fd_ref_n", "precision", "recall", "pr_n", "pr_k"}.
    """
    if ref is None:
        ref = reference_stats(params)
    if "fingerprint" in ref and ref["fingerprint"] != params_fingerprint(params):
        raise UserError("ref was computed with another classifier; FD would mix feature "
                         "spaces. Recompute it with reference_stats(params).")
    feats = embed(params, images_uint8)
    if len(feats) < 2:
        raise UserError(f"need at least 2 images for FD, got {len(feats)}")
    fd = frechet_distance(*gaussian_stats(feats), ref["mu"], ref["sigma"])
    out = {"fd": fd, "fd_n": len(feats), "fd_ref_n": int(ref["n"]), "precision": None,
           "recall": None, "pr_n": 0, "pr_k": int(k)}
    if real_for_pr is not None:
        m = min(len(feats), len(real_for_pr))
        pr = precision_recall(embed(params, np.asarray(real_for_pr)[:m]), feats[:m], k=k)
        out.update(precision=pr["precision"], recall=pr["recall"], pr_n=m)
    return out


def _quality(params, samples, real):
    return sample_quality(params, samples, ref=reference_stats(params), real_for_pr=real)


# Fashion-MNIST's feature space (its dataset names it: `DatasetSpec.features`)
FEATURES = FeatureSpace("jaxgen's Fashion-MNIST classifier", load_cached, embed, _quality,
                        "skipped: train the feature classifier once with `jaxgen classifier`")


# ------------------------------------------------------------------------------------- CLI


def box_blur(images_uint8, size: int = 3) -> np.ndarray:
    """`size` x `size` box filter (edge padding) of uint8 images (N, H, W, C), rounded."""
    x = np.asarray(images_uint8, np.float64)
    p = size // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    out = sum(xp[:, i:i + h, j:j + w] for i in range(size) for j in range(size)) / size ** 2
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    from jaxgen.runner.logging import format_table
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache-dir", default=None,
                   help=f"default {default_cache_dir()} (root from $JAXGEN_CACHE)")
    p.add_argument("--force", action="store_true", help="retrain even if the cache is valid")
    p.add_argument("--num", type=int, default=1000, help="images per sanity-table row")
    p.add_argument("--ref-n", type=int, default=10000, help="test images in the reference")
    args = p.parse_args(argv)
    d = _dir(args.cache_dir)
    t0 = time.perf_counter()
    params, info = load_or_train(d, force=args.force)
    t1 = time.perf_counter()
    ref = reference_stats(params, d, n=args.ref_n, split="test")
    t2 = time.perf_counter()
    n = args.num
    test_x, _ = _load_split(None, "test", n)
    train_x, _ = _load_split(None, "train", 2 * n)
    noise = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    real_pr = train_x[n:2 * n]  # real images for precision/recall, disjoint from the rows
    rows = []
    for name, x in [("test images (inside the reference)", test_x),
                    ("train images", train_x[:n]),
                    ("test images, 3x3 box blur", box_blur(test_x)),
                    ("uniform noise", noise)]:
        q = sample_quality(params, x, ref=ref, real_for_pr=real_pr)
        rows.append((name, q["fd"], q["fd_n"], q["precision"], q["recall"]))
    t3 = time.perf_counter()
    print(format_table([
        ("test accuracy", f"{info['test_accuracy']:.4f} ({info['num_test']} test images)"),
        ("training", f"{info['steps']} steps x {info['batch_size']}, "
                     f"{info['train_seconds']:.1f} s (recorded at training time)"),
        ("this call", f"classifier {t1 - t0:.1f} s, reference stats {t2 - t1:.1f} s, "
                      f"table {t3 - t2:.1f} s"),
        ("cache", str(d)),
        ("fingerprint", info["fingerprint"]),
        ("reference stats", f"n = {ref['n']} {ref['split']} images, "
                            f"{d / ('ref_%s_%d.npz' % (ref['split'], ref['n']))}"),
    ], title=f"Fashion-MNIST classifier {VERSION} (features: {info['feature_dim']}-d)"))
    print(format_table(rows, title=f"sanity: FD vs the reference (n_ref = {ref['n']}); "
                                   f"precision/recall (k=3) vs {n} other train images",
                       header=("images", "FD", "n", "precision", "recall")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
