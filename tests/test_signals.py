"""Ctrl-C and SIGTERM are honoured from the first second of `jaxgen train`, delivered the way
a terminal delivers them (to the whole process group; the child starts with SIGINT at its
default, as in a terminal, not ignored as in a background job of a script): start-up,
compilation or training, the result is one line and no traceback, and the run either stops
before its first step (exit 130 for Ctrl-C, 0 for SIGTERM) or saves a checkpoint and exits
0; a second Ctrl-C during the save exits at once with 130. With two processes, a SIGTERM
that reaches one of them stops both at the same step, with one checkpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import (
    NO_PICTURES,
    ROOT,
    TINY_TOY,
    TOY_CONFIG,
    flags,
    load_final_state,
    subprocess_env,
)

from jaxgen.runner import checkpoint as ckpt_lib

LONG = [*TINY_TOY, *NO_PICTURES, "train.steps=1000000", "train.checkpoint_every=1000000",
        "train.log_every=5"]


def _launch(workdir):
    env = subprocess_env(drop=("JAXGEN_DEBUG",))
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
    env = subprocess_env(drop=("JAXGEN_DEBUG",))
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
    env = subprocess_env(drop=("JAXGEN_DEBUG",))
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path):
    """Two CPU processes (jax.distributed, gloo), as launch/multiprocess_cpu.sh starts them;
    SIGTERM reaches process 1 only, mid-run. Both stop at the same step (the next log step,
    where they agree), save one checkpoint there together, and exit 0."""
    wd = tmp_path / "run"
    env = subprocess_env(drop=("JAXGEN_DEBUG",))
    env.update(JAX_PLATFORMS="cpu", JAXGEN_CPU="1", JAXGEN_NUM_PROCESSES="2",
               JAXGEN_COORDINATOR=f"127.0.0.1:{_free_port()}")
    logs = [(tmp_path / f"out{i}", tmp_path / f"err{i}") for i in range(2)]  # not pipes:
    procs = []  # nobody reads them while it trains
    for i, (out, err) in enumerate(logs):
        with open(out, "w") as o, open(err, "w") as e:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG),
                 "--workdir", str(wd), *flags(LONG)], cwd=ROOT,
                env={**env, "JAXGEN_PROCESS_ID": str(i)}, stdout=o, stderr=e))
    try:
        metrics = wd / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and not (metrics.is_file() and metrics.read_text()):
            assert all(p.poll() is None for p in procs), [e.read_text() for _, e in logs]
            time.sleep(0.02)
        procs[1].send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=90)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = [(out.read_text(), err.read_text()) for out, err in logs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, (p.returncode, out[-1500:], err[-3000:])
        assert "Traceback" not in err, err[-3000:]
    steps = ckpt_lib.checkpoint_steps(wd)
    assert len(steps) == 1 and 0 < steps[0] < 1000000 and steps[0] % 5 == 0, steps
    step = steps[0]
    out0 = outs[0][0]  # process 0 speaks for both; it was not signalled itself
    assert f"SIGTERM on another process: saving a checkpoint at step {step}" in out0, out0
    assert f"SIGTERM: checkpoint saved at step {step}" in out0, out0
    assert "2 (2 process(es))" in out0
    state, meta = load_final_state(wd)
    assert int(state.step) == step == meta["data"]["next_step"]
    assert ckpt_lib.verify(wd / "checkpoints" / str(step)) is None
    assert ckpt_lib.has_manifest(wd / "checkpoints" / str(step))
