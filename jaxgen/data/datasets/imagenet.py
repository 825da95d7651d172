"""imagenet32, imagenet64: ImageNet downsampled to 32x32 and 64x64 (Chrabaszcz, Loshchilov &
Hutter, 2017, "A Downsampled Variant of ImageNet as an Alternative to the CIFAR datasets",
arXiv:1707.08819): the 1,281,167 training and 50,000 validation images of ILSVRC-2012, box
resized, 1000 classes. jaxgen's "test" split is the validation set. data.source names what
they are read from (`jaxgen.data.prepare`):

* the official `.npz` files from image-net.org, unzipped into one folder (any
  subfolders): `Imagenet32_train_npz.zip` and `Imagenet32_val_npz.zip`;
  `Imagenet64_train_part1_npz.zip`, `Imagenet64_train_part2_npz.zip` and
  `Imagenet64_val_npz.zip`. They hold `train_data_batch_1.npz` ... `train_data_batch_10.npz`
  and `val_data.npz`;
* `tfds:DATA_DIR`: tfds's `imagenet_resized/32x32` or `/64x64` prepared as array_record
  (its "validation" split is jaxgen's "test");
* the folder `jaxgen prepare imagenet64` writes (memory-mapped `.npy`), also found by
  itself inside the download folder: the fast form, and the one to train from.

The `.npz` format, as the authors' scripts (github.com/PatrykChrabaszcz/Imagenet32_Scripts,
image2numpy_imagenet_train.py) write each batch and tfds's `imagenet_resized` builder reads
the npz files (with `np.load(allow_pickle=False)`): `data` is `(N, 3 * S * S)` uint8, each
row one image channel-planar, the S*S red values row by row, then the green, then the blue
(`r.flatten() + g.flatten() + b.flatten()`); `labels` are 1..1000 (1-based: jaxgen
subtracts 1, as tfds does); `mean` (the training mean image) is not read. The label order is
the authors' map_clsloc.txt; the class names here are its WordNet ids, in label order, from
tfds's `imagenet_resized_labels.txt` (when tensorflow_datasets is installed).

The files are read without pickle: one that needs it (the pickled "Python" version of the
download, or an object array) is one error. A file numpy stored uncompressed is read in
place (memory-mapped, nothing loaded: the 64x64 training set is 15.7 GB); one it compressed
can only be read whole, so training from it is one error asking for `jaxgen prepare`,
which reads each file whole, once.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import zipfile
from pathlib import Path

import numpy as np

from jaxgen.data.datasets._common import CLASSES_DOC
from jaxgen.data.prepare import INCOMPLETE, REPLACED, Downloaded, register
from jaxgen.data.sources import _check_indices, npz_layout
from jaxgen.kernel.errors import MissingError, UserError
from jaxgen.kernel.settings import setting

TRAIN_FILES = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
VAL_FILE = "val_data.npz"
ZIPS = {32: ("Imagenet32_train_npz.zip", "Imagenet32_val_npz.zip"),
        64: ("Imagenet64_train_part1_npz.zip", "Imagenet64_train_part2_npz.zip",
             "Imagenet64_val_npz.zip")}
PAGE = "https://image-net.org/download-images"
FILE_URL = "https://image-net.org/data/downsample/"
NUM_CLASSES = 1000


def _wnids() -> tuple:
    """The WordNet ids of the 1000 classes in label order (tfds's imagenet_resized labels
    file), or () without tensorflow_datasets. Found without importing tfds."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    for base in (spec.submodule_search_locations or ()) if spec else ():
        path = Path(base) / "image_classification" / "imagenet_resized_labels.txt"
        if path.is_file():
            names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
            if len(names) == NUM_CLASSES:
                return names
    return ()


CLASS_NAMES = _wnids()


def _source_doc(size: int) -> str:
    return (f"a folder holding the unzipped {', '.join(ZIPS[size])} from {PAGE}, "
            f"tfds:DATA_DIR (tfds's imagenet_resized/{size}x{size} as array_record), or a "
            f"folder `jaxgen prepare imagenet{size}` wrote")


