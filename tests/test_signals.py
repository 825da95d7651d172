"""Ctrl-C and SIGTERM are honoured from the first second of `jaxgen train`, delivered the way
a terminal delivers them (to the whole process group; the child starts with SIGINT at its
default, as in a terminal, not ignored as in a background job of a script): start-up,
compilation or training, the result is one line and no traceback, and the run either stops
before its first step (exit 130 for Ctrl-C, 0 for SIGTERM) or saves a checkpoint and exits
0; a second Ctrl-C during the save exits at once with 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import NO_PICTURES, ROOT, TINY_TOY, TOY_CONFIG, flags

from jaxgen.runner import checkpoint as ckpt_lib

LONG = [*TINY_TOY, *NO_PICTURES, "train.steps=1000000", "train.checkpoint_every=1000000",
        "train.log_every=5"]


def _launch(workdir):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXGEN_DEBUG")}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(workdir), *flags(LONG)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, process_group=0,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _one_line(err: str) -> list[str]:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("jaxgen")]
    assert len(lines) <= 1, err
    return lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.3, 1.0, 3.0])
def test_a_signal_at_any_moment_stops_the_run_in_one_line(tmp_path, sig, delay):
    wd = tmp_path / "run"
    proc = _launch(wd)
    time.sleep(delay)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    lines = _one_line(err)
    name = signal.Signals(sig).name
    if f"{name}: saving a checkpoint" in out:  # the loop had started: saved, exit 0
        assert proc.returncode == 0 and not lines, (proc.returncode, err)
        assert len(ckpt_lib.checkpoint_steps(wd)) == 1
    else:  # before the first step: nothing to save
        assert proc.returncode == (130 if sig == signal.SIGINT else 0), (proc.returncode, err)
        what = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
        assert lines == [f"jaxgen: train stopped ({what}): what was written stays; rerun to "
                         "resume from the last checkpoint."], err
        assert not ckpt_lib.checkpoint_steps(wd)


def test_a_second_ctrl_c_exits_at_once_with_130(tmp_path):
    """The second Ctrl-C comes once the first is acknowledged (two signals sent together
    reach Python as one), while the checkpoint is being saved (a wider network: a save of
    ~20 MB, so the window is real)."""
    wd = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXGEN_DEBUG")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(wd), *flags([*LONG, "model.features=(1024, 1024)"])], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = wd / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text()):
        assert proc.poll() is None
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    out = ""
    while "SIGINT: saving a checkpoint" not in out:
        line = proc.stdout.readline()
        assert line, proc.communicate()
        out += line
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out[-500:], err)
    assert _one_line(err) == ["jaxgen: train stopped (Ctrl-C): what was written stays; rerun "
                              "to resume from the last checkpoint."]


def test_sigterm_during_the_end_of_run_pictures_says_which_command_draws_them(tmp_path):
    wd = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXGEN_DEBUG")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(wd), *flags([*TINY_TOY, "train.steps=20", "train.checkpoint_every=20"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        process_group=0)
    out = ""
    while "End-of-run pictures" not in out:  # the loop is done and saved: pictures start
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.communicate()
        out += line
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert _one_line(err) == [f"jaxgen: train stopped (SIGTERM): the run is complete and saved "
                              f"at step 20; `jaxgen pictures --workdir {wd}` draws its "
                              "end-of-run pictures."]
    assert ckpt_lib.checkpoint_steps(wd) == [20]
