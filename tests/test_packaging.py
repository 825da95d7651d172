"""A non-editable install works from any folder: the configs are package data.

The wheel is built from a copy of the checkout (nothing written into it), installed with
`pip install --target` into a temporary folder, and run with `python -S` (no site
packages processed, so the checkout's editable install cannot shadow it), the
dependencies coming from this interpreter's site-packages on PYTHONPATH. From a folder
outside the checkout: `jaxgen train --config flow_matching/toy2d` (a shipped config by
name) and `jaxgen reproduce forward-diffusion --fast`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

_SKIP = shutil.ignore_patterns(".git", "runs", "reports", "build", "*.egg-info", "__pycache__",
                               ".pytest_cache", "dist", ".venv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(target folder of the installed wheel, the wheel's path)."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_SKIP)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(src), "-w", str(dist)], check=True,
                   capture_output=True, text=True)
    wheel = next(dist.glob("jaxgen-*.whl"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, text=True)
    return target, wheel


def _run(target, args, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"],
                                         sysconfig.get_paths()["platlib"]])
    proc = subprocess.run([sys.executable, "-S", "-m", "jaxgen", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_wheel_holds_every_shipped_config(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.relative_to(ROOT / "configs") for p in (ROOT / "configs").glob("*/*.py"))
    assert shipped and all(f"jaxgen/configs/{p}" in names for p in shipped)


# the wheel installed in a clean venv runs the README's commands by default
@pytest.mark.heavy
def test_train_and_reproduce_from_outside_the_checkout(installed, tmp_path):
    target, _ = installed
    out = _run(target, ["train", "--config", "flow_matching/toy2d", "--workdir", "run",
                        "--config.train.steps=20", "--config.train.batch_size=64",
                        "--config.train.log_every=10", "--config.train.checkpoint_every=20",
                        "--config.train.sample_every=0", "--config.train.progress=false",
                        "--config.model.features=(16, 16)", "--config.model.time_dim=8",
                        "--config.data.num_train=512", "--config.sample.num=100",
                        "--config.sample.steps=4", "--config.optim.warmup_steps=2"],
               cwd=tmp_path)
    assert "jaxgen train: summary" in out and (tmp_path / "run" / "checkpoints" / "20").is_dir()
    import json
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    from jaxgen.families.flow_matching.config import FlowMatchingSettings
    from jaxgen.kernel import settings
    assert cfg["objective"] == {"name": "flow_matching",
                                **settings.defaults(FlowMatchingSettings)}  # all declared
    _run(target, ["reproduce", "forward-diffusion", "--fast", "--out", "reports"], cwd=tmp_path)
    assert (tmp_path / "reports" / "forward-diffusion" / "report.md").is_file()
    where = subprocess.run([sys.executable, "-S", "-c", "import jaxgen; print(jaxgen.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(target)}).stdout
    assert where.startswith(str(target)), where


def test_the_readme_set_up_runs_in_a_clean_venv_from_the_wheel(installed, tmp_path):
    """README's set-up block as a new user runs it: a new venv, the package installed in it
    (from the wheel, not editable: its dependencies are this interpreter's, seen through
    --system-site-packages, since tests reach no package index), then the main job from a
    clone's folder, shortened."""
    import shlex
    _, wheel = installed
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set up and run (fresh machine)")[1].split("```bash\n")[1]
    venv_line, main_line = block.split("```")[0].strip().splitlines()
    assert venv_line == "python3 -m venv .venv && . .venv/bin/activate"
    install, train = main_line.split(" && ")
    assert install == "pip install -e '.[test]'" and train.startswith("jaxgen train ")
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")  # the clone's configs/ folder
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # what activate does
    env["VIRTUAL_ENV"] = str(venv)
    where = subprocess.run(["python", "-c", "import jaxgen; print(jaxgen.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(venv))  # the wheel's, not the checkout's
    quick = ["--config.train.steps=20", "--config.train.checkpoint_every=20",
             "--config.train.log_every=10", "--config.train.progress=false",
             "--config.model.features=(16, 16)", "--config.data.num_train=512",
             "--config.sample.num=100", "--config.optim.warmup_steps=2"]
    proc = subprocess.run([*shlex.split(train), *quick], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "jaxgen train: summary" in proc.stdout
    workdir = tmp_path / shlex.split(train)[shlex.split(train).index("--workdir") + 1]
    assert (workdir / "checkpoints" / "20").is_dir() and (workdir / "samples").is_dir()
