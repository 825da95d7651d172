"""cifar10: CIFAR-10 (Krizhevsky, 2009), 32x32 colour, 10 classes, 50,000 training and
10,000 test images, read with numpy from the official *binary* archive the user downloads
(`cifar-10-binary.tar.gz`, or its extracted `cifar-10-batches-bin/` folder); nothing is
downloaded and the Python (pickled) version is never read.

The binary format: each of data_batch_1..5.bin (training) and test_batch.bin (test) is a
run of 3073-byte records, one label byte (0-9) then 3072 pixel bytes, the 1024 red values
of the 32x32 image row by row, then the green and the blue ones.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile

import numpy as np

from jaxgen.data.datasets._common import CLASSES_DOC, keep_classes
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.errors import MissingError, UserError
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import setting

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
DEFAULT_SOURCE = f"~/datasets/{ARCHIVE}"
FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
RECORD = 1 + 32 * 32 * 3
# Krizhevsky, 2009 (batches.meta.txt of the archive), in label order
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck")


@dataclasses.dataclass(frozen=True)
class Cifar10Settings:
    source: str = setting(DEFAULT_SOURCE, f"the official binary archive {ARCHIVE} (or the "
                                          f"{FOLDER}/ folder it extracts to), from {URL}")
    classes: tuple = setting((), CLASSES_DOC)


def decode(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8 NHWC, labels (N,) int32) of one batch file's bytes."""
    if len(raw) % RECORD or not raw:
        raise UserError(f"CIFAR-10 file {name} holds {len(raw)} bytes, not a whole number of "
                        f"{RECORD}-byte records: the download is damaged or not the binary "
                        f"version; fetch {URL} again.")
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() > 9:
        raise UserError(f"CIFAR-10 file {name} has a label {labels.max()} (0-9 expected): not "
                        f"the binary version of CIFAR-10; fetch {URL}.")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _missing(path: str) -> MissingError:
    return MissingError(
        f"CIFAR-10 is not at {path} (data.source). jaxgen downloads nothing: fetch {URL} "
        f"(162 MiB) and put it there, or pass --config.data.source=/path/to/{ARCHIVE} (or "
        f"the {FOLDER}/ folder it extracts to).")


def read_split(source: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's images and labels from the archive or its extracted folder."""
    path = os.path.expanduser(source)
    names = FILES["train" if split == "train" else "test"]
    parts = []
    if os.path.isdir(path):
        folder = os.path.join(path, FOLDER) if os.path.isdir(os.path.join(path, FOLDER)) \
            else path
        for n in names:
            f = os.path.join(folder, n)
            if not os.path.isfile(f):
                raise _missing(f)
            with open(f, "rb") as fh:
                parts.append(decode(fh.read(), f))
    elif os.path.isfile(path):
        try:
            with tarfile.open(path, "r:*") as tar:
                members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
                for n in names:
                    if n not in members:
                        raise UserError(f"{path} holds no {n}: not the binary version of "
                                        f"CIFAR-10 ({ARCHIVE}); fetch {URL}.")
                    parts.append(decode(tar.extractfile(members[n]).read(), f"{path}:{n}"))
        except (tarfile.TarError, EOFError, OSError) as e:
            raise UserError(f"{path} cannot be read as {ARCHIVE} ({e}); the download is "
                            f"damaged: fetch {URL} again.") from e
    else:
        raise _missing(path)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def build(s: Cifar10Settings, split: str) -> Dataset:
    from jaxgen.data.sources import ArraySource
    images, labels = read_split(s.source, split)
    src = keep_classes(ArraySource(images, labels), s.classes)
    return Dataset("cifar10", "images", src, (32, 32, 3), 10, class_names=CLASS_NAMES)


register_dataset(DatasetSpec("cifar10", build, Cifar10Settings,
                             "CIFAR-10 32x32 colour, from the binary archive you download",
                             kind="images", class_names=CLASS_NAMES))
