"""Data statistics at build time (jaxgen.kernel.contract.DataStats): what they measure, that a
run keeps them (resume, load and eval build the same objective), and EDM's and consistency
models' objective.sigma_data=0, which takes σ_d from them."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen.data import get_dataset
from jaxgen.kernel import config as config_lib
from jaxgen.kernel import registry
from jaxgen.kernel.contract import DatasetInfo, DataStats
from jaxgen.kernel.errors import UsageError
from jaxgen.runner.experiment import read_run_info, run_data_info


def test_image_stats_are_the_moments_of_the_bin_centres_of_evenly_spaced_examples():
    ds = get_dataset({"name": "fashion_mnist"}, "train")
    got = DataStats.measure(ds, num=300)
    idx = np.unique(np.linspace(0, len(ds.source) - 1, 300).round().astype(np.int64))
    raw = ds.source.get(idx)["x"].astype(np.float64)
    x = 2.0 * (raw + 0.5) / 256.0 - 1.0  # the centre of each 8-bit bin in [-1, 1]
    assert got.num_examples == len(idx) == 300
    np.testing.assert_allclose([got.mean, got.std], [x.mean(), x.std()], rtol=1e-6)


@pytest.mark.parametrize("name", ["8gaussians", "ring8", "grid25"])
def test_toy_stats_match_the_mixtures_analytic_moments(name):
    ds = get_dataset({"name": name}, "train")
    toy = ds.toy
    got = DataStats.measure(ds, num=2048)
    modes = np.asarray(toy.modes, np.float64)
    mean = modes.mean()  # over the modes and both coordinates (equal weights)
    var = np.mean(modes ** 2) + toy.std ** 2 - mean ** 2
    assert abs(got.mean - mean) < 0.15, (got.mean, mean)
    np.testing.assert_allclose(got.std, np.sqrt(var), rtol=0.05)


def test_dataset_info_keeps_its_stats_through_json():
    info = DatasetInfo("d", "points", (2,), None, None, DataStats(0.25, 1.5, 100))
    assert DatasetInfo.from_json(info.to_json()) == info
    bare = DatasetInfo("d", "points", (2,))
    assert "stats" not in bare.to_json() and DatasetInfo.from_json(bare.to_json()) == bare


def _edm_objective(info, *overrides):
    cfg = config_lib.load_config("diffusion/edm_toy2d", ["model.features=(16, 16)",
                                                         "model.time_dim=8", *overrides])
    model = registry.build_model(cfg.model, info)
    return registry.build_objective(cfg, model, info)


@pytest.mark.parametrize("config", ["diffusion/edm_toy2d", "diffusion/consistency_toy2d"])
def test_sigma_data_zero_needs_stats_and_says_so(config):
    cfg = config_lib.load_config(config, ["objective.sigma_data=0"])
    info = DatasetInfo("toy", "points", (2,))
    with pytest.raises(UsageError, match=r"objective.sigma_data=0 .*statistics"):
        registry.build_objective(cfg, registry.build_model(cfg.model, info), info)


def test_sigma_data_zero_is_the_measured_std():
    stats = DataStats(0.1, 1.7, 2048)
    info = DatasetInfo("toy", "points", (2,), stats=stats)
    measured = _edm_objective(info, "objective.sigma_data=0")
    explicit = _edm_objective(info, "objective.sigma_data=1.7")
    other = _edm_objective(info, "objective.sigma_data=2.0")
    x = jax.random.normal(jax.random.key(0), (8, 2))
    params = measured.init(jax.random.key(1), {"x": x})
    d = [o.tools.denoise(params, x, 0.7) for o in (measured, explicit, other)]
    np.testing.assert_array_equal(d[0], d[1])
    assert not np.allclose(d[0], d[2])


def test_a_run_measures_its_stats_once_and_every_later_build_reads_them(tmp_path, monkeypatch):
    wd = tmp_path / "run"
    over = ["model.features=(16, 16)", "model.time_dim=8", "objective.sigma_data=0",
            "train.batch_size=16", "train.progress=false", "train.pictures=false",
            "train.sample_every=0", "train.log_every=1"]
    jaxgen.train(config_lib.load_config("diffusion/edm_toy2d", [*over, "train.steps=2"]), wd)
    stats = read_run_info(wd).stats
    ds = get_dataset({"name": "8gaussians"}, "train")
    assert stats == DataStats.measure(ds)
    assert 1.8 < stats.std < 2.3  # 8gaussians: about 2.03 per coordinate

    def refuse(*a, **k):
        raise AssertionError("measured again")
    monkeypatch.setattr(DataStats, "measure", classmethod(refuse))
    run = jaxgen.train(config_lib.load_config("diffusion/edm_toy2d",
                                              [*over, "train.steps=3"]), wd)  # resume
    assert read_run_info(wd).stats == stats and run.step == 3
    test = get_dataset({"name": "8gaussians"}, "test")
    assert run_data_info(test, wd).stats == stats  # what eval builds from
    loaded = jaxgen.load(wd)
    x = np.asarray(test.source.get(np.arange(8))["x"])
    explicit = _edm_objective(dataclasses.replace(read_run_info(wd), stats=None),
                              f"objective.sigma_data={stats.std!r}")
    np.testing.assert_array_equal(loaded.objective.tools.denoise(loaded.params, x, 0.7),
                                  explicit.tools.denoise(loaded.params, x, 0.7))
