"""CIFAR-10 (`jaxgen/data/datasets/cifar10.py`) from the official binary archive, from tfds's
cifar10 and from the folder `jaxgen prepare cifar10` writes, on tiny files written here in
the exact formats: 3073-byte records, a label byte then the red, green and blue planes of a
32x32 image; tfds's array_record (built without TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from tiny_data import write_cifar10

from jaxgen.data import get_dataset
from jaxgen.data import prepare as prep
from jaxgen.data.datasets import cifar10
from jaxgen.data.sources import ArraySource, NpySource
from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import MissingError, UserError

FM = ROOT / "configs" / "flow_matching" / "fashion_mnist.py"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A tiny cifar-10-binary.tar.gz (2 records per training batch, 3 test records) and its
    extracted folder, with the images and labels written into them."""
    return write_cifar10(tmp_path_factory.mktemp("cifar"), np.random.default_rng(0))


def _data(source, *extra):
    return config_lib.load_config(FM, ["data.name=cifar10", f"data.source={source}",
                                       *extra]).data


@pytest.mark.parametrize("form", ["archive", "folder"])
def test_the_binary_archive_and_its_folder_decode_to_the_images_written(archive, form):
    path, folder, want = archive
    for split, n in (("train", 10), ("test", 3)):
        ds = get_dataset(_data(path if form == "archive" else folder), split)
        assert (ds.name, ds.kind, ds.event_shape, ds.num_classes) == (
            "cifar10", "images", (32, 32, 3), 10)
        assert ds.class_names[0] == "airplane" and len(ds.source) == n
        got = ds.source.get(np.arange(n))
        np.testing.assert_array_equal(got["x"], want[split][0])  # NHWC, channels in order
        np.testing.assert_array_equal(got["label"], want[split][1])


def test_a_missing_or_damaged_download_is_one_error_that_says_what_to_fetch(archive, tmp_path):
    with pytest.raises(MissingError, match="jaxgen downloads nothing: fetch https://www.cs."
                                           "toronto.edu/~kriz/cifar-10-binary.tar.gz"):
        get_dataset(_data(tmp_path / "nowhere.tar.gz"), "train")
    bad = tmp_path / cifar10.ARCHIVE
    bad.write_bytes(archive[0].read_bytes()[:200])
    with pytest.raises(UserError, match="damaged"):
        get_dataset(_data(bad), "train")
    with pytest.raises(UserError, match="not a whole number of 3073-byte records"):
        cifar10.decode(b"\x00" * 3000, "x.bin")
    with pytest.raises(UserError, match="label 11"):
        cifar10.decode(bytes([11]) + b"\x00" * 3072, "x.bin")


# ------------------------------------------- tfds, the prepared form, the same Dataset


def _paths(archive, tmp_path):
    """data.source for every path: the archive, its folder, tfds's cifar10 (written here as
    array_record, no TensorFlow) and the folder `jaxgen prepare cifar10` writes."""
    import tensorflow_datasets as tfds
    from test_imagenet import write_tfds
    path, folder, want = archive
    write_tfds(tfds.builder_cls("cifar10"), tmp_path / "tfds", want)
    prepared = prep.prepare("cifar10", str(path), tmp_path / "prepared", log=lambda s: None)
    return {"archive": path, "folder": folder, "tfds": f"tfds:{tmp_path / 'tfds'}",
            "prepared": prepared}


def test_every_source_gives_the_same_dataset_and_images(archive, tmp_path):
    want = archive[2]
    for form, source in _paths(archive, tmp_path).items():
        for split, n in (("train", 10), ("test", 3)):
            ds = get_dataset(_data(source), split)
            assert (ds.name, ds.kind, ds.event_shape, ds.num_classes, ds.class_names) == (
                "cifar10", "images", (32, 32, 3), 10, cifar10.CLASS_NAMES), form
            got = ds.source.get(np.arange(n))
            np.testing.assert_array_equal(got["x"], want[split][0], err_msg=form)
            np.testing.assert_array_equal(got["label"], want[split][1], err_msg=form)
            assert got["label"].dtype == np.int32
    assert isinstance(get_dataset(_data(tmp_path / "prepared"), "train").source.images,
                      np.memmap)


def test_prepare_next_to_the_archive_is_found_by_itself(archive, tmp_path):
    path = tmp_path / cifar10.ARCHIVE
    path.write_bytes(archive[0].read_bytes())
    assert isinstance(get_dataset(_data(path), "train").source, ArraySource)
    out = prep.prepare("cifar10", str(path), log=lambda s: None)
    assert out == tmp_path / "jaxgen-cifar10"
    ds = get_dataset(_data(path), "train")
    assert isinstance(ds.source, NpySource)
    np.testing.assert_array_equal(ds.source.get(np.arange(10))["x"], archive[2]["train"][0])
    keep = get_dataset(_data(path, "data.classes=(3,)"), "train").source
    assert set(keep.get(np.arange(len(keep)))["label"]) <= {3}
    assert len(keep) == int((archive[2]["train"][1] == 3).sum())


def test_an_unknown_source_form_is_one_error(tmp_path):
    with pytest.raises(UserError, match="s3: is no source jaxgen reads; data.source is a path"):
        get_dataset(_data("s3://bucket/cifar"), "train")
    with pytest.raises(UserError, match="tfds dataset 'cifar10' is not prepared"):
        get_dataset(_data(f"tfds:{tmp_path}"), "train")
