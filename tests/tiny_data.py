"""Tiny data files written in the official formats, for tests of the real readers."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np


def cifar10_records(rng, n):
    """(bytes of n CIFAR-10 binary records, their images (n, 32, 32, 3), labels (n,))."""
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(n, -1)  # R plane, G plane, B plane
    return np.concatenate([labels[:, None], planes], axis=1).tobytes(), images, labels


def write_cifar10(root: Path, rng, train_per_batch: int = 2, test: int = 3):
    """A tiny cifar-10-binary.tar.gz under `root` (`train_per_batch` records in each of the
    5 training batches, `test` test records) and its extracted folder.

    Returns (archive path, folder holding cifar-10-batches-bin/, {split: (images, labels)}).
    """
    from jaxgen.data.datasets import cifar10
    folder = root / "extracted" / cifar10.FOLDER
    folder.mkdir(parents=True)
    want = {"train": ([], []), "test": ([], [])}
    path = root / cifar10.ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for split, names in cifar10.FILES.items():
            for name in names:
                raw, images, labels = cifar10_records(
                    rng, train_per_batch if split == "train" else test)
                want[split][0].append(images)
                want[split][1].append(labels)
                (folder / name).write_bytes(raw)
                info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    want = {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in want.items()}
    return path, root / "extracted", want
