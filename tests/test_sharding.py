"""The train state split over a mesh axis (FSDP): the rules, the same trajectory as the
replicated state, about 1/n of the bytes per device, and a checkpoint restored onto
another mesh and device count."""

from __future__ import annotations

import json
import shutil

import flax.linen as nn
import jax
import numpy as np
import pytest
from conftest import (
    NO_PICTURES,
    TINY_TOY,
    TOY_CONFIG,
    flags,
    load_final_state,
    read_metrics,
    run_cli,
)
from jax.sharding import PartitionSpec as P

from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import UserError
from jaxgen.runner import sharding


class _Mesh:
    """What the rules read of a mesh: its axis sizes."""

    def __init__(self, **shape):
        self.shape = shape


def test_shape_rule_splits_the_largest_divisible_dimension():
    specs = sharding.param_specs(
        {"kernel": jax.ShapeDtypeStruct((3, 3, 64, 128), np.float32),
         "odd": jax.ShapeDtypeStruct((7, 9), np.float32),
         "wide": jax.ShapeDtypeStruct((256, 12), np.float32),
         "tie": jax.ShapeDtypeStruct((64, 64), np.float32),
         "small": jax.ShapeDtypeStruct((16,), np.float32),
         "scalar": jax.ShapeDtypeStruct((), np.float32)},
        _Mesh(data=1, fsdp=8), min_size=64)
    assert specs == {"kernel": P(None, None, None, "fsdp"), "odd": P(),
                     "wide": P("fsdp", None), "tie": P(None, "fsdp"), "small": P(),
                     "scalar": P()}
    # one device along fsdp: nothing to split
    assert set(sharding.param_specs({"k": jax.ShapeDtypeStruct((64, 64), np.float32)},
                                    _Mesh(data=8), 0).values()) == {P()}


def test_logical_axis_names_decide_where_a_module_gives_them():
    class Annotated(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
            return nn.Dense(32, kernel_init=init)(x)  # (64, 32): the shape rule would pick 64

    abstract = jax.eval_shape(Annotated().init, jax.random.key(0), np.zeros((1, 64)))
    specs = sharding.param_specs(abstract["params"], _Mesh(fsdp=4), min_size=0)
    assert specs["Dense_0"]["kernel"] == P("fsdp", None)  # "embed" comes first in the rules
    assert specs["Dense_0"]["bias"] == P("fsdp")  # no annotation: the shape rule
    # "mlp" only, not divisible by 3 along it: whole
    assert sharding.param_specs(abstract["params"], _Mesh(fsdp=3),
                                min_size=0)["Dense_0"]["kernel"] == P()


def test_mesh_errors_say_what_to_do():
    with pytest.raises(UserError, match="has none. Use e.g. --config.train.mesh=fsdp"):
        sharding.make_mesh("data", shard_state=True)
    with pytest.raises(UserError, match="needs a multiple of 3 devices"):
        sharding.make_mesh("data:3", devices=jax.devices() * 1)
    with pytest.raises(config_lib.ConfigError, match="not one of data, fsdp"):
        config_lib.load_config(TOY_CONFIG, ["train.mesh=model:2"])
    assert sharding.make_mesh("", True).axis_names == ("fsdp",)
    assert sharding.fits("data:2,fsdp:4", 8) and not sharding.fits("data:2,fsdp:4", 4)
    assert sharding.fits("data:2,fsdp:-1", 4) and not sharding.fits("data:3,fsdp:-1", 4)


def _train(wd, devices, extra):
    return run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd,
                    *flags(TINY_TOY + NO_PICTURES + extra)],
                   env_extra={"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"})


def _state_mib(stdout: str) -> float:
    line = next(ln for ln in stdout.splitlines() if "state per device (MiB)" in ln)
    return float(line.split("|")[2])


def _assert_same_run(a, b, rtol=2e-5):
    ma, mb = read_metrics(a), read_metrics(b)
    assert [m["step"] for m in ma] == [m["step"] for m in mb]
    for x, y in zip(ma, mb):
        np.testing.assert_allclose(x["loss"], y["loss"], rtol=rtol, atol=1e-6)
    sa, sb = load_final_state(a)[0], load_final_state(b)[0]
    for x, y in zip(jax.tree.leaves((sa.params, sa.ema_params, sa.opt_state)),
                    jax.tree.leaves((sb.params, sb.ema_params, sb.opt_state))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)


WIDE = ["model.features=(64, 64)", "train.steps=20"]


@pytest.mark.slow
def test_sharded_state_follows_the_replicated_trajectory_at_an_eighth_of_the_bytes(tmp_path):
    """8 simulated devices: replicated (data:8) vs split 8 ways (fsdp:8)."""
    rep = _train(tmp_path / "rep", 8, WIDE + ["train.mesh=data"])
    fsdp = _train(tmp_path / "fsdp", 8, WIDE + ["train.mesh=fsdp", "train.shard_state=true",
                                                 "train.shard_min_size=0"])
    assert "fsdp:8 (state sharded over fsdp)" in fsdp.stdout
    full, eighth = (_state_mib(p.stdout) for p in (rep, fsdp))
    # every array of the MLP splits but the 2-wide output bias and the scalars and keys
    assert 0.12 < eighth / full < 0.14, (full, eighth)
    _assert_same_run(tmp_path / "rep", tmp_path / "fsdp")


# minutes of CPU; by default the sharded trajectory equals the replicated one
# (8 devices), a run equals itself on 1 and 4 devices and after a resume (test_train)
@pytest.mark.heavy
@pytest.mark.slow
def test_a_sharded_run_saved_on_4_devices_resumes_on_2_and_on_1(tmp_path):
    """Saved at step 10 on 4 devices (2 copies of the state, each split 2 ways:
    data:2,fsdp:2), resumed to 20 on 2 devices and on 1 (the state split over all): the
    trajectory of the uninterrupted 4-device run."""
    common = WIDE + ["train.shard_state=true", "train.shard_min_size=0",
                     "optim.decay_steps=20"]
    on4 = ["train.mesh=data:2,fsdp:2"]
    whole = _train(tmp_path / "whole", 4, common + on4)
    assert "data:2,fsdp:2 (state sharded over fsdp)" in whole.stdout
    _train(tmp_path / "half", 4, common + on4 + ["train.steps=10"])
    for n in (2, 1):
        wd = tmp_path / f"on{n}"
        shutil.copytree(tmp_path / "half", wd)
        out = _train(wd, n, common)
        assert "Resuming from" in out.stdout and f"fsdp:{n}" in out.stdout
        assert json.loads((wd / "config.json").read_text())["train"]["steps"] == 20
        _assert_same_run(tmp_path / "whole", wd)
