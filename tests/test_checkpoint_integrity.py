"""No checkpoint is trusted unverified: every checkpoint carries a fingerprint of its arrays
in its own meta record, committed with them, so the newest checkpoint of a run killed before
its manifest is still verified. A sweep of random overwrites of such a checkpoint (64 bytes
and 4 KB, at offsets spread over every one of its files) restores, in every case, either
the very state saved at that step (bytes no array uses) or the previous checkpoint, with one
line saying why; never anything else."""

from __future__ import annotations

import json
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import NO_PICTURES, TINY_TOY, TOY_CONFIG, flags, subprocess_env

from jaxgen import cli
from jaxgen.runner import checkpoint as ckpt_lib

SIZES = (64, 4096)
# More 64-byte overwrites in the largest data file, where the arrays are: which check catches
# a sweep's overwrites depends on where Orbax's data files happen to split (it varies from
# run to run), and with four offsets alone none reached the fingerprint in about one run in
# ten (every one of them was caught, by the other checks).
DATA_OFFSETS = tuple(i / 16 for i in range(1, 16, 2))
OFFSETS = (0.0, 0.35, 0.7, 1.0)  # of where a write of that size still fits in the file


def _equal(a, b) -> bool:
    fa, fb = ckpt_lib.fingerprint(a), ckpt_lib.fingerprint(b)
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return fa == fb and all(
        np.array_equal(np.asarray(jax.random.key_data(x) if "key" in str(x.dtype) else x),
                       np.asarray(jax.random.key_data(y) if "key" in str(y.dtype) else y))
        for x, y in leaves)


def test_the_fingerprint_sees_one_changed_bit_and_ignores_the_device_layout():
    x = {"w": jnp.arange(12, dtype=jnp.float32).reshape(3, 4), "k": jax.random.key(1),
         "h": jnp.ones((5,), jnp.bfloat16), "n": jnp.int32(7)}
    f = ckpt_lib.fingerprint(x)
    assert f == ckpt_lib.fingerprint(jax.tree.map(lambda a: a, x))
    for path in (("w",), ("h",), ("n",)):
        leaf = x[path[0]]
        bits = jax.lax.bitcast_convert_type(leaf, {4: jnp.uint32, 2: jnp.uint16}[
            leaf.dtype.itemsize]).reshape(-1)
        flipped = bits.at[-1].set(bits[-1] ^ 1).reshape(leaf.shape)
        y = {**x, path[0]: jax.lax.bitcast_convert_type(flipped, leaf.dtype)}
        assert ckpt_lib.fingerprint(y) != f, path
    swapped = {**x, "w": x["w"].reshape(-1)[::-1].reshape(3, 4)}  # same values, other places
    assert ckpt_lib.fingerprint(swapped)["['w']"][0] == f["['w']"][0]
    assert ckpt_lib.fingerprint(swapped)["['w']"] != f["['w']"]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run whose newest checkpoint (30) lost its manifest, as a kill -9 between the save
    and the next one leaves it; and its state as saved."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import Experiment, read_run_info
    wd = tmp_path_factory.mktemp("killed") / "run"
    assert cli.main(["train", "--config", str(TOY_CONFIG), "--workdir", str(wd),
                     *flags([*TINY_TOY, *NO_PICTURES, "train.checkpoint_every=10"])]) == 0
    exp = Experiment(config_lib.from_json_file(wd / "config.json"), read_run_info(wd))
    step_dir = wd / "checkpoints" / "30"
    (step_dir / ckpt_lib.MANIFEST).unlink()
    ckpt = ckpt_lib.Checkpointer(wd / "checkpoints", read_only=True)
    try:
        state, meta, step, _ = ckpt.restore_newest_good(exp.abstract_state(), say=None)
    finally:
        ckpt.close()
    assert step == 30 and ckpt_lib.FINGERPRINT in meta
    return wd, exp, state


