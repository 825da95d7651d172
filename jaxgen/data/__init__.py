"""Data: the one entry point `get_dataset(config.data, split)`.

    name              what                                        kind
    ----------------  ------------------------------------------  ------
    8gaussians, ...   a fixed sample of a 2-D toy (`toy2d`)       points
    random_mixture    random anisotropic Gaussians (data.mixture_ points
                      seed, data.components), exact log p
    gaussian_ar2      stationary Gaussian AR(2) sequences (T,)    points
                      (`toy_sequences`, exact log p)
    array             your .npy/.npz (`sources.load_array_file`)  points or images
    codes             a VQ-VAE's code maps (`jaxgen codes` .npz)   tokens
    fashion_mnist     Fashion-MNIST via tfds, offline, no TF      images
    tfds:<name>       any tfds dataset prepared as array_record   images

Every dataset is a random-access source (`len`, `get(indices)`, see
`jaxgen.data.sources`); `jaxgen.data.pipeline` turns it into deterministic,
sharded batches. Datasets are host-side numpy (these modules do not import
jax; `transforms` is the in-step part), and tfds is imported only when a
tfds-backed dataset is asked for.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxgen.core.errors import MissingError, UserError
from jaxgen.data.sources import ArraySource, TfdsSource, load_array_file, tfds_source
from jaxgen.data.toy2d import TOY_DATASETS, Toy2D, entropy, get_toy
from jaxgen.data.toy_sequences import SEQUENCE_TOYS, ToySequence, get_sequence_toy

__all__ = [
    "Dataset", "get_dataset", "check_held_out", "dataset_names", "ArraySource", "TfdsSource",
    "load_array_file",
    "read_array_file", "tfds_source", "Toy2D", "get_toy", "entropy", "TOY_DATASETS",
    "DEFAULT_TFDS_DIR", "SEQUENCE_TOYS", "ToySequence", "get_sequence_toy",
]

DEFAULT_TFDS_DIR = "~/.cache/jaxgen/tfds"  # fashion_mnist's data_dir when data.path is empty
_SPLITS = ("train", "test", "eval")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a dataset.

    Attributes:
      name: e.g. "8gaussians", "array", "fashion_mnist", "tfds:mnist".
      kind: "points" (float32 vectors), "images" (uint8 NHWC) or "tokens"
        (int32 code maps with values in [0, num_tokens)).
      source: random-access source (`len(source)`, `source.get(indices)`).
      event_shape: shape of one example.
      num_classes: number of label classes, or None without labels.
      toy: the `Toy2D` (or `ToySequence`) for toy datasets (true log_prob, modes),
        else None.
    """

    name: str
    kind: str
    source: object
    event_shape: tuple
    num_classes: int | None
    toy: Toy2D | ToySequence | None = None
    num_tokens: int | None = None
    decoder_workdir: str | None = None  # tokens / latents: the autoencoder that decodes them


def dataset_names() -> list[str]:
    """Valid `data.name` values (`tfds:<name>` stands for any prepared tfds dataset)."""
    return [*TOY_DATASETS, *SEQUENCE_TOYS, "array", "codes", "latents", "fashion_mnist",
            "tfds:<name>"]


def _get(cfg, key, default=None):
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def _positive_int(cfg, key) -> int:
    v = _get(cfg, key)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise UserError(f"data.{key} must be a positive int, got {v!r}")
    return int(v)


def _kind(source) -> str:
    return "points" if len(source.event_shape) == 1 else "images"


