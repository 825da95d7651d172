"""Config files, overrides and their errors."""

import json
import re

import pytest

from jaxgen.kernel import config as config_lib
from jaxgen.kernel import registry
from jaxgen.kernel.config import ConfigError
from jaxgen.runner import resume

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


def test_a_missing_config_is_one_line_with_the_close_names(tmp_path):
    """One line: the close shipped names, and where the whole list is (not the list)."""
    with pytest.raises(ConfigError, match="does not exist") as e:
        config_lib.load_config(tmp_path / "nope.py")
    assert "`jaxgen list` shows the shipped configs" in str(e.value)
    assert "\n" not in str(e.value) and "toy2d" not in str(e.value)
    with pytest.raises(ConfigError, match=r"Did you mean: gan/ns_toy2d\b"):
        config_lib.load_config("gan/ns_toy_2d")


def test_config_differences_ignore_resumable_keys():
    a = json.loads(config_lib.to_json(config_lib.load_config(TOY)))
    b = json.loads(config_lib.to_json(config_lib.load_config(
        TOY, ["train.steps=99999", "eval.ode_steps=3"])))
    assert resume.config_differences(a, b) == []
    c = json.loads(config_lib.to_json(config_lib.load_config(TOY, ["optim.b1=0.5"])))
    assert resume.config_differences(a, c) == ["optim.b1: 0.9 -> 0.5"]
    # learning rate and clipping may change on resume: reported apart, as notes
    d = json.loads(config_lib.to_json(config_lib.load_config(
        TOY, ["optim.learning_rate=0.5", "optim.players.model.grad_clip=2.0"])))
    assert resume.config_differences(a, d) == []
    assert resume.config_differences(a, d, allowed=resume.ADJUSTABLE) == [
        "optim.learning_rate changed 0.002 -> 0.5",
        "optim.players.model.grad_clip set to 2.0"]


def _info_for(cfg):
    from jaxgen.runner.experiment import DatasetInfo
    if cfg.data.name == "fashion_mnist":
        return DatasetInfo("fashion_mnist", "images", (28, 28, 1), 10)
    if cfg.data.name == "cifar10":
        return DatasetInfo("cifar10", "images", (32, 32, 3), 10)
    if cfg.data.name.startswith("imagenet"):  # imagenet32, imagenet64
        size = int(cfg.data.name[len("imagenet"):])
        return DatasetInfo(cfg.data.name, "images", (size, size, 3), 1000)
    if cfg.data.name == "codes":  # a VQ-VAE's 7 x 7 maps of 128 codes (`jaxgen codes`)
        shape = (49 + 196,) if len(cfg.data.levels) == 2 else (7, 7)  # VQ-VAE-2 [top; bottom]
        return DatasetInfo("codes", "tokens", shape, 10, num_tokens=128)
    if cfg.data.name == "latents":  # the conv VAE's 32-d latent, or a VQ-VAE's 7 x 7 x 16 maps
        if cfg.data.latent == "pre_quantized":
            shape = (7, 7, 16) if cfg.data.keep_shape else (7 * 7 * 16,)
            return DatasetInfo("latents", "points", shape, 10)
        return DatasetInfo("latents", "points", (32,), 10)
    from jaxgen.data import get_dataset  # toys: the real shape e.g. a sequence's length
    small = {**cfg.data.to_dict(), "num_train": 16, "num_eval": 16}
    return DatasetInfo.of(get_dataset(small, "train"))