@dataclasses.dataclass(frozen=True)
class ImageNet32Settings:
    source: str = setting("~/datasets/imagenet32", _source_doc(32))
    classes: tuple = setting((), CLASSES_DOC)


@dataclasses.dataclass(frozen=True)
class ImageNet64Settings:
    source: str = setting("~/datasets/imagenet64", _source_doc(64))
    classes: tuple = setting((), CLASSES_DOC)


def _missing(size: int, folder: str, name: str) -> MissingError:
    zips = ZIPS[size]
    found = [z for z in zips if os.path.isfile(os.path.join(folder, z))]
    unzip = f" ({', '.join(found)} is there: unzip it)" if found else ""
    return MissingError(
        f"ImageNet {size}x{size}: {name} is not in {folder} (data.source) or its "
        f"subfolders{unzip}. jaxgen downloads nothing: download {', '.join(zips)} from {PAGE} "
        f"(an ImageNet account is needed; the files are {FILE_URL}NAME), unzip them into "
        f"{folder}, then run `jaxgen prepare imagenet{size} --source {folder}`; or pass "
        f"--config.data.source=FOLDER, or tfds:DATA_DIR for tfds's imagenet_resized/"
        f"{size}x{size} prepared as array_record.")


def find_files(folder: str, names: tuple, size: int) -> list[str]:
    """The paths of `names` in `folder` or its subfolders (two levels; a folder jaxgen
    prepare writes is skipped), in the order of `names`."""
    found: dict[str, list[str]] = {}
    if os.path.isdir(folder):
        root_depth = folder.rstrip(os.sep).count(os.sep)
        for here, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not (d.startswith("jaxgen-") or INCOMPLETE in d
                                                     or REPLACED in d))
            if here.rstrip(os.sep).count(os.sep) - root_depth >= 2:
                dirs[:] = []
            for f in files:
                if f in names:
                    found.setdefault(f, []).append(os.path.join(here, f))
    out = []
    for name in names:
        paths = found.get(name, [])
        if not paths:
            raise _missing(size, folder, name)
        if len(paths) > 1:
            raise UserError(f"{name} is in {folder} twice: {paths[0]} and {paths[1]}; keep one "
                            "dataset's files under data.source.")
        out.append(paths[0])
    return out


def _unreadable(path: str, e: Exception) -> UserError:
    with open(path, "rb") as f:
        first = f.read(2)
    if first[:1] == b"\x80" or "pickle" in str(e):
        return UserError(
            f"{path} needs pickle to be read ({e if 'pickle' in str(e) else 'a pickled file'}); "
            "jaxgen reads the .npz files without pickle: download the official *_npz.zip "
            f"files from {PAGE}, not the pickled version.")
    return UserError(f"{path} cannot be read as a .npz file ({type(e).__name__}: {e}): the "
                     f"download is damaged or cut; unzip or download it again from {PAGE}.")


def inspect_file(path: str, size: int) -> tuple[int, int | None, np.ndarray]:
    """(number of images, offset of `data` in the file or None when compressed, labels
    0..999 int32) of one official .npz file, from its headers and its labels."""
    try:
        shape, dtype, offset = npz_layout(path, "data")
        npz_layout(path, "labels")  # an object array is refused before it is read
        with np.load(path, allow_pickle=False) as z:
            labels = z["labels"]
    except KeyError as e:
        raise UserError(f"{path} holds no {e}: the official files hold the arrays 'data' "
                        f"and 'labels'; download them from {PAGE}.") from e
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise _unreadable(path, e) from e
    row = 3 * size * size
    if dtype != np.uint8 or len(shape) != 2 or shape[1] != row:
        other = {3 * s * s: s for s in ZIPS if s != size}.get(shape[-1] if shape else 0)
        hint = f": these are ImageNet {other}x{other} files (data.name=imagenet{other})" \
            if other else ""
        raise UserError(f"{path}: 'data' is {dtype} {shape}; ImageNet {size}x{size} files "
                        f"hold uint8 (N, {row}){hint}.")
    if labels.shape != (shape[0],) or labels.dtype.kind not in "iu":
        raise UserError(f"{path}: 'labels' is {labels.dtype} {labels.shape}; expected "
                        f"({shape[0]},) integers.")
    if shape[0] and (labels.min() < 1 or labels.max() > NUM_CLASSES):
        raise UserError(f"{path}: labels lie in [{labels.min()}, {labels.max()}]; the official "
                        f"files number the classes 1..{NUM_CLASSES}.")
    return shape[0], offset, (labels - 1).astype(np.int32)


