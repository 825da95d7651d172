"""Name -> builder tables for objectives, models, datasets, metrics and CLI commands.

The kernel knows no family or dataset by name: each family registers itself from its own
folder (`jaxgen/families/<family>/__init__.py`), the networks from `jaxgen.nn.catalog`,
the datasets from their modules (`jaxgen/data/datasets/`, and the composed runs'
`jaxgen/composed/`), the metrics from `jaxgen.eval.metrics`. The first lookup imports
those packages (by their import path, the way a plugin is loaded; each package imports
its own modules, `import_submodules`), and every entry point of the group
"jaxgen.plugins" (an installed package's module whose import registers its names), so
`registry.objective_spec("ddpm")` works without importing anything first.

Plugins: `objective.name`, `model.name` and `data.name` may also be a reference to a
builder outside jaxgen, an import path "pkg.module:make" or a file "path/to/file.py:make"
(resolved to an absolute path when the config is resolved, so config.json rebuilds the
run from anywhere). An objective reference names an `ObjectiveSpec`, or a builder
`make(ctx)` (its declared settings attached with the `objective` decorator); a model
reference names a Flax module class or a `ModelSpec`; a dataset reference names a
`DatasetSpec`, or a builder `make(settings, split) -> Dataset` (its settings attached
with the `dataset` decorator).

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

from jaxgen.kernel import settings
from jaxgen.kernel.errors import (
    ConfigError,
    MissingError,
    UnknownNameError,
    UserError,
    choices_error,
)
from jaxgen.kernel.settings import NoSettings

# The packages whose import registers the built-in names.
BUILTIN_PACKAGES = ("jaxgen.nn.catalog", "jaxgen.families", "jaxgen.data.datasets",
                    "jaxgen.composed", "jaxgen.eval.metrics", "jaxgen.eval.inception")
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
      sample.* and eval.* settings (`jaxgen.kernel.settings`).
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
_DATASETS: dict[str, DatasetSpec] = {}
_METRICS: dict[str, Metric] = {}
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


def import_submodules(package: str) -> list[str]:
    """Imports every module and subpackage directly inside `package` (those whose name does
    not start with "_"), in name order, and returns their names: how a package of plugins
    (the families, the datasets) registers all of its members with no hand-kept list."""
    import pkgutil
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


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
        except Exception as e:  # noqa: BLE001 - the user's file: one line saying where and what
            del sys.modules[name]
            raise UserError(f"{settings.raised_in(e, path)}; fix the plugin file.") from e
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
    from jaxgen.kernel.contract import BuildContext
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


# Module fields the trainer sets from its own settings (train.remat), not model.* keys.
TRAINER_FIELDS = ("remat",)


def model_fields(name: str) -> list[str]:
    """The model.* keys model `name` takes (its module's dataclass fields)."""
    cls = resolve(model_spec(name).module)
    return sorted({f.name for f in dataclasses.fields(cls)} - {"parent", "name",
                                                                *TRAINER_FIELDS})


def models_with_field(field: str) -> list[str]:
    """The registered models whose module has `field` (e.g. "remat")."""
    return [m for m in model_names()
            if field in {f.name for f in dataclasses.fields(resolve(model_spec(m).module))}]


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
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", *TRAINER_FIELDS}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise UnknownNameError(
            f"model.{unknown[0]} is not a setting of model '{name}'. "
            f"Valid model.* keys: {', '.join(sorted(fields))}.")
    return cls(**kwargs)


# ------------------------------------------------------------------ datasets
@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    name: the config's data.name; with `prefix`, every name "<name><rest>" ("tfds:" matches
      "tfds:mnist").
    build: `(settings, split) -> Dataset` (`jaxgen.kernel.contract.Dataset`), or its
      "module:function". `split` is "train" or "test" (a config's "eval" arrives as
      "test"); with `any_split`, any split string of the source (tfds's "train[:90%]").
      A prefix's builder also gets the whole name (`name=`).
    settings: the frozen dataclass declaring its data.* keys (besides data.name).
    summary: what it is, in a few words (`jaxgen list`, `jaxgen config`).
    kind: the kind of data it holds ("points", "images", "tokens"); "" when the user's
      files decide.
    class_names: readable label names (picture rows), () when it has none.
    features: "module:attribute" of the feature space its Fréchet distance and
      precision/recall use ('' none).
    held_out: `settings -> bool`: whether the held-out split is a file of the user's own,
      checked against the training split when training starts (None: never).
    decoder: `settings -> Decoder | None`, or its "module:function": for data that are
      another run's latents or codes, what turns samples into pictures (None: samples are
      pictures already).
    prefix / any_split: see name and build.
    listed: how `jaxgen list` and errors show it ('' = name; "tfds:<name>").
    """

    name: str
    build: Any
    settings: type = NoSettings
    summary: str = ""
    kind: str = ""
    class_names: tuple = ()
    features: str = ""
    held_out: Callable | None = None
    decoder: Any = None
    prefix: bool = False
    any_split: bool = False
    listed: str = ""


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Adds (or replaces) a dataset; returns the spec."""
    _DATASETS[spec.name] = spec
    return spec


