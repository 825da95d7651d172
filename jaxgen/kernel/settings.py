"""Declared settings: every config key has one default, one type and a one-line doc.

A group of settings is a frozen dataclass whose fields are made by `setting`:

    @dataclasses.dataclass(frozen=True)
    class DDPMSettings:
        num_steps: int = setting(1000, "T, the number of diffusion steps", check=positive)
        schedule: str = setting("linear", "the beta schedule", choices=("linear", "cosine"))

The config system (`jaxgen.kernel.config`) merges the defaults of the groups a config
uses into its `ConfigDict`, so every key exists, shows in config.json and can be
overridden from the CLI; `build` turns the group's keys back into the dataclass,
and an unknown key, a wrong type or a value outside `choices` is one `ConfigError`
naming the key and listing the valid ones. `describe` gives the docs `jaxgen config`
prints.

This module imports nothing heavy: families import it from their `config.py`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

from jaxgen.kernel.errors import ConfigError

_DOC, _CHOICES, _CHECK = "jaxgen_doc", "jaxgen_choices", "jaxgen_check"


def setting(default: Any, doc: str, *, choices: tuple | None = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
    """A dataclass field with its default, a one-line `doc`, and optionally the values it
    may take (`choices`) or a `check(value) -> error text or None` (e.g. `positive`)."""
    if not doc or "\n" in doc:
        raise TypeError(f"a setting needs a one-line doc, got {doc!r}")
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default,
                             metadata={_DOC: doc, _CHOICES: choices, _CHECK: check})


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """A part (objective, sampler, estimator) that takes no settings."""


# ------------------------------------------------------------------- checks
def positive(v) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v) -> str | None:
    return None if v >= 0 else "must be >= 0"


def unit_interval(v) -> str | None:
    return None if 0 <= v <= 1 else "must lie in [0, 1]"


# -------------------------------------------------------------- introspection
def fields(schema) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(schema)


def names(schema) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def defaults(schema) -> dict:
    return {f.name: f.default for f in dataclasses.fields(schema)}


def field_type(schema, name: str):
    return typing.get_type_hints(schema)[name]


def doc(schema, name: str) -> str:
    f = next(f for f in dataclasses.fields(schema) if f.name == name)
    return f.metadata.get(_DOC, "")


def describe(schema) -> list[tuple[str, Any, str, str]]:
    """(name, default, type name, doc) of every field."""
    hints = typing.get_type_hints(schema)
    out = []
    for f in dataclasses.fields(schema):
        d = f.metadata.get(_DOC, "")
        ch = f.metadata.get(_CHOICES)
        if ch:
            d = f"{d} ({' | '.join(map(str, ch))})"
        out.append((f.name, f.default, type_name(hints[f.name]), d))
    return out


def type_name(t) -> str:
    if t in (int, float, str, bool):
        return t.__name__
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(t))
    if t is type(None):
        return "None"
    if origin is tuple or t is tuple:
        return "tuple"
    return getattr(t, "__name__", str(t))


# ----------------------------------------------------------------- coercion
def _optional(t):
    """(inner type, True) for `X | None`, else (t, False)."""
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(t)) == 2:
            return args[0], True
    return t, False


def coerce(value, t, key: str):
    """`value` as declared type `t` (int -> float, list -> tuple), or a ConfigError."""
    inner, optional = _optional(t)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must be a {type_name(t)}, got None.")
    t = inner
    if t is bool:
        if isinstance(value, bool):
            return value
    elif t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif t is str:
        if isinstance(value, str):
            return value
    elif t is tuple or typing.get_origin(t) is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
    elif t is Any:
        return value
    else:
        raise TypeError(f"{key}: settings of type {t} are not supported")
    raise ConfigError(f"{key} must be a {type_name(t)}, got {value!r} "
                      f"({type(value).__name__}).")


def parse(text: str, t, key: str):
    """A command-line string as declared type `t`, with ml_collections' and absl's parsers
    (the ones `ml_collections.config_flags` uses for --config.KEY=VALUE)."""
    from absl import flags
    from ml_collections.config_flags import tuple_parser

    inner, optional = _optional(t)
    if optional and text.strip().lower() == "none":
        return None
    parsers = {bool: flags.BooleanParser(), int: flags.IntegerParser(),
               float: flags.FloatParser(), str: flags.ArgumentParser()}
    parser = parsers.get(inner)
    if parser is None and (inner is tuple or typing.get_origin(inner) is tuple):
        parser = tuple_parser.TupleParser()
    if parser is None:
        raise ConfigError(f"--config.{key}: values of type {type_name(t)} cannot be set "
                          "from the command line.")
    try:
        value = parser.parse(text)
    except (ValueError, SyntaxError):
        if inner is bool:
            raise ConfigError(f"--config.{key}={text}: expected true or false.") from None
        raise ConfigError(f"--config.{key}={text}: expected {type_name(inner)}.") from None
    return coerce(value, t, key)


def validate_value(schema, name: str, value, key: str):
    """The coerced value of field `name`, checked against its choices and check."""
    f = next(f for f in dataclasses.fields(schema) if f.name == name)
    value = coerce(value, field_type(schema, name), key)
    choices = f.metadata.get(_CHOICES)
    if choices and value is not None and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, "
                          f"got {value!r}.")
    if isinstance(value, float) and not math.isfinite(value) and math.isfinite(f.default or 0):
        raise ConfigError(f"{key} must be a finite number, got {value!r}.")
    check = f.metadata.get(_CHECK)
    if check is not None and value is not None:
        problem = check(value)
        if problem:
            raise ConfigError(f"{key} {problem}, got {value!r}.")
    return value


def raised_in(e: BaseException, path) -> str:
    """"FILE:LINE: Kind: message" of an exception a user's file raised while it was loaded
    (a syntax error, or an error in its code), for a one-line message."""
    import traceback
    line = getattr(e, "lineno", None) if isinstance(e, SyntaxError) else None
    if line is None:
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if Path(f.filename).resolve() == Path(path).resolve()]
        line = frames[-1].lineno if frames else None
    text = (e.msg if isinstance(e, SyntaxError) else str(e)).strip().splitlines()
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


INLINE_KEYS = 25  # a group with more valid keys is not listed in an error, only pointed to


def unknown_key_error(key: str, valid: list[str], what: str = "") -> ConfigError:
    """One line: the key, the close matches, the valid keys when they are few (a group's),
    and where every key is listed with its doc."""
    close = difflib.get_close_matches(key, valid, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    where = "`jaxgen config CFG` lists every key of a config with its doc"
    keys = f"{', '.join(valid)} ({where})" if len(valid) <= INLINE_KEYS else where
    return ConfigError(f"Unknown config key '{key}'{what}.{hint} Valid keys: {keys}.")


def build(schema, values: Mapping, prefix: str, *, ignore: tuple = ()):
    """The dataclass `schema` from a group's keys (`values`), every value validated;
    keys in `ignore` are someone else's (e.g. `name`). Unknown keys are an error."""
    valid = names(schema)
    kwargs = {}
    for k, v in values.items():
        if k in ignore:
            continue
        if k not in valid:
            raise unknown_key_error(f"{prefix}.{k}",
                                    [f"{prefix}.{n}" for n in [*ignore, *valid]])
        kwargs[k] = validate_value(schema, k, v, f"{prefix}.{k}")
    return schema(**kwargs)
