"""Sources and the `get_dataset` entry point: arrays, Fashion-MNIST via tfds (no TF),
tfds:<name>."""

import gzip
import io

import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxgen.data import (
    ArraySource,
    Dataset,
    TfdsSource,
    dataset_names,
    get_dataset,
    load_array_file,
    tfds_source,
)
from jaxgen.data import fashion_mnist as fm
from jaxgen.data.toy2d import TOY_DATASETS

FM_DIR = "/usr/share/datasets/fashion-mnist"
HAVE_FM = all((fm.idx_paths(FM_DIR, s)[0]).is_file() for s in fm.IDX_FILES)


def data_config(**overrides):
    c = ml_collections.ConfigDict()
    c.name = "8gaussians"
    c.path = ""
    c.eval_path = ""
    c.num_train = 1000
    c.num_eval = 300
    c.seed = 0
    c.std = ml_collections.config_dict.placeholder(float)
    c.source_dir = FM_DIR
    c.update(overrides)
    if not (c.name in TOY_DATASETS or c.name == "gaussian_ar2"):  # toy sizes would be refused
        c.num_train, c.num_eval = 200_000, 20_000
    return c


# ------------------------------------------------------------------ toys via get_dataset


def test_toy_dataset_splits_deterministic_and_independent():
    tr = get_dataset(data_config(), "train")
    te = get_dataset(data_config(), "test")
    ev = get_dataset(data_config(), "eval")
    assert isinstance(tr, Dataset)
    assert (tr.kind, tr.event_shape, tr.num_classes, tr.name) == (
        "points", (2,), None, "8gaussians")
    assert len(tr.source) == 1000 and len(te.source) == 300
    assert tr.toy is not None and tr.toy.log_prob is not None
    xtr = tr.source.get(np.arange(1000))["x"]
    xte = te.source.get(np.arange(300))["x"]
    assert xtr.dtype == np.float32 and set(tr.source.get(np.arange(3))) == {"x"}
    np.testing.assert_array_equal(xte, ev.source.get(np.arange(300))["x"])
    np.testing.assert_array_equal(
        xtr, get_dataset(data_config(), "train").source.get(np.arange(1000))["x"])
    # train and test are different draws, and the train set is the rng [seed, 0] stream
    assert not np.array_equal(xtr[:300], xte)
    np.testing.assert_array_equal(xtr, tr.toy.sample(np.random.default_rng([0, 0]), 1000))
    np.testing.assert_array_equal(xte, tr.toy.sample(np.random.default_rng([0, 1]), 300))
    other = get_dataset(data_config(seed=1), "train").source.get(np.arange(1000))["x"]
    assert not np.array_equal(xtr, other)


def test_toy_dataset_std_override():
    d = get_dataset(data_config(name="ring8", std=0.1), "train")
    assert d.toy.std == 0.1


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError) as e:
        get_dataset(data_config(name="mnist"), "train")
    for name in [*TOY_DATASETS, "array", "fashion_mnist", "tfds:<name>"]:
        assert name in str(e.value)
    assert sorted(dataset_names()) == sorted([*TOY_DATASETS, "gaussian_ar2", "array", "codes",
                                              "latents", "fashion_mnist", "cifar10", "imagenet32",
                                              "imagenet64",
                                              "tfds:<name>"])
    with pytest.raises(ValueError, match="unknown split"):
        get_dataset(data_config(), "validation")
    with pytest.raises(ValueError, match="num_train"):
        get_dataset(data_config(num_train=0), "train")


# ---------------------------------------------------------------------- arrays


def test_array_source_get_and_bad_indices():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    s = ArraySource(x, label=np.arange(10) % 3)
    b = s.get(np.array([9, 0, 9]))
    np.testing.assert_array_equal(b["x"], x[[9, 0, 9]])
    assert b["label"].dtype == np.int32 and list(b["label"]) == [0, 0, 0]
    assert s.num_classes == 3 and s.event_shape == (2,) and len(s) == 10
    with pytest.raises(IndexError, match="out of range"):
        s.get(np.array([10]))
    with pytest.raises(IndexError, match="out of range"):
        s.get(np.array([-1]))
    with pytest.raises(ValueError, match="label must have shape"):
        ArraySource(x, label=np.arange(9))


