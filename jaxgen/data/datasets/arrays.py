"""array: the user's own .npy / .npz files (`jaxgen.data.sources.load_array_file`), points
or images, with optional labels."""

from __future__ import annotations

import dataclasses

from jaxgen.data.datasets._common import CLASSES_DOC, keep_classes, kind_of, split_path, users
from jaxgen.data.sources import load_array_file
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import setting


@dataclasses.dataclass(frozen=True)
class ArraySettings:
    path: str = setting("", "the training .npy/.npz (points (N, D), or images (N, H, W[, C]))")
    eval_path: str = setting("", "the held-out .npy/.npz ('': no held-out data)")
    classes: tuple = setting((), CLASSES_DOC)


def build(s: ArraySettings, split: str) -> Dataset:
    train = split == "train"
    src = users(load_array_file, split_path(
        s, "array", split, "FILE (.npy or .npz)",
        f"set it, e.g. --config.data.{'path' if train else 'eval_path'}=/path/to/"
        f"{'train' if train else 'eval'}.npz"))
    src = keep_classes(src, s.classes)
    return Dataset("array", kind_of(src), src, src.event_shape, src.num_classes)


register_dataset(DatasetSpec("array", build, ArraySettings,
                             "your .npy/.npz files: points or images",
                             held_out=lambda s: bool(s.eval_path)))
