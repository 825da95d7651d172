"""A plugin file's hash is recorded with its run; resume, eval and sample name a change."""

from __future__ import annotations

import json

from conftest import TINY_TOY, flags

from jaxgen import cli

PLUGIN = """
import jaxgen
from jaxgen.families.flow_matching import objective as fm
from jaxgen.families.flow_matching.config import (FlowMatchingEval, FlowMatchingSample,
                                                  FlowMatchingSettings)


@jaxgen.objective(settings=FlowMatchingSettings, sample=FlowMatchingSample,
                  eval=FlowMatchingEval)
def make(ctx):
    return fm.make(ctx)  # VERSION
"""


def test_an_edited_plugin_is_named_on_resume_eval_and_sample(tmp_path, capsys):
    plugin, wd = tmp_path / "my_fm.py", tmp_path / "run"
    plugin.write_text(PLUGIN.replace("VERSION", "1"))
    train = ["train", "--config", "flow_matching/toy2d", "--workdir", str(wd),
             f"--config.objective.name={plugin}:make", "--config.train.pictures=false",
             *flags([f for f in TINY_TOY if not f.startswith("train.steps")])]
    assert cli.main([*train, "--config.train.steps=2"]) == 0
    code = json.loads((wd / "run.json").read_text())["code"]
    assert list(code) == ["objective.name"] and code["objective.name"]["file"] == str(plugin)
    assert "has changed" not in capsys.readouterr().out
    plugin.write_text(PLUGIN.replace("VERSION", "2"))
    assert cli.main([*train, "--config.train.steps=4"]) == 0
    out = capsys.readouterr().out
    assert f"Note: objective.name's file {plugin} has changed since the run was trained" in out
    assert "the resumed training runs the file as it is now" in out
    log = json.loads((wd / "run.json").read_text())["code_changes"]
    assert [e["step"] for e in log] == [2]
    plugin.write_text(PLUGIN.replace("VERSION", "3"))
    assert cli.main(["sample", "--workdir", str(wd), "--num", "4", "--out",
                     str(tmp_path / "s.npz")]) == 0
    assert "this command runs the file as it is now" in capsys.readouterr().err
    assert cli.main(["eval", "--workdir", str(wd), "--config.eval.num_examples=16",
                     "--config.eval.ode_steps=2"]) == 0
    assert "eval runs the file as it is now" in capsys.readouterr().err
