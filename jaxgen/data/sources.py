"""Random-access data sources: what `jaxgen.data.pipeline` reads batches from.

A source is any object with

    len(source)                         number of examples
    source.get(indices) -> dict         {"x": (B, *event_shape), "label": (B,) int32}
                                        ("label" only when the data has labels)
    source.event_shape: tuple           shape of one example
    source.num_classes: int | None      number of label classes

Points are float32 `(N, D)`; images are uint8 NHWC. The sources here:
`ArraySource` (in memory; `load_array_file` builds one from `.npy`/`.npz`),
`SubsetSource` (some classes of another), `NpySource` (images and labels in two `.npy`
files, memory-mapped: the form `jaxgen prepare` writes), and `TfdsSource`, which wraps any
`tfds.data_source(...)` split read from array_record files (no TensorFlow needed;
`tfds_source` opens one by name). A source may also have `all_labels()`, every label
without reading the examples (`SubsetSource` uses it).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

ARRAY_X_KEYS = ("x", "images", "data", "arr_0")
ARRAY_LABEL_KEYS = ("label", "labels", "y")

_ARRAY_FORMATS = (
    "expected points as a float array (N, D), or images as (N, H, W) or (N, H, W, C) "
    "with C <= 4, either uint8 in [0, 255] or float in [0, 1]")


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise IndexError(
            f"indices must be a 1-D integer array, got dtype {idx.dtype} shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(
            f"indices out of range [0, {n}): min {idx.min()}, max {idx.max()}")
    return idx.astype(np.int64)


# ------------------------------------------------------------------ in memory


class ArraySource:
    """An in-memory source over `x` (and optional integer `label`).

    Args:
      x: `(N, *event_shape)` array, kept as is (callers choose float32 points or
        uint8 NHWC images; `load_array_file` normalises files to those).
      label: optional `(N,)` non-negative integers; stored as int32.
        `num_classes` is then `max(label) + 1`.
    """

    def __init__(self, x: np.ndarray, label: np.ndarray | None = None):
        x = np.asarray(x)
        if x.ndim < 1 or len(x) == 0:
            raise ValueError(f"x must hold at least one example, got shape {x.shape}")
        self.x = x
        self.label = None
        self.num_classes = None
        if label is not None:
            label = np.asarray(label)
            if label.shape != (len(x),):
                raise ValueError(
                    f"label must have shape ({len(x)},) to match x {x.shape}, got {label.shape}")
            if not np.issubdtype(label.dtype, np.integer):
                raise ValueError(f"label must be integers, got dtype {label.dtype}")
            if label.min() < 0:
                raise ValueError(f"label must be non-negative, found {label.min()}")
            self.label = label.astype(np.int32)
            self.num_classes = int(self.label.max()) + 1
        self.event_shape = tuple(x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    def get(self, indices) -> dict[str, np.ndarray]:
        idx = _check_indices(indices, len(self))
        out = {"x": self.x[idx]}
        if self.label is not None:
            out["label"] = self.label[idx]
        return out

    def __repr__(self) -> str:
        return (f"ArraySource(n={len(self)}, event_shape={self.event_shape}, "
                f"dtype={self.x.dtype}, num_classes={self.num_classes})")


class SubsetSource:
    """The examples of `source` whose label is in `classes` (labels keep their values).

    `num_classes` stays that of the full data, so a model conditioned on labels
    keeps its label space; only the examples are filtered.
    """

    def __init__(self, source, classes, chunk: int = 10_000):
        classes = np.asarray(sorted({int(c) for c in classes}), np.int64)
        if getattr(source, "num_classes", None) is None:
            raise ValueError("data.classes keeps some classes, but this data has no labels; "
                             "set data.classes=() or use labelled data.")
        bad = classes[(classes < 0) | (classes >= source.num_classes)]
        if len(bad):
            raise ValueError(f"data.classes has {bad.tolist()}, outside "
                             f"0..{source.num_classes - 1}.")
        if hasattr(source, "all_labels"):
            labels = source.all_labels()
        else:
            labels = np.concatenate([source.get(np.arange(lo, min(lo + chunk, len(source))))
                                     ["label"] for lo in range(0, len(source), chunk)])
        self.indices = np.flatnonzero(np.isin(labels, classes))
        if not len(self.indices):
            raise ValueError(f"no example has a label in data.classes={classes.tolist()}.")
        self.source = source
        self.classes = tuple(int(c) for c in classes)
        self.num_classes = source.num_classes
        self.event_shape = source.event_shape

    def __len__(self) -> int:
        return len(self.indices)

    def get(self, indices) -> dict[str, np.ndarray]:
        return self.source.get(self.indices[_check_indices(indices, len(self))])

    def __repr__(self) -> str:
        return f"SubsetSource(n={len(self)}, classes={self.classes}, of {self.source!r})"


def _normalise_array(x: np.ndarray, where: str) -> np.ndarray:
    """Points -> float32 (N, D); images -> uint8 (N, H, W, C). Errors say what was found."""
    found = f"{where}: found dtype {x.dtype}, shape {x.shape}"
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{found}; {_ARRAY_FORMATS}")
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise ValueError(f"{found}; {_ARRAY_FORMATS} (N >= 1)")
    is_float = x.dtype.kind == "f"
    if is_float and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{found}, with {bad} NaN/inf values; expected finite values")
    if x.ndim == 2:
        if not is_float:
            raise ValueError(
                f"{found}; 2-D arrays are read as points and must be float "
                "(use x.astype(np.float32)), or reshape images to (N, H, W) or (N, H, W, C)")
        return x.astype(np.float32)
    if x.ndim == 4 and x.shape[-1] > 4:
        raise ValueError(
            f"{found}; images must be channels-last (N, H, W, C) with C <= 4 "
            "(for channels-first data use x.transpose(0, 2, 3, 1))")
    lo, hi = x.min(), x.max()
    if is_float:
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{found}, values in [{lo}, {hi}]; float images must lie in [0, 1] "
                "(they are stored as uint8 = round(255 x)), or pass uint8 in [0, 255]")
        x = np.round(x * 255.0).astype(np.uint8)
    else:
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{found}, values in [{lo}, {hi}]; integer images must lie in [0, 255]")
        x = x.astype(np.uint8)
    if x.ndim == 3:
        x = x[..., None]
    return x


def load_array_file(path: str | os.PathLike) -> ArraySource:
    """Reads a `.npy` or `.npz` file into an `ArraySource`.

    `.npy`: the array is x. `.npz`: x is the first of the keys `x`, `images`,
    `data`, `arr_0` present; labels, if any, under `label`, `labels` or `y`.
    x may be float points `(N, D)`, or images `(N, H, W)` / `(N, H, W, C)` as
    uint8 (or integers in [0, 255]) or floats in [0, 1] (stored as
    `round(255 x)` uint8); `(N, H, W)` gets a channel axis. Files are loaded
    with `allow_pickle=False`.

    Raises:
      FileNotFoundError: no such file.
      ValueError: wrong extension, unknown keys, wrong shape/dtype, NaN/inf,
        float images outside [0, 1], or labels that do not match x.
    """
    p = Path(path).expanduser()
    if p.suffix.lower() not in (".npy", ".npz"):
        raise ValueError(
            f"{str(path)!r}: unsupported extension {p.suffix!r}; expected a .npy file "
            f"(the array is x) or a .npz file (x under one of {ARRAY_X_KEYS}, "
            f"labels optionally under one of {ARRAY_LABEL_KEYS})")
    if not p.is_file():
        raise FileNotFoundError(
            f"{str(path)!r}: no such file; expected a .npy or .npz array file "
            "(set data.path / data.eval_path)")
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as e:  # corrupt file, object arrays, ...
        raise ValueError(
            f"{str(p)!r}: could not be read as a numpy {p.suffix} file without pickle "
            f"({type(e).__name__}: {e}); expected a plain numeric array") from e
    label = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.files)
            x_key = next((k for k in ARRAY_X_KEYS if k in keys), None)
            if x_key is None:
                raise ValueError(
                    f"{str(p)!r}: found keys {keys}; expected the data under one of "
                    f"{list(ARRAY_X_KEYS)} (and labels optionally under one of "
                    f"{list(ARRAY_LABEL_KEYS)})")
            x = loaded[x_key]
            where = f"{str(p)!r}[{x_key!r}]"
            label_key = next((k for k in ARRAY_LABEL_KEYS if k in keys), None)
            if label_key is not None:
                label = loaded[label_key]
                label_where = f"{str(p)!r}[{label_key!r}]"
    else:
        x = loaded
        where = repr(str(p))
    x = _normalise_array(x, where)
    if label is not None:
        if label.shape != (len(x),):
            raise ValueError(
                f"{label_where}: found labels of shape {label.shape} for {len(x)} examples; "
                f"expected shape ({len(x)},)")
        if (label.dtype.kind == "f" and np.all(np.isfinite(label))
                and np.all(label == np.round(label))):
            label = label.astype(np.int64)
        if label.dtype.kind not in "iu" or label.min() < 0:
            raise ValueError(
                f"{label_where}: found labels of dtype {label.dtype} in "
                f"[{label.min()}, {label.max()}]; expected non-negative integers")
    return ArraySource(x, label)


# ------------------------------------------------------------- memory-mapped files


class NpySource:
    """Images `(N, H, W, C)` uint8 and labels `(N,)` int32 in two `.npy` files, opened with
    `np.load(mmap_mode="r")`: `get` reads only the rows it is asked for and nothing is held
    in memory (the page cache keeps what was read). Pickles as its paths: a data worker
    maps the files again.

    Args:
      images_path, labels_path: the two files.
      num_classes: the number of label classes (not `max(label) + 1`: a split need not hold
        every class).

    Raises:
      ValueError: a file that is not a `.npy` of that form, or is shorter than its header
        says (numpy's own message on a cut file).
    """

    def __init__(self, images_path, labels_path, num_classes: int):
        self.paths = (os.fspath(images_path), os.fspath(labels_path))
        self.num_classes = int(num_classes)
        self._open()

    def _open(self) -> None:
        images = np.load(self.paths[0], mmap_mode="r", allow_pickle=False)
        labels = np.load(self.paths[1], mmap_mode="r", allow_pickle=False)
        if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
            raise ValueError(f"{self.paths[0]!r}: found {images.dtype} {images.shape}; "
                             "expected uint8 images (N, H, W, C), N >= 1")
        if labels.dtype != np.int32 or labels.shape != (len(images),):
            raise ValueError(f"{self.paths[1]!r}: found {labels.dtype} {labels.shape}; "
                             f"expected int32 labels ({len(images)},)")
        self.images, self.labels = images, labels
        self.event_shape = tuple(images.shape[1:])

    def __getstate__(self) -> dict:
        return {"paths": self.paths, "num_classes": self.num_classes}

    def __setstate__(self, state: dict) -> None:
        self.paths, self.num_classes = state["paths"], state["num_classes"]
        self._open()

    def __len__(self) -> int:
        return len(self.images)

    def get(self, indices) -> dict[str, np.ndarray]:
        idx = _check_indices(indices, len(self))
        return {"x": np.asarray(self.images[idx]), "label": np.asarray(self.labels[idx])}

    def all_labels(self) -> np.ndarray:
        return np.array(self.labels)

    def __repr__(self) -> str:
        return (f"NpySource(n={len(self)}, event_shape={self.event_shape}, "
                f"num_classes={self.num_classes}, {self.paths[0]!r})")


def npz_layout(path, key: str) -> tuple[tuple, np.dtype, int | None]:
    """(shape, dtype, offset) of the array `key` of the `.npz` file `path`, from its
    headers alone: `offset` is where the array's bytes start in the file when numpy stored
    it uncompressed (`np.savez`), so `np.memmap(path, dtype, "r", offset, shape)` reads it
    in place; None when it is compressed (`np.savez_compressed`: only a whole read gets it).

    A `.npz` is a zip archive of `.npy` files (numpy.lib.format); a stored member's bytes
    follow its local file header: 30 bytes, whose last four give the lengths of the name
    and the extra field that come next (PKWARE's APPNOTE.TXT, 4.3.7).

    Raises:
      KeyError: the file holds no array `key`.
      ValueError: not a zip of `.npy` files (zipfile.BadZipFile is one), an object array
        (it would need pickle), or a Fortran-ordered one.
    """
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as member:
            shape, fortran, dtype = _npy_header(member, path, key)
    if dtype.hasobject:
        raise ValueError(f"{os.fspath(path)!r}: array {key!r} holds Python objects "
                         f"({dtype}); reading it would need pickle")
    if fortran and len(shape) > 1:
        raise ValueError(f"{os.fspath(path)!r}: array {key!r} is in Fortran order")
    if info.compress_type != zipfile.ZIP_STORED:
        return shape, dtype, None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise ValueError(f"{os.fspath(path)!r}: no zip entry header for {key!r}")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        _npy_header(f, path, key)
        return shape, dtype, f.tell()


def _npy_header(f, path, key) -> tuple[tuple, bool, np.dtype]:
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        return fmt.read_array_header_1_0(f)
    if version == (2, 0):
        return fmt.read_array_header_2_0(f)
    raise ValueError(f"{os.fspath(path)!r}: array {key!r} is a .npy of version {version}; "
                     "expected 1.0 or 2.0")


# ----------------------------------------------------------------------- tfds


class TfdsSource:
    """Wraps one split of `tfds.data_source(...)` (array_record, read without TF).

    Images come out uint8 NHWC (a channel axis is added to `(H, W)` images),
    labels int32. Batches are read with the data source's `__getitems__`; where
    that fails with a TypeError (tfds's mock data source: `_getitems() missing
    ... 'record_keys'`) or is missing, records are read one by one.

    Args:
      data_source: a tfds data source (len + getitem returning feature dicts).
      image_key: feature holding the image.
      label_key: feature holding the class label; absent features mean no labels.
    """

    def __init__(self, data_source, image_key: str = "image", label_key: str = "label"):
        self.data_source = data_source
        self.image_key = image_key
        self.label_key = label_key
        self._batched = hasattr(data_source, "__getitems__")
        if len(data_source) == 0:
            raise ValueError(f"the tfds split is empty: {data_source!r}")
        features = getattr(getattr(data_source, "dataset_info", None), "features", None)
        keys = list(features.keys()) if features is not None else list(data_source[0].keys())
        if image_key not in keys:
            raise ValueError(
                f"tfds data has features {keys}; expected images under {image_key!r}")
        self.has_label = label_key in keys
        self.num_classes = None
        if self.has_label and features is not None:
            num = getattr(features[label_key], "num_classes", None)
            self.num_classes = int(num) if num is not None else None
        shape = getattr(features[image_key], "shape", None) if features is not None else None
        if shape is None or any(d is None for d in shape):
            shape = self._images([data_source[0]]).shape[1:]
        elif len(shape) == 2:
            shape = (*shape, 1)
        self.event_shape = tuple(int(d) for d in shape)
        if len(self.event_shape) != 3:
            raise ValueError(
                f"feature {image_key!r} has shape {self.event_shape}; expected images "
                "(H, W) or (H, W, C)")

    def __len__(self) -> int:
        return len(self.data_source)

    def _records(self, idx: np.ndarray) -> list:
        keys = [int(i) for i in idx]
        if self._batched:
            try:
                return list(self.data_source.__getitems__(keys))
            except TypeError:
                self._batched = False  # tfds mock; remember and read one by one
        return [self.data_source[k] for k in keys]

    def _images(self, records) -> np.ndarray:
        x = np.stack([np.asarray(r[self.image_key]) for r in records])
        if x.dtype != np.uint8:
            raise ValueError(
                f"feature {self.image_key!r} has dtype {x.dtype}; expected uint8 images")
        if x.ndim == 3:
            x = x[..., None]
        return x

    def get(self, indices) -> dict[str, np.ndarray]:
        idx = _check_indices(indices, len(self))
        if idx.size == 0:
            out = {"x": np.zeros((0, *self.event_shape), np.uint8)}
            if self.has_label:
                out["label"] = np.zeros((0,), np.int32)
            return out
        records = self._records(idx)
        out = {"x": self._images(records)}
        if self.has_label:
            out["label"] = np.asarray([r[self.label_key] for r in records]).astype(np.int32)
        return out

    def __repr__(self) -> str:
        return (f"TfdsSource(n={len(self)}, event_shape={self.event_shape}, "
                f"num_classes={self.num_classes})")


def not_prepared_message(name: str, data_dir) -> str:
    """The one explanation of how to prepare a tfds dataset for `tfds.data_source`."""
    where = repr(str(data_dir)) if data_dir else "tfds's default data_dir"
    dd = repr(str(data_dir)) if data_dir else "None"
    return (
        f"tfds dataset {name!r} is not prepared in {where} in array_record format "
        "(tfds.data_source reads only array_record). On a machine with internet run:\n"
        f"    import tensorflow_datasets as tfds\n"
        f"    tfds.builder({name!r}, data_dir={dd}).download_and_prepare("
        "file_format=\"array_record\")\n"
        "and copy the data_dir here. tfds's stock builders may need TensorFlow installed "
        "for that step (to encode images); reading here does not.")


def tfds_source(name: str, split: str, data_dir: str | os.PathLike | None = None,
                image_key: str = "image", label_key: str = "label") -> TfdsSource:
    """Opens split `split` of the prepared tfds dataset `name` in `data_dir`.

    Reads with `tfds.data_source(name, split=split, data_dir=data_dir,
    download=False)`; `data_dir=None` is tfds's default (`$TFDS_DATA_DIR` or
    `~/tensorflow_datasets`). Nothing is downloaded.

    Raises:
      ValueError: the dataset is not prepared there in array_record format (the
        message says how to prepare it), or it has no `image_key` feature.
    """
    import tensorflow_datasets as tfds

    data_dir = os.fspath(Path(data_dir).expanduser()) if data_dir else None
    try:
        ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as e:
        # tfds reports a missing dataset in several ways (DatasetNotFoundError,
        # KeyError on empty splits, NotImplementedError for the tfrecord default,
        # ...); diagnose instead of matching them, and re-raise anything else
        # (e.g. a malformed split string) unchanged.
        if not _prepared_as_array_record(tfds, name, data_dir):
            raise ValueError(not_prepared_message(name, data_dir)) from e
        raise
    return TfdsSource(ds, image_key=image_key, label_key=label_key)


def _prepared_as_array_record(tfds, name: str, data_dir: str | None) -> bool:
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        return False
    if not (Path(builder.data_path) / "dataset_info.json").is_file():
        return False  # checked first: builder.is_prepared() warns on a missing folder
    return builder.is_prepared() and builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
