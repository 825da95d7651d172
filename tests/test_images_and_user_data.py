"""Images through the whole path (Fashion-MNIST offline, user arrays) and the bits/dim
convention."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FMNIST_CONFIG, TINY_ARRAY, TOY_CONFIG, flags, read_metrics
from PIL import Image

from jaxgen import cli
from jaxgen.eval import likelihood
from jaxgen.eval.evaluate import read_eval
from jaxgen.kernel import transforms

TINY_UNET = [
    "model.channels=(8, 16)", "model.groups=4", "model.time_dim=16", "train.batch_size=16",
    "train.steps=4", "train.log_every=2", "train.checkpoint_every=2", "train.sample_every=0",
    "train.progress=false", "sample.steps=2", "eval.num_examples=16", "eval.batch_size=16",
    "eval.ode_steps=2", "optim.warmup_steps=1",
]
# the user-array run checks the data path, not the network or the solver: one U-Net level
# and Euler steps compile in a fraction of the time
ONE_LEVEL_EULER = ["model.channels=(8,)", "eval.ode_method=euler"]


def test_uniform_density_is_exactly_8_bits_per_dim():
    """A uniform density on model space [-1, 1)^D is uniform on the 256 pixel values."""
    shape = (28, 28, 1)
    d = math.prod(shape)
    logp_model = np.full(5, -d * math.log(2.0))
    bpd = likelihood.bits_per_dim(likelihood.discrete_log_likelihood(logp_model, "images", shape),
                                  shape)
    assert bpd == pytest.approx(8.0, abs=1e-9)


def test_dequantisation_covers_each_pixel_bin():
    import jax
    x = jnp.arange(256, dtype=jnp.uint8).reshape(1, 16, 16, 1)
    z = transforms.preprocess("images", jnp.repeat(x, 200, 0), jax.random.key(0))
    lo = 2 * np.arange(256) / 256 - 1
    z = np.asarray(z).reshape(200, 256)
    assert np.all(z >= lo) and np.all(z < lo + 2 / 256)
    np.testing.assert_array_equal(transforms.postprocess("images", z).reshape(200, 256)[0],
                                  np.arange(256))


# minutes of CPU; the offline reader is checked against the IDX files, and Fashion-MNIST CLI runs
# (VAE, PixelCNN) train on it by default
@pytest.mark.heavy
def test_fashion_mnist_offline_train_sample_eval(tmp_path, capsys):
    wd = tmp_path / "fm"
    data_dir = tmp_path / "tfds"
    code = cli.main(["train", "--config", str(FMNIST_CONFIG), "--workdir", str(wd),
                     *flags(TINY_UNET), f"--config.data.path={data_dir}"])
    assert code == 0, capsys.readouterr().err
    assert [m["step"] for m in read_metrics(wd)] == [2, 4]
    grid = Image.open(wd / "samples" / "step_0000004.png")
    assert grid.mode == "L" and grid.size[0] > 28 * 4
    code = cli.main(["eval", "--workdir", str(wd)])
    out = capsys.readouterr().out
    assert code == 0 and "bits_per_dim" in out
    result = read_eval(wd)
    # Near the identity flow after 4 steps: N(0, I) on [-1, 1]^784 pixels costs
    # log 128 + 0.5 log 2π + 0.5 E[z²] nats/dim ≈ 8.5–9 bits/dim.
    assert 7.0 < result["bits_per_dim"] < 10.5
    assert result["divergence"] == "hutchinson"
    assert result["num_examples"] == 16
    code = cli.main(["sample", "--workdir", str(wd), "--num", "6",
                     "--out", str(tmp_path / "s.npz")])
    x = np.load(tmp_path / "s.npz")["x"]
    assert code == 0 and x.shape == (6, 28, 28, 1) and x.dtype == np.uint8


def test_user_image_arrays(tmp_path, capsys):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (64, 8, 8), dtype=np.uint8)
    test = rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "train.npy", train)
    np.savez(tmp_path / "test.npz", images=test)
    wd = tmp_path / "img"
    code = cli.main(["train", "--config", str(FMNIST_CONFIG), "--workdir", str(wd),
                     *flags(TINY_UNET), "--config.data.name=array", "--config.train.pictures=false",
                     *flags(ONE_LEVEL_EULER),
                     f"--config.data.path={tmp_path / 'train.npy'}",
                     f"--config.data.eval_path={tmp_path / 'test.npz'}"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((wd / "run.json").read_text())
    assert run["data"]["kind"] == "images" and run["data"]["event_shape"] == [8, 8, 1]
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    result = read_eval(wd)
    assert np.isfinite(result["bits_per_dim"]) and result["num_examples"] == 16


def test_user_point_arrays_with_held_out_file(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(1024, 3)).astype(np.float32),
             y=rng.integers(0, 2, 1024))
    np.save(tmp_path / "test.npy", rng.normal(size=(300, 3)).astype(np.float32))
    wd = tmp_path / "pts"
    code = cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd), *flags(TINY_ARRAY),
                     "--config.data.name=array", f"--config.data.path={tmp_path / 'train.npz'}",
                     f"--config.data.eval_path={tmp_path / 'test.npy'}"])
    assert code == 0, capsys.readouterr().err
    assert (wd / "samples" / "step_0000030.npy").is_file()  # 3-D points: raw samples
    assert cli.main(["eval", "--workdir", str(wd)]) == 0
    result = read_eval(wd)
    # 3-D standard normal data: entropy 1.5 (1 + log 2π) = 4.257 nats; a barely
    # trained flow starts from N(0, I) itself, so it must be close.
    assert abs(result["nll_nats"] - 4.257) < 0.5
    assert "true_nll_nats" not in result and np.isfinite(result["mmd2"])
    # Without a held-out file, eval says what to set.
    wd2 = tmp_path / "pts2"
    assert cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd2),
                     *flags(TINY_ARRAY), "--config.train.steps=2", "--config.train.log_every=1",
                     "--config.train.checkpoint_every=1", "--config.data.name=array",
                     f"--config.data.path={tmp_path / 'train.npz'}"]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(wd2)]) == 2
    assert "data.eval_path" in capsys.readouterr().err