def test_npy_points_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3))
    np.save(tmp_path / "pts.npy", x)
    s = load_array_file(tmp_path / "pts.npy")
    assert s.event_shape == (3,) and s.num_classes is None
    b = s.get(np.arange(50))
    assert set(b) == {"x"} and b["x"].dtype == np.float32
    np.testing.assert_allclose(b["x"], x.astype(np.float32))
    d = get_dataset(data_config(name="array", path=str(tmp_path / "pts.npy")), "train")
    assert (d.kind, d.event_shape, d.num_classes, d.toy) == ("points", (3,), None, None)


def test_npz_points_with_labels_and_eval_path(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "tr.npz", x=rng.normal(size=(40, 2)).astype(np.float32),
             y=np.arange(40) % 4)
    np.savez(tmp_path / "te.npz", x=rng.normal(size=(8, 2)).astype(np.float32), y=np.arange(8) % 4)
    cfg = data_config(name="array", path=str(tmp_path / "tr.npz"),
                      eval_path=str(tmp_path / "te.npz"))
    tr, ev = get_dataset(cfg, "train"), get_dataset(cfg, "eval")
    assert len(tr.source) == 40 and len(ev.source) == 8 and tr.num_classes == 4
    np.testing.assert_array_equal(ev.source.get(np.arange(8))["label"], np.arange(8) % 4)
    with pytest.raises(ValueError, match=r"data\.eval_path=FILE"):
        get_dataset(data_config(name="array", path=str(tmp_path / "tr.npz")), "test")
    with pytest.raises(ValueError, match=r"data\.path=FILE"):
        get_dataset(data_config(name="array"), "train")


def test_npz_uint8_images_gain_channel_axis(tmp_path):
    imgs = np.random.default_rng(2).integers(0, 256, size=(12, 6, 5), dtype=np.uint8)
    np.savez(tmp_path / "im.npz", images=imgs, labels=np.arange(12) % 10)
    d = get_dataset(data_config(name="array", path=str(tmp_path / "im.npz")), "train")
    assert (d.kind, d.event_shape, d.num_classes) == ("images", (6, 5, 1), 10)
    b = d.source.get(np.array([3, 4]))
    assert b["x"].dtype == np.uint8
    np.testing.assert_array_equal(b["x"][..., 0], imgs[[3, 4]])


def test_float_images_in_unit_interval_become_uint8(tmp_path):
    imgs = np.random.default_rng(3).random((7, 4, 4, 3))
    imgs[0, 0, 0] = [0.0, 1.0, 0.5]
    np.save(tmp_path / "f.npy", imgs.astype(np.float32))
    s = load_array_file(tmp_path / "f.npy")
    x = s.get(np.arange(7))["x"]
    assert x.dtype == np.uint8 and s.event_shape == (4, 4, 3)
    np.testing.assert_array_equal(x, np.round(imgs.astype(np.float32) * 255).astype(np.uint8))
    assert list(x[0, 0, 0]) == [0, 255, 128]


def test_npz_key_priority(tmp_path):
    a, b = np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)
    np.savez(tmp_path / "k.npz", data=b, x=a)
    np.testing.assert_array_equal(load_array_file(tmp_path / "k.npz").x, a)
    np.savez(tmp_path / "arr.npz", b)  # saved as arr_0
    np.testing.assert_array_equal(load_array_file(tmp_path / "arr.npz").x, b)


