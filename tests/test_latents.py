"""Latents as data (issue 21, part 1-2): `data.name=latents` reads a trained VAE's posterior
means; a prior trained on them through the one trainer samples latents that the VAE
decodes (end-of-run grid and `jaxgen sample`)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import ROOT, read_metrics

from jaxgen import cli
from jaxgen.core import runs
from jaxgen.core.errors import UserError
from jaxgen.data import get_dataset, transforms

# one worker trains the tiny VAE run once for test_latents and test_latent_bound
pytestmark = pytest.mark.xdist_group("latents")

TINY_VAE = ["model.channels=(4, 8)", "model.hidden=16", "model.latent_dim=3",
            "eval.iwae_k=4", "eval.iwae_chunk=4"]
COMMON = ["train.steps=2", "train.batch_size=16", "train.log_every=1",
          "train.checkpoint_every=2", "train.progress=false"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("latents")
    rng = np.random.default_rng(0)
    np.savez(tmp / "train.npz", x=rng.integers(0, 256, (48, 8, 8, 1), dtype=np.uint8),
             label=rng.integers(0, 3, 48))
    np.savez(tmp / "test.npz", x=rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
             label=rng.integers(0, 3, 16))
    wd = tmp / "vae"
    assert cli.main(["train", "--config", str(ROOT / "configs" / "vae" / "vae_fashion_mnist.py"),
                     "--workdir", str(wd), "--config.data.name=array",
                     f"--config.data.path={tmp / 'train.npz'}",
                     f"--config.data.eval_path={tmp / 'test.npz'}", "--config.train.pictures=false",
                     "--config.eval.num_examples=16", "--config.eval.batch_size=16",
                     *[f"--config.{o}" for o in TINY_VAE + COMMON]]) == 0
    return tmp, wd


def train_prior(prior, vae_workdir, *overrides):
    """Trains a tiny flow-matching prior (configs/latent/fm_vae_fashion_mnist.py, 2 steps)
    on the latents of `vae_workdir` in `prior`; `overrides`: KEY=VALUE of its config."""
    assert cli.main(["train", "--config", str(ROOT / "configs" / "latent" /
                                              "fm_vae_fashion_mnist.py"),
                     "--workdir", str(prior), f"--config.data.workdir={vae_workdir}",
                     "--config.model.features=(16,)", "--config.eval.ode_steps=4",
                     *[f"--config.{o}" for o in (*COMMON, *overrides)]]) == 0


def test_latents_are_the_vaes_posterior_means_of_its_own_splits(vae_run):
    tmp, wd = vae_run
    exp, params = runs.restore(wd)
    for split, file in (("train", "train.npz"), ("test", "test.npz")):
        ds = get_dataset({"name": "latents", "workdir": str(wd)}, split)
        assert (ds.kind, ds.event_shape, ds.num_classes) == ("points", (3,), 3)
        raw = np.load(tmp / file)
        x = transforms.preprocess("images", raw["x"], None, dequantize=False)
        want = np.asarray(exp.objective.autoencoder.encode(params, x)).reshape(len(x), -1)
        got = ds.source.get(np.arange(len(ds.source)))
        np.testing.assert_allclose(got["x"], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["label"], raw["label"])


def test_latent_sample_is_one_seeded_posterior_draw_per_image(vae_run):
    tmp, wd = vae_run
    exp, params = runs.restore(wd)
    ae = exp.objective.autoencoder
    raw = np.load(tmp / "train.npz")
    x = transforms.preprocess("images", raw["x"], None, dequantize=False)
    data = {"name": "latents", "workdir": str(wd), "latent": "sample", "seed": 3}
    got = get_dataset(data, "train").source.get(np.arange(48))["x"]
    key = jax.random.fold_in(jax.random.key(3), 0)  # train split, the one chunk at 0
    want = np.asarray(ae.posterior_draw(params, x, jax.random.fold_in(key, 0))[0])
    np.testing.assert_allclose(got, want.reshape(48, -1), rtol=1e-5, atol=1e-6)
    means = np.asarray(ae.encode(params, x)).reshape(48, -1)
    assert np.abs(got - means).min() > 0  # draws, not means
    other = get_dataset({**data, "seed": 4}, "train").source.get(np.arange(48))["x"]
    assert not np.allclose(other, got)


def test_a_prior_on_the_latents_trains_and_its_samples_are_decoded(vae_run, capsys):
    tmp, wd = vae_run
    prior = tmp / "fm"
    train_prior(prior, wd, "sample.steps=4", "eval.num_examples=16", "eval.batch_size=16",
                "sample.num=16")
    assert [r["step"] for r in read_metrics(prior)] == [1, 2]
    from PIL import Image
    grid = Image.open(prior / "samples" / "step_0000002.png")
    assert grid.size[0] > 8 * 4  # a grid of decoded 8x8 images, not a scatter of 3-d points

    out = tmp / "s.npz"
    assert cli.main(["sample", "--workdir", str(prior), "--num", "5", "--out", str(out)]) == 0
    got = np.load(out)
    assert got["x"].shape == (5, 3) and got["images"].shape == (5, 8, 8, 1)
    exp, params = runs.restore(wd)  # the images are the VAE's decoding of the latents
    want = transforms.postprocess("images", jax.jit(exp.objective.autoencoder.decode)(
        params, got["x"].astype(np.float32)))
    np.testing.assert_array_equal(got["images"], np.asarray(want))
    capsys.readouterr()


def test_a_ddpm_prior_on_the_latents_draws_its_decoded_grid(vae_run):
    # DDPM's end-of-run strips are 2-D scatters: 3-d latents skip them, the grid is decoded
    tmp, wd = vae_run
    prior = tmp / "ddpm"
    assert cli.main(["train", "--config", str(ROOT / "configs" / "latent" /
                                              "ddpm_vae_fashion_mnist.py"),
                     "--workdir", str(prior), f"--config.data.workdir={wd}",
                     "--config.model.features=(16,)", "--config.objective.num_steps=10",
                     "--config.sample.steps=4", "--config.sample.num=16",
                     "--config.eval.num_examples=16", "--config.eval.batch_size=16",
                     "--config.eval.ode_steps=4", "--config.eval.vlb_steps=2",
                     *[f"--config.{o}" for o in COMMON]]) == 0
    from PIL import Image
    assert Image.open(prior / "samples" / "step_0000002.png").size[0] > 8 * 4
    assert not (prior / "samples" / "forward_process.png").exists()


def test_latents_need_an_autoencoder_run(tmp_path, vae_run):
    with pytest.raises(UserError, match="data.workdir=RUN"):
        get_dataset({"name": "latents"}, "train")
    with pytest.raises(FileNotFoundError, match="no jaxgen run"):
        get_dataset({"name": "latents", "workdir": str(tmp_path)}, "train")
