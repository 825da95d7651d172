"""tfds:<name>: any tfds dataset prepared as array_record (`jaxgen.data.sources.tfds_source`,
no TensorFlow): images from its "image" feature, labels from "label" if present."""

from __future__ import annotations

import dataclasses

from jaxgen.data.datasets._common import CLASSES_DOC, keep_classes, users
from jaxgen.kernel.contract import Dataset
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import setting


@dataclasses.dataclass(frozen=True)
class TfdsSettings:
    path: str = setting("", "the tfds data_dir ('': tfds's default)")
    classes: tuple = setting((), CLASSES_DOC)


def build(s: TfdsSettings, split: str, *, name: str) -> Dataset:
    """`name` is the whole data.name ("tfds:mnist"); the split string goes to tfds as is
    ("train[:90%]" works)."""
    from jaxgen.data.sources import tfds_source
    src = keep_classes(users(tfds_source, name[len("tfds:"):], split, s.path or None),
                       s.classes)
    return Dataset(name, "images", src, src.event_shape, src.num_classes)


register_dataset(DatasetSpec("tfds:", build, TfdsSettings,
                             "any tfds dataset prepared as array_record", kind="images",
                             prefix=True, any_split=True, listed="tfds:<name>"))
