"""The trainer end to end: outputs, resume, kill -9, SIGTERM, devices, processes, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import (
    FAST_XLA_FLAGS,
    NO_PICTURES,
    ROOT,
    TINY_ARRAY,
    TINY_TOY,
    TOY_CONFIG,
    cli_in_one_process,
    flags,
    load_final_state,
    read_metrics,
    run_cli,
    subprocess_env,
)

from jaxgen import cli
from jaxgen.eval.evaluate import read_eval
from jaxgen.runner.loop import train_and_evaluate


def assert_trees_equal(a, b, rtol=0.0, atol=0.0):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# the subprocesses compile without XLA's CPU optimisation passes (same ops, float32)
FAST = {"XLA_FLAGS": FAST_XLA_FLAGS}


def test_cli_train_eval_sample_end_to_end(tmp_path):
    wd = tmp_path / "run"
    proc = run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY)],
                   env_extra=FAST)
    assert "jaxgen train: summary" in proc.stdout
    for name in ("config.json", "run.json", "metrics.jsonl"):
        assert (wd / name).is_file()
    cfg = json.loads((wd / "config.json").read_text())
    assert cfg["train"]["steps"] == 30 and cfg["model"]["features"] == [32, 32]
    metrics = read_metrics(wd)
    assert [m["step"] for m in metrics] == [5, 10, 15, 20, 25, 30]
    assert all(np.isfinite(m["loss"]) and "fm_mse" in m for m in metrics)
    assert sorted(int(p.name) for p in (wd / "checkpoints").iterdir() if p.name.isdigit()) \
        == [10, 20, 30]
    assert list((wd / "tensorboard").glob("events.out.tfevents.*"))
    assert (wd / "samples" / "step_0000030.png").is_file()
    assert (wd / "samples" / "density.png").is_file()

    commands = [["eval", "--workdir", wd],
                ["sample", "--workdir", wd, "--num", "300", "--out", tmp_path / "s.npz"],
                ["sample", "--workdir", wd, "--num", "100", "--out", tmp_path / "s.png"],
                ["sample", "--workdir", wd, "--num", "10", "--out", tmp_path / "s.png"]]
    codes, ev = cli_in_one_process(commands, timeout=300)  # eval and samples: one start-up
    # the third sample would overwrite s.png: refused without --force
    assert codes == [0, 0, 0, 2], ev.stderr[-3000:]
    assert "--force" in ev.stderr
    result = read_eval(wd)
    assert "nll_nats" in ev.stdout
    for k in ("nll_nats", "true_nll_nats", "nll_gap_nats", "mmd2"):
        assert np.isfinite(result[k]), k
    assert result["num_examples"] == 256 and result["step"] == 30
    # The true entropy of FFJORD's 8 Gaussians (std 0.5/1.414, well separated) is
    # log 8 + 1 + log(2π) + 2 log σ = 2.757 nats; 256 held-out points estimate it.
    assert abs(result["true_nll_nats"] - 2.757) < 0.15

    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (300, 2) and np.all(np.isfinite(x))
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_resume_equals_uninterrupted(tmp_path, tiny_toy_config):
    """Lose the last checkpoint and the log lines after step 10, then rerun: same result."""
    import shutil
    cfg = tiny_toy_config("train.steps=20", *NO_PICTURES)
    full = tmp_path / "full"
    train_and_evaluate(cfg, full)
    part = tmp_path / "part"
    train_and_evaluate(cfg, part)
    shutil.rmtree(part / "checkpoints" / "20")
    summary = train_and_evaluate(cfg, part)  # resumes at 10
    assert summary["steps"] == "10 -> 20 of 20"
    a, _ = load_final_state(full)
    b, meta = load_final_state(part)
    assert_trees_equal(a, b)
    assert meta["data"]["next_step"] == 20
    assert read_metrics(full) == read_metrics(part)


def test_steps_per_call_scan_matches_single_steps(tmp_path, tiny_toy_config):
    train_and_evaluate(tiny_toy_config("train.steps=20", *NO_PICTURES), tmp_path / "k1")
    train_and_evaluate(tiny_toy_config("train.steps=20", "train.steps_per_call=5", *NO_PICTURES),
                       tmp_path / "k5")
    a, _ = load_final_state(tmp_path / "k1")
    b, _ = load_final_state(tmp_path / "k5")
    assert_trees_equal(a.params, b.params, rtol=1e-5, atol=1e-6)
    la = [m["loss"] for m in read_metrics(tmp_path / "k1")]
    lb = [m["loss"] for m in read_metrics(tmp_path / "k5")]
    np.testing.assert_allclose(la, lb, rtol=1e-5)


def _popen_train(workdir, extra):
    env = subprocess_env()
    return subprocess.Popen(
        [sys.executable, "-m", "jaxgen", "train", "--config", str(TOY_CONFIG), "--workdir",
         str(workdir), *flags(TINY_TOY + extra)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _checkpoint_steps(workdir):
    d = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


# minutes of CPU; kill -9 around saves (test_checkpoint_integrity) and exact resume after signals
# (test_faults) run by default
@pytest.mark.heavy
def test_kill9_then_rerun_equals_uninterrupted(tmp_path):
    extra = ["train.steps=400", "train.checkpoint_every=20", "train.log_every=20", *NO_PICTURES]
    wd = tmp_path / "killed"
    proc = _popen_train(wd, extra)
    deadline = time.time() + 120
    while time.time() < deadline and not [s for s in _checkpoint_steps(wd) if s >= 40]:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = _checkpoint_steps(wd)
    assert killed_at and max(killed_at) < 400, killed_at
    resumed = run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY + extra)])
    assert "Resuming from" in resumed.stdout
    ref = tmp_path / "ref"
    run_cli(["train", "--config", TOY_CONFIG, "--workdir", ref, *flags(TINY_TOY + extra)])
    a, _ = load_final_state(wd)
    b, _ = load_final_state(ref)
    assert int(a.step) == int(b.step) == 400
    assert_trees_equal(a, b)
    assert read_metrics(wd) == read_metrics(ref)  # every step logged once, same numbers


# the same handler is covered by default in test_faults (Ctrl-C: save, exit 0, resume exactly)
# and test_signals (SIGTERM to a two-process run, SIGTERM during the end-of-run pictures)
@pytest.mark.heavy
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    wd = tmp_path / "term"
    proc = _popen_train(wd, ["train.steps=1000000", "train.checkpoint_every=1000000",
                             "train.log_every=5"])
    deadline = time.time() + 120
    while time.time() < deadline and not ((wd / "metrics.jsonl").exists()
                                          and (wd / "metrics.jsonl").read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    steps = _checkpoint_steps(wd)
    assert len(steps) == 1 and 0 < steps[0] < 1000000
    assert "SIGTERM" in out
    state, meta = load_final_state(wd)
    assert int(state.step) == steps[0] == meta["data"]["next_step"]


def test_same_metrics_on_1_and_4_devices(tmp_path):
    runs = {}
    for n in (1, 4):
        wd = tmp_path / f"dev{n}"
        run_cli(["train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY + NO_PICTURES)],
                env_extra={"XLA_FLAGS": f"{FAST_XLA_FLAGS} "
                                        f"--xla_force_host_platform_device_count={n}"})
        assert json.loads((wd / "run.json").read_text())  # written
        runs[n] = read_metrics(wd)
    assert [m["step"] for m in runs[1]] == [m["step"] for m in runs[4]]
    for a, b in zip(runs[1], runs[4]):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, err_msg=k)
    a, _ = load_final_state(tmp_path / "dev1")
    b, _ = load_final_state(tmp_path / "dev4")
    assert_trees_equal(a.params, b.params, rtol=1e-4, atol=1e-6)


def _slurm_tasks(workdir, args, ntasks=2):
    """`srun` of launch/slurm_task.sh on this machine: the SLURM_* variables srun sets for
    ntasks tasks of one job on node 'localhost'; JAX detects the cluster from them."""
    job = str(1000 + int.from_bytes(os.urandom(2), "little"))  # the coordinator port's seed
    procs = []
    for rank in range(ntasks):
        env = subprocess_env()
        env.update(SLURM_JOB_ID=job, SLURM_STEP_NODELIST="localhost", SLURM_NTASKS=str(ntasks),
                   SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_STEP_NUM_NODES="1",
                   JAXGEN_CPU="1", JAX_PLATFORMS="cpu")
        procs.append(subprocess.Popen(["bash", str(ROOT / "launch" / "slurm_task.sh"),
                                       str(TOY_CONFIG), str(workdir), *args], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs[0][0]


def test_two_processes_on_localhost_match_one(tmp_path):
    """jax.distributed with gloo CPU collectives, through launch/multiprocess_cpu.sh and
    through launch/slurm_task.sh (the SLURM path, its environment simulated): the same
    metrics and params as one process."""
    extra = ["train.steps=20", *NO_PICTURES]
    one = tmp_path / "one"
    run_cli(["train", "--config", TOY_CONFIG, "--workdir", one, *flags(TINY_TOY + extra)])
    two = tmp_path / "two"
    env = subprocess_env()
    env["NUM_PROCESSES"] = "2"
    proc = subprocess.run(["bash", str(ROOT / "launch" / "multiprocess_cpu.sh"), str(TOY_CONFIG),
                           str(two), *flags(TINY_TOY + extra)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 (2 process(es))" in proc.stdout
    slurm = tmp_path / "slurm"
    assert "2 (2 process(es))" in _slurm_tasks(slurm, flags(TINY_TOY + extra))
    assert (slurm / "logs" / "process_1.log").exists()
    a = read_metrics(one)
    assert [m["step"] for m in a] == [5, 10, 15, 20]
    sa, _ = load_final_state(one)
    for run in (two, slurm):
        b = read_metrics(run)
        assert [m["step"] for m in b] == [5, 10, 15, 20]
        for x, y in zip(a, b):
            np.testing.assert_allclose(x["loss"], y["loss"], rtol=2e-5)
        sb, _ = load_final_state(run)
        assert_trees_equal(sa.params, sb.params, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ bad input
def _cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("override, fragment", [
    ("--config.train.stpes=3", "Did you mean: train.steps"),
    ("--config.data.name=nope", "valid names: 8gaussians"),
    ("--config.model.name=nope", "model (model.name) 'nope'. Valid choices: ar_mlp"),
    ("--config.objective.name=nope", "objective (objective.name) 'nope'. Valid choices:"),
    ("--config.model.width=3", "Unknown config key 'model.width'"),
    ("--config.model.name=unet", "expects images"),
    ("--config.train.batch_size=999999", "larger than the dataset"),
])
def test_bad_config_gives_one_clear_error(tmp_path, capsys, override, fragment):
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "w",
                     *flags(TINY_TOY), override)
    assert code == 2
    assert err.startswith("jaxgen: error:") and fragment in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "w").exists()  # a bad config leaves nothing behind


def test_missing_user_data_says_what_to_do(tmp_path, capsys):
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "w",
                     *flags(TINY_ARRAY), "--config.data.name=array",
                     f"--config.data.path={tmp_path / 'missing.npy'}")
    assert code == 2 and "missing.npy" in err


def test_eval_and_sample_need_a_run(tmp_path, capsys):
    code, err = _cli(capsys, "eval", "--workdir", tmp_path / "empty")
    assert code == 2 and "Train first" in err
    code, err = _cli(capsys, "sample", "--workdir", tmp_path / "empty", "--out", tmp_path / "a.gif")
    assert code == 2 and ".png" in err


def test_nan_stops_naming_step_and_keeps_last_good_checkpoint(tmp_path, capsys):
    wd = tmp_path / "nan"
    code, _ = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY),
                   "--config.train.steps=10")
    assert code == 0
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "nan2",
                     *flags(TINY_TOY), "--config.optim.learning_rate=1e35",
                     "--config.optim.grad_clip=0", "--config.optim.warmup_steps=0",
                     "--config.train.checkpoint_every=1", "--config.train.log_every=1")
    assert code == 1
    assert "Non-finite" in err and "at step" in err and "last good checkpoint" in err
    bad_step = int(err.split("at step ")[1].split()[0])
    good = _checkpoint_steps(tmp_path / "nan2")
    assert good and max(good) == bad_step - 1
    state, _ = load_final_state(tmp_path / "nan2")
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))
    # Metrics fetched only every 4 steps: the same first bad step is named, and no checkpoint
    # past it is written.
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "nan3",
                     *flags(TINY_TOY), "--config.optim.learning_rate=1e35",
                     "--config.optim.grad_clip=0", "--config.optim.warmup_steps=0",
                     "--config.train.checkpoint_every=2", "--config.train.log_every=4")
    assert code == 1 and int(err.split("at step ")[1].split()[0]) == bad_step
    assert all(s < bad_step for s in _checkpoint_steps(tmp_path / "nan3"))


def test_resuming_with_a_different_config_is_refused(tmp_path, capsys):
    wd = tmp_path / "w"
    assert _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY),
                "--config.train.steps=10")[0] == 0
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", wd, *flags(TINY_TOY),
                     "--config.optim.b1=0.5")
    assert code == 2 and "optim.b1" in err and "new --workdir" in err
    assert _checkpoint_steps(wd) == [10]  # nothing of the earlier run was touched


def test_list_shows_configs_objectives_models_datasets(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for fragment in ("configs/flow_matching/toy2d.py", "configs/flow_matching/fashion_mnist.py",
                     "flow_matching", "mlp", "unet", "8gaussians", "fashion_mnist", "tfds:<name>"):
        assert fragment in out, fragment


def test_bench_prints_compile_time_and_ms_per_step(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    assert cli.main(["bench", "--config", str(TOY_CONFIG), "--steps", "5", "--warmup", "1",
                     "--sample", "50", "--json", str(out_json), *flags(TINY_TOY)]) == 0
    out = capsys.readouterr().out
    assert "compile_s" in out and "ms_per_step_median" in out
    result = json.loads(out_json.read_text())
    assert result["compile_s"] > 0 and result["ms_per_step_median"] > 0
    assert result["timed_steps"] == 5 and result["global_batch"] == 64
    # FLOPs of the MLP step from XLA: at least 2 x params x batch (forward) x 3 (with backward)
    assert result["gflop_per_step"] * 1e9 >= 6 * result["params"] * 64 * 0.9
    assert result["matmul_peak_gflop_s"] > 0 and 0 < result["fraction_of_peak"] < 1.5
    assert result["step_memory_mb"] > 0
    assert result["sample_batch"] == 50 and result["samples_per_s"] > 0


@pytest.mark.parametrize("loop", ["train.grad_accum=4", "train.steps_per_call=5"])
def test_bench_counts_the_flops_of_a_whole_step_whatever_its_loops(loop):
    """XLA counts a loop's body once: a step of 4 micro-batches (or 5 steps a call, where not
    unrolled) must still report the FLOPs of one whole step, which do the same arithmetic
    as the plain step over the same global batch (was 0.25x with grad_accum=4)."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.bench import bench
    plain = config_lib.load_config(TOY_CONFIG, TINY_TOY)
    looped = config_lib.load_config(TOY_CONFIG, [*TINY_TOY, loop])
    a = bench(plain, steps=2, warmup=1, peak=False)["gflop_per_step"]
    b = bench(looped, steps=2, warmup=1, peak=False)["gflop_per_step"]
    assert b == pytest.approx(a, rel=0.02)


def test_a_foreign_folder_is_never_written_into(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.txt").write_text("a user's file")
    code, err = _cli(capsys, "train", "--config", TOY_CONFIG, "--workdir", tmp_path / "mine",
                     *flags(TINY_TOY))
    assert code == 2 and "not empty and is not a jaxgen run" in err
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["config.txt"]
