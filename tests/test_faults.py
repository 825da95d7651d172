"""Faults and bad inputs a user meets, each reproduced: damaged checkpoints, someone else's
folder, two writers, Ctrl-C, a full disk, a lowered step count, non-finite losses, held-out
data of another shape. Each checks the outcome: one clear line, nothing of the user's
touched, and a run that resumes exactly."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    NO_PICTURES,
    ROOT,
    TINY_ARRAY,
    TINY_TOY,
    TOY_CONFIG,
    flags,
    load_final_state,
    subprocess_env,
)
from conftest import read_metrics as read_jsonl

from jaxgen import cli
from jaxgen.runner import checkpoint as ckpt_lib
from jaxgen.runner import workdir as workdir_lib

RUN = [*TINY_TOY, *NO_PICTURES, "train.checkpoint_every=10"]


def _cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _train(capsys, wd, *extra):
    return _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", wd, *flags(RUN + list(extra)))


def _leaves_equal(a, b):
    import jax
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if hasattr(x, "dtype") and "key" in str(x.dtype):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ checkpoints
def _data_file(step_dir: Path) -> Path:
    return max((step_dir / "state").rglob("d/*"), key=lambda p: p.stat().st_size)


def _truncate(step_dir):
    f = _data_file(step_dir)
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)


def _overwrite(step_dir):
    f = _data_file(step_dir)
    n = f.stat().st_size
    with open(f, "r+b") as fh:  # 4 KB (or what the file has) of 0xFF: float32 NaNs
        fh.seek(min(64, n // 4))
        fh.write(b"\xff" * min(4096, n // 2))


def _drop(rel):
    def damage(step_dir):
        import shutil
        p = step_dir / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return damage


DAMAGE = {"truncated": (_truncate, "truncated or changed"),
          "overwritten": (_overwrite, "CRC-32"),
          "no-meta": (_drop("meta"), "meta/ is missing"),
          "no-_METADATA": (_drop("state/_METADATA"), "state/_METADATA is missing")}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_and_resumes_exactly(tmp_path, capsys, how):
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=30")[0] == 0
    reference, _ = load_final_state(wd)  # the uninterrupted run's state at step 30
    assert ckpt_lib.has_manifest(wd / "checkpoints" / "30")
    damage, reason = DAMAGE[how]
    damage(wd / "checkpoints" / "30")

    # Reading commands skip it (one line) and use the newest good checkpoint.
    code, out, err = _cli(capsys, "sample", "--workdir", wd, "--num", "16",
                          "--out", tmp_path / "s.npz")
    assert code == 0 and "Traceback" not in err, err
    assert f"Skipped checkpoint {wd / 'checkpoints' / '30'}" in out and reason in out
    code, _, err = _cli(capsys, "sample", "--workdir", wd, "--num", "16", "--step", "30",
                        "--out", tmp_path / "s2.npz")
    assert code == 2 and "is damaged" in err and reason in err and "Traceback" not in err

    # Training names it, moves it aside (kept), resumes from 20, and ends where it would have.
    code, out, err = _train(capsys, wd, "train.steps=30")
    assert code == 0 and "Traceback" not in err, err
    skipped = [line for line in out.splitlines() if line.startswith("Skipped checkpoint")]
    assert len(skipped) == 1 and reason in skipped[0] and "trying 20" in skipped[0]
    assert (wd / "checkpoints_damaged" / "30").is_dir()
    assert "Resuming from" in out and "(step 20," in out
    resumed, _ = load_final_state(wd)
    _leaves_equal(resumed, reference)
    assert [m["step"] for m in read_jsonl(wd)] == [5, 10, 15, 20, 25, 30]  # once each


def test_checkpoint_without_manifest_is_checked_for_damage(tmp_path, capsys):
    """A run killed between a save and its manifest leaves the newest checkpoint unverified:
    it is restored on Orbax's checks, and refused when it holds NaN/inf bytes."""
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=20")[0] == 0
    (wd / "checkpoints" / "20" / ckpt_lib.MANIFEST).unlink()
    code, out, _ = _cli(capsys, "sample", "--workdir", wd, "--num", "8", "--out",
                        tmp_path / "a.npz")
    assert code == 0 and "checkpoint 20 has no manifest" in out
    _overwrite(wd / "checkpoints" / "20")
    code, out, _ = _cli(capsys, "sample", "--workdir", wd, "--num", "8", "--out",
                        tmp_path / "b.npz")
    assert code == 0 and "Skipped checkpoint" in out and "trying 10" in out
    assert "non-finite values" in out or "Orbax cannot read it" in out  # NaN bytes or garbage


