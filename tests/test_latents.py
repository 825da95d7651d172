"""Latents as data: `data.name=latents` reads a trained VAE's posterior
means; a prior trained on them through the one trainer samples latents that the VAE
decodes (end-of-run grid and `jaxgen sample`)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import ROOT, read_metrics

from jaxgen import cli
from jaxgen.data import get_dataset
from jaxgen.kernel import transforms
from jaxgen.kernel.errors import UserError
from jaxgen.runner import runs

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


@pytest.fixture(scope="module")
def vqvae_run(vae_run):
    """A tiny VQ-VAE (2 steps) on the same arrays: 2 x 2 x 3 pre-quantised maps."""
    tmp, _ = vae_run
    wd = tmp / "vqvae"
    assert cli.main(["train", "--config", str(ROOT / "configs" / "vae" /
                                              "vqvae_fashion_mnist.py"),
                     "--workdir", str(wd), "--config.data.name=array",
                     f"--config.data.path={tmp / 'train.npz'}",
                     f"--config.data.eval_path={tmp / 'test.npz'}", "--config.train.pictures=false",
                     "--config.eval.num_examples=16", "--config.eval.batch_size=16",
                     *[f"--config.{o}" for o in ["model.channels=(4, 8)", "model.embed_dim=3",
                                                 "model.num_res=0", "objective.num_codes=6",
                                                 *COMMON]]]) == 0
    return wd


def train_prior(prior, vae_workdir, *overrides):
    """Trains a tiny flow-matching prior (configs/latent/fm_vae_fashion_mnist.py, 2 steps)
    on the latents of `vae_workdir` in `prior`; `overrides`: KEY=VALUE of its config."""
    assert cli.main(["train", "--config", str(ROOT / "configs" / "latent" /
                                              "fm_vae_fashion_mnist.py"),
                     "--workdir", str(prior), f"--config.data.workdir={vae_workdir}",
                     "--config.model.features=(16,)", "--config.eval.ode_steps=4",
                     *[f"--config.{o}" for o in (*COMMON, *overrides)]]) == 0


def train_ddpm_prior(prior, config: str, autoencoder_workdir,
                     model=("model.features=(16,)",)):
    """Trains a tiny DDPM prior (configs/latent/CONFIG, T = 10, 2 steps, `model`: its
    model.* overrides) in `prior`."""
    assert cli.main(["train", "--config", str(ROOT / "configs" / "latent" / config),
                     "--workdir", str(prior), f"--config.data.workdir={autoencoder_workdir}",
                     *[f"--config.{o}" for o in model], "--config.objective.num_steps=10",
                     "--config.sample.steps=4", "--config.sample.num=16",
                     "--config.eval.num_examples=16", "--config.eval.batch_size=16",
                     "--config.eval.ode_steps=4", "--config.eval.vlb_steps=2",
                     *[f"--config.{o}" for o in COMMON]]) == 0


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


@pytest.fixture(scope="module")
def fm_prior(vae_run):
    """A tiny flow-matching prior trained on the tiny VAE's latents (2 steps)."""
    tmp, wd = vae_run
    train_prior(tmp / "fm", wd, "sample.steps=4", "eval.num_examples=16", "eval.batch_size=16",
                "sample.num=16")
    return tmp / "fm"


def test_a_prior_on_the_latents_trains_and_its_samples_are_decoded(vae_run, fm_prior, capsys):
    tmp, wd = vae_run
    prior = fm_prior
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
    train_ddpm_prior(prior, "ddpm_vae_fashion_mnist.py", wd)
    from PIL import Image
    assert Image.open(prior / "samples" / "step_0000002.png").size[0] > 8 * 4
    assert not (prior / "samples" / "forward_process.png").exists()


def test_latents_need_an_autoencoder_run(tmp_path, vae_run):
    with pytest.raises(UserError, match="data.workdir=RUN"):
        get_dataset({"name": "latents"}, "train")
    with pytest.raises(FileNotFoundError, match="no jaxgen run"):
        get_dataset({"name": "latents", "workdir": str(tmp_path)}, "train")


def test_latent_vs_pixel_times_the_prior_and_the_decoder_together(fm_prior):
    # jaxgen reproduce latent-vs-pixel: the latent cell's images are the prior's samples
    # decoded by the VAE (the whole path timed), the same images `exp.sample` + decode give
    from jaxgen.composed import decoding as tokens
    from jaxgen.reproduce.latent_vs_pixel import decoded_samples
    exp, params = runs.restore(fm_prior)
    x, per_s = decoded_samples(exp, params, 5, seed=2)
    z = exp.sample(params, jax.random.key(2), 5, chunk=5)
    assert x.dtype == np.uint8 and x.shape == (5, 8, 8, 1) and per_s > 0
    np.testing.assert_array_equal(x, tokens.decode(exp.config, np.asarray(z)))


