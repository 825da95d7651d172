"""A trained run in a workdir, for the commands that use one (sample, eval, pictures and the
families' own): its config, its restored params, and the checks every command makes
before it writes a file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import MissingError, UsageError


def workdir_config(workdir, overrides=()):
    """The resolved config of the run in `workdir`, with `--config` overrides."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise MissingError(
            f"{workdir} holds no jaxgen run (no config.json). Train first: "
            f"jaxgen train --config CFG.py --workdir {workdir}")
    if not (Path(workdir) / "run.json").exists():
        raise MissingError(
            f"{workdir} is not a jaxgen run: its config.json was not written by jaxgen train "
            "(no run.json beside it). Pass the --workdir of a run.")
    config = config_lib.from_json_file(path, overrides)  # names first: a moved plugin file
    from jaxgen.runner import sharding
    if not sharding.fits(config.train.mesh):
        # a run read on a machine with other devices than it trained on: its params are
        # placed on this machine's default mesh (only the placement changes)
        config = config_lib.apply_overrides(config, ["train.mesh="])
    return config


@contextlib.contextmanager
def written_whole(path):
    """Yields a temporary path beside `path` to write to; when the block ends, the file
    there replaces `path`. A full disk, an error or a kill leaves no partial file at `path`
    (a rerun is not blocked), and a storage error names `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is not None and e.filename in (None, str(tmp), tmp):
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def restore(workdir, overrides=(), step: int | None = None, raw_params: bool = False,
            check=None):
    """(Experiment, params) of the run in `workdir`: EMA params unless `raw_params`;
    `check(exp)` runs before the (slower) restore."""
    from jaxgen.runner import provenance
    from jaxgen.runner.experiment import Experiment, read_run_info
    cfg = workdir_config(workdir, overrides)
    provenance.note_changes(workdir, cfg, functools.partial(print, file=sys.stderr),
                            "this command")
    exp = Experiment(cfg, read_run_info(Path(workdir)))
    if check is not None:
        check(exp)
    state, _ = exp.restore(workdir, step)
    exp.restored = f"checkpoint {int(state.step)}, {'raw' if raw_params else 'EMA'} params"
    return exp, (state.params if raw_params else state.ema_params)


def checkpoint_step(workdir, step: int | None = None) -> int:
    """`step`, or the run's latest checkpoint step."""
    from jaxgen.runner.checkpoint import Checkpointer, checkpoint_dir
    if step is not None:
        return int(step)
    ckpt = Checkpointer(checkpoint_dir(workdir, workdir_config(workdir)), read_only=True)
    try:
        return int(ckpt.latest_step())
    finally:
        ckpt.close()


def writable(path) -> bool:
    """Whether jaxgen may create or replace files at `path` (a folder or a file's path):
    checked on the nearest part of it that exists. False on a read-only mount (os.access
    says EROFS even to root) or without write permission."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK)


def read_only_note(workdir) -> str:
    """The one line `jaxgen eval` prints before it computes on a run it cannot write."""
    return (f"{workdir} is read-only: results are printed, not written; pass --out FILE "
            "to keep them")


def refuse_existing(path, force: bool) -> None:
    """Never overwrite a user's file unless --force."""
    if Path(path).exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it or choose another --out.")


def refuse_overwrite(folder: Path, names, force: bool) -> None:
    """As `refuse_existing`, for the files `names` a command writes into `folder`."""
    for n in names:
        refuse_existing(Path(folder) / n, force)
