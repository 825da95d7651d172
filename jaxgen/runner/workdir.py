"""Who owns a --workdir: the run marker, and the lock one training process holds.

A folder is a jaxgen run when it holds `jaxgen_run.json`, a file only jaxgen writes (its
run id, when and where it was made). `jaxgen train` writes only into a new or empty folder,
which it then marks, or into a marked one: a folder of the user's that merely holds files
called config.json or checkpoints/ is refused, so jaxgen never overwrites a file it did not
write.

While it trains, the process holds an exclusive `flock` on `WORKDIR/jaxgen.lock`, which
also records its pid, host and start time. A second writer fails at once, naming the first.
The kernel releases a flock when its holder dies (kill -9 included), so a lock file whose
lock can be taken is stale: it is taken over, and said so.

    python -m jaxgen.runner.workdir claim DIR    # make DIR a run (launchers, before logs/)
    python -m jaxgen.runner.workdir adopt DIR    # mark a run made by jaxgen before markers
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
import uuid
from pathlib import Path

from jaxgen.kernel.errors import WorkdirError

MARKER = "jaxgen_run.json"
LOCK = "jaxgen.lock"


def is_run(workdir: str | Path) -> bool:
    return (Path(workdir) / MARKER).is_file()


def _looks_like_old_run(workdir: Path) -> bool:
    ck = workdir / "checkpoints"
    return ((workdir / "config.json").is_file() and (workdir / "run.json").is_file()
            and ck.is_dir() and any((p / "_CHECKPOINT_METADATA").is_file()
                                    for p in ck.iterdir() if p.name.isdigit()))


def check_writable(workdir: str | Path) -> None:
    """Refuses a --workdir that jaxgen did not make (writes nothing)."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir} is a file; pass a folder.")
    if not workdir.is_dir() or is_run(workdir):
        return
    names = sorted(p.name for p in workdir.iterdir())
    if not names:
        return
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} entries)" if len(names) > 6 else "")
    hint = ""
    if _looks_like_old_run(workdir):
        hint = (" If it is a run made by an earlier jaxgen (before run markers), mark it as "
                f"jaxgen's with: python -m jaxgen.runner.workdir adopt {workdir}")
    raise WorkdirError(
        f"--workdir {workdir} is not empty and is not a jaxgen run (no {MARKER}; it holds "
        f"{shown}). jaxgen trains only in a new or empty folder, or in a run it made, so that "
        f"it never overwrites your files. Pick another --workdir, e.g. {workdir / 'run'}."
        + hint)


def claim(workdir: str | Path) -> dict:
    """Makes `workdir` (new or empty, see `check_writable`) a run: writes the marker once;
    returns it."""
    workdir = Path(workdir)
    check_writable(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / MARKER
    if path.is_file():
        return json.loads(path.read_text())
    marker = {"run_id": uuid.uuid4().hex, "created": _now(), "host": socket.gethostname(),
              "note": "written by jaxgen: this folder is a jaxgen run"}
    tmp = workdir / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(marker, indent=2))
    os.replace(tmp, path)
    return marker


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class RunLock:
    """An exclusive lock on a run for as long as one process trains in it (a context
    manager). `say` gets the one line about a stale lock taken over."""

    def __init__(self, workdir: str | Path, say=print):
        self.path = Path(workdir) / LOCK
        self.say = say
        self._file = None

    def __enter__(self):
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = _describe(f.read())
            f.close()
            raise WorkdirError(
                f"Another jaxgen process is training in {self.path.parent} ({holder}; lock "
                f"{self.path}). Two writers would interleave its checkpoints and logs: wait "
                "for it to finish, or stop it, or pick another --workdir.") from None
        f.seek(0)
        previous = f.read().strip()
        if previous:
            self.say(f"Note: took over a stale lock ({_describe(previous)}; that process is "
                     "gone, e.g. killed).")
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "since": _now()}))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()  # a clean exit leaves no holder to report
            self._file.flush()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        d = json.loads(text)
        return f"pid {d['pid']} on host {d['host']}, since {d['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def adopt(workdir: str | Path) -> Path:
    """Marks a run made by jaxgen before run markers (it must look like one)."""
    workdir = Path(workdir)
    if is_run(workdir):
        return workdir / MARKER
    if not _looks_like_old_run(workdir):
        raise WorkdirError(f"{workdir} does not look like a jaxgen run (config.json, run.json "
                           "and Orbax checkpoints); not marking it.")
    marker = {"run_id": uuid.uuid4().hex, "created": _now(), "host": socket.gethostname(),
              "note": "adopted: a run made by an earlier jaxgen"}
    (workdir / MARKER).write_text(json.dumps(marker, indent=2))
    return workdir / MARKER


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("claim", "adopt"):
        sys.exit("usage: python -m jaxgen.runner.workdir {claim|adopt} DIR")
    try:
        if sys.argv[1] == "claim":
            claim(sys.argv[2])
        else:
            print(f"Wrote {adopt(sys.argv[2])}")
    except WorkdirError as e:
        sys.exit(f"jaxgen: error: {e}")
