"""Shared helpers: tiny versions of the real configs, and running the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One XLA compilation cache for the whole test run: the pytest workers and the `jaxgen`
# processes the CLI tests start share it, so a program compiled once (the same tiny config
# trained, killed and resumed in a fresh process) is not compiled again. It starts empty
# each run and is removed at the end, so no test depends on an earlier run.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxgen-test-xla-")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
if "jax" in sys.modules:  # imported before this file: the environment was read already
    sys.modules["jax"].config.update("jax_compilation_cache_dir",
                                     os.environ["JAX_COMPILATION_CACHE_DIR"])

# The tests' programs, and the `jaxgen` processes they start (`subprocess_env`), compile
# without XLA's CPU optimisation passes: the same ops in float32, compiled about 2x faster;
# most of the suite's time is compilation. XLA_FLAGS is read when the backend starts, so
# also when jax was imported already.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
_FAST = " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items())
if _FAST not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST}".strip()


def pytest_unconfigure(config):
    if _OWN_CACHE and not hasattr(config, "workerinput"):  # the run's first process
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
TOY_CONFIG = ROOT / "configs" / "flow_matching" / "toy2d.py"
FMNIST_CONFIG = ROOT / "configs" / "flow_matching" / "fashion_mnist.py"

# The real toy config, shrunk: small MLP, small data, few steps.
TINY_TOY = [
    "train.steps=30", "train.batch_size=64", "train.log_every=5", "train.checkpoint_every=10",
    "train.progress=false", "model.features=(32, 32)", "model.time_dim=16",
    "data.num_train=2048", "data.num_eval=512", "sample.num=200", "sample.steps=8",
    "eval.num_examples=256", "eval.batch_size=128", "eval.ode_steps=8", "eval.mmd_num=200",
    "optim.warmup_steps=5", "train.sample_every=0",
]
# TINY_TOY for the user's own arrays: the toy-only data.* sizes do not apply (an error).
TINY_ARRAY = [f for f in TINY_TOY if not f.startswith("data.")]


# Runs whose test checks no picture skip the end-of-run ones (density maps, strips: seconds).
NO_PICTURES = ["train.pictures=false"]


def flags(overrides):
    return [f"--config.{o}" for o in overrides]


def subprocess_env(xla_flags: str = "", drop=()) -> dict:
    """The environment for a `jaxgen` process a test starts: this one's, without the keys in
    `drop`, compiling with FAST_XLA_FLAGS like the tests' own programs, plus `xla_flags`
    (e.g. a forced host device count)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS" and k not in drop}
    env["XLA_FLAGS"] = " ".join(f for f in (_FAST, xla_flags.replace(_FAST, "").strip()) if f)
    return env


def run_cli(args, env_extra=None, timeout=300, check=True) -> subprocess.CompletedProcess:
    """Runs `python -m jaxgen ARGS` in a fresh process (its own JAX runtime); `env_extra`'s
    XLA_FLAGS are added to the fast-compile ones (`subprocess_env`)."""
    extra = dict(env_extra or {})
    env = subprocess_env(extra.pop("XLA_FLAGS", ""))
    env.update(extra)
    proc = subprocess.run([sys.executable, "-m", "jaxgen", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"jaxgen {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


_IN_ONE_PROCESS = ("import json, sys\nfrom jaxgen import cli\n"
                   "codes = [cli.main(a) for a in json.loads(sys.argv[1])]\n"
                   "print('RETURN CODES', json.dumps(codes))\n")


def cli_in_one_process(commands, timeout=600) -> tuple[list[int], subprocess.CompletedProcess]:
    """`jaxgen` COMMANDS (argument lists) one after another in one fresh process (one JAX
    start-up for all), compiled with FAST_XLA_FLAGS; (their return codes, the process)."""
    env = subprocess_env()
    proc = subprocess.run([sys.executable, "-c", _IN_ONE_PROCESS,
                           json.dumps([list(map(str, c)) for c in commands])],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RETURN CODES ")]
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RETURN CODES "):]), proc


def read_metrics(workdir, perf: bool = False) -> list[dict]:
    """metrics.jsonl's records; without the timing figures (perf/*: step time, examples/s,
    MFU), which differ from run to run, unless `perf`."""
    path = Path(workdir) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if perf:
        return records
    return [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in records]


def load_final_state(workdir, step=None):
    """Restores a run's TrainState (in this process) for comparisons."""
    from jaxgen.runner.experiment import Experiment, read_run_info
    from jaxgen.runner.runs import workdir_config
    cfg = workdir_config(workdir)  # as the commands read a run (the mesh of this machine)
    exp = Experiment(cfg, read_run_info(Path(workdir)))
    state, meta = exp.restore(workdir, step)
    return state, meta


@pytest.fixture
def tiny_toy_config():
    from jaxgen.kernel import config as config_lib

    def make(*extra):
        return config_lib.load_config(TOY_CONFIG, TINY_TOY + list(extra))
    return make


FAST_XLA_FLAGS = _FAST  # FAST_COMPILE as XLA_FLAGS


def fast_compile(fn, *args):
    """`jax.jit(fn)` compiled for `args` with FAST_COMPILE (default options if this jaxlib
    does not know one of them); call the result on same-shaped args."""
    import jax
    lowered = jax.jit(fn).lower(*args)
    try:
        return lowered.compile(FAST_COMPILE)
    except Exception as err:  # an option this jaxlib does not know
        if "compile option" not in str(err):
            raise
        return lowered.compile()


def fast_jit(fn, *args):
    """fast_compile(fn, *args)(*args): compile once and run."""
    return fast_compile(fn, *args)(*args)
