"""Inception FID / IS at paper scale (`jaxgen/eval/fid.py`): the streamed statistics equal
the one-shot formulas, the statistics files are pytorch-fid's, samples are drawn on the
devices batch by batch (never all N at once) and are the same on 1 and 4 devices, and the
record carries what the number depends on (seeds, reference file and hash, weights hash,
sampler and NFE, the run's batch, devices and EMA)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.eval import fid
from jaxgen.eval.frechet import frechet_distance, gaussian_stats
from jaxgen.kernel.errors import MissingError, UserError


@pytest.mark.parametrize("seed", range(4))
def test_streamed_gaussian_equals_the_one_shot_mean_and_covariance(seed):
    """Random chunkings of features far from the origin (the shift keeps float64 exact)."""
    r = np.random.default_rng(seed)
    n, d = int(r.integers(3, 300)), int(r.integers(1, 40))
    f = r.normal(size=(n, d)) * r.uniform(0.1, 3, d) + r.uniform(-1e3, 1e3, d)
    cuts = np.sort(r.choice(np.arange(1, n), size=min(5, n - 1), replace=False))
    acc = fid.GaussianAccumulator()
    for part in np.split(f.astype(np.float32), cuts):
        acc.add(part)
    mu, sigma = acc.stats()
    mu1, sigma1 = gaussian_stats(f.astype(np.float32))
    np.testing.assert_allclose(mu, mu1, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sigma, sigma1, rtol=1e-9, atol=1e-9 * np.abs(sigma1).max())
    assert acc.n == n


def test_a_single_image_is_one_clear_error():
    acc = fid.GaussianAccumulator()
    acc.add(np.ones((1, 3)))
    with pytest.raises(UserError, match="at least 2"):
        acc.stats()


def test_statistics_files_are_pytorch_fids_and_bad_ones_are_one_error(tmp_path):
    r = np.random.default_rng(0)
    mu, a = r.normal(size=5), r.normal(size=(5, 5))
    p = fid.write_stats(tmp_path / "ref.npz", mu, a @ a.T, split="train", n=10)
    with np.load(p) as z:  # what pytorch-fid's calculate_frechet_distance loads
        np.testing.assert_array_equal(z["mu"], mu)
        np.testing.assert_array_equal(z["sigma"], a @ a.T)
    m2, s2 = fid.read_stats(p)
    np.testing.assert_array_equal(m2, mu)
    assert frechet_distance(m2, s2, mu, a @ a.T) == pytest.approx(0, abs=1e-8)
    assert not list(tmp_path.glob("*.partial*"))
    with pytest.raises(MissingError, match="jaxgen fid-stats"):
        fid.read_stats(tmp_path / "none.npz")
    np.savez(tmp_path / "obj.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1))
    with pytest.raises(UserError, match="no pickled objects"):
        fid.read_stats(tmp_path / "obj.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    with pytest.raises(UserError, match=r"not \(d,\) and \(d, d\)"):
        fid.read_stats(tmp_path / "shape.npz")


# ----------------------------------------------------------------- the sampling stream
TINY_IMAGES = ["data.name=array", "model.name=unet", "model.channels=(8,)",
               "model.num_res_blocks=1", "model.groups=4", "model.time_dim=16",
               "train.batch_size=8", "train.steps=2", "sample.steps=2", "sample.method=euler"]


def _tiny_experiment(tmp_path, extra=()):
    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    x = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "train.npy", x)
    cfg = config_lib.load_config(config_lib.find_config("flow_matching/fashion_mnist"),
                                 [*TINY_IMAGES, f"data.path={tmp_path / 'train.npy'}", *extra])
    ds = get_dataset(cfg.data, "train")
    exp = Experiment(cfg, DatasetInfo.of(ds))
    params = exp.init_state({"x": x[:8]}).params
    return exp, params, ds


class _Recording:
    """A stand-in feature network (a fixed random projection) that records batch sizes."""

    def __init__(self):
        w = jax.random.normal(jax.random.key(1), (8 * 8 * 3, 6))
        self.sizes = []
        self.fn_jit = jax.jit(lambda x: (jnp.tanh(x.reshape(len(x), -1) / 255.0 @ w),
                                         x.reshape(len(x), -1)[:, :5] / 64.0))

    def __call__(self, x):
        self.sizes.append(x.shape[0])
        return self.fn_jit(x)


def test_samples_are_streamed_in_batches_and_the_scores_equal_the_one_shot_ones(tmp_path):
    exp, params, _ = _tiny_experiment(tmp_path)
    rec = _Recording()
    net = fid.FeatureNet(rec, "0" * 64, "stand-in")
    r = np.random.default_rng(0)
    ref_f = r.normal(size=(50, 6))
    ref = fid.write_stats(tmp_path / "ref.npz", *gaussian_stats(ref_f))
    out = fid.sample_scores(exp, params, net, ref, num=20, batch=8, seed=3, splits=2,
                            progress=False)
    assert rec.sizes == [8, 8, 8]  # three draws of 8; 20 kept; never 20 at once
    # the one-shot reference: the same batches, all features concatenated
    imgs = [np.asarray(exp.sample_on_devices(params, jax.random.fold_in(jax.random.key(3), i),
                                             8)) for i in range(3)]
    x = np.concatenate(imgs)[:20]
    assert x.dtype == np.uint8 and x.shape == (20, 8, 8, 3)
    pool, logits = map(np.asarray, rec.fn_jit(x))
    want = frechet_distance(*gaussian_stats(pool), *gaussian_stats(ref_f))
    assert out["fid"] == pytest.approx(want, rel=1e-9)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float64)
    kls = [np.mean(np.sum(q * (np.log(q) - np.log(q.mean(0))), 1)) for q in (p[:10], p[10:])]
    assert out["is"] == pytest.approx(np.mean(np.exp(kls)), rel=1e-6)
    assert out["fid_n"] == 20 and out["fid_seeds"].startswith("3..3:")
    assert out["fid_ref_sha256"] == fid.file_sha256(ref)
    assert out["inception_sha256"] == "0" * 64 and out["fid_eval_devices"] == 1


def test_edms_protocol_three_seed_sets_mean_and_min(tmp_path):
    exp, params, _ = _tiny_experiment(tmp_path)
    net = fid.FeatureNet(_Recording(), "0" * 64, "stand-in")
    ref = fid.write_stats(tmp_path / "ref.npz", *gaussian_stats(
        np.random.default_rng(0).normal(size=(50, 6))))
    one = [fid.sample_scores(exp, params, net, ref, num=8, batch=8, seed=s, splits=1,
                             progress=False)["fid"] for s in (5, 6, 7)]
    three = fid.sample_scores(exp, params, net, ref, num=8, batch=8, seed=5, seeds=3,
                              splits=1, progress=False)
    np.testing.assert_allclose(three["fid_per_seed"], one, rtol=1e-12)
    assert three["fid_min"] == min(one) and three["fid"] == pytest.approx(np.mean(one))
    assert len(set(one)) == 3  # the seed sets differ


def test_nfe_is_declared_by_the_sample_settings():
    from jaxgen.families.diffusion.config import DDPMSample, DDPMSettings, NCSNSample, NCSNSettings
    from jaxgen.families.flow_matching.config import FlowMatchingSample
    from jaxgen.families.gan.config import GANSample
    obj = DDPMSettings(num_steps=1000)
    assert DDPMSample(sampler="ddpm").nfe(obj) == 1000
    assert DDPMSample(sampler="ddim", steps=50).nfe(obj) == 50
    assert DDPMSample(sampler="dpm_solver", steps=20).nfe(obj) == 20
    assert DDPMSample(sampler="ode", steps=25, method="heun").nfe(obj) == 50
    assert FlowMatchingSample(steps=50, method="euler").nfe(None) == 50
    assert FlowMatchingSample(steps=10, method="rk4").nfe(None) == 40
    assert GANSample().nfe(None) == 1
    assert NCSNSample(langevin_steps=100, denoise=True).nfe(NCSNSettings(num_sigmas=10)) == 1001


SAME_ON_4 = textwrap.dedent("""
    import sys, numpy as np, jax
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_fid_stream import _tiny_experiment
    from jaxgen.runner import sharding
    exp, params, _ = _tiny_experiment(Path({tmp!r}))
    assert exp.mesh.size == 4, exp.mesh
    x4 = exp.sample_on_devices(params, jax.random.key(7), 8)
    assert len(x4.sharding.device_set) == 4, x4.sharding
    from jaxgen.kernel.errors import UserError
    try:
        exp.sample_on_devices(params, jax.random.key(7), 6)
        raise SystemExit("6 samples over 4 devices did not fail")
    except UserError as e:
        assert "multiple of 4" in str(e), e
    exp.mesh = sharding.make_mesh("data", False, devices=jax.devices()[:1])
    exp._compiled_samplers.clear()
    params = jax.device_put(params, jax.devices()[0])
    x1 = exp.sample_on_devices(params, jax.random.key(7), 8)
    assert len(x1.sharding.device_set) == 1
    a, b = np.asarray(x4).astype(int), np.asarray(x1).astype(int)
    print(np.abs(a - b).max(), np.mean(a != b))
