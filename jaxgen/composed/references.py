"""Run references: a workdir another run depends on -> its restored experiment and params.

Datasets of latents and codes, their decoders, the composed bound and VQ-VAE-2's
bottom-prior sampler (its prefix drawn by the top prior) all read a trained run. They go
through `restore`, which restores each run once per process, eagerly: a reference is
resolved when a dataset or an objective is built, before anything is traced, never
inside `jit`.
"""

from __future__ import annotations

from pathlib import Path

from jaxgen.kernel.errors import MissingError

_KEEP = 8  # runs kept restored per process
_RUNS: dict[str, tuple] = {}


def run_folder(workdir, key: str, what: str) -> Path:
    """The run folder the setting `key` names, resolved, or a MissingError saying what it
    should hold."""
    path = Path(str(workdir)).expanduser()
    if not (path / "config.json").exists():
        raise MissingError(f"{key}={workdir} holds no jaxgen run (no config.json); {what}.")
    return path.resolve()


def restore(workdir, check=None) -> tuple:
    """(Experiment, EMA params) of the run in `workdir`, restored once per process.
    `check(exp)` (e.g. "it is an autoencoder") runs on every call; the first time it runs
    before the (slower) restore of the checkpoint."""
    from jaxgen.runner import runs
    key = str(Path(str(workdir)).expanduser().resolve())
    if key in _RUNS:
        if check is not None:
            check(_RUNS[key][0])
        return _RUNS[key]
    got = runs.restore(key, check=check)
    if len(_RUNS) >= _KEEP:
        _RUNS.pop(next(iter(_RUNS)))
    _RUNS[key] = got
    return got


def restore_with_tools(workdir, key: str, tools_type, what: str) -> tuple:
    """(Experiment, EMA params) of the run the setting `key` names, which must be a run
    whose objective's tools are a `tools_type` (`what` it is, for the errors: "a
    flow-matching run"), restored now, before anything is traced."""
    from jaxgen.kernel.errors import UserError

    def check(exp):
        if not isinstance(exp.objective.tools, tools_type):
            raise UserError(f"{key}={workdir} is a {exp.objective.name} run; it must be "
                            f"{what}.")

    return restore(run_folder(workdir, key, f"it must be {what}"), check=check)