@pytest.mark.heavy  # minutes of CPU; kill -9 around saves runs by default
def test_every_overwrite_of_an_unverified_checkpoint_is_caught_or_harmless(killed_run,
                                                                           tmp_path):
    wd, exp, saved = killed_run
    step_dir = wd / "checkpoints" / "30"
    backup = tmp_path / "30"
    shutil.copytree(step_dir, backup)
    files = sorted(p.relative_to(step_dir) for p in step_dir.rglob("*") if p.is_file())
    data = max((p for p in files if p.parts[0] == "state" and "d" in p.parts[1:-1]),
               key=lambda p: (step_dir / p).stat().st_size)
    cases = [(rel, size, frac) for rel in files for size in SIZES for frac in OFFSETS]
    cases += [(data, 64, frac) for frac in DATA_OFFSETS]
    rng = np.random.default_rng(0)
    outcomes = []
    try:
        for rel, size, frac in cases:
            shutil.rmtree(step_dir)
            shutil.copytree(backup, step_dir)
            target = step_dir / rel
            n = target.stat().st_size
            k = min(size, n)
            offset = int(frac * (n - k))
            with open(target, "r+b") as f:
                f.seek(offset)
                f.write(rng.integers(0, 256, k, dtype=np.uint8).tobytes())
            lines = []
            ckpt = ckpt_lib.Checkpointer(wd / "checkpoints", read_only=True)
            try:
                state, _, step, skipped = ckpt.restore_newest_good(
                    exp.abstract_state(), say=lines.append)
            finally:
                ckpt.close()
            case = (str(rel), size, offset)
            if step == 30:  # the bytes were no part of any array: the saved state
                assert _equal(state, saved), case
                assert len(lines) == 1 and "no manifest" in lines[0], (case, lines)
                outcomes.append((case, "restored, intact"))
            else:
                assert step == 20 and len(skipped) == 1, (case, lines)
                said = [ln for ln in lines if ln.startswith("Skipped checkpoint")]
                assert len(said) == 1 and "trying 20" in said[0], (case, lines)
                outcomes.append((case, "skipped: " + skipped[0][1]))
    finally:
        shutil.rmtree(step_dir, ignore_errors=True)
        shutil.copytree(backup, step_dir)
    assert len(outcomes) == len(cases)
    for case, outcome in outcomes:
        print(f"{case}: {outcome}")
    reasons = {o.split(" (")[0] for _, o in outcomes}
    assert any("fingerprint" in r for r in reasons), reasons  # the record caught some


@pytest.mark.parametrize("after_lines", [2, pytest.param(7, marks=pytest.mark.heavy)])
def test_a_kill_9_around_saves_leaves_only_verified_checkpoints(tmp_path, after_lines):
    """kill -9 while saving every 5 steps (each log line of 5 steps is a save): every
    checkpoint left under its step carries its fingerprint, the newest one restores verified
    (by its manifest or, when the kill came before that, its fingerprint), and the run
    resumes from it to the end."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, load_final_state, run_cli
    wd = tmp_path / "run"
    extra = ["train.steps=1000000", "train.checkpoint_every=5", "train.log_every=5",
             "train.max_to_keep=2", *NO_PICTURES]
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(wd), *flags(TINY_TOY + extra)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    metrics = wd / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (
            metrics.is_file() and len(metrics.read_text().splitlines()) >= after_lines):
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    steps = ckpt_lib.checkpoint_steps(wd)
    if not steps:  # killed before the first save was committed: nothing to trust, a new start
        run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd,
                 *flags(TINY_TOY + ["train.steps=5", "train.checkpoint_every=5",
                                    "train.log_every=5", *NO_PICTURES])])
        assert int(load_final_state(wd)[0].step) == 5
        return
    for step in steps:
        meta = (wd / "checkpoints" / str(step) / "meta" / "metadata").read_text()
        assert f'"{ckpt_lib.FINGERPRINT}"' in meta, step
    state, meta = load_final_state(wd)
    assert int(state.step) == steps[-1]
    assert ckpt_lib.fingerprint(state) == meta[ckpt_lib.FINGERPRINT]
    run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd,
             *flags(TINY_TOY + [f"train.steps={steps[-1] + 5}", "train.checkpoint_every=5",
                                "train.log_every=5", *NO_PICTURES])])
    assert int(load_final_state(wd)[0].step) == steps[-1] + 5


# reading a run's checkpoints while it saves is in the kill -9 tests by default
@pytest.mark.heavy
def test_eval_and_sample_beside_a_live_run_that_rotates_its_checkpoints(tmp_path):
    """A run training with train.max_to_keep=1 and a checkpoint every 5 steps deletes the one
    a reader is reading: eval and sample read the newest one instead, and never call the
    healthy run damaged."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, run_cli
    wd = tmp_path / "run"
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(wd), *flags([*TINY_TOY, *NO_PICTURES, "train.steps=1000000",
                          "train.checkpoint_every=5", "train.log_every=5",
                          "train.max_to_keep=1"])],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ckpt_lib.checkpoint_steps(wd):
            assert proc.poll() is None
            time.sleep(0.05)
        for i in range(1):
            ev = run_cli(["eval", "--workdir", wd, "--out", tmp_path / f"e{i}.json",
                          "--config.eval.mmd_num=0"], check=False)
            assert ev.returncode == 0, ev.stdout[-1500:] + ev.stderr[-1500:]
            assert "Train again" not in ev.stdout + ev.stderr
            s = run_cli(["sample", "--workdir", wd, "--num", "8", "--out",
                         tmp_path / f"s{i}.npz"], check=False)
            assert s.returncode == 0, s.stdout[-1500:] + s.stderr[-1500:]
        assert proc.poll() is None  # still training all along
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def _small_state(seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {"w": jax.random.normal(keys[0], (64, 32)), "b": jax.random.normal(keys[1], (32,)),
            "n": jnp.int32(seed)}


def _abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                        state)