""")


@pytest.mark.slow
def test_the_samples_are_the_same_on_1_and_4_devices(tmp_path):
    import os
    from pathlib import Path
    code = SAME_ON_4.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    worst, frac = out.stdout.split()
    # the same draw; float32 reductions split differently may move a pixel across a
    # uint8 boundary, by one level at most
    assert int(worst) <= 1 and float(frac) < 0.01, out.stdout


def test_run_record_names_sampler_nfe_batch_devices_and_ema(tmp_path):
    from jaxgen.eval.metrics import run_record
    exp, _, _ = _tiny_experiment(tmp_path, ["train.ema_decay=0.9999"])
    (tmp_path / "run.json").write_text(json.dumps({"devices": 8}))
    rec = run_record(exp, tmp_path)
    assert rec["nfe"] == 2 and rec["sampler"]["method"] == "euler"
    assert rec["train_global_batch"] == 8 and rec["train_devices"] == 8
    assert rec["train_ema_decay"] == 0.9999
    assert run_record(exp, tmp_path / "none")["train_devices"] == "not recorded by this run"


# ----------------------------------------------------------------- end to end, real network
def random_inception_weights(path, seed=0):
    """Random weights for pytorch-fid's Inception in the converted format (He-scaled convs,
    random BatchNorm statistics), written without torch."""
    from jaxgen.eval import inception
    r = np.random.default_rng(seed)
    arrays = {}
    for name, shape in inception._expected_shapes().items():
        if name.endswith("/kernel"):
            v = r.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        elif name.endswith("/var"):
            v = r.uniform(0.5, 2.0, shape)
        elif name.endswith("/scale"):
            v = r.uniform(0.5, 1.5, shape)
        else:
            v = r.normal(0, 0.1, shape)
        arrays[name] = v.astype(np.float32)
    return inception.write_weights(arrays, path)


@pytest.mark.slow
def test_jaxgen_eval_reports_inception_fid_and_is_with_their_provenance(tmp_path, monkeypatch):
    """A tiny trained run scored through the real network (random weights): the record
    holds FID, IS and what they depend on; the cached reference statistics equal what
    `jaxgen fid-stats` writes for the same data."""
    from jaxgen import cli
    monkeypatch.setenv("JAXGEN_CACHE", str(tmp_path / "cache"))
    weights, sha = random_inception_weights(tmp_path / "w.npz")
    x = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "train.npy", x)
    data = [f"--config.data.path={tmp_path / 'train.npy'}"]
    wd = tmp_path / "run"
    assert cli.main(["train", "--config", "flow_matching/fashion_mnist", "--workdir", str(wd),
                     *[f"--config.{o}" for o in TINY_IMAGES], *data,
                     "--config.train.pictures=false", "--config.train.progress=false"]) == 0
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--workdir", str(wd), "--split", "train", "--out", str(out),
                     "--config.eval.fid_num=8", "--config.eval.fid_batch=8",
                     f"--config.eval.inception_weights={weights}",
                     "--config.eval.is_splits=2", "--config.eval.num_examples=8",
                     # the likelihood and straightness this eval also reports: Euler steps
                     "--config.eval.ode_method=euler", "--config.eval.ode_steps=2"]) == 0
    rec = json.loads(out.read_text())
    assert np.isfinite(rec["fid"]) and rec["fid"] > 0 and rec["is"] >= 1.0
    assert rec["fid_n"] == 8 and rec["inception_sha256"] == sha
    assert rec["nfe"] == 2 and rec["train_devices"] == 1 and rec["train_global_batch"] == 8
    cached = Path(rec["fid_ref"])
    assert cached.parent == tmp_path / "cache" / "fid_stats"
    assert rec["fid_ref_sha256"] == fid.file_sha256(cached)
    ref = tmp_path / "ref.npz"
    assert cli.main(["fid-stats", "--out", str(ref), "--config.data.name=array", *data,
                     "--batch", "8", "--weights", str(weights)]) == 0
    for a, b in zip(fid.read_stats(ref), fid.read_stats(cached)):
        np.testing.assert_array_equal(a, b)
    assert cli.main(["fid-stats", "--out", str(ref), "--config.data.name=array", *data,
                     "--weights", str(weights)]) == 2  # never overwritten without --force