def dataset(settings: type = NoSettings, kind: str = "", summary: str = "",
            class_names: tuple = (), features: str = ""):
    """Declares a dataset plugin's settings: `@dataset(settings=MySettings, kind="points")
    def make(settings, split) -> Dataset`; a config then names it as
    data.name="path/to/file.py:make" (or "pkg.module:make")."""
    def mark(make):
        make.jaxgen_spec = DatasetSpec(make.__name__, make, settings, summary or (
            make.__doc__ or "").strip().split("\n")[0], kind, tuple(class_names), features)
        return make
    return mark


def _plugin_dataset(name: str) -> DatasetSpec:
    obj = load_reference(name, "data.name")
    if isinstance(obj, DatasetSpec):
        spec = obj
    elif callable(obj):
        spec = getattr(obj, "jaxgen_spec", None) or DatasetSpec(name, obj)
    else:
        raise UserError(f"data.name={name} is a {type(obj).__name__}; it must name a "
                        "DatasetSpec or a builder make(settings, split) -> Dataset.")
    return dataclasses.replace(spec, name=name, prefix=False, listed="")


def dataset_spec(name: str) -> DatasetSpec:
    """The dataset `name` names: a registered name, a registered prefix ("tfds:mnist"), or a
    plugin reference ("path/my_data.py:make")."""
    _load_builtins()
    name = str(name)
    if name in _DATASETS and not _DATASETS[name].prefix:
        return _DATASETS[name]
    for spec in _DATASETS.values():
        if spec.prefix and name.startswith(spec.name) and len(name) > len(spec.name):
            return spec
    if is_reference(name):
        _check_file(name, "data.name")
        if name not in _DATASETS:
            _DATASETS[name] = _plugin_dataset(name)
        return _DATASETS[name]
    raise UnknownNameError(f"unknown dataset {name!r} (data.name); valid names: "
                           f"{', '.join(dataset_names())}, or a plugin "
                           "data.name=path/to/my_data.py:make")


_KIND_ORDER = ("points", "images", "tokens", "")


def dataset_specs() -> list[DatasetSpec]:
    """The registered datasets (plugin references that were used are not listed), by kind
    (points, images, tokens, then those whose files decide) and name."""
    _load_builtins()
    specs = [s for n, s in _DATASETS.items() if not is_reference(n)]
    rank = {k: i for i, k in enumerate(_KIND_ORDER)}
    return sorted(specs, key=lambda s: (rank.get(s.kind, len(rank)), s.listed or s.name))


def dataset_names() -> list[str]:
    """The valid data.name values ("tfds:<name>" stands for any prepared tfds dataset)."""
    return [s.listed or s.name for s in dataset_specs()]


def _plain(value):
    return tuple(value) if isinstance(value, list) else value


def dataset_keys(name: str, values) -> dict:
    """The data.* keys of `values` (a config's data group, a dict) that dataset `name`
    declares, data.name aside. A key it does not declare is dropped when its value is the
    default another dataset declares for it (what is left after switching data.name, and
    the keys of config.json files written when every dataset's keys were in every
    config); any other is one error naming the keys the dataset uses."""
    spec = dataset_spec(name)
    own = settings.names(spec.settings)
    out = {}
    for key in (values.keys() if hasattr(values, "keys") else ()):
        value = _plain(values[key])
        if key == "name":
            continue
        if key in own:
            out[key] = value
            continue
        if any(key in settings.names(s.settings)
               and _plain(settings.defaults(s.settings)[key]) == value
               for s in _DATASETS.values()):
            continue
        raise data_key_error(name, key, value)
    return out