def test_every_checkpoint_damaged_is_one_error(tmp_path, capsys):
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=20")[0] == 0
    for step in (10, 20):
        _truncate(wd / "checkpoints" / str(step))
    code, _, err = _cli(capsys, "sample", "--workdir", wd, "--num", "8", "--out",
                        tmp_path / "a.npz")
    assert code == 2 and "No usable checkpoint" in err and "Traceback" not in err


def test_max_to_keep_zero_is_refused(tmp_path, capsys):
    code, _, err = _train(capsys, tmp_path / "run", "train.max_to_keep=0")
    assert code == 2 and "train.max_to_keep must be a positive integer" in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ someone else's folder
def test_a_folder_of_look_alike_files_is_refused_and_left_untouched(tmp_path, capsys):
    mine = tmp_path / "mine"
    files = {"config.json": '{"my": "own config"}', "run.json": "{}",
             "metrics.jsonl": '{"step": 1}\n', "samples/step_0000100.png": "not a png",
             "checkpoints/notes.txt": "mine", "logs/today.log": "mine"}
    for rel, text in files.items():
        (mine / rel).parent.mkdir(parents=True, exist_ok=True)
        (mine / rel).write_text(text)
    before = sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*"))
    code, _, err = _train(capsys, mine)
    assert code == 2 and "is not empty and is not a jaxgen run" in err
    assert "jaxgen_run.json" in err and str(mine / "run") in err  # the reason and a remedy
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == before
    assert all((mine / rel).read_text() == text for rel, text in files.items())
    # A new folder, or an empty one, is fine; the run is marked as jaxgen's.
    (tmp_path / "empty").mkdir()
    assert _train(capsys, tmp_path / "empty", "train.steps=10")[0] == 0
    marker = json.loads((tmp_path / "empty" / workdir_lib.MARKER).read_text())
    assert len(marker["run_id"]) == 32


# ------------------------------------------------------------------ two writers
def _popen(workdir, extra, **kw):
    """`jaxgen train` as a terminal starts it: with Ctrl-C's default disposition, also when
    the tests themselves were started with SIGINT ignored (a background job of a
    non-interactive shell, e.g. `nohup pytest &`), which the run would inherit and keep."""
    env = subprocess_env()
    env["PYTHONFAULTHANDLER"] = "1"  # a fatal signal prints every thread's Python stack
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(workdir), *flags(TINY_TOY + extra)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _wait_for(cond, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline and not cond():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert cond()


def test_a_second_writer_fails_at_once_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    wd = tmp_path / "run"
    first = _popen(wd, ["train.steps=1000000", "train.checkpoint_every=1000000",
                        *NO_PICTURES])
    try:
        _wait_for(lambda: (wd / workdir_lib.LOCK).is_file()
                  and (wd / workdir_lib.LOCK).read_text().strip(), first)
        code, _, err = _train(capsys, wd, "train.steps=10")
        assert code == 2 and f"pid {first.pid} on host" in err and "Another jaxgen" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    code, out, _ = _train(capsys, wd, "train.steps=10")  # the lock left by kill -9
    assert code == 0 and f"took over a stale lock (pid {first.pid}" in out
    assert (wd / workdir_lib.LOCK).read_text() == ""  # released cleanly at the end


# ------------------------------------------------------------------ interrupts
def _tb_scalars(workdir, tag="loss"):
    """{step: value} of a TensorBoard tag as TensorBoard shows it: files in order, and a
    session-start event at step s (tensorboardX's purge_step) drops the points >= s before."""
    from tensorboardX.proto import event_pb2
    points = {}
    for path in sorted((Path(workdir) / "tensorboard").glob("events.*")):
        data = path.read_bytes()
        i = 0
        while i + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            if ev.HasField("session_log") and ev.session_log.status == ev.session_log.START:
                points = {s: v for s, v in points.items() if s < ev.step}
            for val in ev.summary.value:
                if val.tag == tag:
                    assert ev.step not in points, f"step {ev.step} shown twice"
                    points[ev.step] = val.simple_value
    return points


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(
    signal.SIGTERM, marks=pytest.mark.heavy)])  # SIGTERM: test_signals by default
