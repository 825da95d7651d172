"""Plugin objectives, models and datasets (a file or an import path in objective.name /
model.name / data.name), entry points, contract violations of a loss, the public API, and
quick-run switches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from conftest import ROOT, TINY_TOY

PLUGIN = '''
import functools
import jax.numpy as jnp
import jaxgen
from jaxgen.families.flow_matching import objective as fm
from jaxgen.families.flow_matching.config import FlowMatchingSample, FlowMatchingSettings


def scaled_loss(params, batch, rng, *, apply_fn, path, prediction, scale):
    loss, metrics = fm.cfm_loss(params, batch, rng, apply_fn=apply_fn, path=path,
                                prediction=prediction)
    return scale * loss, {**metrics, "scaled": scale * loss}


@jaxgen.objective(settings=FlowMatchingSettings, sample=FlowMatchingSample)
def make(ctx):
    """flow matching, its loss scaled by 2"""
    return fm.make(ctx, loss=functools.partial(scaled_loss, scale=2.0))
'''

MODEL = '''
import flax.linen as nn
import jax.numpy as jnp


class TinyField(nn.Module):
    """u(x, t) = W [x, t] + b."""
    width: int = 8

    @nn.compact
    def __call__(self, x, t):
        h = jnp.concatenate([x, jnp.broadcast_to(t[:, None], (x.shape[0], 1))], -1)
        return nn.Dense(x.shape[-1])(nn.tanh(nn.Dense(self.width)(h)))
'''


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def _cli(*args):
    from jaxgen import cli
    return cli.main([str(a) for a in args])


def test_a_plugin_file_trains_evaluates_and_samples_from_anywhere(tmp_path, monkeypatch,
                                                                    capsys):
    work = tmp_path / "work"
    work.mkdir()
    _write(work / "my_fm.py", PLUGIN)
    _write(work / "my_net.py", MODEL)
    _write(work / "my_cfg.py", '''
        import ml_collections
        from jaxgen.configs.flow_matching.toy2d import get_config as toy2d


        def get_config():
            c = toy2d()
            c.model = ml_collections.ConfigDict({"name": "my_net.py:TinyField", "width": 4})
            c.objective.name = "my_fm.py:make"  # relative: to the folder jaxgen runs in
            return c
        ''')
    monkeypatch.chdir(work)
    flags = [f"--config.{o}" for o in TINY_TOY if not o.startswith(("model.features",
                                                                       "model.time_dim"))]
    assert _cli("train", "--config", "my_cfg.py", "--workdir", "run", *flags,
                "--config.train.pictures=false") == 0
    cfg = json.loads((work / "run" / "config.json").read_text())
    assert cfg["objective"]["name"] == f"{work / 'my_fm.py'}:make"
    run_info = json.loads((work / "run" / "run.json").read_text())  # the user's reference
    assert run_info["objective"] == f"{work / 'my_fm.py'}:make (flow_matching)"
    assert cfg["model"] == {"name": f"{work / 'my_net.py'}:TinyField", "width": 4}
    metrics = [json.loads(ln) for ln in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["scaled"] == pytest.approx(2 * m["fm_mse"], rel=1e-5) for m in metrics)
    assert all(m["loss"] == pytest.approx(m["scaled"], rel=1e-6) for m in metrics)
    # from another folder: the absolute paths in config.json rebuild the run
    monkeypatch.chdir(tmp_path)
    assert _cli("eval", "--workdir", work / "run", "--out", tmp_path / "ev.json",
                "--config.eval.ode_steps=4") == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert np.isfinite(ev["nll_nats"]) and ev["settings"]["overrides"] == ["eval.ode_steps=4"]
    assert ev["settings"]["eval"]["ode_steps"] == 4
    assert _cli("eval", "--workdir", work / "run", "--out", tmp_path / "ev.json") == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert _cli("sample", "--workdir", work / "run", "--num", "8", "--out", "s.npz") == 0
    assert np.load(tmp_path / "s.npz")["x"].shape == (8, 2)
    # the file moved: one clear error
    shutil.move(work / "my_fm.py", tmp_path / "elsewhere.py")
    capsys.readouterr()
    assert _cli("eval", "--workdir", work / "run") == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxgen: error: objective.name=") and "is gone or has moved" in err
    assert "--config.objective.name=NEW/PATH.py:make" in err
    # ... and following its advice works: read-only commands take any reference
    elsewhere = f"--config.objective.name={tmp_path / 'elsewhere.py'}:make"
    assert _cli("sample", "--workdir", work / "run", "--num", "8", "--out", "s2.npz",
                elsewhere) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s2.npz")["x"],
                                  np.load(tmp_path / "s.npz")["x"])
    assert _cli("eval", "--workdir", work / "run", "--out", tmp_path / "ev2.json",
                "--config.eval.ode_steps=4", elsewhere) == 0
    assert json.loads((tmp_path / "ev2.json").read_text())["nll_nats"] == ev["nll_nats"]
    # re-pointing is not another evaluation: it goes to the run's own file (no settings hash)
    assert _cli("eval", "--workdir", work / "run", elsewhere) == 0
    assert [p.name for p in (work / "run" / "eval").iterdir()] == ["test_step0000030.json"]
    # resuming: the same file name in another folder is the moved file (a note); another
    # file is another config (refused)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(tmp_path / "elsewhere.py", moved / "my_fm.py")
    capsys.readouterr()
    resume = ["train", "--config", work / "my_cfg.py", "--workdir", work / "run", *flags,
              "--config.train.pictures=false", f"--config.model.name={work}/my_net.py:TinyField"]
    assert _cli(*resume, elsewhere, "--config.train.steps=40") == 2
    err = capsys.readouterr().err
    assert "holds a run trained with a different config" in err
    assert (f"objective.name: '{work / 'my_fm.py'}:make' -> '{tmp_path / 'elsewhere.py'}:make' "
            "(a moved plugin file may change its folder, not its file name or attribute)") in err
    assert _cli(*resume, f"--config.objective.name={moved / 'my_fm.py'}:make",
                "--config.train.steps=40") == 0
    out = capsys.readouterr().out
    assert (f"Note: objective.name changed '{work / 'my_fm.py'}:make' -> "
            f"'{moved / 'my_fm.py'}:make' (the plugin file, moved) on resume (allowed; "
            "config.json records the new value).") in out
    cfg = json.loads((work / "run" / "config.json").read_text())
    assert cfg["objective"]["name"] == f"{moved / 'my_fm.py'}:make"
    assert _cli("sample", "--workdir", work / "run", "--num", "8", "--out", "s3.npz") == 0


BANANA = ROOT / "examples" / "banana_dataset.py"


def _banana():
    import importlib.util
    spec = importlib.util.spec_from_file_location("banana_example", BANANA)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_banana_example_density_is_normalised_and_its_entropy_is_known():
    """The example dataset's log_prob integrates to 1 (a grid), and its entropy is the
    closed form: the shear x2 - b (x1² - 1) has unit Jacobian, so H = H(N(0, 1)) +
    H(N(0, s²))."""
    b = _banana().Banana(1.0, 0.3)
    g1, g2 = np.linspace(-7, 7, 701), np.linspace(-4, 52, 2801)
    x = np.stack(np.meshgrid(g1, g2, indexing="ij"), -1).reshape(-1, 2)
    mass = np.exp(b.log_prob(x)).sum() * (g1[1] - g1[0]) * (g2[1] - g2[0])
    assert abs(mass - 1) < 1e-3
    h = 0.5 * np.log(2 * np.pi * np.e) + 0.5 * np.log(2 * np.pi * np.e * 0.3 ** 2)
    lp = b.log_prob(b.sample(np.random.default_rng(0), 200_000))
    assert abs(-lp.mean() - h) < 4 * lp.std() / np.sqrt(len(lp))


def test_a_dataset_plugin_file_trains_evaluates_and_samples_through_the_cli(tmp_path,
                                                                            monkeypatch,
                                                                            capsys):
    """data.name=FILE.py:make: a dataset kept outside the package trains, evaluates (its
    exact log-density gives true_nll_nats) and samples with nothing edited inside
    jaxgen/, from another folder; its settings are declared, an undeclared key is one
    error naming the ones it has."""
    from jaxgen.data import get_dataset
    from jaxgen.eval.evaluate import read_eval
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import ConfigError
    plugin = shutil.copy(BANANA, tmp_path / "banana_dataset.py")
    monkeypatch.chdir(tmp_path)
    wd = tmp_path / "run"
    quick = [f for f in TINY_TOY if not f.startswith("data.num_")]
    assert _cli("train", "--config", "flow_matching/toy2d", "--workdir", wd,
                "--config.data.name=banana_dataset.py:make", "--config.data.num_train=1024",
                "--config.data.num_eval=256", "--config.data.bend=0.5",
                *[f"--config.{o}" for o in quick + ["train.pictures=false"]]) == 0
    cfg = json.loads((wd / "config.json").read_text())
    assert cfg["data"] == {"name": f"{plugin}:make", "num_train": 1024, "num_eval": 256,
                           "seed": 0, "bend": 0.5, "width": 0.3}
    assert json.loads((wd / "run.json").read_text())["data"]["name"] == f"{plugin}:make"
    assert _cli("eval", "--workdir", wd) == 0
    ev = read_eval(wd)
    held = get_dataset(config_lib.from_json_file(wd / "config.json").data, "test")
    want = -np.mean(_banana().Banana(0.5, 0.3).log_prob(held.source.get(np.arange(256))["x"]))
    assert abs(ev["true_nll_nats"] - want) < 1e-9 and np.isfinite(ev["nll_nats"])
    assert np.isfinite(ev["mmd2"])
    out = tmp_path / "x.npz"
    assert _cli("sample", "--workdir", wd, "--num", "16", "--out", out) == 0
    assert np.load(out)["x"].shape == (16, 2)
    with pytest.raises(ConfigError, match=r"data.classes=\(1,\) does not apply to data.name="
                                          r".*banana_dataset.py:make; it uses data.name, "
                                          r"data.bend, data.num_eval"):
        config_lib.load_config("flow_matching/toy2d", ["data.name=banana_dataset.py:make",
                                                       "data.classes=(1,)"])
    capsys.readouterr()


def test_a_re_pointed_plugin_file_is_an_allowed_change():
    """config_differences: the same file name and attribute in another folder is allowed
    (noted with allowed=...), another file name, attribute or a registered name is not."""
    from jaxgen.runner.resume import ADJUSTABLE, config_differences
    old = {"objective": {"name": "/a/loss.py:make"}, "model": {"name": "/a/net.py:Net"}}
    moved = {"objective": {"name": "/b/c/loss.py:make"}, "model": {"name": "/b/net.py:Net"}}
    assert config_differences(old, moved) == []
    assert config_differences(old, moved, allowed=ADJUSTABLE) == [
        "model.name changed '/a/net.py:Net' -> '/b/net.py:Net' (the plugin file, moved)",
        "objective.name changed '/a/loss.py:make' -> '/b/c/loss.py:make' (the plugin file, "
        "moved)"]
    hint = " (a moved plugin file may change its folder, not its file name or attribute)"
    for other in ("/b/other.py:make", "/b/loss.py:make2", "flow_matching", "pkg.loss:make"):
        new = {**old, "objective": {"name": other}}
        assert config_differences(old, new) == [
            f"objective.name: '/a/loss.py:make' -> '{other}'"
            + (hint if other.startswith("/") else "")]
        assert config_differences(old, new, allowed=ADJUSTABLE) == []


def test_a_file_path_without_its_attribute_is_told_so():
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import UnknownNameError
    for name, what, form in (
            ("/some/where/my_loss.py", "a file reference", "FILE.py:ATTRIBUTE"),
            ("mypkg.losses", "an import-path reference", "pkg.module:ATTRIBUTE")):
        with pytest.raises(UnknownNameError) as e:
            config_lib.load_config("flow_matching/toy2d", [f"objective.name={name}"])
        assert str(e.value) == (
            f"objective.name={name}: {what} needs the name of what it refers to after a "
            f"colon ({form}), e.g. --config.objective.name={name}:make")
    from jaxgen.kernel import registry
    with pytest.raises(UnknownNameError, match=r"model.name=net.py: a file reference .*"
                                               r"--config.model.name=net.py:MyNet$"):
        registry.model_spec("net.py")  # (build_model's lookup)
    with pytest.raises(UnknownNameError, match="Unknown objective .* 'flow_matchin'. Valid"):
        config_lib.load_config("flow_matching/toy2d", ["objective.name=flow_matchin"])


def test_an_import_path_plugin_and_a_missing_module(tmp_path, monkeypatch):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel import registry
    from jaxgen.kernel.errors import UnknownNameError
    pkg = tmp_path / "myplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(pkg / "fm.py", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config_lib.load_config("flow_matching/toy2d", ["objective.name=myplugins.fm:make"])
    assert registry.objective_spec(cfg.objective.name).summary == "flow matching, its loss " \
                                                                  "scaled by 2"
    with pytest.raises(UnknownNameError, match="there is no module nope.fm"):
        config_lib.load_config("flow_matching/toy2d", ["objective.name=nope.fm:make"])
    with pytest.raises(UnknownNameError, match="defines no nothing"):
        config_lib.load_config("flow_matching/toy2d", ["objective.name=myplugins.fm:nothing"])


def test_entry_points_register_names(monkeypatch, tmp_path):
    from jaxgen.kernel import registry
    _write(tmp_path / "ep_plugin.py", '''
        from jaxgen.kernel.registry import ObjectiveSpec, register_objective
        from jaxgen.families.flow_matching.config import FlowMatchingSample, FlowMatchingSettings
        register_objective(ObjectiveSpec("ep_flow_matching",
                           "jaxgen.families.flow_matching.objective:make",
                           settings=FlowMatchingSettings, sample=FlowMatchingSample))
        ''')
    monkeypatch.syspath_prepend(str(tmp_path))

    class EP:
        def load(self):
            import ep_plugin  # noqa: F401

    calls = []
    monkeypatch.setattr(registry.importlib.metadata, "entry_points",
                        lambda group: calls.append(group) or [EP()])
    monkeypatch.setattr(registry, "_loaded", False)
    # the plugin registers into a copy, restored afterwards: no name leaks into other tests
    monkeypatch.setattr(registry, "_OBJECTIVES", dict(registry._OBJECTIVES))
    assert "ep_flow_matching" in registry.objective_names()
    assert calls == ["jaxgen.plugins"]


BROKEN = {
    "a bare float": ("lambda p, b, r: jnp.mean(b['x'] ** 2)",
                     r"a loss returns \(loss, metrics\).*"
                     r"it returned an array of shape \(\)"),
    "per-example": ("lambda p, b, r: (jnp.sum(b['x'] ** 2, -1), {})",
                    r"the loss must be a scalar; it is an array of shape \(64,\).*"
                    r"per-example values\? reduce them"),
    "a vector metric": ("lambda p, b, r: (jnp.mean(b['x'] ** 2), {'err': b['x'][:, 0]})",
                        r"metric 'err' must be a scalar; it is an array of shape \(64,\)"),
    "a reserved metric": ("lambda p, b, r: (jnp.mean(b['x']) ** 2, {'loss': 1.0})",
                          r"metric 'loss' is reserved"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_loss_that_breaks_the_contract_gets_one_error_naming_it(case, tmp_path):
    from jaxgen.kernel import config as config_lib
    from jaxgen.kernel.errors import ContractError
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    loss, message = BROKEN[case]
    _write(tmp_path / "broken.py", f'''
        import dataclasses
        import jax.numpy as jnp
        import jaxgen
        from jaxgen.families.flow_matching import objective as fm
        from jaxgen.families.flow_matching.config import FlowMatchingSample
        from jaxgen.families.flow_matching.config import FlowMatchingSettings


        @jaxgen.objective(settings=FlowMatchingSettings, sample=FlowMatchingSample)
        def make(ctx):
            obj = fm.make(ctx)
            player = dataclasses.replace(obj.players[0], loss={loss})
            return dataclasses.replace(obj, name="broken", players=(player,))
        ''')
    cfg = config_lib.load_config("flow_matching/toy2d", [
        *TINY_TOY, f"objective.name={tmp_path / 'broken.py'}:make"])
    exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
    state = jax.eval_shape(exp._init_fn, exp.example_batch())
    from jaxgen.runner import step as step_lib
    one = step_lib.make_train_step(exp.objective, exp.txs, "points", 0.0)
    batch = {"x": jax.ShapeDtypeStruct((64, 2), np.float32)}
    with pytest.raises(ContractError, match=message) as e:
        jax.eval_shape(one, state, batch)
    # it names the reference the config gave, then the name its builder chose
    assert str(e.value).startswith(f"objective {tmp_path / 'broken.py'}:make (broken), "
                                   "player model: ")


def test_the_public_api_trains_loads_samples_and_scores(tmp_path):
    import jaxgen
    cfg = jaxgen.load_config("flow_matching/toy2d", [*TINY_TOY, "train.pictures=false"])
    run = jaxgen.train(cfg, tmp_path / "run")
    assert run.step == 30 and run.objective.name == "flow_matching"
    from jaxgen.runner.state import param_count
    assert repr(run) == (f"Run('{tmp_path / 'run'}', step=30, objective='flow_matching', "
                         f"model='mlp', data='8gaussians (2,)', "
                         f"params={param_count(run.params):,})")  # not the arrays
    x = run.sample(50, seed=1)
    assert x.shape == (50, 2) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, jaxgen.load(tmp_path / "run").sample(50, seed=1))
    logp = run.log_prob(x[:8])
    assert logp.shape == (8,) and np.all(np.isfinite(logp))
    ev = run.evaluate(overrides=["eval.num_examples=64", "eval.mmd_num=64"])
    assert ev["num_examples"] == 64 and np.isfinite(ev["nll_nats"])
    light = subprocess.run([sys.executable, "-c", "import jaxgen, sys; "
                            "print('jax' in sys.modules, callable(jaxgen.train))"],
                           capture_output=True, text=True, cwd=ROOT)
    assert light.stdout.split() == ["False", "True"]
