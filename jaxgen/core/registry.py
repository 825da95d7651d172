"""Name -> builder tables for objectives, models and CLI commands.

The core knows no family by name: each family registers itself from its own folder
(`jaxgen/families/<family>/__init__.py`), the networks register from
`jaxgen.nn.catalog`. The first lookup loads those two packages (by their import
path, the way a plugin is loaded), and every entry point of the group "jaxgen.plugins"
(an installed package's module whose import registers its names), so
`registry.objective_spec("ddpm")` works without importing anything first.

Plugins: `objective.name` and `model.name` may also be a reference to a builder outside
jaxgen, an import path "pkg.module:make" or a file "path/to/file.py:make" (resolved to an
absolute path when the config is resolved, so config.json rebuilds the run from anywhere).
An objective reference names an `ObjectiveSpec`, or a builder `make(ctx)` (its declared
settings attached with the `objective` decorator); a model reference names a Flax module
class or a `ModelSpec`.

    register_objective(ObjectiveSpec("ddpm", "jaxgen.families.diffusion.ddpm:make",
                                     settings=DDPMSettings, sample=DDPMSample, ...))
    register_model("unet", ModelSpec("jaxgen.nn.unet:UNet", kinds=("images",)))
    register_command(Command("invert", "GAN inversion: ...", configure, run))

Builders are given as "module:function" strings (imported when first used) or as the
objects themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, Callable

from jaxgen.core import settings
from jaxgen.core.errors import MissingError, UnknownNameError, UserError, choices_error
from jaxgen.core.settings import NoSettings

# The packages whose import registers the built-in names.
BUILTIN_PACKAGES = ("jaxgen.nn.catalog", "jaxgen.families")
PLUGIN_GROUP = "jaxgen.plugins"  # entry points whose import registers names


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
        for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
            ep.load()


# ------------------------------------------------------------------- plugins
def is_reference(name: str) -> bool:
    """Whether a name is a plugin reference "module:attr" / "file.py:attr"."""
    target, sep, attr = str(name).rpartition(":")
    return bool(sep and target and attr)


def _is_file(target: str) -> bool:
    return target.endswith(".py")


def absolute_reference(name: str) -> str:
    """A file reference with a relative path made absolute (against the working folder)."""
    if not is_reference(name):
        return name
    target, _, attr = name.rpartition(":")
    if _is_file(target) and not Path(target).expanduser().is_absolute():
        return f"{(Path.cwd() / Path(target).expanduser()).resolve()}:{attr}"
    return name


def missing_file(name: str) -> bool:
    """Whether `name` is a file reference whose file is not there (moved or deleted)."""
    if not is_reference(name):
        return False
    target = name.rpartition(":")[0]
    return _is_file(target) and not Path(target).expanduser().is_file()


def repointed(old: str, new: str) -> bool:
    """Whether `new` re-points the file reference `old` to another folder: the same file name
    and attribute (a moved plugin file), e.g. /a/loss.py:make -> /b/loss.py:make."""
    if old == new or not (is_reference(old) and is_reference(new)):
        return False
    (a, _, attr_a), (b, _, attr_b) = old.rpartition(":"), new.rpartition(":")
    return (_is_file(a) and _is_file(b) and attr_a == attr_b
            and Path(a).name == Path(b).name)


def _module_from_file(path: Path):
    path = path.resolve()
    name = f"jaxgen_plugin_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _check_file(name: str, key: str) -> None:
    """A MissingError if a file reference's file is not there (also for a cached one)."""
    target, _, attr = name.rpartition(":")
    if _is_file(target) and not Path(target).expanduser().is_file():
        raise MissingError(
            f"{key}={name}: {Path(target).expanduser()} does not exist (the file is gone or "
            f"has moved). Put it back, or point to its new place: "
            f"--config.{key}=NEW/PATH.py:{attr}")


def load_reference(name: str, key: str):
    """The object a plugin reference names; `key` (e.g. "objective.name") words the errors."""
    target, _, attr = name.rpartition(":")
    _check_file(name, key)
    if _is_file(target):
        module = _module_from_file(Path(target).expanduser())
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name and (target == e.name or target.startswith(e.name + ".")):
                raise UnknownNameError(f"{key}={name}: there is no module {target} (is its "
                                       "package installed, or its folder on PYTHONPATH?)"
                                       ) from None
            raise
    if not hasattr(module, attr):
        raise UnknownNameError(f"{key}={name}: {target} defines no {attr}.")
    return getattr(module, attr)


def objective(settings: type = NoSettings, sample: type = NoSettings, eval: type = NoSettings,
              kinds: tuple[str, ...] = ("points", "images"), summary: str = ""):
    """Declares a plugin builder's settings: `@objective(settings=MySettings) def make(ctx)`;
    a config then names it as "path/to/file.py:make" (or "pkg.module:make")."""
    def mark(make):
        make.jaxgen_spec = ObjectiveSpec(make.__name__, make, settings, sample, eval, kinds,
                                         summary or (make.__doc__ or "").strip().split("\n")[0])
        return make
    return mark