def test_ctrl_c_and_sigterm_save_and_exit_cleanly_then_resume_exactly(tmp_path, sig):
    wd = tmp_path / "run"
    extra = ["train.steps=1000000", "train.checkpoint_every=1000000", "train.log_every=5",
             *NO_PICTURES]
    proc = _popen(wd, extra)
    _wait_for(lambda: (wd / "metrics.jsonl").is_file()
              and len((wd / "metrics.jsonl").read_text().splitlines()) >= 3, proc)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # where every thread stood, not only that it hung
        proc.send_signal(signal.SIGABRT)  # faulthandler (_popen's env) prints the stacks
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"no exit within 120 s of {signal.Signals(sig).name}; the run's last "
                    f"output:\n{out[-3000:]}\n{err[-3000:]}")
    name = signal.Signals(sig).name
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert sum(line.startswith(f"{name}: saving a checkpoint") for line in out.splitlines()) == 1
    steps = ckpt_lib.checkpoint_steps(wd)
    assert len(steps) == 1 and steps[0] >= 15, steps
    stopped = steps[0]
    state, _ = load_final_state(wd)
    assert int(state.step) == stopped
    # Every step logged up to the save is in both logs (flushed at the checkpoint).
    logged = [m["step"] for m in read_jsonl(wd)]
    assert logged[-1] == stopped - stopped % 5 and set(_tb_scalars(wd)) == set(logged)
    # Resumed to a later step, each step is logged once, in metrics.jsonl and in TensorBoard.
    target = stopped + 20
    from conftest import run_cli
    run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd,
             *flags(TINY_TOY + [f"train.steps={target}", "train.checkpoint_every=1000000",
                                "train.log_every=5", *NO_PICTURES])])
    logged = [m["step"] for m in read_jsonl(wd)]
    assert logged == sorted(set(logged)) and logged[-1] == target
    tb = _tb_scalars(wd)
    assert sorted(tb) == logged
    assert all(abs(tb[m["step"]] - m["loss"]) < 1e-5 for m in read_jsonl(wd))


# ------------------------------------------------------------------ storage errors
def test_full_disk_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    """The disk-space check before a checkpoint, with the free space patched to 1 KB."""
    import shutil
    real = shutil.disk_usage
    monkeypatch.setattr(ckpt_lib.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=1024))
    code, _, err = _train(capsys, tmp_path / "run", "train.steps=10")
    assert code == 2 and "Traceback" not in err
    assert err.startswith("jaxgen: error: no space left on the device writing "
                          f"{tmp_path / 'run' / 'checkpoints'}") and len(err.splitlines()) == 1


