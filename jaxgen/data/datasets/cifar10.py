"""cifar10: CIFAR-10 (Krizhevsky, 2009), 32x32 colour, 10 classes, 50,000 training and
10,000 test images. data.source names what it is read from (`jaxgen.data.prepare`):

* the official *binary* archive the user downloads (`cifar-10-binary.tar.gz`, or its
  extracted `cifar-10-batches-bin/` folder), read with numpy into memory (147 MiB for the
  training split);
* `tfds:DATA_DIR`: tfds's `cifar10` prepared as array_record (its records in tfds's order);
* the folder `jaxgen prepare cifar10` writes (memory-mapped `.npy`), also found by itself
  next to the archive.

Nothing is downloaded and the Python (pickled) version is never read.

The binary format: each of data_batch_1..5.bin (training) and test_batch.bin (test) is a
run of 3073-byte records, one label byte (0-9) then 3072 pixel bytes, the 1024 red values
of the 32x32 image row by row, then the green and the blue ones.
"""

from __future__ import annotations

import dataclasses
import os
import tarfile

import numpy as np

from jaxgen.data.datasets._common import CLASSES_DOC
from jaxgen.data.prepare import Downloaded, register
from jaxgen.kernel.errors import MissingError, UserError
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
    source: str = setting(DEFAULT_SOURCE, f"the official binary archive {ARCHIVE} from {URL} "
                                          f"(or the {FOLDER}/ folder it extracts to), "
                                          "tfds:DATA_DIR (tfds's cifar10 as array_record), "
                                          "or a folder `jaxgen prepare cifar10` wrote")
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
        f"the {FOLDER}/ folder it extracts to, or tfds:DATA_DIR for tfds's cifar10 prepared "
        "as array_record).")


def read_split(source: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The split's images and labels from the archive or its extracted folder, and the
    files read."""
    path = os.path.expanduser(source)
    names = FILES["train" if split == "train" else "test"]
    parts, files = [], [path]
    if os.path.isdir(path):
        folder = os.path.join(path, FOLDER) if os.path.isdir(os.path.join(path, FOLDER)) \
            else path
        files = [os.path.join(folder, n) for n in names]
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
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            files)


def read(path: str, split: str, whole: bool = False):
    """(the split in memory, the files read): `Downloaded.read` of the binary archive."""
    del whole  # read whole anyway: 147 MiB at most
    from jaxgen.data.sources import ArraySource
    images, labels, files = read_split(path, split)
    return ArraySource(images, labels), files


CIFAR10 = register(Downloaded("cifar10", (32, 32, 3), 10, read, "cifar10",
                              class_names=CLASS_NAMES), Cifar10Settings,
                   "CIFAR-10 32x32 colour: the binary archive you download, tfds or prepared")
