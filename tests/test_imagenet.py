"""ImageNet 32x32 / 64x64 (`jaxgen/data/datasets/imagenet.py`) and `jaxgen prepare`
(`jaxgen/data/prepare.py`), on tiny files written here in the exact formats: the official
.npz files (`data` (N, 3*S*S) uint8 channel-planar, `labels` 1..1000, `mean`), tfds's
`imagenet_resized/32x32` as array_record (built without TensorFlow), and the prepared
folder."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from jaxgen.data import get_dataset
from jaxgen.data import prepare as prep
from jaxgen.data.datasets import imagenet
from jaxgen.data.sources import NpySource
from jaxgen.kernel.errors import MissingError, UserError

WNID_0 = "n02119789"  # label 0 (the authors' label 1, kit fox), the first line of tfds's list
COUNTS = (2, 3, 1, 2, 1, 2, 3, 1, 2, 1)  # images per train_data_batch_i.npz


def planar(images: np.ndarray) -> np.ndarray:
    """NHWC images as the official rows: r.flatten() + g.flatten() + b.flatten()."""
    return np.stack([np.concatenate([im[:, :, 0].ravel(), im[:, :, 1].ravel(),
                                     im[:, :, 2].ravel()]) for im in images])


def write_npz(path, images, labels0, compressed=False):
    """One official-format file: labels stored 1-based, as the authors number them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compressed else np.savez
    save(path, data=planar(images), labels=np.asarray(labels0) + 1,
         mean=planar(images).mean(axis=0))


def official_set(root, size, rng, compressed=False):
    """The official files for `size` in the folders their zips extract to, and the images and
    0-based labels written (train in file order, then test)."""
    folders = ({32: ["Imagenet32_train_npz"] * 10, 64: ["Imagenet64_train_part1_npz"] * 5
                + ["Imagenet64_train_part2_npz"] * 5}[size])
    want = {"train": ([], []), "test": ([], [])}
    files = [(folders[i], f"train_data_batch_{i + 1}.npz", n, "train")
             for i, n in enumerate(COUNTS)]
    files.append((f"Imagenet{size}_val_npz", "val_data.npz", 4, "test"))
    for folder, name, n, split in files:
        images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        labels = rng.integers(0, 1000, n)
        labels[0] = 999 if split == "test" else 0  # both ends of 1..1000 in the files
        write_npz(root / folder / name, images, labels, compressed)
        want[split][0].append(images)
        want[split][1].append(labels)
    return {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in want.items()}