@pytest.mark.parametrize("path", config_lib.find_configs(),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_builds_and_its_step_traces(path):
    """Model, objective and one train step of every config, traced abstractly
    (no data, no compile)."""
    import jax
    import jax.numpy as jnp

    from jaxgen.runner import step as step_lib
    from jaxgen.runner.experiment import Experiment
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


# ---------------------------------------------------------- declared settings
def test_a_typo_in_a_config_file_is_an_error_that_names_the_key(tmp_path):
    path = tmp_path / "my_ddpm.py"
    path.write_text("from jaxgen.configs.diffusion.ddpm_toy2d import get_config as ddpm_toy2d\n\n"
                    "def get_config():\n    c = ddpm_toy2d()\n"
                    "    c.objective.predicton = 'v'\n    return c\n")
    with pytest.raises(ConfigError, match=r"Unknown config key 'objective.predicton' "
                                          r"\(objective ddpm\)\. Did you mean: "
                                          r"objective.prediction") as e:
        config_lib.load_config(path)
    assert "objective.num_steps" in str(e.value) and "train.steps" not in str(e.value)


def test_a_key_the_file_does_not_set_exists_with_its_default_and_can_be_set():
    cfg = config_lib.load_config("diffusion/ddpm_toy2d")
    assert cfg.eval.vlb_steps == 0 and cfg.sample.guidance_grid == (0.0, 1.0, 3.0)
    assert cfg.sample.temperature == 1.0  # declared by the family, set by no file
    cfg = config_lib.load_config(TOY, ["objective.sigma_min=0.1", "model.num_classes=3"])
    assert cfg.objective.sigma_min == 0.1 and cfg.model.num_classes == 3
    # a value outside the declared choices, and a family's key on another family
    with pytest.raises(ConfigError, match="sample.sampler must be one of ddpm, ddim, ode"):
        config_lib.load_config("diffusion/ddpm_toy2d", ["sample.sampler=euler"])
    with pytest.raises(ConfigError, match=r"Unknown config key 'sample.truncation' "
                                          r"\(objective flow_matching\)"):
        config_lib.load_config(TOY, ["sample.truncation=0.5"])


def test_resolution_is_idempotent_and_survives_config_json():
    cfg = config_lib.load_config("gan/wgan_gp_toy2d", ["optim.players.generator.b1=0.5"])
    once = config_lib.to_json(cfg)
    assert config_lib.to_json(config_lib.resolve(cfg)) == once
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(once)
        assert config_lib.to_json(config_lib.from_json_file(Path(d) / "config.json")) == once


def test_shipped_configs_resolve_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("flow_matching/toy2d", "flow_matching/toy2d.py", "configs/gan/ns_toy2d.py"):
        assert config_lib.load_config(name).data.name in ("8gaussians", "ring8")


def test_cli_config_prints_every_key_with_its_doc(capsys):
    from jaxgen import cli
    assert cli.main(["config", "diffusion/ddpm_toy2d", "--config.sample.eta=0.5"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if not ln.startswith("#")}
    assert "0.5" in lines["sample.eta"] and "ddim" in lines["sample.eta"]
    assert "# [int] the VLB's sum over t" in lines["eval.vlb_steps"]
    cfg = config_lib.load_config("diffusion/ddpm_toy2d")
    assert set(lines) == set(config_lib._all_keys(cfg)) - {"optim.players"}


def test_cli_typo_is_one_line_and_a_bug_is_a_traceback(tmp_path, capsys, monkeypatch):
    from jaxgen import cli
    assert cli.main(["train", "--config", "flow_matching/toy2d", "--workdir",
                     str(tmp_path / "r"), "--config.objective.sigma_mn=0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxgen: error: Unknown config key 'objective.sigma_mn' "
                          "(objective flow_matching). Did you mean: objective.sigma_min")
    assert not (tmp_path / "r").exists()

    def buggy(args, overrides):
        raise ValueError("a bug, not a user error")

    monkeypatch.setitem(cli.COMMANDS, "list", buggy)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["list"])


@pytest.mark.parametrize("override, fragment", [
    ("train.sample_every=-1", "train.sample_every must be >= 0, got -1"),
    ("train.ema_decay=1.5", "train.ema_decay must lie in [0, 1], got 1.5"),
    ("optim.warmup_steps=-10", "optim.warmup_steps must be >= 0, got -10"),
    ("optim.b1=1.0", "optim.b1 must lie in [0, 1), got 1.0"),
    ("train.max_to_keep=0", "train.max_to_keep must be a positive integer, got 0"),
    ("data.num_train=0", "data.num_train must be a positive integer, got 0"),
])
def test_out_of_range_values_are_refused(override, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        config_lib.load_config(TOY, [override])


def test_data_keys_that_do_not_apply_to_the_dataset_are_refused():
    from jaxgen.data import get_dataset
    from jaxgen.kernel.errors import UserError
    with pytest.raises(UserError, match=r"data.classes=\(1, 2\) does not apply to "
                                        r"data.name=8gaussians"):
        cfg = config_lib.load_config(TOY, ["data.classes=(1, 2)", "data.num_train=64"])
        get_dataset(cfg.data, "train")
    cfg = config_lib.load_config("autoregressive/ar_toy", ["data.num_train=16",
                                                           "data.num_eval=16"])
    assert get_dataset(cfg.data, "train").event_shape == (32,)  # length, ar_coeffs apply
    with pytest.raises(UserError, match="data.length=8 does not apply"):
        cfg = config_lib.load_config(TOY, ["data.length=8"])
        get_dataset(cfg.data, "train")


# every dataset's keys, as config.json held them when one data.* group declared them all
UNION_DATA_DEFAULTS = {
    "path": "", "eval_path": "", "num_train": 200000, "num_eval": 20000, "seed": 0,
    "classes": [], "std": None, "mixture_seed": 1, "components": 6, "length": None,
    "ar_coeffs": None, "source_dir": "/usr/share/datasets/fashion-mnist",
    "decoder_workdir": "", "workdir": "", "latent": "mean", "keep_shape": False, "levels": []}


def test_a_config_json_with_every_datasets_keys_still_opens(tmp_path):
    """A run written when every config held every dataset's data.* keys opens as the same
    resolved config: the keys its dataset does not declare, at their defaults, are dropped;
    one set away from its default (it could not have been) is one error."""
    cfg = config_lib.load_config(TOY, ["data.num_train=1000"])
    old = json.loads(config_lib.to_json(cfg))
    old["data"] = {**UNION_DATA_DEFAULTS, **old["data"]}
    (tmp_path / "config.json").write_text(json.dumps(old))
    back = config_lib.from_json_file(tmp_path / "config.json")
    assert config_lib.to_json(back) == config_lib.to_json(cfg)
    assert sorted(back.data.keys()) == ["name", "num_eval", "num_train", "seed", "std"]
    old["data"]["classes"] = [1]
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match=r"data.classes=\(1,\) does not apply to "
                                          r"data.name=8gaussians; it uses data.name, "
                                          r"data.num_eval, data.num_train, data.seed, data.std"):
        config_lib.from_json_file(tmp_path / "config.json")


def test_a_model_name_override_drops_the_old_networks_keys_with_one_note(capsys):
    """The DiT on a config written for the U-Net: the U-Net's own keys go, with one note
    naming them; keys both have stay; a U-Net key given on the command line stays, and is
    the usual error naming the DiT's keys when the network is checked."""
    cfg = config_lib.load_config("diffusion/edm_fashion_mnist.py",
                                 ["model.name=dit", "model.patch=7"])
    err = capsys.readouterr().err
    assert "model.name=dit replaces unet; dropped the config's model.channels" in err
    assert err.count("jaxgen: note:") == 1
    fields = set(registry.model_fields("dit"))
    assert set(cfg.model.keys()) - {"name"} <= fields and cfg.model.patch == 7
    unet = config_lib.load_config("diffusion/edm_fashion_mnist.py")
    assert "channels" in unet.model  # the file itself is unchanged
    given = config_lib.load_config("diffusion/edm_fashion_mnist.py",
                                   ["model.name=dit", "model.channels=(8,)"])
    with pytest.raises(ConfigError, match=r"model.channels.*Valid keys: model.name, "
                                          r"model.depth"):  # checked with the network's
        config_lib.check_model_keys(given)