def get_dataset(data_config, split: str) -> Dataset:
    """The `split` ("train", "test" or "eval"; "eval" means "test") of `data_config.name`.

    `data_config` (an `ml_collections.ConfigDict`, or a dict) has keys `name`,
    `path`, `eval_path`, `num_train`, `num_eval`, `seed`, `std`, `mixture_seed`,
    `components`, `source_dir`,
    `classes` (labelled data: keep only the examples with these labels, in every
    split; () keeps all):

    * toy names: `num_train` ("train") or `num_eval` ("test"/"eval") points from
      `np.random.default_rng([seed, 0])` resp. `[seed, 1]`, so the held-out set is
      independent of the training set and both are deterministic. `std`
      overrides the mixtures' component std (None: the paper's); random_mixture
      draws its mixture from `mixture_seed` and `components` (`toy2d.random_mixture`).
    * "array": "train" reads `path`, "test"/"eval" reads `eval_path`
      (`.npy`/`.npz`, see `load_array_file`).
    * "codes": like "array", from the .npz files `jaxgen codes` writes (a
      VQ-VAE's code maps "codes" (N, h, w), "num_codes", "label", and the
      VQ-VAE's workdir, which decodes samples of a prior back to images).
    * "latents": the latents of the autoencoder run `workdir` over its own train
      ("train") or test ("test"/"eval") images (`latent`: a VAE's posterior means or
      draws, a VQ-VAE's pre-quantised maps), as (N, d) points, or in their own shape
      with `keep_shape` (`jaxgen.data.latents`).
    * "fashion_mnist": `path` is the tfds data_dir (empty: ~/.cache/jaxgen/tfds),
      `source_dir` the folder with the IDX files; prepared on first use.
    * "tfds:<name>": a prepared array_record tfds dataset in data_dir `path`
      (empty: tfds's default); the split string goes to tfds as is (so
      "train[:90%]" works), except "eval" -> "test". Images from the "image"
      feature, labels from "label" if present.

    Raises:
      ValueError: unknown name (lists the valid ones), unknown split, bad config.
    """
    name = _get(data_config, "name")
    if not isinstance(name, str):
        raise UserError(f"data.name must be a string, got {name!r}; valid: {dataset_names()}")
    is_tfds = name.startswith("tfds:")
    _check_applicable(data_config, name)
    if not is_tfds and split not in _SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {list(_SPLITS)}")
    train = split == "train"

    if name == "random_mixture":
        toy = get_toy(name, mixture_seed=_get(data_config, "mixture_seed", None),
                      components=_get(data_config, "components", None))
    elif name in TOY_DATASETS:
        toy = get_toy(name, std=_get(data_config, "std"))
    if name in TOY_DATASETS:
        n = _positive_int(data_config, "num_train" if train else "num_eval")
        seed = int(_get(data_config, "seed", 0))
        x = toy.sample(np.random.default_rng([seed, 0 if train else 1]), n)
        return Dataset(name, "points", ArraySource(x), (2,), None, toy)

    if name in SEQUENCE_TOYS:
        toy = get_sequence_toy(name, length=_get(data_config, "length"),
                               coeffs=_get(data_config, "ar_coeffs"), std=_get(data_config, "std"))
        n = _positive_int(data_config, "num_train" if train else "num_eval")
        seed = int(_get(data_config, "seed", 0))
        x = toy.sample(np.random.default_rng([seed, 0 if train else 1]), n)
        return Dataset(name, "points", ArraySource(x), (toy.length,), None, toy)

    if name == "array":
        src = _users(load_array_file, _split_path(
            data_config, train, split, "FILE (.npy or .npz)",
            f"set it, e.g. --config.data.{'path' if train else 'eval_path'}=/path/to/"
            f"{'train' if train else 'eval'}.npz"))
        src = _keep_classes(src, data_config)
        return Dataset(name, _kind(src), src, src.event_shape, src.num_classes)

    if name == "codes":
        src, num_tokens, decoder = load_codes_file(_split_path(
            data_config, train, split, "FILE.npz",
            f"written by `jaxgen codes --workdir VQVAE_RUN --out FILE.npz --split "
            f"{'train' if train else 'test'}`"), tuple(_get(data_config, "levels", ()) or ()))
        src = _keep_classes(src, data_config)
        return Dataset(name, "tokens", src, src.event_shape, src.num_classes,
                       num_tokens=num_tokens, decoder_workdir=decoder)

    if name == "latents":
        from jaxgen.data.latents import latent_source
        workdir = _get(data_config, "workdir", "") or ""
        src = _keep_classes(latent_source(workdir, train, get_dataset,
                                          _get(data_config, "latent", "mean") or "mean",
                                          _get(data_config, "seed", 0) or 0,
                                          bool(_get(data_config, "keep_shape", False))),
                            data_config)
        return Dataset(name, "points", src, src.event_shape, src.num_classes,
                       decoder_workdir=workdir)

    if name == "fashion_mnist":
        from jaxgen.data.fashion_mnist import DEFAULT_SOURCE_DIR, fashion_mnist_source

        data_dir = _get(data_config, "path") or DEFAULT_TFDS_DIR
        source_dir = _get(data_config, "source_dir") or DEFAULT_SOURCE_DIR
        src = _users(fashion_mnist_source, "train" if train else "test",
                     os.path.expanduser(data_dir), source_dir)
        src = _keep_classes(src, data_config)
        return Dataset(name, "images", src, src.event_shape, src.num_classes)

    if is_tfds and len(name) > len("tfds:"):
        tfds_name = name[len("tfds:"):]
        data_dir = _get(data_config, "path") or None
        src = _keep_classes(_users(tfds_source, tfds_name, "test" if split == "eval" else split,
                                   data_dir), data_config)
        return Dataset(name, "images", src, src.event_shape, src.num_classes)

    raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}")