@pytest.fixture(scope="module")
def npz32(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet32")
    return root, official_set(root, 32, np.random.default_rng(0))


def _data(name, source, **extra):
    return {"name": name, "source": str(source), **extra}


def _all(ds):
    return ds.source.get(np.arange(len(ds.source)))


def _same_dataset(ds, name, size):
    assert (ds.name, ds.kind, ds.event_shape, ds.num_classes) == (
        name, "images", (size, size, 3), 1000)
    assert len(ds.class_names) == 1000 and ds.class_names[0] == WNID_0


# ------------------------------------------------------------------ the official npz files


@pytest.mark.parametrize("size", [32, 64])
def test_the_official_npz_files_read_in_place_give_the_images_written(tmp_path, size):
    want = official_set(tmp_path, size, np.random.default_rng(size))
    for split in ("train", "test"):
        ds = get_dataset(_data(f"imagenet{size}", tmp_path), split)
        _same_dataset(ds, f"imagenet{size}", size)
        got = _all(ds)
        np.testing.assert_array_equal(got["x"], want[split][0])  # planar -> NHWC
        np.testing.assert_array_equal(got["label"], want[split][1])  # 1-based -> 0-based
        assert got["label"].dtype == np.int32
        order = np.random.default_rng(1).permutation(len(ds.source))
        np.testing.assert_array_equal(ds.source.get(order)["x"], want[split][0][order])
        # read in place: every file is a memory map, nothing is loaded
        ds.source.get(np.arange(len(ds.source)))
        assert all(isinstance(a, np.memmap) for a in ds.source._rows.values())
    # a pixel by hand: the first image's red value at row 0, column 1 is its row's byte 1,
    # its green at row 0, column 0 the byte S*S
    z = np.load(tmp_path / f"Imagenet{size}_val_npz" / "val_data.npz")
    first = get_dataset(_data(f"imagenet{size}", tmp_path), "test").source.get([0])["x"][0]
    assert first[0, 1, 0] == z["data"][0, 1] and first[0, 0, 1] == z["data"][0, size * size]
    assert z["labels"][0] == 1000 and want["test"][1][0] == 999


def test_the_source_pickles_as_its_paths_and_keeps_classes(npz32):
    root, want = npz32
    src = get_dataset(_data("imagenet32", root), "train").source
    src.get([0, 5])
    again = pickle.loads(pickle.dumps(src))
    assert len(pickle.dumps(src)) < 4000 and not again._rows
    np.testing.assert_array_equal(again.get([3, 17])["x"], want["train"][0][[3, 17]])
    keep = get_dataset(_data("imagenet32", root, classes=(0,)), "train").source
    assert len(keep) == int((want["train"][1] == 0).sum()) >= 1
    assert set(keep.get(np.arange(len(keep)))["label"]) == {0}


def test_a_missing_or_unreadable_download_is_one_clear_error(npz32, tmp_path):
    root, _ = npz32
    with pytest.raises(MissingError, match=r"Imagenet64_train_part1_npz\.zip, Imagenet64_train_"
                                           r"part2_npz\.zip, Imagenet64_val_npz\.zip from "
                                           r"https://image-net\.org"):
        get_dataset(_data("imagenet64", tmp_path / "nowhere"), "train")
    bad = tmp_path / "set"
    official_set(bad, 32, np.random.default_rng(3))
    (bad / "Imagenet32_train_npz" / "train_data_batch_7.npz").unlink()
    (bad / "Imagenet32_train_npz.zip").write_bytes(b"")
    with pytest.raises(MissingError, match=r"train_data_batch_7\.npz is not in .*\(Imagenet32_"
                                           r"train_npz\.zip is there: unzip it\)"):
        get_dataset(_data("imagenet32", bad), "train")
    get_dataset(_data("imagenet32", bad), "test")  # the other split's files are all there
    val = bad / "Imagenet32_val_npz" / "val_data.npz"
    with open(val, "wb") as f:  # the pickled version of the download
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [1]}, f)
    with pytest.raises(UserError, match="needs pickle to be read"):
        get_dataset(_data("imagenet32", bad), "test")
    np.savez(val, data=np.zeros((2, 3072), np.uint8), labels=np.array([1, "a"], dtype=object))
    with pytest.raises(UserError, match="needs pickle"):
        get_dataset(_data("imagenet32", bad), "test")
    write_npz(val, np.zeros((2, 32, 32, 3), np.uint8), [0, 1])
    val.write_bytes(val.read_bytes()[:5000])  # cut
    with pytest.raises(UserError, match="damaged or cut"):
        get_dataset(_data("imagenet32", bad), "test")
    write_npz(val, np.zeros((1, 64, 64, 3), np.uint8), [0])
    with pytest.raises(UserError, match=r"these are ImageNet 64x64 files \(data.name=imagenet64"):
        get_dataset(_data("imagenet32", bad), "test")
    np.savez(val, data=np.zeros((1, 3072), np.uint8), labels=np.array([0]))
    with pytest.raises(UserError, match=r"labels lie in \[0, 0\]; the official files number "
                                        r"the classes 1\.\.1000"):
        get_dataset(_data("imagenet32", bad), "test")
    with pytest.raises(UserError, match="hf: is no source jaxgen reads"):
        get_dataset(_data("imagenet32", "hf:imagenet"), "test")


