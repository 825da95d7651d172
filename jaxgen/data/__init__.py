"""Data: the one entry point `get_dataset(config.data, split)`, a lookup in the registry.

Every dataset is a registered plugin (`jaxgen.kernel.registry.DatasetSpec`) that declares
its own data.* settings; the built-in ones are the modules of `jaxgen.data.datasets` (the
2-D toys, random mixtures, AR(2) sequences, the user's arrays, Fashion-MNIST, tfds by
name) and of `jaxgen.composed` (another run's latents and codes). `jaxgen list` names
them; `jaxgen config CFG` shows a config's data.* keys with their docs. A dataset of your
own is a file: `data.name=path/to/my_data.py:make` (docs/data.md).

Every dataset is a random-access source (`len`, `get(indices)`, see
`jaxgen.data.sources`); `jaxgen.data.pipeline` turns it into deterministic, sharded
batches. Datasets are host-side numpy (these modules do not import jax), and tfds is
imported only when a tfds-backed dataset is asked for.
"""

from __future__ import annotations

from jaxgen.data.sources import ArraySource, TfdsSource, load_array_file, tfds_source
from jaxgen.kernel import registry
from jaxgen.kernel.contract import Dataset

__all__ = ["Dataset", "get_dataset", "check_held_out", "dataset_names", "class_names",
           "read_array_file", "ArraySource", "TfdsSource", "load_array_file", "tfds_source"]


def get_dataset(data_config, split: str) -> Dataset:
    """The `split` ("train", "test" or "eval"; "eval" means "test") of the dataset
    `data_config.name` names, built from its declared data.* settings (`data_config`: a
    config's data group, or a dict). Unknown names, splits and keys are one error each."""
    return registry.build_dataset(data_config, split)


def check_held_out(data_config, train: Dataset) -> None:
    """Refuses the user's held-out file when it does not fit the training data."""
    registry.check_held_out(data_config, train)


def dataset_names() -> list[str]:
    """Valid `data.name` values (`tfds:<name>` stands for any prepared tfds dataset)."""
    return registry.dataset_names()


def class_names(name: str, num_classes: int) -> list[str]:
    """Readable class names for picture labels ("class k" when the data has none)."""
    return registry.class_names(name, num_classes)


def read_array_file(path):
    """`load_array_file` for a command's --input: its errors as jaxgen's user errors."""
    from jaxgen.data.datasets._common import users
    return users(load_array_file, path)
