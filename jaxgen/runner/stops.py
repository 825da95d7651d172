"""How a jaxgen command stops on Ctrl-C (SIGINT) and SIGTERM, from its first second.

`jaxgen.cli.main` installs the handlers before anything heavy is imported (`handled`), and
they never raise into the program (an exception raised from a signal handler can land in a
garbage-collection callback, where Python prints "Exception ignored" and swallows it):

* while the training loop can act on it (`saving`), the first signal is a request the loop
  reads between device calls: it saves a checkpoint at the current step and exits 0; a
  second Ctrl-C ends the command at once, exit 130 (the last checkpoint stays);
* anywhere else (start-up, compilation, restoring, sampling, evaluating, the end-of-run
  pictures) there is nothing half-done to save: the command ends at once with one line,
  exit 130 for Ctrl-C; for SIGTERM, 0 in `train` (a clean stop: rerun to go on) and 143
  in the other commands. What a command writes it writes whole (a temporary file renamed),
  so an ending at once leaves no partial file.

`JAXGEN_DEBUG=1` raises KeyboardInterrupt instead, for a traceback. A process that started
with SIGINT ignored (a background job of a non-interactive shell) keeps ignoring it. Used
without the command-line entry (`jaxgen.train` in a notebook), the training loop installs
the same handlers for its own duration, and a second Ctrl-C raises KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    command: str | None = None  # the jaxgen command whose handlers are installed
    saving: Saving | None = None  # the training loop, while it can save on a request
    note: str = ""  # what the one line adds where the command stands (e.g. pictures)


_state = _State()


class Saving:
    """A stop request the training loop reads: `name` ("SIGINT" / "SIGTERM") once asked."""

    def __init__(self, say):
        self.name: str | None = None
        self.say = say


def _end_now(signum: int) -> None:
    name = signal.Signals(signum).name
    if os.environ.get("JAXGEN_DEBUG") or _state.command is None:
        raise KeyboardInterrupt  # a traceback asked for, or no command to end: the caller's
    command = _state.command
    sigint = signum == signal.SIGINT
    code = 130 if sigint else (0 if command == "train" else 143)
    what = "Ctrl-C" if sigint else name
    note = _state.note or ("what was written stays" + (
        "; rerun to resume from the last checkpoint" if command == "train" else ""))
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.write(2, f"\njaxgen: {command} stopped ({what}): {note}.\n".encode())
    os._exit(code)


def _handle(signum, frame) -> None:
    saving = _state.saving
    if saving is not None and saving.name is None:
        saving.name = signal.Signals(signum).name
        saving.say(f"{saving.name}: saving a checkpoint at the end of this step, then stopping"
                   + (" (Ctrl-C again aborts at once)" if signum == signal.SIGINT else "")
                   + ".")
        return
    if saving is not None and signum == signal.SIGTERM:
        return  # already stopping at the next step
    _end_now(signum)


def _install() -> dict:
    old = {}
    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if sig == signal.SIGINT and current == signal.SIG_IGN:
            continue  # started with Ctrl-C ignored: keep it so
        try:
            old[sig] = signal.signal(sig, _handle)
        except ValueError:  # not the main thread: signals stay as they are
            pass
    return old


def _restore(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


@contextlib.contextmanager
def handled(command: str):
    """The handlers for the whole of `jaxgen COMMAND` (restored after it, so a command run
    in-process, as the tests do, leaves its caller's handlers as they were)."""
    old = _install()
    _state.command, _state.note = command, ""
    try:
        yield
    finally:
        _state.command, _state.saving, _state.note = None, None, ""
        _restore(old)


@contextlib.contextmanager
def saving(say):
    """The training loop's span: a first signal becomes the returned `Saving`'s request."""
    own = _install() if _state.command is None else {}
    request = Saving(say)
    _state.saving = request
    try:
        yield request
    finally:
        _state.saving = None
        _restore(own)


def note(text: str) -> None:
    """What an immediate stop says about where the command stands (e.g. during the
    end-of-run pictures: the run is saved, and which command draws them)."""
    _state.note = text