def _plugin_objective(name: str) -> ObjectiveSpec:
    obj = load_reference(name, "objective.name")
    if isinstance(obj, ObjectiveSpec):
        spec = obj
    elif callable(obj):
        spec = getattr(obj, "jaxgen_spec", None) or ObjectiveSpec(name, obj)
    else:
        raise UserError(f"objective.name={name} is a {type(obj).__name__}; it must name an "
                        "ObjectiveSpec or a builder make(ctx) -> Objective.")
    return dataclasses.replace(spec, name=name)


def _plugin_model(name: str) -> ModelSpec:
    obj = load_reference(name, "model.name")
    if isinstance(obj, ModelSpec):
        return obj
    import flax.linen as nn
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return ModelSpec(obj, ("points", "images", "tokens"))
    raise UserError(f"model.name={name} is a {type(obj).__name__}; it must name a Flax "
                    "module class or a ModelSpec.")


def _unknown(kind: str, key: str, name: str, choices, attr: str) -> UnknownNameError:
    """The unknown-name error; a file path or import path without ":ATTRIBUTE" is told so."""
    name = str(name)
    if name.endswith(".py") or "/" in name or (
            "." in name and all(part.isidentifier() for part in name.split("."))):
        what, form = (("a file reference", "FILE.py:ATTRIBUTE")
                      if name.endswith(".py") or "/" in name
                      else ("an import-path reference", "pkg.module:ATTRIBUTE"))
        return UnknownNameError(
            f"{key}={name}: {what} needs the name of what it refers to after a colon "
            f"({form}), e.g. --config.{key}={name}:{attr}")
    return choices_error(f"{kind} ({key})", name, choices)


def register_objective(spec: ObjectiveSpec) -> ObjectiveSpec:
    """Adds (or replaces) an objective; returns the spec."""
    _OBJECTIVES[spec.name] = spec
    return spec


def objective_spec(name: str) -> ObjectiveSpec:
    _load_builtins()
    if is_reference(name):
        _check_file(name, "objective.name")
    if name not in _OBJECTIVES:
        if not is_reference(name):
            raise _unknown("objective", "objective.name", name, objective_names(), "make")
        _OBJECTIVES[name] = _plugin_objective(name)
    return _OBJECTIVES[name]


def objective_names() -> list[str]:
    """The registered names (plugin references that were used are not listed)."""
    _load_builtins()
    return sorted(n for n in _OBJECTIVES if not is_reference(n))


def objective_specs() -> list[ObjectiveSpec]:
    _load_builtins()
    return [_OBJECTIVES[n] for n in objective_names()]


def build_objective(config, model, data, **hooks):
    """The `Objective` of `config.objective.name` for this model and data; `hooks` go to
    the builder (a family's replacement `loss`, DDPM's `weight`, ...).

    A plugin's objective is named by the reference the config gives, with the name its
    builder chose after it ("/path/my_loss.py:make (flow_matching)" for a family's make
    with a new loss), so contract errors, the run summary and run.json name the user's
    file, not only the family."""
    from jaxgen.core.contract import BuildContext
    name = config.objective.name
    spec = objective_spec(name)
    check_data_kind(spec, data)
    ctx = BuildContext(model=model, data=data, settings=objective_settings(config),
                       eval=family_settings(spec.eval, config.get("eval", {}), "eval"),
                       config=config)
    objective = resolve(spec.build)(ctx, **hooks)
    if is_reference(name) and objective.name != name:
        objective = dataclasses.replace(objective, name=f"{name} ({objective.name})")
    return objective


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
    event_rank: the number of dimensions of one example it takes (e.g. 3: H x W x C);
      None: any.
    """

    module: Any
    kinds: tuple[str, ...] = ("points", "images")
    defaults: Callable | None = None
    hint: str = ""
    expects: str = ""
    event_rank: int | None = None


def register_model(name: str, spec: ModelSpec) -> ModelSpec:
    _MODELS[name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    _load_builtins()
    if is_reference(name):
        _check_file(name, "model.name")
    if name not in _MODELS:
        if not is_reference(name):
            raise _unknown("model", "model.name", name, model_names(), "MyNet")
        _MODELS[name] = _plugin_model(name)
    return _MODELS[name]


def model_names() -> list[str]:
    _load_builtins()
    return sorted(n for n in _MODELS if not is_reference(n))


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
    rank_ok = spec.event_rank is None or len(data.event_shape) == spec.event_rank
    if data.kind not in spec.kinds or not rank_ok:
        holds = f"points {tuple(data.event_shape)}" if data.kind == "points" else (
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