def _bad_inputs(tmp_path):
    """(file, exception, fragments the message must contain)."""
    cases = []

    def npy(name, arr):
        np.save(tmp_path / name, arr)
        return tmp_path / name

    def npz(name, **arrs):
        np.savez(tmp_path / name, **arrs)
        return tmp_path / name

    (tmp_path / "pts.txt").write_text("1 2\n")
    nan = np.zeros((4, 2))
    nan[1, 1] = np.nan
    cases += [
        (tmp_path / "missing.npy", FileNotFoundError, ["no such file", ".npy or .npz"]),
        (tmp_path / "pts.txt", ValueError, ["unsupported extension '.txt'", ".npy", ".npz"]),
        (npy("one_d.npy", np.zeros(5)), ValueError, ["shape (5,)", "expected points"]),
        (npy("five_d.npy", np.zeros((2, 2, 2, 2, 2), np.uint8)), ValueError,
         ["shape (2, 2, 2, 2, 2)", "(N, H, W, C)"]),
        (npz("keys.npz", foo=np.zeros((3, 2))), ValueError,
         ["found keys ['foo']", "'x'", "'images'"]),
        (npy("nan.npy", nan), ValueError, ["1 NaN/inf", "expected finite"]),
        (npz("labels.npz", x=np.zeros((5, 2), np.float32), label=np.arange(3)), ValueError,
         ["labels of shape (3,) for 5 examples", "expected shape (5,)"]),
        (npz("neg.npz", x=np.zeros((3, 2), np.float32), y=np.array([0, -1, 2])), ValueError,
         ["non-negative integers"]),
        (npy("range.npy", np.full((2, 4, 4), 2.0)), ValueError, ["values in [2.0, 2.0]", "[0, 1]"]),
        (npy("int2d.npy", np.zeros((5, 784), np.uint8)), ValueError, ["uint8", "must be float"]),
        (npy("nchw.npy", np.zeros((2, 3, 8, 8), np.uint8)), ValueError,
         ["shape (2, 3, 8, 8)", "channels-last"]),
        (npy("obj.npy", np.array([{"a": 1}, None], dtype=object)), ValueError, ["without pickle"]),
        (npy("empty.npy", np.zeros((0, 2), np.float32)), ValueError, ["shape (0, 2)", "N >= 1"]),
    ]
    return cases


def test_bad_array_files_give_clear_errors(tmp_path):
    for path, exc, fragments in _bad_inputs(tmp_path):
        with pytest.raises(exc) as e:
            load_array_file(path)
        assert type(e.value) is exc, path
        for frag in fragments:
            assert frag in str(e.value), (path.name, frag, str(e.value))


# ------------------------------------------------------------------- IDX / PNG


def test_read_idx_gz_and_plain(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"]:
        got = fm.read_idx(tmp_path / name)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arr)
    ints = np.array([1, -2, 70000], ">i4")
    (tmp_path / "i").write_bytes(bytes([0, 0, 0x0C, 1]) + np.array([3], ">u4").tobytes()
                                 + ints.tobytes())
    np.testing.assert_array_equal(fm.read_idx(tmp_path / "i"), [1, -2, 70000])
    (tmp_path / "bad").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        fm.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match=r"\(40 bytes\), file holds 39 bytes"):
        fm.read_idx(tmp_path / "short")


def test_png_encoder_decodes_with_pillow():
    img = np.random.default_rng(0).integers(0, 256, size=(5, 7), dtype=np.uint8)
    dec = Image.open(io.BytesIO(fm.encode_png_gray(img)))
    assert dec.mode == "L" and dec.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(dec), img)


# ------------------------------------------------------------------ Fashion-MNIST