class PlanarNpzSource:
    """The images of official .npz files one after the other, NHWC uint8, labels 0..999.

    A file numpy stored uncompressed is memory-mapped: `get` reads only the rows asked for
    and reorders each from channel-planar to (S, S, 3). With `whole=True` a compressed file
    is read whole when first needed (only the latest such file is kept), for reading in
    order (`jaxgen prepare`); without it, a compressed file is one error at once. Pickles
    as its paths and labels.
    """

    def __init__(self, paths: list[str], size: int, whole: bool = False):
        self.paths, self.size, self.whole = [os.fspath(p) for p in paths], size, whole
        counts, offsets, labels = [], [], []
        for p in self.paths:
            n, offset, y = inspect_file(p, size)
            if offset is None and not whole:
                raise UserError(
                    f"{p} is a compressed .npz: it cannot be read in place, only whole. Run "
                    f"`jaxgen prepare imagenet{size} --source FOLDER` once (it writes the "
                    "form that is read in place) and train from that.")
            counts.append(n)
            offsets.append(offset)
            labels.append(y)
        self.offsets = offsets
        self.ends = np.cumsum(counts)
        self.labels = np.concatenate(labels)
        self.event_shape = (size, size, 3)
        self.num_classes = NUM_CLASSES
        self._rows: dict[int, np.ndarray] = {}
        if not len(self.labels):
            raise UserError(f"{', '.join(self.paths)} hold no images.")

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_rows"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _rows={})

    def __len__(self) -> int:
        return len(self.labels)

    def _file(self, i: int) -> np.ndarray:
        """File i's `data`, (n, 3 S S): memory-mapped, or read whole."""
        if i not in self._rows:
            n = int(self.ends[i] - (self.ends[i - 1] if i else 0))
            shape = (n, 3 * self.size * self.size)
            if self.offsets[i] is not None:
                self._rows[i] = np.memmap(self.paths[i], np.uint8, "r", self.offsets[i], shape)
            else:
                for j in [j for j in self._rows if self.offsets[j] is None]:
                    del self._rows[j]
                with np.load(self.paths[i], allow_pickle=False) as z:
                    self._rows[i] = z["data"]
        return self._rows[i]

    def get(self, indices) -> dict[str, np.ndarray]:
        idx = _check_indices(indices, len(self))
        s = self.size
        x = np.empty((len(idx), s, s, 3), np.uint8)
        which = np.searchsorted(self.ends, idx, side="right")
        starts = np.concatenate([[0], self.ends[:-1]])
        for i in np.unique(which):
            sel = which == i
            rows = np.asarray(self._file(int(i))[idx[sel] - starts[i]])
            x[sel] = rows.reshape(-1, 3, s, s).transpose(0, 2, 3, 1)
        return {"x": x, "label": self.labels[idx]}

    def all_labels(self) -> np.ndarray:
        return self.labels.copy()

    def __repr__(self) -> str:
        return f"PlanarNpzSource(n={len(self)}, size={self.size}, files={len(self.paths)})"


def read(size: int, path: str, split: str, whole: bool = False):
    """`Downloaded.read`: (the split's source, its files) from the folder `path`."""
    files = find_files(path, TRAIN_FILES if split == "train" else (VAL_FILE,), size)
    return PlanarNpzSource(files, size, whole), files


for _size, _settings in ((32, ImageNet32Settings), (64, ImageNet64Settings)):
    register(Downloaded(f"imagenet{_size}", (_size, _size, 3), NUM_CLASSES,
                        functools.partial(read, _size), f"imagenet_resized/{_size}x{_size}",
                        {"train": "train", "test": "validation"}, CLASS_NAMES),
             _settings, f"ImageNet {_size}x{_size} (Chrabaszcz et al. 2017), 1000 classes: "
                        "npz you download, tfds or prepared")
