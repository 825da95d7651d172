"""fashion_mnist: Fashion-MNIST read offline from Debian's IDX files through tfds, with no
TensorFlow (`jaxgen.data.fashion_mnist`, prepared as array_record on first use); its
Fréchet distance is computed in the features of jaxgen's classifier
(`jaxgen.eval.classifier`)."""

from __future__ import annotations

import dataclasses

from jaxgen.data.datasets._common import CLASSES_DOC
from jaxgen.kernel.registry import DatasetSpec, register_dataset
from jaxgen.kernel.settings import setting

# Xiao et al., 2017, in label order
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
DEFAULT_TFDS_DIR = "~/.cache/jaxgen/tfds"  # data.path when empty
DEFAULT_SOURCE_DIR = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass(frozen=True)
class FashionMNISTSettings:
    path: str = setting("", f"the tfds data_dir it is prepared in ('': {DEFAULT_TFDS_DIR})")
    source_dir: str = setting(DEFAULT_SOURCE_DIR, "the folder of the IDX files (Debian's "
                                                  "package dataset-fashion-mnist)")
    classes: tuple = setting((), CLASSES_DOC)


# built by the tfds-backed module, imported when a split is asked for
register_dataset(DatasetSpec("fashion_mnist", "jaxgen.data.fashion_mnist:build",
                             FashionMNISTSettings,
                             "Fashion-MNIST 28x28 grey, offline, no TF", kind="images",
                             class_names=CLASS_NAMES,
                             features="jaxgen.eval.classifier:FEATURES"))