def test_compressed_files_are_prepared_not_trained_from(tmp_path):
    want = official_set(tmp_path / "dl", 32, np.random.default_rng(4), compressed=True)
    with pytest.raises(UserError, match=r"compressed \.npz.*jaxgen prepare imagenet32"):
        get_dataset(_data("imagenet32", tmp_path / "dl"), "train")
    prep.prepare("imagenet32", str(tmp_path / "dl"), log=lambda s: None)
    got = _all(get_dataset(_data("imagenet32", tmp_path / "dl"), "train"))
    np.testing.assert_array_equal(got["x"], want["train"][0])
    np.testing.assert_array_equal(got["label"], want["train"][1])


# ------------------------------------------------------------------------- prepare


def _prepare(source, out=None, force=False):
    lines = []
    path = prep.prepare("imagenet32", str(source), out, force, log=lines.append)
    return path, "\n".join(lines)


def test_prepare_writes_npy_files_read_memory_mapped(npz32, tmp_path, capsys):
    root, want = npz32
    out, said = _prepare(root, tmp_path / "fast")
    assert f"train with --config.data.source={out}" in said
    assert "prepare imagenet32: image 22/22 (100%)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "jaxgen-prepared.json", "test_images.npy", "test_labels.npy", "train_images.npy",
        "train_labels.npy"]
    manifest = json.loads((out / "jaxgen-prepared.json").read_text())
    assert (manifest["dataset"], manifest["num_classes"], manifest["splits"]["train"]["count"],
            len(manifest["sources"])) == ("imagenet32", 1000, 18, 11)
    for split in ("train", "test"):
        images = np.load(out / f"{split}_images.npy")
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        np.testing.assert_array_equal(images, want[split][0])
        labels = np.load(out / f"{split}_labels.npy")
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, want[split][1])
        ds = get_dataset(_data("imagenet32", out), split)
        _same_dataset(ds, "imagenet32", 32)
        assert isinstance(ds.source, NpySource) and isinstance(ds.source.images, np.memmap)
        np.testing.assert_array_equal(_all(ds)["x"], want[split][0])
        np.testing.assert_array_equal(_all(ds)["label"], want[split][1])
    assert len(pickle.dumps(ds.source)) < 1000  # a worker gets the paths, not the data