def test_full_tmpfs_is_one_line(tmp_path):
    """A real full file system: a 400 KB tmpfs (needs root; skipped where mount is refused)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        env = subprocess_env()
        proc = subprocess.run(
            [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
             str(mnt / "run"), *flags(RUN + ["train.steps=10"])], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run(["umount", str(mnt)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line, no traceback
    assert "no space left on the device writing" in proc.stderr and str(mnt) in proc.stderr


def test_storage_errors_wrapped_by_a_library_are_recognised():
    import errno
    inner = OSError(errno.EROFS, "Read-only file system", "/runs/x/eval.json")
    try:
        raise ValueError("writing failed") from inner
    except ValueError as e:
        assert cli.storage_error(e).startswith("read-only file system writing /runs/x/eval.json")
    msg = cli.storage_error(ValueError('RESOURCE_EXHAUSTED: Failed writing: "/r/c/d/ab": '
                                       "Failed to write 9 bytes: No space left on device"))
    assert msg.startswith("no space left on the device writing /r/c/d/ab")
    assert cli.storage_error(ValueError("a bug")) is None


# ------------------------------------------------------------------ resume mistakes
def test_lowered_steps_on_resume_is_refused_and_rewrites_nothing(tmp_path, capsys):
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=20")[0] == 0
    before = {p: p.read_bytes() for p in (wd / "config.json", wd / "metrics.jsonl")}
    code, _, err = _train(capsys, wd, "train.steps=10")
    assert code == 2 and "past train.steps=10" in err and "Nothing was changed" in err
    code, out, _ = _train(capsys, wd, "train.steps=20", "sample.num=100")
    assert code == 0 and "nothing to train" in out and "final loss" not in out
    assert {p: p.read_bytes() for p in before} == before
    assert ckpt_lib.checkpoint_steps(wd) == [10, 20]


def test_learning_rate_and_clipping_may_change_on_resume_with_a_note(tmp_path, capsys):
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=10")[0] == 0
    code, out, err = _train(capsys, wd, "train.steps=20", "optim.learning_rate=0.0005",
                            "optim.grad_clip=0.0")
    assert code == 0, err
    assert "Note: optim.learning_rate changed 0.002 -> 0.0005 on resume" in out
    assert "Note: optim.grad_clip changed 1.0 -> 0.0 on resume" in out
    assert json.loads((wd / "config.json").read_text())["optim"]["learning_rate"] == 0.0005


def test_non_finite_loss_names_the_step_the_checkpoint_and_followable_advice(tmp_path, capsys):
    wd = tmp_path / "run"
    assert _train(capsys, wd, "train.steps=10")[0] == 0
    # A learning rate that blows the params up, set on resume (allowed): the message names the
    # step, the checkpoint kept, and the checkpoint it resumed from as a suspect.
    code, _, err = _train(capsys, wd, "train.steps=40", "optim.learning_rate=1e30")
    assert code == 1 and "Traceback" not in err
    line = err.strip()
    assert line.startswith("jaxgen: error: Non-finite ") and " at step 1" in line, line
    assert "The last good checkpoint, step 10" in line and "step None" not in line
    assert "after resuming from checkpoint 10: that checkpoint is a suspect" in line
    assert "gradients are already clipped" in line and "--config.optim.learning_rate=" in line
    # The advice can be followed in the same workdir.
    code, _, err = _train(capsys, wd, "train.steps=20", "optim.learning_rate=0.001")
    assert code == 0, err


# ------------------------------------------------------------------ data
def test_held_out_data_of_another_shape_is_refused_at_train_time(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(256, 3)).astype(np.float32))
    np.save(tmp_path / "test.npy", rng.normal(size=(64, 4)).astype(np.float32))
    code, _, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "r",
                        *flags(TINY_ARRAY + NO_PICTURES), "--config.data.name=array",
                        f"--config.data.path={tmp_path / 'train.npy'}",
                        f"--config.data.eval_path={tmp_path / 'test.npy'}")
    assert code == 2 and "does not fit the training data" in err and "(4,)" in err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ progress
def test_progress_lines_without_a_terminal_and_end_of_run_stages(tmp_path, capsys, monkeypatch):
    from jaxgen.runner import logging as logging_lib
    monkeypatch.setattr(logging_lib.PlainProgress, "EVERY_S", 0.0)
    code, out, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "r",
                          *flags(TINY_TOY + ["train.steps=20", "train.progress=true"]))
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("train: step ")]
    assert lines[0].startswith("train: step 1/20 (5%)") and "ETA" in lines[1]
    assert lines[-1].startswith("train: step 20/20 (100%)") and "ms/step" in lines[-1]
    assert sum("step 20/20" in line for line in lines) == 1  # the end is not printed twice
    stage = out.index("End-of-run pictures: the model's density")
    assert stage < out.index("Wrote ") and "density.png" in out[stage:]