def test_missing_idx_files_error(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        fm.fashion_mnist_source("train", tmp_path / "tfds", source_dir=tmp_path / "nothing")
    msg = str(e.value)
    for frag in ["apt-get install -y dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist",
                 "data.source_dir", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                 str(tmp_path / "nothing")]:
        assert frag in msg
    assert not (tmp_path / "tfds" / "fashion_mnist").exists()
    cfg = data_config(name="fashion_mnist", path=str(tmp_path / "tfds"),
                      source_dir=str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        get_dataset(cfg, "train")


PREPARED = {}  # what the first-time preparation printed (stdout, stderr)


@pytest.fixture(scope="module")
def fm_data_dir(tmp_path_factory):
    """Fashion-MNIST prepared once per session (~6 s) into a temporary tfds data_dir."""
    if not HAVE_FM:
        pytest.skip(f"Fashion-MNIST IDX files not in {FM_DIR} "
                    "(apt-get install dataset-fashion-mnist)")
    import contextlib
    data_dir = tmp_path_factory.mktemp("tfds")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        fm.prepare_fashion_mnist(data_dir, FM_DIR)
    PREPARED.update(stdout=out.getvalue(), stderr=err.getvalue(), data_dir=data_dir)
    return data_dir


def test_fashion_mnist_first_preparation_says_so_in_one_line(fm_data_dir):
    """The real first-time preparation (the fixture's): one jaxgen line naming the IDX
    folder, the tfds folder and the time it takes; none of tfds's bars or notes."""
    out, err = PREPARED["stdout"], PREPARED["stderr"]
    assert out.startswith(f"jaxgen: preparing Fashion-MNIST from {FM_DIR} into {fm_data_dir} "
                          f"(first use only, ~{fm.PREPARE_SECONDS} s) ... done in "), out
    assert len(out.splitlines()) == 1 and out.endswith(" s\n"), out
    assert "Generating" not in err and "Shuffling" not in err and "Downloading" not in out


@pytest.mark.parametrize("split,n", [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist_matches_idx(fm_data_dir, split, n):
    src = fm.fashion_mnist_source(split, fm_data_dir)
    assert isinstance(src, TfdsSource)
    assert len(src) == n and src.event_shape == (28, 28, 1) and src.num_classes == 10
    images = fm.read_idx(fm.idx_paths(FM_DIR, split)[0])
    labels = fm.read_idx(fm.idx_paths(FM_DIR, split)[1])
    idx = np.random.default_rng(0).integers(0, n, size=64)
    idx[:2] = [0, n - 1]
    b = src.get(idx)
    assert b["x"].shape == (64, 28, 28, 1) and b["x"].dtype == np.uint8
    assert b["label"].shape == (64,) and b["label"].dtype == np.int32
    np.testing.assert_array_equal(b["x"][..., 0], images[idx])
    np.testing.assert_array_equal(b["label"], labels[idx])
    many = src.get(np.arange(0, n, 59))["label"]
    assert many.min() == 0 and many.max() == 9 and len(np.unique(many)) == 10


def test_fashion_mnist_via_get_dataset_no_reprepare(fm_data_dir, capsys):
    cfg = data_config(name="fashion_mnist", path=str(fm_data_dir))
    d = get_dataset(cfg, "eval")
    assert (d.name, d.kind, d.event_shape, d.num_classes) == (
        "fashion_mnist", "images", (28, 28, 1), 10)
    assert len(d.source) == 10_000
    assert len(get_dataset(cfg, "train").source) == 60_000
    assert "preparing" not in capsys.readouterr().out
    # the stock tfds reader (registered FashionMNIST class) reads the same files
    import tensorflow_datasets as tfds

    ds = tfds.data_source("fashion_mnist", split="test", data_dir=str(fm_data_dir), download=False)
    rec = ds[5]
    np.testing.assert_array_equal(rec["image"], d.source.get(np.array([5]))["x"][0])


def test_tfds_name_route_reads_prepared_array_record(fm_data_dir):
    cfg = data_config(name="tfds:fashion_mnist", path=str(fm_data_dir))
    d = get_dataset(cfg, "eval")  # "eval" -> tfds "test"
    assert (d.kind, d.event_shape, d.num_classes, len(d.source)) == (
        "images", (28, 28, 1), 10, 10_000)
    labels = fm.read_idx(fm.idx_paths(FM_DIR, "test")[1])
    np.testing.assert_array_equal(d.source.get(np.arange(100, 110))["label"], labels[100:110])
    assert d.source._batched  # real array_record sources read a batch in one call
    assert len(get_dataset(cfg, "train[:1000]").source) == 1000  # tfds split strings pass through
    with pytest.raises(ValueError, match="Unknown split"):  # tfds's own error, not "not prepared"
        get_dataset(cfg, "tes")


def test_fashion_mnist_prepare_prints_once(tmp_path, monkeypatch, capsys):
    """First use prints one line and prepares under the lock; later uses do neither."""
    if not HAVE_FM:
        pytest.skip("needs the IDX files")
    from tensorflow_datasets.core.utils import tqdm_utils
    calls, bars = [], []

    def fake_prepare(self, **kwargs):  # stands in for the ~6 s build
        calls.append(kwargs)
        bars.append(tqdm_utils._active)  # tfds's bars: off while preparing

    monkeypatch.setattr(fm.LocalFashionMNIST, "download_and_prepare", fake_prepare)
    monkeypatch.setattr(fm, "_is_prepared", lambda builder: bool(calls))
    fm.prepare_fashion_mnist(tmp_path / "dd", FM_DIR)
    fm.prepare_fashion_mnist(tmp_path / "dd", FM_DIR)
    out = capsys.readouterr().out
    assert calls == [{"file_format": "array_record"}]
    assert out.count("jaxgen: preparing Fashion-MNIST") == 1 and len(out.strip().splitlines()) == 1
    assert " done in " in out and bars == [False] and tqdm_utils._active  # restored after
    assert (tmp_path / "dd" / "fashion_mnist.lock").exists()


# ------------------------------------------------------------------------ tfds:<name>


def test_tfds_mock_source(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=7):
        d = get_dataset(data_config(name="tfds:mnist", path=str(tmp_path)), "eval")
        assert (d.name, d.kind, d.event_shape, d.num_classes) == (
            "tfds:mnist", "images", (28, 28, 1), 10)
        assert len(d.source) == 7
        b = d.source.get(np.array([0, 3, 6, 3]))
        assert b["x"].shape == (4, 28, 28, 1) and b["x"].dtype == np.uint8
        assert b["label"].dtype == np.int32 and np.all((0 <= b["label"]) & (b["label"] < 10))
        np.testing.assert_array_equal(b["x"][1], b["x"][3])
        raw = d.source.data_source[3]  # per-index reads agree with the batched fallback
        np.testing.assert_array_equal(b["x"][1], raw["image"])
        assert b["label"][1] == raw["label"]
        assert d.source._batched is False  # the mock's __getitems__ raised TypeError


def test_tfds_source_batched_path_and_fallback():
    class FakeSource:
        def __init__(self, batched_ok):
            self.batched_ok, self.batched_calls = batched_ok, 0
            self.items = [{"image": np.full((3, 2), i, np.uint8), "label": np.int64(i % 2)}
                          for i in range(5)]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

        def __getitems__(self, keys):
            self.batched_calls += 1
            if not self.batched_ok:
                raise TypeError("_getitems() missing 1 required positional argument")
            return [self.items[k] for k in keys]

    for ok in (True, False):
        fake = FakeSource(ok)
        s = TfdsSource(fake)
        assert s.event_shape == (3, 2, 1) and s.num_classes is None and len(s) == 5
        for _ in range(2):
            b = s.get(np.array([4, 1]))
            assert b["x"].shape == (2, 3, 2, 1) and list(b["x"][:, 0, 0, 0]) == [4, 1]
            assert list(b["label"]) == [0, 1] and b["label"].dtype == np.int32
        assert fake.batched_calls == (2 if ok else 1)  # a failing batch path is not retried
    with pytest.raises(ValueError, match="expected images under 'img'"):
        TfdsSource(FakeSource(True), image_key="img")


def test_tfds_not_prepared_error(tmp_path):
    for name in ["mnist", "no_such_dataset_xyz"]:
        with pytest.raises(ValueError) as e:
            tfds_source(name, "train", tmp_path)
        msg = str(e.value)
        assert f"{name!r} is not prepared in {str(tmp_path)!r}" in msg
        assert f"tfds.builder({name!r}, data_dir={str(tmp_path)!r})" in msg
        assert 'download_and_prepare(file_format="array_record")' in msg
        assert "TensorFlow" in msg


def test_data_classes_keeps_only_those_labels_in_every_split(tmp_path):
    from jaxgen.data import get_dataset
    rng = np.random.default_rng(0)
    for name, n in (("train", 60), ("test", 30)):
        np.savez(tmp_path / f"{name}.npz", x=rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8),
                 label=np.arange(n) % 5)
    cfg = {"name": "array", "path": str(tmp_path / "train.npz"),
           "eval_path": str(tmp_path / "test.npz"), "classes": (3, 1)}
    train, test = get_dataset(cfg, "train"), get_dataset(cfg, "test")
    assert len(train.source) == 24 and len(test.source) == 12
    assert train.num_classes == 5  # the label space is unchanged
    got = train.source.get(np.arange(24))
    assert set(got["label"].tolist()) == {1, 3}
    full = np.load(tmp_path / "train.npz")
    np.testing.assert_array_equal(got["x"], full["x"][np.isin(full["label"], [1, 3])])
    with pytest.raises(ValueError, match="outside 0..4"):
        get_dataset({**cfg, "classes": (7,)}, "train")
    np.save(tmp_path / "nolabel.npy", rng.integers(0, 256, (8, 4, 4, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="no labels"):
        get_dataset({**cfg, "path": str(tmp_path / "nolabel.npy")}, "train")
