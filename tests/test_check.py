"""`jaxgen check` on a one-file plugin (objective and get_config() in one file), passing and
failing, and a plugin run on a shipped config whose other objective keys are dropped."""

from __future__ import annotations

import textwrap

from jaxgen import cli

PLUGIN = textwrap.dedent('''
    """Flow matching whose sampler can be broken (objective.broken), in one file."""
    import dataclasses

    import jax.numpy as jnp

    import jaxgen

    fm = jaxgen.family("flow_matching")


    @dataclasses.dataclass(frozen=True)
    class Settings(fm.settings):
        broken: bool = jaxgen.setting(False, "samples of the wrong shape")


    @jaxgen.objective(settings=Settings, sample=fm.sample, eval=fm.eval)
    def make(ctx):
        obj = fm.make(ctx)
        if ctx.settings.broken:
            return dataclasses.replace(obj, sample=lambda params, rng, num, settings,
                                       labels=None: jnp.zeros((num, 3)))
        return obj


    def get_config():
        from jaxgen.configs.flow_matching.toy2d import get_config as toy2d
        c = toy2d()
        c.objective.name = __file__ + ":make"
        c.model.features = (16, 16)
        c.model.time_dim = 8
        return c
''')


def test_check_passes_a_plugin_and_names_what_fails_on_a_stock_config(tmp_path, capsys):
    path = tmp_path / "my_fm.py"
    path.write_text(PLUGIN)
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split(":")[0][6:] for line in out if line.startswith("ok    ")]
    assert names == ["build", "train", "save / resume", "sample", "likelihood ode",
                     "held-out stats", "round trip"], out
    assert out[-1] == "7 of 7 checks passed"
    # the objective alone on a shipped config: the config's DDPM keys are dropped with a
    # note; a broken sampler is one FAIL line, and the other checks still run
    code = cli.main(["check", f"{path}:make", "--config", "diffusion/ddpm_toy2d",
                     "--config.model.features=(16, 16)", "--config.model.time_dim=8",
                     "--config.objective.broken=true"])
    captured = capsys.readouterr()
    assert code == 1
    assert ("replaces ddpm; dropped the config's objective.label_dropout, objective.num_steps"
            in captured.err and "sample.sampler" in captured.err)
    fails = [line for line in captured.out.splitlines() if line.startswith("FAIL")]
    assert fails == ["FAIL  sample: ValueError: samples of shape (3,), the data's is (2,)"]
    assert "likelihood ode" in captured.out and captured.out.rstrip().endswith(
        "6 of 7 checks passed; see FAIL above")
    assert cli.main(["check", f"{path}:make"]) == 2
    assert "--config" in capsys.readouterr().err
