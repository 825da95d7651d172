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

Several processes (hosts) stop at one step. A signal may reach one process only, or reach
them a step apart; a process that stopped alone would leave the others waiting for it in the
next collective until they are killed. So with more than one process the request is not
acted on where it lands: at each step where the loop syncs anyway (a log step, every
train.log_every steps, a checkpoint step and the last step) the processes exchange their
requests (`Saving.agreed`: one small all-gather), and if any process was asked, every
process saves the same checkpoint at that step and exits 0. A stop therefore comes within
train.log_every steps of the signal. The exchange is not made after every device call: on
CPU (gloo) it costs 3 to 8 ms a call (a toy step takes 2 ms), and it would make the host
wait for every call instead of running ahead; at a log step the host waits anyway.

SIGTERM stays jaxgen's with several processes too. `jax.distributed.initialize` starts JAX's
preemption service, whose notifier takes SIGTERM over (for
`multihost_utils.reached_preemption_sync_point`) and swallows it: the run would go on
until SIGKILL. jaxgen turns that service off (JAX_ENABLE_PREEMPTION_SERVICE=false, unless
set; Orbax treats it as "no preemption") and, while the loop runs, installs its handler
again in case the service was started anyway. jaxgen's agreement is used instead of the
service's sync point: that one needs consecutive call numbers and races a fast step (a
process reports its count, goes on, and may pass the agreed call before it is told).

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
_CODES = {None: 0, "SIGINT": 1, "SIGTERM": 2}  # exchanged between processes; the highest wins


class _State:
    command: str | None = None  # the jaxgen command whose handlers are installed
    saving: Saving | None = None  # the training loop, while it can save on a request
    note: str = ""  # what the one line adds where the command stands (e.g. pictures)


_state = _State()


class Saving:
    """A stop request the training loop reads: `name` ("SIGINT" / "SIGTERM") once this
    process was asked; `agreed(step, boundary)` is the stop every process acts on."""

    def __init__(self, say, processes: int = 1):
        self.name: str | None = None
        self.say = say
        self.processes = processes  # jax.process_count() of the training loop
        self.stop: str | None = None  # the stop agreed on, once it is

    def agreed(self, step: int, boundary: bool) -> str | None:
        """The stop the loop acts on after the device call that reached `step`: the request
        of this process when it is alone, at once. With several processes, only at a
        `boundary` (a step every process treats as one: it syncs there anyway), where they
        exchange their requests: "SIGTERM" / "SIGINT" on every process if any process was
        asked, else None on every process. Call it at the same steps on every process."""
        if self.stop is None and self.processes == 1:
            self.stop = self.name
        elif self.stop is None and boundary:
            import numpy as np
            from jax.experimental import multihost_utils
            codes = multihost_utils.process_allgather(np.int32(_CODES[self.name]))
            top = int(np.max(codes))
            if top:
                self.stop = next(name for name, code in _CODES.items() if code == top)
                if self.name is None:
                    self.say(f"{self.stop} on another process: saving a checkpoint at step "
                             f"{step} on every process, then stopping.")
        return self.stop


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
        when = ("at the end of this step" if saving.processes == 1 else
                f"at the next log or checkpoint step, on all {saving.processes} processes")
        saving.say(f"{saving.name}: saving a checkpoint {when}, then stopping"
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


def _keep_sigterm() -> None:
    """JAX's preemption service off (before `jax.distributed.initialize`), so its notifier
    does not take SIGTERM over."""
    os.environ.setdefault("JAX_ENABLE_PREEMPTION_SERVICE", "false")
    jax = sys.modules.get("jax")
    if jax is not None and os.environ["JAX_ENABLE_PREEMPTION_SERVICE"] == "false":
        jax.config.update("jax_enable_preemption_service", False)


@contextlib.contextmanager
def handled(command: str):
    """The handlers for the whole of `jaxgen COMMAND` (restored after it, so a command run
    in-process, as the tests do, leaves its caller's handlers as they were)."""
    old = _install()
    _keep_sigterm()
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
    jax = sys.modules.get("jax")  # imported by the loop that asks
    request = Saving(say, processes=jax.process_count() if jax is not None else 1)
    if request.processes > 1 and _state.command is not None:
        with contextlib.suppress(ValueError):  # JAX's notifier may have taken SIGTERM over
            signal.signal(signal.SIGTERM, _handle)
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
