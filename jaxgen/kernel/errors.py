"""jaxgen's user-facing errors: the only exceptions the CLI turns into one-line messages.

Each says what is wrong and what to do. Every other exception is a bug (in jaxgen or in
a user's loss) and reaches the user as a traceback.

They also derive from the built-in type a library caller would expect (`ValueError`,
`FileNotFoundError`, `RuntimeError`), so `except ValueError` keeps working.
"""

from __future__ import annotations


class JaxgenError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class UserError(JaxgenError, ValueError):
    """A bad setting, argument or input (data of the wrong shape, an unknown option, ...)."""


class ConfigError(UserError):
    """A config file, key or value the user has to fix."""


class UnknownNameError(UserError):
    """An unknown model, objective, dataset, command or reproduction name."""


class UsageError(UserError):
    """A command-line argument that does not fit the command."""


class ContractError(UserError):
    """A family's or a plugin's function broke the objective contract (a loss that returns a
    bare scalar, per-example values, a vector metric, a reserved metric name, ...)."""


class MissingError(JaxgenError, FileNotFoundError):
    """A file or run the command needs is not there (no run.json, no checkpoint, ...)."""


class CheckpointError(JaxgenError, RuntimeError):
    """A checkpoint that fails its manifest or cannot be read (damaged, truncated, partly
    deleted); the message names it and what is wrong."""


class WorkdirError(UserError):
    """A --workdir jaxgen may not write: someone else's folder, or one another jaxgen
    process is training in."""


class NonFiniteLossError(JaxgenError, RuntimeError):
    """Training met a NaN or inf; the message names the step and keeps the last good
    checkpoint."""


class NonFiniteResultError(NonFiniteLossError):
    """`sample` or `eval` computed NaN or inf: nothing is written, and the message names
    the checkpoint and the params (raw or EMA) that gave it (exit 1, as for a loss)."""


def choices_error(kind: str, name, choices) -> UnknownNameError:
    """"Unknown KIND 'NAME'. Valid choices: ..." """
    return UnknownNameError(
        f"Unknown {kind} '{name}'. Valid choices: {', '.join(sorted(map(str, choices)))}.")
