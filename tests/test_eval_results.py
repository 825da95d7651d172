"""`jaxgen eval` keeps its results and shows its progress.

One tiny toy run is trained once for the module (checkpoints at steps 5 and 10); each test
evaluates its own copy. Each test reproduces a fault of the old single eval.json: a second
split or other settings replacing the first results, a read-only run crashing after the
work with nothing printed, a loop with no progress.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import NO_PICTURES, ROOT, TINY_TOY, TOY_CONFIG, flags, subprocess_env

from jaxgen import cli
from jaxgen.eval import evaluate as ev
from jaxgen.kernel import progress
from jaxgen.runner import runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    wd = tmp_path_factory.mktemp("eval_results") / "run"
    tiny = [o for o in TINY_TOY if not o.startswith(("train.steps=", "train.checkpoint_every="))]
    assert cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd),
                     *flags(tiny + NO_PICTURES + ["train.steps=10", "train.checkpoint_every=5",
                                                  "train.max_to_keep=2"])]) == 0
    return wd


@pytest.fixture
def run(trained, tmp_path):
    wd = tmp_path / "run"
    shutil.copytree(trained, wd)
    return wd


def eval_files(wd) -> list[str]:
    return sorted(p.name for p in (wd / "eval").glob("*.json"))


def test_splits_steps_and_settings_each_keep_their_file(run, capsys, monkeypatch):
    # split train first: before, the test eval that followed replaced it in eval.json
    monkeypatch.setattr(progress, "terminal_usable", lambda stream=None: False)  # a log file
    assert cli.main(["eval", "--workdir", str(run), "--split", "train"]) == 0
    out, err = capsys.readouterr()
    train_file = run / "eval" / "train_step0000010.json"
    # printed first, then written, then where
    assert out.index("nll_nats") < out.index(f"Wrote {train_file}") and train_file.is_file()
    # progress where stderr is no terminal: a plain line per loop, with the count
    assert re.search(r"log-likelihood \(ode\): example 256/256 \(100%\)", err), err
    assert "samples for MMD: sample 200/200 (100%)" in err, err

    monkeypatch.setattr(progress, "terminal_usable", lambda stream=None: True)  # a terminal: tqdm
    assert cli.main(["eval", "--workdir", str(run)]) == 0
    out, err = capsys.readouterr()
    test_file = run / "eval" / "test_step0000010.json"
    assert f"Wrote {test_file}" in out
    assert re.search(r"log-likelihood \(ode\):.*256/256 \[\d\d:\d\d<", err), err  # with ETA
    assert eval_files(run) == ["test_step0000010.json", "train_step0000010.json"]
    train, test = json.loads(train_file.read_text()), json.loads(test_file.read_text())
    assert (train["split"], test["split"], test["step"]) == ("train", "test", 10)
    assert test["settings"]["differs_from_run"] == {} and test["settings"]["overrides"] == []
    kept = test_file.read_text()

    # other settings: a file of their own, named by a hash of what differs
    assert cli.main(["eval", "--workdir", str(run), "--config.eval.num_examples=128"]) == 0
    other = [f for f in eval_files(run) if f not in (test_file.name, train_file.name)]
    assert len(other) == 1 and re.fullmatch(r"test_step0000010_[0-9a-f]{8}\.json", other[0])
    rec = json.loads((run / "eval" / other[0]).read_text())
    assert rec["num_examples"] == 128 and rec["settings"]["differs_from_run"] == {
        "eval.num_examples": 128} and rec["settings"]["overrides"] == ["eval.num_examples=128"]
    assert test_file.read_text() == kept

    # another checkpoint: its own step in the name
    assert cli.main(["eval", "--workdir", str(run), "--step", "5"]) == 0
    assert json.loads((run / "eval" / "test_step0000005.json").read_text())["step"] == 5
    # the same evaluation again replaces its own file (nothing else changes); a mark in the
    # old file (eval_seconds = -1, which no run records) must be gone afterwards
    marked = json.loads(kept)
    marked["eval_seconds"] = -1.0
    test_file.write_text(json.dumps(marked, indent=2))
    assert cli.main(["eval", "--workdir", str(run)]) == 0
    assert len(eval_files(run)) == 4
    assert json.loads(test_file.read_text())["eval_seconds"] >= 0.0
    capsys.readouterr()

    # the one reader: newest evaluation of a split, latest step
    assert ev.read_eval(run)["step"] == 10 and ev.read_eval(run, "train")["split"] == "train"
    assert ev.read_eval(run, step=5)["step"] == 5
    with pytest.raises(FileNotFoundError, match="no evaluation of split 'eval'"):
        ev.read_eval(run, "eval")


def test_a_different_evaluation_is_never_replaced_without_force(run, capsys):
    (run / "eval").mkdir()
    mine = run / "eval" / "test_step0000010.json"
    mine.write_text("my own notes, not an eval record")
    assert cli.main(["eval", "--workdir", str(run)]) == 2
    out, err = capsys.readouterr()
    assert "holds a different evaluation" in err and "--force" in err
    assert "nll_nats" not in out  # refused before the work, not after
    assert mine.read_text() == "my own notes, not an eval record"
    assert cli.main(["eval", "--workdir", str(run), "--force"]) == 0
    assert json.loads(mine.read_text())["split"] == "test"

    # --out sends the results elsewhere; an existing --out needs --force
    target = run.parent / "elsewhere.json"
    target.write_text("{}")
    assert cli.main(["eval", "--workdir", str(run), "--out", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and target.read_text() == "{}"
    before = eval_files(run)
    assert cli.main(["eval", "--workdir", str(run), "--out", str(target), "--force",
                     "--split", "train"]) == 0
    assert f"Wrote {target}" in capsys.readouterr().out
    assert json.loads(target.read_text())["split"] == "train" and eval_files(run) == before


def test_full_applies_the_configs_paper_grade_preset(run, capsys):
    cfg = json.loads((run / "config.json").read_text())
    cfg["eval"]["full"] = "eval.num_examples=64 eval.ode_steps=4"
    (run / "config.json").write_text(json.dumps(cfg))
    assert cli.main(["eval", "--workdir", str(run), "--full"]) == 0
    rec = json.loads((run / "eval" / "test_step0000010_full.json").read_text())
    assert rec["num_examples"] == 64 and rec["ode"] == "rk4 x 4"
    assert rec["settings"]["differs_from_run"] == {"eval.num_examples": 64, "eval.ode_steps": 4}
    # a user's override wins over the preset (and makes it another evaluation)
    assert cli.main(["eval", "--workdir", str(run), "--full", "--config.eval.ode_steps=2"]) == 0
    assert len(eval_files(run)) == 2
    cfg["eval"]["full"] = ""
    (run / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(run), "--full"]) == 2
    assert "declares no paper-grade evaluation" in capsys.readouterr().err


def test_read_only_run_is_evaluated_and_printed(run, capsys, monkeypatch):
    """Patched: the folder reports itself unwritable (as a read-only mount does to root)."""
    real_access = os.access

    def access(path, mode, *a, **kw):
        if mode & os.W_OK and str(path).startswith(str(run)):
            return False
        return real_access(path, mode, *a, **kw)
    monkeypatch.setattr(os, "access", access)
    assert cli.main(["eval", "--workdir", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == runs.read_only_note(run)
    assert "nll_nats" in out and "Wrote" not in out and not (run / "eval").exists()
    assert cli.main(["sample", "--workdir", str(run), "--num", "16",
                     "--out", str(run.parent / "s.npz")]) == 0
    assert (run.parent / "s.npz").is_file()


def test_a_failed_write_after_the_work_keeps_the_printed_results(run, capsys, monkeypatch):
    def refuse(path, record):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    monkeypatch.setattr(ev, "_write_json", refuse)
    assert cli.main(["eval", "--workdir", str(run)]) == 2
    out, err = capsys.readouterr()
    assert "nll_nats" in out
    assert "could not write" in err and "Read-only file system" in err
    errors = [ln for ln in err.splitlines() if ln.startswith("jaxgen: error:")]
    assert len(errors) == 1 and "results are printed above" in errors[0], err


def _read_only_mounts(probe) -> bool:
    """Whether this machine lets us bind-mount a folder read-only in a private mount
    namespace (root with CAP_SYS_ADMIN; not in every container)."""
    if shutil.which("unshare") is None:
        return False
    probe.mkdir()
    script = f"mount --bind {probe} {probe} && mount -o remount,bind,ro {probe} && " \
             f"! touch {probe}/x 2>/dev/null"
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          timeout=30).returncode == 0


def test_read_only_mount_eval_and_sample(run, tmp_path):
    """For real: the run folder bind-mounted read-only (as a shared or archived run is).
    eval prints and exits 0; sample works; Orbax's restore writes nothing there."""
    if not _read_only_mounts(tmp_path / "probe"):
        pytest.skip("cannot bind-mount read-only here (needs root and unshare -m)")
    png = tmp_path / "s.png"
    py = sys.executable
    script = (f"mount --bind {run} {run} && mount -o remount,bind,ro {run} && "
              f"{py} -m jaxgen eval --workdir {run} && echo EVAL-OK && "
              f"{py} -m jaxgen sample --workdir {run} --num 16 --out {png}")
    env = subprocess_env()
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == runs.read_only_note(run)
    assert "nll_nats" in proc.stdout and "EVAL-OK" in proc.stdout
    assert "Wrote 16 samples" in proc.stdout and png.stat().st_size > 0
    assert "Read-only" not in proc.stderr, proc.stderr[-3000:]  # nothing tried to write there
    assert not (run / "eval").exists()


def test_every_shipped_image_config_declares_a_full_preset_that_resolves():
    """--full's preset is declared once per config (eval.full); a key in it that nothing
    declares is an error here, not hours into an evaluation."""
    from jaxgen.kernel import config as config_lib
    images = 0
    for path in config_lib.find_configs():
        cfg = config_lib.load_config(path)
        preset = ev.full_overrides(cfg)
        if cfg.data.name in ("fashion_mnist", "codes"):
            images += 1
            assert preset, f"{path.name}: no eval.full"
        full = config_lib.load_config(path, preset)
        for item in preset:
            key, value = item.split("=", 1)
            group, name = key.split(".")
            assert str(full[group][name]) == value, (path.name, item)
    assert images >= 20