def data_key_error(name: str, key: str, value, text: bool = False) -> ConfigError:
    """The error of a data.* key dataset `name` does not declare, naming those it uses
    (`text`: the value as given on the command line)."""
    own = settings.names(dataset_spec(name).settings)
    uses = ", ".join("data." + k for k in ["name", *sorted(own)])
    shown = value if text else repr(value)
    return ConfigError(f"data.{key}={shown} does not apply to data.name={name}; it uses "
                       f"{uses}. Drop data.{key}.")


def dataset_settings(data_config):
    """config.data as its dataset's declared settings (a frozen dataclass)."""
    name = _plain(data_config.get("name") if hasattr(data_config, "get") else None)
    return settings.build(dataset_spec(name).settings, dataset_keys(name, data_config), "data")


def build_dataset(data_config, split: str):
    """The `split` ("train", "test" or "eval" = "test") of the dataset `data_config.name`
    names, built from its declared settings (`data_config`: a config's data group or a
    dict)."""
    from jaxgen.kernel.contract import SPLITS, Dataset
    name = data_config.get("name") if hasattr(data_config, "get") else None
    if not isinstance(name, str):
        raise UserError(f"data.name must be a string, got {name!r}; valid: "
                        f"{', '.join(dataset_names())}")
    spec = dataset_spec(name)
    s = dataset_settings(data_config)
    if not spec.any_split and split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    by_name = {"name": name} if spec.prefix else {}  # a prefix's builder: which one
    got = resolve(spec.build)(s, "test" if split == "eval" else split, **by_name)
    if not isinstance(got, Dataset):
        raise UserError(f"data.name={name}: its builder returned a {type(got).__name__}, "
                        "not a jaxgen.kernel.contract.Dataset.")
    return dataclasses.replace(got, name=name, class_names=got.class_names or spec.class_names,
                               features=got.features or spec.features)


def class_names(name: str, num_classes: int) -> list[str]:
    """Readable class names of dataset `name` for picture labels ("class k" when it has
    none)."""
    try:
        names = dataset_spec(name).class_names
    except UnknownNameError:
        names = ()
    return list(names) if names else [f"class {k}" for k in range(num_classes)]


def check_held_out(data_config, train) -> None:
    """Refuses held-out data that do not fit the training data (another shape, kind, or
    number of classes or codes), at train time rather than at the first `jaxgen eval`.
    Only a dataset whose held-out split is the user's own file is checked."""
    spec = dataset_spec(data_config.get("name"))
    s = dataset_settings(data_config)
    if spec.held_out is None or not spec.held_out(s):
        return
    held = build_dataset(data_config, "test")
    fields = (("event shape", "event_shape"), ("kind", "kind"),
              ("number of classes", "num_classes"), ("number of codes", "num_tokens"))
    for what, attr in fields:
        a, b = getattr(train, attr), getattr(held, attr)
        if a != b and not (attr == "num_classes" and None in (a, b)):  # labels are optional
            raise UserError(
                f"data.eval_path={getattr(s, 'eval_path', '')} does not fit the training "
                f"data data.path={getattr(s, 'path', '')}: its {what} is {b}, the training "
                f"data's {a}. Pass held-out data of the same form (or drop data.eval_path).")


def dataset_decoder(data_config):
    """The `Decoder` of the dataset's samples when they are another run's latents or codes,
    else None."""
    spec = dataset_spec(data_config.get("name"))
    if spec.decoder is None:
        return None
    return resolve(spec.decoder)(dataset_settings(data_config))


# ------------------------------------------------------------------- metrics
@dataclasses.dataclass(frozen=True)
class Metric:
    """A quantity `jaxgen eval` reports where it applies (`jaxgen.eval.metrics`).

    name: what it is called (listings).
    applies: `(ctx) -> bool`, with `ctx` the evaluation's context
      (`jaxgen.eval.metrics.EvalContext`: the run, its params, the held-out data, the
      results so far).
    compute: `(ctx) -> dict` of results (flat, JSON-able), merged into the record.
    order: where its results go in the record, lower first.
    """

    name: str
    applies: Callable
    compute: Callable
    order: int = 100


def register_metric(metric: Metric) -> Metric:
    _METRICS[metric.name] = metric
    return metric


def metrics() -> list[Metric]:
    """Every registered metric, in record order."""
    _load_builtins()
    return sorted(_METRICS.values(), key=lambda m: (m.order, m.name))


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