def test_reading_the_prepared_form_loads_only_the_rows_asked_for(tmp_path):
    images = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, (4096, 32, 32, 3))
    images[:] = 7
    images[4000] = 9
    images.flush()
    del images
    np.save(tmp_path / "y.npy", np.arange(4096, dtype=np.int32) % 1000)
    tracemalloc.start()
    src = NpySource(tmp_path / "x.npy", tmp_path / "y.npy", 1000)
    got = src.get(np.array([4000, 3]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert got["x"][0].min() == 9 and got["x"][1].max() == 7 and list(got["label"]) == [0, 3]
    assert peak < 200_000 < 4096 * 32 * 32 * 3  # 12.6 MB on disk, two rows read


def test_prepare_is_idempotent_and_writes_only_its_own_folders(npz32, tmp_path):
    root, _ = npz32
    out, _ = _prepare(root, tmp_path / "fast")
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again, said = _prepare(root, out)
    assert again == out and "from these files already" in said
    assert stamp == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    forced, said = _prepare(root, out, force=True)
    assert "prepared imagenet32" in said and (out / "jaxgen-prepared.json").is_file()
    assert not list(tmp_path.glob("fast.*"))  # nothing left beside it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="is not a folder jaxgen prepare wrote"):
        _prepare(root, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "file.npy").write_text("mine too")
    with pytest.raises(UserError, match="is not a folder jaxgen prepare wrote"):
        _prepare(root, tmp_path / "file.npy")
    assert (tmp_path / "file.npy").read_text() == "mine too"
    (tmp_path / "empty").mkdir()
    _prepare(root, tmp_path / "empty")
    assert (tmp_path / "empty" / "jaxgen-prepared.json").is_file()
    with pytest.raises(UserError, match="is a folder jaxgen prepare wrote already"):
        _prepare(out, tmp_path / "other")


def test_an_interrupted_prepare_leaves_nothing_that_is_read_as_whole(tmp_path, monkeypatch):
    official_set(tmp_path / "dl", 32, np.random.default_rng(5))
    out = tmp_path / "dl" / "jaxgen-imagenet32"
    calls = []

    def cut(self, indices, real=imagenet.PlanarNpzSource.get):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(self, indices)

    monkeypatch.setattr(imagenet.PlanarNpzSource, "get", cut)
    with pytest.raises(KeyboardInterrupt):
        _prepare(tmp_path / "dl")
    monkeypatch.undo()
    assert not out.exists() and not list((tmp_path / "dl").glob("jaxgen-imagenet32.*"))
    src = get_dataset(_data("imagenet32", tmp_path / "dl"), "train").source
    assert isinstance(src, imagenet.PlanarNpzSource)  # the download, not a half folder
    # a prepare killed outright leaves its folder: never read, removed by the next prepare
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = tmp_path / "dl" / f"jaxgen-imagenet32.incomplete-{dead}"
    left.mkdir()
    (left / prep.MARKER).write_text("")
    (left / prep.MANIFEST).write_text(json.dumps({"format": prep.FORMAT}))
    stranger = tmp_path / "dl" / f"jaxgen-imagenet32.incomplete-{dead}0"
    stranger.mkdir()  # no marker: not ours
    assert isinstance(get_dataset(_data("imagenet32", tmp_path / "dl"), "train").source,
                      imagenet.PlanarNpzSource)
    _, said = _prepare(tmp_path / "dl")
    assert f"removing {left}" in said and not left.exists() and stranger.is_dir()
    assert isinstance(get_dataset(_data("imagenet32", tmp_path / "dl"), "train").source,
                      NpySource)


def test_a_changed_download_or_a_damaged_prepared_folder_is_one_error(tmp_path):
    want = official_set(tmp_path / "dl", 32, np.random.default_rng(6))
    out, _ = _prepare(tmp_path / "dl")
    assert out == tmp_path / "dl" / "jaxgen-imagenet32"  # found next to the download
    assert isinstance(get_dataset(_data("imagenet32", tmp_path / "dl"), "test").source,
                      NpySource)
    val = tmp_path / "dl" / "Imagenet32_val_npz" / "val_data.npz"
    os.utime(val, ns=(val.stat().st_atime_ns, val.stat().st_mtime_ns + 10**9))
    with pytest.raises(UserError, match=r"val_data\.npz, which has changed since"):
        get_dataset(_data("imagenet32", tmp_path / "dl"), "train")
    _, said = _prepare(tmp_path / "dl")  # not up to date: written again without --force
    assert "prepared imagenet32" in said
    np.testing.assert_array_equal(
        _all(get_dataset(_data("imagenet32", tmp_path / "dl"), "test"))["x"], want["test"][0])
    with pytest.raises(UserError, match="holds imagenet32 prepared by jaxgen.*not imagenet64"):
        get_dataset(_data("imagenet64", out), "train")
    images = out / "train_images.npy"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"the prepared folder is damaged; run `jaxgen prepare "
                                        r"imagenet32 --source \S+/dl --out \S+ --force`"):
        get_dataset(_data("imagenet32", tmp_path / "dl"), "train")


def test_the_prepare_command(npz32, tmp_path, capsys):
    from jaxgen import cli
    root, want = npz32
    assert cli.main(["prepare", "imagenet32", "--source", str(root), "--out",
                     str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    # the progress (plain lines when stderr is no terminal): the last says all were written
    assert "jaxgen: prepare imagenet32: image " in captured.err
    last = captured.err.strip().splitlines()[-1]
    assert "(100%)" in last and "elapsed" in last, captured.err
    assert "prepared imagenet32 in" in captured.out
    np.testing.assert_array_equal(np.load(tmp_path / "p" / "test_images.npy"), want["test"][0])
    assert cli.main(["prepare", "imagenet16", "--source", str(root)]) == 2
    assert "Valid choices: cifar10, imagenet32, imagenet64" in capsys.readouterr().err
    assert cli.main(["prepare", "imagenet32", "--source", str(root / "nowhere")]) == 2
    assert "jaxgen downloads nothing" in capsys.readouterr().err


# ------------------------------------------------------------------------------ tfds


def write_tfds(stock, data_dir, splits, config=None):
    """tfds's dataset `stock` (its builder class: same name, version, features) prepared as
    array_record in `data_dir` from `splits` = {tfds split: (images NHWC, labels)}, the way
    jaxgen.data.fashion_mnist builds one: no TensorFlow (PNGs encoded here), records in the
    order given."""
    import tensorflow_datasets as tfds
    from PIL import Image

    def png(image):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        return buf.getvalue()

    class Local(stock, skip_registration=True):
        name = stock.name

        def _info(self):
            info = super()._info()
            return tfds.core.DatasetInfo(builder=self, features=info.features,
                                         supervised_keys=info.supervised_keys,
                                         disable_shuffling=True)

        def _split_generators(self, dl_manager):
            return {name: self._generate_examples(name) for name in splits}

        def _generate_examples(self, name):
            for i, (image, label) in enumerate(zip(*splits[name])):
                record = {"image": png(image), "label": int(label)}
                if "id" in self.info.features:
                    record["id"] = f"{name}_{i:05d}"
                yield i, record

    from tensorflow_datasets.core.utils import tqdm_utils
    before = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(False)
    try:
        Local(data_dir=str(data_dir), config=config).download_and_prepare(
            file_format="array_record")
    finally:  # tfds's switch is global: other tests see it as they left it
        tfds.display_progress_bar(before)


def test_tfds_imagenet_resized_gives_the_same_dataset_and_prepares(npz32, tmp_path):
    import tensorflow_datasets as tfds
    _, want = npz32
    write_tfds(tfds.builder_cls("imagenet_resized"), tmp_path / "tfds",
               {"train": want["train"], "validation": want["test"]}, config="32x32")
    source = f"tfds:{tmp_path / 'tfds'}"
    for split in ("train", "test"):
        ds = get_dataset(_data("imagenet32", source), split)
        _same_dataset(ds, "imagenet32", 32)
        np.testing.assert_array_equal(_all(ds)["x"], want[split][0])
        np.testing.assert_array_equal(_all(ds)["label"], want[split][1])
    with pytest.raises(UserError, match="imagenet_resized/64x64.*not prepared"):
        get_dataset(_data("imagenet64", source), "train")
    out, _ = _prepare(source)
    assert out == tmp_path / "tfds" / "jaxgen-imagenet32"
    ds = get_dataset(_data("imagenet32", source), "test")  # the prepared copy, found by itself
    assert isinstance(ds.source, NpySource)
    np.testing.assert_array_equal(_all(ds)["x"], want["test"][0])


def test_npz_layout_finds_stored_arrays_in_place(tmp_path):
    a = np.arange(24, dtype=np.int16).reshape(2, 12)
    np.savez(tmp_path / "s.npz", a=a, b=np.zeros(3))
    shape, dtype, offset = imagenet.npz_layout(tmp_path / "s.npz", "a")
    assert (shape, dtype) == ((2, 12), np.int16)
    np.testing.assert_array_equal(np.memmap(tmp_path / "s.npz", dtype, "r", offset, shape), a)
    np.savez_compressed(tmp_path / "c.npz", a=a)
    assert imagenet.npz_layout(tmp_path / "c.npz", "a")[2] is None
    with pytest.raises(KeyError):
        imagenet.npz_layout(tmp_path / "s.npz", "c")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(zipfile.BadZipFile):
        imagenet.npz_layout(tmp_path / "junk.npz", "a")
