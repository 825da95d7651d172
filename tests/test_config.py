"""Config files, overrides and their errors."""

import json

import pytest

from jaxgen import config as config_lib
from jaxgen.config import ConfigError

TOY = config_lib.repo_root() / "configs" / "flow_matching" / "toy2d.py"


def test_every_shipped_config_has_the_required_keys():
    paths = config_lib.find_configs()
    assert TOY in paths
    for path in paths:
        cfg = config_lib.load_config(path)
        keys = set(config_lib._all_keys(cfg))
        for k in config_lib.REQUIRED_KEYS:
            assert k in keys, (path, k)


def test_overrides_are_typed():
    cfg = config_lib.load_config(TOY, [
        "train.steps=7", "optim.learning_rate=1", "model.features=(8, 8)",
        "train.progress=false", "data.name=checkerboard", "data.std=0.1"])
    assert cfg.train.steps == 7 and isinstance(cfg.train.steps, int)
    assert cfg.optim.learning_rate == 1.0 and isinstance(cfg.optim.learning_rate, float)
    assert tuple(cfg.model.features) == (8, 8)
    assert cfg.train.progress is False
    assert cfg.data.name == "checkerboard"
    assert cfg.data.std == 0.1


def test_unknown_key_suggests_and_lists():
    with pytest.raises(ConfigError) as e:
        config_lib.load_config(TOY, ["train.step=5"])
    msg = str(e.value)
    assert "Unknown config key 'train.step'" in msg and "train.steps" in msg
    assert "Valid keys" in msg


@pytest.mark.parametrize("override, fragment", [
    ("train.steps=abc", "expected int"),
    ("train.steps=0", "positive integer"),
    ("train.progress=maybe", "true or false"),
    ("optim.learning_rate=-1", "learning_rate must be > 0"),
    ("train", "--config.KEY=VALUE"),
    ("train=3", "group of keys"),
])
def test_bad_values_are_explained(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_lib.load_config(TOY, [override])


def test_missing_file_lists_configs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as e:
        config_lib.load_config(tmp_path / "nope.py")
    assert "toy2d.py" in str(e.value)


def test_config_differences_ignore_resumable_keys():
    a = json.loads(config_lib.to_json(config_lib.load_config(TOY)))
    b = json.loads(config_lib.to_json(config_lib.load_config(
        TOY, ["train.steps=99999", "eval.ode_steps=3"])))
    assert config_lib.config_differences(a, b) == []
    c = json.loads(config_lib.to_json(config_lib.load_config(TOY, ["optim.learning_rate=0.5"])))
    assert config_lib.config_differences(a, c) == ["optim.learning_rate: 0.002 -> 0.5"]


def _info_for(cfg):
    from jaxgen.experiment import DatasetInfo
    if cfg.data.name == "fashion_mnist":
        return DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10)
    if cfg.data.name == "codes":  # a VQ-VAE's 7 x 7 maps of 128 codes (`jaxgen codes`)
        return DatasetInfo("codes", "tokens", (7, 7), 10, num_tokens=128)
    from jaxgen.data import get_dataset  # toys: the real shape (e.g. a sequence's length)
    small = {**cfg.data.to_dict(), "num_train": 16, "num_eval": 16}
    return DatasetInfo.of(get_dataset(small, "train"))


@pytest.mark.parametrize("path", config_lib.find_configs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_builds_and_its_step_traces(path):
    """Model, objective and one train step of every config, traced abstractly (no data, no compile)."""
    import jax
    import jax.numpy as jnp

    from jaxgen.experiment import Experiment
    from jaxgen.train import step as step_lib
    cfg = config_lib.load_config(path, ["train.batch_size=10"])
    info = _info_for(cfg)
    exp = Experiment(cfg, info)
    state = jax.eval_shape(exp._init_fn, exp.example_batch())
    batch = {"x": jax.ShapeDtypeStruct((10, *info.event_shape),
                                       jnp.uint8 if info.kind == "images" else jnp.float32)}
    if info.num_classes:
        batch["label"] = jax.ShapeDtypeStruct((10,), jnp.int32)
    one = step_lib.make_train_step(exp.objective, exp.txs, info.kind, cfg.train.ema_decay,
                                   dequantize=exp.dequantize)
    new_state, metrics = jax.eval_shape(one, state, batch)
    assert metrics["loss"].shape == () and new_state.step.shape == ()