def test_latent_vs_pixel_steps_fill_the_wall(monkeypatch):
    from jaxgen.reproduce.latent_vs_pixel import steps_for
    from jaxgen.runner import bench
    monkeypatch.setattr(bench, "trainer_ms_per_step", lambda cfg, steps: 250.0)
    assert steps_for(None, 10.0, 2, 2, None) == (40, 250.0)  # 10 s / 0.25 s
    assert steps_for(None, 0.1, 2, 2, None) == (2, 250.0)  # at least `low`
    assert steps_for(None, 10.0, 2, 2, 4) == (4, 250.0)  # at most `high` (--fast)


def test_pre_quantized_latents_are_the_vqvaes_encoder_maps_and_decode_through_its_codes(
        vae_run, vqvae_run):
    tmp, _ = vae_run
    exp, params = runs.restore(vqvae_run)
    ae = exp.objective.autoencoder
    raw = np.load(tmp / "test.npz")
    x = transforms.preprocess("images", raw["x"], None, dequantize=False)
    data = {"name": "latents", "workdir": str(vqvae_run), "latent": "pre_quantized"}
    ds = get_dataset(data, "test")
    assert (ds.kind, ds.event_shape) == ("points", (2 * 2 * 3,))
    got = ds.source.get(np.arange(16))["x"]
    z_e = np.asarray(ae.continuous.encode(params, x))
    np.testing.assert_allclose(got, z_e.reshape(16, -1), rtol=1e-5, atol=1e-6)
    maps = get_dataset({**data, "keep_shape": True}, "test")  # the maps in their own shape
    assert maps.event_shape == (2, 2, 3)
    np.testing.assert_array_equal(maps.source.get(np.arange(16))["x"], got.reshape(z_e.shape))
    # the codes are the nearest codebook rows of those maps (a brute-force argmin here)
    book = np.asarray(exp.objective.tools.codebook(params))
    d2 = ((z_e[..., None, :] - book) ** 2).sum(-1)
    np.testing.assert_array_equal(np.asarray(ae.encode(params, x)), d2.argmin(-1))
    # decoding a continuous map = decoding its nearest codes; the prior's decode agrees
    from jaxgen.composed import decoding as tokens
    from jaxgen.kernel import config as config_lib
    cfg = config_lib.load_config(str(ROOT / "configs" / "latent" /
                                     "ddpm_vqvae_fashion_mnist.py"),
                                 [f"data.workdir={vqvae_run}"])
    noisy = got + np.random.default_rng(1).normal(0, 0.05, got.shape).astype(np.float32)
    nearest = (((noisy.reshape(z_e.shape)[..., None, :] - book) ** 2).sum(-1)).argmin(-1)
    want = transforms.postprocess("images", ae.decode(params, nearest.astype(np.int32)))
    np.testing.assert_array_equal(tokens.decode(cfg, noisy), np.asarray(want))


@pytest.mark.parametrize("backbone", [
    pytest.param(("model.channels=(8,)", "model.time_dim=16", "model.groups=4"),
                 marks=pytest.mark.heavy, id="unet"),  # ~15 s; the config's U-Net
    pytest.param(("model.name=dit", "model.patch=1", "model.depth=1", "model.hidden=16",
                  "model.num_heads=2"), id="dit")])  # by default: the DiT on latent maps
def test_a_ddpm_on_pre_quantized_latents_trains_and_samples_decoded_images(vqvae_run, capsys,
                                                                           backbone):
    tmp = vqvae_run.parent
    name = "dit" if "model.name=dit" in backbone else "unet"
    prior = tmp / f"ddpm_vq_{name}"  # a denoiser of the 2 x 2 x 3 maps (data.keep_shape)
    train_ddpm_prior(prior, "ddpm_vqvae_fashion_mnist.py", vqvae_run, backbone)
    assert (prior / "samples" / "step_0000002.png").exists()  # the decoded grid
    out = tmp / f"vq_{name}.npz"
    assert cli.main(["sample", "--workdir", str(prior), "--num", "3", "--out", str(out)]) == 0
    got = np.load(out)
    assert got["x"].shape == (3, 2, 2, 3) and got["images"].shape == (3, 8, 8, 1)
    assert got["images"].dtype == np.uint8
    # the composed bound needs posterior draws, which a VQ-VAE has not: said, not faked
    from jaxgen.composed.bound import composed_bound
    exp, params = runs.restore(prior)
    got = composed_bound(exp, params, "test", 4, 4, jax.random.key(0))
    assert list(got) == ["composed/bits_per_dim"] and "no posterior draws" in str(got)
    capsys.readouterr()


def test_latent_kinds_must_match_the_autoencoder(vae_run, vqvae_run):
    _, vae = vae_run
    with pytest.raises(UserError, match="pre_quantized"):  # a VQ-VAE's codes are discrete
        get_dataset({"name": "latents", "workdir": str(vqvae_run)}, "train")
    with pytest.raises(UserError, match="for a VQ-VAE run"):  # a VAE has no quantiser
        get_dataset({"name": "latents", "workdir": str(vae), "latent": "pre_quantized"},
                    "train")