def test_a_save_leaves_reading_the_previous_checkpoint_to_a_thread_of_its_own(tmp_path,
                                                                              monkeypatch):
    """The CRC of the previous checkpoint runs beside the training thread: save() returns
    while it is still held up, and close() waits for it; every manifest is then complete."""
    import threading
    real, release, callers = ckpt_lib._crc32, threading.Event(), []

    def held_up(path):
        callers.append(threading.current_thread())
        release.wait(60)
        return real(path)

    monkeypatch.setattr(ckpt_lib, "_crc32", held_up)
    ckpt = ckpt_lib.Checkpointer(tmp_path / "checkpoints", max_to_keep=2)
    try:
        ckpt.save(1, _small_state(1), {"data": {}, "step": 1})
        ckpt.manager.wait_until_finished()  # step 1 is written: the next save reads it back
        ckpt.save(2, _small_state(2), {"data": {}, "step": 2})
        deadline = time.time() + 60
        while not callers and time.time() < deadline:
            time.sleep(0.01)
        # save(2) returned while the CRC of step 1 is held up (Orbax's commit of step 2
        # waits for it, on Orbax's thread)
        assert callers and not release.is_set()
        assert not ckpt_lib.has_manifest(tmp_path / "checkpoints" / "1")
        release.set()
        ckpt.save(3, _small_state(3), {"data": {}, "step": 3})  # rotates step 1 away
    finally:
        release.set()
        ckpt.close()
    assert callers and threading.main_thread() not in callers
    assert ckpt_lib.checkpoint_steps(tmp_path) == [2, 3]
    for step in (2, 3):
        step_dir = tmp_path / "checkpoints" / str(step)
        assert ckpt_lib.has_manifest(step_dir) and ckpt_lib.verify(step_dir) is None
        listed = json.loads((step_dir / ckpt_lib.MANIFEST).read_text())["files"]
        on_disk = {str(p.relative_to(step_dir)) for p in step_dir.rglob("*")
                   if p.is_file() and p.name != ckpt_lib.MANIFEST}
        assert set(listed) == on_disk


def test_checkpoints_go_through_epath(tmp_path, monkeypatch):
    """A checkpoint folder given as an `etils.epath.Path` (how a gs:// one is given): saves,
    manifests, verification, restore and setting aside work through it; a remote folder
    skips the local free-space check."""
    from etils import epath
    root = epath.Path(tmp_path)
    ckpt = ckpt_lib.Checkpointer(root / "checkpoints")
    states = {step: _small_state(step) for step in (5, 10)}
    try:
        for step, state in states.items():
            ckpt.save(step, state, {"data": {}, "step": step})
    finally:
        ckpt.close()
    assert ckpt_lib.checkpoint_steps(root) == [5, 10] and ckpt_lib.has_checkpoint(root)
    for step in (5, 10):
        assert ckpt_lib.has_manifest(root / "checkpoints" / str(step))
        assert ckpt_lib.verify(root / "checkpoints" / str(step)) is None
    ckpt = ckpt_lib.Checkpointer(root / "checkpoints", read_only=True)
    try:
        state, meta = ckpt.restore(_abstract(states[10]))
        assert meta["step"] == 10 and _equal(state, states[10])
        moved = ckpt.set_aside(10)
        assert moved == root / "checkpoints_damaged" / "10" and moved.is_dir()
        assert ckpt.all_steps() == [5]
    finally:
        ckpt.close()
    assert ckpt_lib.is_local(root) and not ckpt_lib.is_local("gs://bucket/run/checkpoints")
    remote = object.__new__(ckpt_lib.Checkpointer)
    remote.directory = epath.Path("gs://bucket/run/checkpoints")
    monkeypatch.setattr(ckpt_lib.shutil, "disk_usage", lambda _: pytest.fail("asked a bucket"))
    remote._check_space(states[5])


@pytest.mark.slow
def test_a_run_keeps_its_checkpoints_where_train_checkpoint_dir_says(tmp_path, capsys):
    """train.checkpoint_dir (any epath path; a local folder here) holds the checkpoints; the
    run resumes from there and `jaxgen sample` finds them; the workdir holds none."""
    wd, elsewhere = tmp_path / "run", tmp_path / "bucket" / "ckpts"
    args = ["train", "--config", str(TOY_CONFIG), "--workdir", str(wd),
            *flags(TINY_TOY + NO_PICTURES + [f"train.checkpoint_dir={elsewhere}"])]
    # in this process, one command after another (the resume reads only the files)
    assert cli.main([*args, "--config.train.steps=20"]) == 0, capsys.readouterr().err
    assert sorted(int(p.name) for p in elsewhere.iterdir()) == [10, 20]
    assert not (wd / "checkpoints").exists()
    capsys.readouterr()
    assert cli.main([*args, "--config.train.steps=30"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"Resuming from {elsewhere / '20'}" in out
    assert sorted(int(p.name) for p in elsewhere.iterdir()) == [10, 20, 30]
    assert ckpt_lib.verify(elsewhere / "30") is None and ckpt_lib.has_manifest(elsewhere / "30")
    assert cli.main(["sample", "--workdir", str(wd), "--num", "16",
                     "--out", str(tmp_path / "s.npz")]) == 0, capsys.readouterr().err
    assert np.load(tmp_path / "s.npz")["x"].shape == (16, 2)
