"""No NaN is written as a result, and no partial file is left: `jaxgen sample` and `jaxgen
eval` refuse non-finite outputs (one line naming the checkpoint and the params, exit 1,
nothing written), a full disk during `sample` leaves nothing at --out (the rerun is not
blocked) and names the path, and the errors a config or a plugin file raises are one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import NO_PICTURES, ROOT, TINY_TOY, TOY_CONFIG, flags, subprocess_env

from jaxgen import cli

# flow matching whose sampler puts NaN in its first sample, and whose likelihood is NaN
NAN_PLUGIN = '''
import dataclasses
import jax.numpy as jnp
import jaxgen
from jaxgen.families.flow_matching import objective as fm
from jaxgen.families.flow_matching.config import FlowMatchingSample, FlowMatchingSettings


@jaxgen.objective(settings=FlowMatchingSettings, sample=FlowMatchingSample)
def make(ctx):
    """flow matching with a broken sampler and likelihood"""
    o = fm.make(ctx)

    def sample(params, rng, num, settings, labels=None):
        return o.sample(params, rng, num, settings).at[0].set(jnp.nan)

    def nan_loglik(params, x, rng):
        return jnp.full((x.shape[0],), jnp.nan)

    return dataclasses.replace(o, sample=sample,
                               likelihoods={"exact": jaxgen.Likelihood(nan_loglik)})
'''


def _cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nan")
    plugin = tmp / "nan_fm.py"
    plugin.write_text(textwrap.dedent(NAN_PLUGIN))
    wd = tmp / "run"
    assert cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd),
                     f"--config.objective.name={plugin}:make",
                     *flags([*TINY_TOY, *NO_PICTURES])]) == 0
    return wd


def test_sample_refuses_nan_samples_and_writes_nothing(nan_run, tmp_path, capsys):
    capsys.readouterr()
    for out in (tmp_path / "x.npz", tmp_path / "x.png"):
        code, stdout, err = _cli(capsys, "sample", "--workdir", nan_run, "--num", "16",
                                 "--out", out)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("jaxgen: error: 1 of 16 samples hold NaN or inf")
        assert "checkpoint 30, EMA params" in err and "nothing was written" in err
        assert not out.exists() and "Wrote" not in stdout
        assert not list(tmp_path.glob(".*partial*"))
    code, _, err = _cli(capsys, "sample", "--workdir", nan_run, "--num", "16", "--raw-params",
                        "--out", tmp_path / "x.npz")
    assert code == 1 and "checkpoint 30, raw params" in err


def test_eval_refuses_a_nan_result_and_keeps_no_record(nan_run, capsys):
    code, _, err = _cli(capsys, "eval", "--workdir", nan_run, "--config.eval.mmd_num=0")
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("jaxgen")]  # not progress
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("jaxgen: error: the evaluation of")
    assert "NaN nll_nats" in errors[0] and "(checkpoint 30, ema params)" in errors[0]
    assert "eval.use_ema=false" in errors[0]
    assert not (nan_run / "eval").exists()


def test_sample_to_a_full_disk_leaves_no_file_and_names_it(tmp_path):
    """A real full file system: a 64 KB tmpfs (needs root; skipped where mount is refused)."""
    wd = tmp_path / "run"
    assert cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd),
                     *flags([*TINY_TOY, *NO_PICTURES])]) == 0
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    env = subprocess_env()
    out = mnt / "x.npz"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jaxgen", "sample", "--workdir", str(wd), "--num", "20000",
             "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=300)
        left = sorted(p.name for p in mnt.iterdir())
    finally:
        subprocess.run(["umount", str(mnt)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert f"no space left on the device writing {out}" in proc.stderr
    assert left == []  # no partial file blocks the rerun


def test_a_config_or_plugin_file_that_raises_is_one_line(tmp_path, capsys):
    bad_cfg = tmp_path / "bad_cfg.py"
    bad_cfg.write_text("from jaxgen.kernel.config import base_config\n\n\ndef get_config():\n"
                       "    c = base_config()\n    c.train.steps = 1 / 0\n    return c\n")
    code, _, err = _cli(capsys, "train", "--config", bad_cfg, "--workdir", tmp_path / "w")
    assert code == 2 and err.strip() == (f"jaxgen: error: {bad_cfg}:6: ZeroDivisionError: "
                                         "division by zero; fix the config file.")
    bad_plugin = tmp_path / "bad_plugin.py"
    bad_plugin.write_text("def make(ctx:\n")
    code, _, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "w",
                        f"--config.objective.name={bad_plugin}:make")
    assert code == 2 and err.startswith(f"jaxgen: error: {bad_plugin}:1: SyntaxError:")
    assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "train", "--config", "flow_matching/toy_2d", "--workdir",
                        tmp_path / "w")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Did you mean: flow_matching/toy2d" in err
    code, _, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "w",
                        "--config.optim.learning_rate=inf")
    assert code == 2 and "optim.learning_rate must be a finite number, got inf" in err
    assert not (tmp_path / "w").exists()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"lr": 0.1, "layers": 3}')  # someone else's
    for command in ("eval", "pictures", "sample"):
        extra = ["--out", tmp_path / "s.npz"] if command == "sample" else []
        code, _, err = _cli(capsys, command, "--workdir", tmp_path, *extra)
        assert code == 2 and err.strip() == (
            f"jaxgen: error: {tmp_path} is not a jaxgen run: its config.json was not written "
            "by jaxgen train (no run.json beside it). Pass the --workdir of a run.")