_TOY_KEYS = {"name", "num_train", "num_eval", "seed", "std"}
_FILE_KEYS = {"name", "path", "eval_path", "classes"}


def applicable_keys(name: str) -> set[str]:
    """The data.* keys that mean something for dataset `name`."""
    if name == "random_mixture":
        return (_TOY_KEYS - {"std"}) | {"mixture_seed", "components"}
    if name in TOY_DATASETS:
        return _TOY_KEYS
    if name in SEQUENCE_TOYS:
        return _TOY_KEYS | {"length", "ar_coeffs"}
    if name == "array":
        return _FILE_KEYS
    if name == "codes":
        return _FILE_KEYS | {"decoder_workdir", "levels"}
    if name == "latents":
        return {"name", "workdir", "latent", "seed", "keep_shape", "classes"}
    if name == "fashion_mnist":
        return {"name", "path", "source_dir", "classes"}
    if name.startswith("tfds:"):
        return {"name", "path", "classes"}
    return set()  # an unknown name: get_dataset's own error lists the valid ones


def _check_applicable(data_config, name: str) -> None:
    """A key set away from its default that dataset `name` does not use is an error (a
    data.classes on a 2-D toy would otherwise be silently ignored)."""
    if not hasattr(data_config, "keys") or not applicable_keys(name):
        return
    from jaxgen.core import settings
    from jaxgen.core.config import DataSettings
    defaults = settings.defaults(DataSettings)
    for key in data_config.keys():
        value = _get(data_config, key)
        if isinstance(value, list):
            value = tuple(value)
        if key in defaults and key not in applicable_keys(name) and value != defaults[key]:
            raise UserError(f"data.{key}={value!r} does not apply to data.name={name}; it "
                            f"uses {', '.join('data.' + k for k in sorted(applicable_keys(name)))}"
                            f". Drop data.{key}.")


def check_held_out(data_config, train: Dataset) -> None:
    """Refuses held-out data that does not fit the training data (another shape, kind, or
    number of classes or codes), at train time rather than at the first `jaxgen eval`. Only
    the user's own files (array, codes with an eval_path) can differ; the rest are made
    together."""
    name = _get(data_config, "name")
    if name not in ("array", "codes") or not _get(data_config, "eval_path"):
        return
    held = get_dataset(data_config, "test")
    fields = (("event shape", "event_shape"), ("kind", "kind"),
              ("number of classes", "num_classes"), ("number of codes", "num_tokens"))
    for what, attr in fields:
        a, b = getattr(train, attr), getattr(held, attr)
        if a != b and not (attr == "num_classes" and None in (a, b)):  # labels are optional
            raise UserError(
                f"data.eval_path={_get(data_config, 'eval_path')} does not fit the training "
                f"data data.path={_get(data_config, 'path')}: its {what} is {b}, the training "
                f"data's {a}. Pass held-out data of the same form (or drop data.eval_path).")


