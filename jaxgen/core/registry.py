"""Name -> builder tables for objectives, models and CLI commands.

The core knows no family by name: each family registers itself from its own folder
(`jaxgen/families/<family>/__init__.py`), the networks register from
`jaxgen.nn.catalog`. The first lookup loads those two packages (by their import
path, the way a plugin is loaded), so `registry.objective_spec("ddpm")` works without
importing anything first.

    register_objective(ObjectiveSpec("ddpm", "jaxgen.families.diffusion.ddpm:make",
                                     settings=DDPMSettings, sample=DDPMSample, ...))
    register_model("unet", ModelSpec("jaxgen.nn.unet:UNet", kinds=("images",)))
    register_command(Command("invert", "GAN inversion: ...", configure, run))

Builders are given as "module:function" strings (imported when first used) or as the
objects themselves.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable

from jaxgen.core import settings
from jaxgen.core.errors import UnknownNameError, UserError, choices_error
from jaxgen.core.settings import NoSettings

# The packages whose import registers the built-in names.
BUILTIN_PACKAGES = ("jaxgen.nn.catalog", "jaxgen.families")


def resolve(target):
    """A "module:attribute" string -> the attribute (objects pass through)."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------- objectives
@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective.

    name: the config's objective.name.
    build: `(BuildContext) -> Objective`, or its "module:function".
    settings / sample / eval: the frozen dataclasses declaring its objective.*,
      sample.* and eval.* settings (`jaxgen.core.settings`).
    kinds: the data kinds it models ("points", "images", "tokens").
    summary: what it is, in a few words (listings and error messages).
    """

    name: str
    build: Any
    settings: type = NoSettings
    sample: type = NoSettings
    eval: type = NoSettings
    kinds: tuple[str, ...] = ("points", "images")
    summary: str = ""


_OBJECTIVES: dict[str, ObjectiveSpec] = {}
_MODELS: dict[str, ModelSpec] = {}
_COMMANDS: dict[str, Command] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for pkg in BUILTIN_PACKAGES:
            importlib.import_module(pkg)


def register_objective(spec: ObjectiveSpec) -> ObjectiveSpec:
    """Adds (or replaces) an objective; returns the spec."""
    _OBJECTIVES[spec.name] = spec
    return spec


def objective_spec(name: str) -> ObjectiveSpec:
    _load_builtins()
    if name not in _OBJECTIVES:
        raise choices_error("objective (objective.name)", name, _OBJECTIVES)
    return _OBJECTIVES[name]


def objective_names() -> list[str]:
    _load_builtins()
    return sorted(_OBJECTIVES)


def objective_specs() -> list[ObjectiveSpec]:
    _load_builtins()
    return [_OBJECTIVES[n] for n in sorted(_OBJECTIVES)]


def build_objective(config, model, data):
    """The `Objective` of `config.objective.name` for this model and data."""
    from jaxgen.core.contract import BuildContext
    spec = objective_spec(config.objective.name)
    check_data_kind(spec, data)
    ctx = BuildContext(model=model, data=data, settings=objective_settings(config),
                       eval=family_settings(spec.eval, config.get("eval", {}), "eval"),
                       config=config)
    return resolve(spec.build)(ctx)


def check_data_kind(spec: ObjectiveSpec, data) -> None:
    """A UserError unless the objective models this kind of data (naming those that do)."""
    if data.kind in spec.kinds:
        return
    takers = [s for s in objective_specs() if data.kind in s.kinds]
    what = {"tokens": "integer code maps (tokens)"}.get(data.kind, data.kind)
    raise UserError(
        f"{data.name} holds {what}; only "
        + " or ".join(f"{s.summary or s.name} (objective.name={s.name})" for s in takers)
        + f" model{'s' if len(takers) == 1 else ''} them, not {spec.name}.")


def objective_settings(config):
    """config.objective.* as its objective's declared settings (a frozen dataclass)."""
    spec = objective_spec(config.objective.name)
    return settings.build(spec.settings, dict(config.objective), "objective", ignore=("name",))


def sample_settings(config):
    """The objective's declared sample.* settings of `config`."""
    spec = objective_spec(config.objective.name)
    return family_settings(spec.sample, config.get("sample", {}), "sample")


def family_settings(schema, group, prefix: str):
    """The family's part of a shared group (sample.*, eval.*): its own keys only; the
    generic keys of the group belong to the core and were checked there."""
    own = set(settings.names(schema))
    return settings.build(schema, {k: v for k, v in dict(group).items() if k in own}, prefix)


# -------------------------------------------------------------------- models
@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered network.

    module: the Flax module class, or its "module:Class".
    kinds: the data kinds it accepts (a clear error names the alternatives).
    defaults: optional `(kwargs, data) -> kwargs`, filling fields from the data
      (e.g. event_shape, a sequence model's max_len) where the config leaves them out.
    hint: what to use instead, for the error on another kind of data.
    expects: how that error says what it takes (default "expects <kinds>").
    """

    module: Any
    kinds: tuple[str, ...] = ("points", "images")
    defaults: Callable | None = None
    hint: str = ""
    expects: str = ""


def register_model(name: str, spec: ModelSpec) -> ModelSpec:
    _MODELS[name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    _load_builtins()
    if name not in _MODELS:
        raise choices_error("model (model.name)", name, _MODELS)
    return _MODELS[name]


def model_names() -> list[str]:
    _load_builtins()
    return sorted(_MODELS)


def model_fields(name: str) -> list[str]:
    """The model.* keys model `name` takes (its module's dataclass fields)."""
    cls = resolve(model_spec(name).module)
    return sorted({f.name for f in dataclasses.fields(cls)} - {"parent", "name"})


def event_shape_default(kwargs: dict, data) -> dict:
    """`defaults` for modules with an `event_shape` field."""
    kwargs.setdefault("event_shape", tuple(data.event_shape))
    return kwargs


def max_len_default(kwargs: dict, data) -> dict:
    """`defaults` for sequence models: max_len = the number of positions D."""
    kwargs.setdefault("max_len", math.prod(data.event_shape))
    return kwargs


def build_model(model_config, data):
    """Instantiates the Flax module named by `model.name` with the other `model.*` keys."""
    name = model_config.name
    spec = model_spec(name)
    if data.kind not in spec.kinds:
        holds = "points" if data.kind == "points" else (
            f"images {tuple(data.event_shape)}" if data.kind == "images" else data.kind)
        expects = spec.expects or f"expects {' or '.join(spec.kinds)}"
        raise UserError(f"model.name={name} {expects}; {data.name} holds {holds}."
                        f"{(' ' + spec.hint) if spec.hint else ''}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v)
              for k, v in model_config.to_dict().items() if k != "name"}
    if spec.defaults is not None:
        kwargs = spec.defaults(kwargs, data)
    cls = resolve(spec.module)
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise UnknownNameError(
            f"model.{unknown[0]} is not a setting of model '{name}'. "
            f"Valid model.* keys: {', '.join(sorted(fields))}.")
    return cls(**kwargs)


# ------------------------------------------------------------------ commands
@dataclasses.dataclass(frozen=True)
class Command:
    """A `jaxgen NAME` subcommand a family (or another package) adds.

    configure: `(argparse parser) -> None`, adds the command's arguments.
    run: `(args, overrides) -> None`, or its "module:function"; `overrides` are the
      `--config.KEY=VALUE` strings given with it.
    """

    name: str
    help: str
    configure: Callable
    run: Any


def register_command(command: Command) -> Command:
    _COMMANDS[command.name] = command
    return command


def commands() -> list[Command]:
    _load_builtins()
    return list(_COMMANDS.values())