def _users(read, *args):
    """read(*args) of the user's files or prepared data; what is wrong with them (the
    sources' ValueError / FileNotFoundError, and numpy's on a damaged file) is the user's
    to fix: a UserError / MissingError with the same message."""
    try:
        return read(*args)
    except FileNotFoundError as e:
        raise MissingError(str(e)) from e
    except ValueError as e:
        raise UserError(str(e)) from e


def read_array_file(path):
    """`load_array_file` for a command's --input: its errors as jaxgen's user errors."""
    return _users(load_array_file, path)


def _split_path(data_config, train: bool, split: str, what: str, hint: str) -> str:
    """data.path (train) or data.eval_path (test/eval) of a file-backed dataset, or one error."""
    key = "path" if train else "eval_path"
    path = _get(data_config, key) or ""
    if not path:
        raise UserError(f"data.name={_get(data_config, 'name')} needs data.{key}={what} for "
                         f"split {split!r}; {hint}.")
    return path


def load_codes_file(path, levels: tuple = ()) -> tuple:
    """(ArraySource of int32 codes (N, h, w) [+ label], K, the VQ-VAE workdir or None).

    `levels` (a multi-level export's `codes_<level>` arrays, data.levels): one level keeps
    its (N, h, w) maps; several are flattened and concatenated, the first's first, into
    one (N, Σ h w) sequence (e.g. VQ-VAE-2's [top ; bottom], for a bottom prior that reads
    the top as a given prefix)."""
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise MissingError(f"{path} does not exist; write it with `jaxgen codes "
                                "--workdir VQVAE_RUN --out FILE.npz`.")
    keys = [f"codes_{lv}" for lv in levels] or ["codes"]
    with np.load(path) as f:
        if any(k not in f.files for k in keys) or "num_codes" not in f.files:
            have = [str(v) for v in f["levels"]] if "levels" in f.files else []
            raise UserError(f"{path} holds {f.files}; data.name=codes reads {keys} and "
                             "'num_codes' (`jaxgen codes` writes them)"
                             + (f"; its levels: {have}, set data.levels" if have else "") + ".")
        maps = [np.asarray(f[k]) for k in keys]
        codes = maps[0] if len(maps) == 1 else np.concatenate(
            [m.reshape(len(m), -1) for m in maps], axis=1)
        k = int(f["num_codes"])
        label = np.asarray(f["label"]) if "label" in f.files else None
        decoder = str(f["vqvae_workdir"]) if "vqvae_workdir" in f.files else None
    if codes.ndim < 2 or not np.issubdtype(codes.dtype, np.integer):
        raise UserError(f"{path}: codes must be integer maps (N, h, w), got {codes.dtype} "
                         f"{codes.shape}.")
    if codes.min() < 0 or codes.max() >= k:
        raise UserError(f"{path}: codes lie in [{codes.min()}, {codes.max()}], outside "
                         f"[0, num_codes={k}).")
    return ArraySource(codes.astype(np.int32), label), k, decoder


def _keep_classes(src, data_config):
    """data.classes (non-empty): only the examples of those labels (both splits)."""
    classes = _get(data_config, "classes", ()) or ()
    if not classes:
        return src
    from jaxgen.data.sources import SubsetSource
    return SubsetSource(src, classes)


def class_names(name: str, num_classes: int) -> list[str]:
    """Readable class names for picture labels ("class k" when the data has none)."""
    if name == "fashion_mnist":
        from jaxgen.data.fashion_mnist import CLASS_NAMES
        return list(CLASS_NAMES)
    return [f"class {k}" for k in range(num_classes)]
