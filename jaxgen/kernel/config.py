"""Configs: declared settings, config files, `--config.KEY=VALUE` overrides, resolution.

A config file defines `get_config() -> ml_collections.ConfigDict`, built on
`base_config()`. Every key has one declaration with a default and a one-line doc:

    seed, optim.*, train.*                the groups below (`OptimSettings`, ...)
    sample.num, eval.* (generic part)     `SampleSettings`, `EvalSettings`
    data.*                                the dataset data.name names declares them
                                            (`jaxgen.kernel.registry.DatasetSpec`)
    model.*                               the fields of the Flax module model.name names
    objective.*, and the objective's      the family's frozen dataclasses, registered with
      own sample.* and eval.* keys          its name (`jaxgen.kernel.registry.ObjectiveSpec`)

`resolve` merges the declared defaults of the groups a config uses into it, so every
key exists, shows in config.json and can be overridden; a key nobody declares, in the
file or on the command line, is one `ConfigError` listing the valid keys. Overrides are
parsed with the declared type by ml_collections' and absl's parsers.
`jaxgen config CFG` prints the resolved config with each key's doc (`describe`).

Shipped configs are the package `jaxgen.configs` (the folder configs/ of the checkout),
so `--config flow_matching/toy2d` works from any folder and any install. A config
builds on another in one line:

    from jaxgen.configs.gan.ns_toy2d import get_config as base   # then c = base()

(or `load_config_file(PATH)` for a file of your own).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable

import ml_collections

from jaxgen.kernel import registry, settings
from jaxgen.kernel.errors import ConfigError, UnknownNameError
from jaxgen.kernel.settings import non_negative, positive, setting, unit_interval

__all__ = ["ConfigError", "base_config", "load_config", "load_config_file", "resolve",
           "apply_overrides", "from_json_file", "to_json", "describe", "find_configs",
           "check_model_keys"]


# ------------------------------------------------------------ the generic groups
def _below_one(v):
    return None if 0 <= v < 1 else "must lie in [0, 1)"


def _learning_rate(v):
    return None if v >= 0 else "must be > 0"


def _positive_int(v):
    return None if v >= 1 else "must be a positive integer"


@dataclasses.dataclass(frozen=True)
class OptimSettings:
    name: str = setting("adam", "the optimizer", choices=("adam", "adamw", "rmsprop", "sgd"))
    learning_rate: float = setting(1e-3, "peak learning rate (after warmup); a player's "
                                         "may be 0 (held fixed)", check=_learning_rate)
    b1: float = setting(0.9, "Adam's beta1", check=_below_one)
    b2: float = setting(0.999, "Adam's beta2; rmsprop's decay", check=_below_one)
    eps: float = setting(1e-8, "Adam's / rmsprop's epsilon", check=positive)
    weight_decay: float = setting(0.0, "adamw only: decoupled weight decay",
                                  check=non_negative)
    momentum: float = setting(0.0, "sgd and rmsprop momentum (0: none)", check=_below_one)
    schedule: str = setting("cosine", "learning rate after the linear warmup (linear: straight "
                                      "down to learning_rate * end_lr_factor)",
                            choices=("cosine", "constant", "linear"))
    warmup_steps: int = setting(100, "linear warmup from 0", check=non_negative)
    end_lr_factor: float = setting(0.0, "cosine, linear: decay to learning_rate * end_lr_factor",
                                   check=unit_interval)
    decay_steps: int = setting(0, "steps the cosine or linear decay spans (0: train.steps); set "
                                  "it to extend train.steps on resume without changing the "
                                  "schedule",
                               check=non_negative)
    grad_clip: float = setting(1.0, "global-norm gradient clipping (0: off)",
                               check=non_negative)


MESH_AXES = ("data", "fsdp")


def parse_mesh(spec: str) -> list[tuple[str, int]]:
    """'data:2,fsdp:-1' -> [("data", 2), ("fsdp", -1)]; a bare name has size -1."""
    out = []
    for item in filter(None, (i.strip() for i in str(spec).split(","))):
        name, _, size = item.partition(":")
        out.append((name.strip(), int(size) if size.strip() else -1))
    return out


def _mesh_spec(v):
    try:
        axes = parse_mesh(v)
    except ValueError:
        return "must be 'axis:size,...' with integer sizes, e.g. 'data:2,fsdp:4'"
    names = [a for a, _ in axes]
    bad = [a for a in names if a not in MESH_AXES]
    if bad:
        return f"axis {bad[0]!r} is not one of {', '.join(MESH_AXES)}"
    if len(set(names)) != len(names):
        return "names an axis twice"
    if sum(1 for _, n in axes if n == -1) > 1:
        return "may leave one size open (-1), not more"
    if any(n == 0 or n < -1 for _, n in axes):
        return "sizes must be positive (or -1: the remaining devices)"
    return None


def parse_step_window(spec: str) -> tuple[int, int] | None:
    """'A:B' -> (A, B) (steps [A, B)); '' -> None."""
    if not str(spec).strip():
        return None
    a, sep, b = str(spec).partition(":")
    if not sep:
        raise ValueError(spec)
    return int(a), int(b)


def _step_window(v):
    try:
        window = parse_step_window(v)
    except ValueError:
        window = (0, 0)
    return None if window is None or 0 <= window[0] < window[1] else (
        "must be 'A:B' with 0 <= A < B (steps), or ''")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    steps: int = setting(2000, "optimizer steps in all", check=_positive_int)
    batch_size: int = setting(256, "global batch, over all devices and processes",
                              check=_positive_int)
    log_every: int = setting(100, "steps between metrics.jsonl / TensorBoard lines",
                             check=_positive_int)
    checkpoint_every: int = setting(1000, "steps between checkpoints", check=_positive_int)
    sample_every: int = setting(1000, "steps between sample pictures (0: only at the end)",
                                check=non_negative)
    max_to_keep: int = setting(3, "checkpoints kept", check=_positive_int)
    augment: str = setting("none", "augmentation of each training image in the train step, "
                                   "from the step's key: none, or hflip (a left-right flip "
                                   "with probability 1/2)", choices=("none", "hflip"))
    ema_decay: float = setting(0.999, "EMA of the params (warm-up min(d, (1+s)/(10+s)))",
                               check=unit_interval)
    steps_per_call: int = setting(1, "k > 1 runs k steps per device call (lax.scan)",
                                  check=_positive_int)
    grad_accum: int = setting(1, "micro-batches per update, gradients averaged (1/k the "
                                 "activation memory, the same update)", check=_positive_int)
    compute_dtype: str = setting("float32", "the model's arithmetic (params, optimizer state "
                                            "and EMA stay float32)",
                                 choices=("float32", "bfloat16"))
    xla_options: str = setting("", "XLA options of the train step: '' jaxgen's (image data "
                                   "on CPU: YNNPACK off), 'none' XLA's, or 'key=value,...'")
    mesh: str = setting("", "the device mesh, 'axis:size,...' over every device (one size may "
                            "be -1: the rest), axes data and fsdp, both sharding the batch; '' "
                            "gives 'data' (or 'fsdp' with train.shard_state)", check=_mesh_spec)
    shard_state: bool = setting(False, "shard params, EMA and optimizer state over the mesh's "
                                       "fsdp axis (ZeRO-3 / FSDP); else they are replicated")
    shard_min_size: int = setting(2**14, "arrays with fewer elements stay replicated when the "
                                         "state is sharded", check=non_negative)
    remat: str = setting("none", "rematerialise the image models' blocks in the backward pass "
                                 "with this jax.checkpoint_policies policy ('none': off)",
                         choices=("none", "nothing_saveable", "dots_saveable",
                                  "dots_with_no_batch_dims_saveable", "everything_saveable"))
    matmul_precision: str = setting("default", "float32 matmul/conv precision of the train "
                                               "step: 'default' is the backend's (TF32 on an "
                                               "H100, bf16 passes on a TPU), 'highest' is "
                                               "full float32",
                                    choices=("default", "high", "highest"))
    data_workers: int = setting(0, "worker processes reading batches (0: a reader thread in "
                                   "this process); each reads its own process's share",
                                check=non_negative)
    data_in_memory_mb: int = setting(4096, "a dataset whose decoded arrays fit in this many MiB "
                                           "is decoded once and held in memory (0: never)",
                                     check=non_negative)
    profile_steps: str = setting("", "'A:B' writes a jax.profiler trace of steps [A, B) to "
                                     "WORKDIR/profile ('': none)", check=_step_window)
    compilation_cache: str = setting("", "a folder for XLA's persistent compilation cache "
                                         "('': off; JAX_COMPILATION_CACHE_DIR also works)")
    checkpoint_dir: str = setting("", "where the checkpoints go: '' is WORKDIR/checkpoints; "
                                      "any etils.epath path, e.g. gs://bucket/run/checkpoints "
                                      "(the logs and config.json stay in WORKDIR)")
    peak_tflops: float = setting(0.0, "the device's peak TFLOP/s for MFU (0: from jaxgen's "
                                      "table by device kind, or measured on a CPU)",
                                 check=non_negative)
    progress: bool = setting(True, "show a progress bar")
    pictures: bool = setting(True, "write the end-of-run pictures and the final sample grid "
                                   "(false: quick prototype runs; `jaxgen pictures` draws "
                                   "them later)")


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    num: int = setting(2000, "samples drawn for the pictures written during training "
                             "(2-D scatters; image grids show 64)", check=_positive_int)


def _eval_preset(v):
    for item in str(v).split():
        key = item.split("=", 1)[0]
        if "=" not in item or not key.startswith(("eval.", "sample.")) or key == "eval.full":
            return f"each item is KEY=VALUE of an eval.* or sample.* key, not {item!r}"
    return None


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    num_examples: int = setting(5000, "held-out examples scored", check=_positive_int)
    batch_size: int = setting(1000, "examples per likelihood call", check=_positive_int)
    ode_steps: int = setting(100, "ODE likelihoods: solver steps", check=_positive_int)
    ode_method: str = setting("rk4", "ODE likelihoods: the solver",
                              choices=("euler", "heun", "rk4"))
    divergence: str = setting("auto", "ODE likelihoods: exact trace, Hutchinson's estimate, "
                                      "or auto (exact when dim <= 64)",
                              choices=("exact", "hutchinson", "auto"))
    likelihood: str = setting("", "estimators to report, a comma list (e.g. 'vlb,ode'); "
                                  "'' = all the objective has")
    mmd_num: int = setting(2000, "2-D data: model samples vs held-out points for MMD "
                                 "(0: skip)", check=non_negative)
    mode_samples: int = setting(0, "> 0: mode metrics of this many samples (ring8, grid25)",
                                check=non_negative)
    fd_num: int = setting(0, "> 0 (Fashion-MNIST): Frechet distance, precision/recall and "
                             "two-sample tests of this many samples in the feature space of "
                             "jaxgen's classifier (`jaxgen classifier` first)",
                          check=non_negative)
    fid_num: int = setting(0, "> 0 (images): Inception FID and IS of this many samples "
                              "(50000 as the papers), streamed through pytorch-fid's "
                              "Inception-V3 (`jaxgen inception-weights` converts it first)",
                           check=non_negative)
    fid_batch: int = setting(250, "FID/IS: samples drawn per call, split over the devices (a "
                                  "multiple of their count)", check=_positive_int)
    fid_ref: str = setting("", "FID: the reference statistics, pytorch-fid's .npz (mu, sigma); "
                               "'' = the run's dataset's training split, computed once and "
                               "cached in $JAXGEN_CACHE/fid_stats")
    fid_seed: int = setting(0, "FID/IS: seed set s draws batch i with fold_in(key(s), i)",
                            check=non_negative)
    fid_seeds: int = setting(1, "FID: seed sets fid_seed, fid_seed+1, ...; 3 = EDM's protocol "
                                "(their mean and minimum)", check=_positive_int)
    is_splits: int = setting(10, "IS: the samples' splits (10 as Salimans et al.)",
                             check=_positive_int)
    inception_weights: str = setting("", "FID/IS: the converted Inception-V3 weights ('' = "
                                         "$JAXGEN_CACHE/inception/, where `jaxgen "
                                         "inception-weights` puts them)")
    use_ema: bool = setting(True, "score the EMA params (else the raw ones)")
    matmul_precision: str = setting("highest", "float32 matmul/conv precision of likelihoods "
                                               "and held-out statistics ('highest': full "
                                               "float32, not TF32 or bf16 passes)",
                                    choices=("default", "high", "highest"))
    full: str = setting("", "paper-grade settings `jaxgen eval --full` applies: space-separated "
                            "eval.* / sample.* KEY=VALUE items ('': none)", check=_eval_preset)


GROUPS = {"optim": OptimSettings, "train": TrainSettings, "sample": SampleSettings,
          "eval": EvalSettings}
NAMED = ("data", "model", "objective")  # groups whose .name decides which keys exist
DEFAULT_DATA = "8gaussians"
GENERIC_SAMPLE_KEYS = tuple(settings.names(SampleSettings))
GENERIC_EVAL_KEYS = tuple(settings.names(EvalSettings))
TOP_LEVEL = ("seed", "data", "model", "objective", "optim", "train", "sample", "eval")
SEED_DOC = "model init, per-step noise and the data order all derive from it"


def base_config() -> ml_collections.ConfigDict:
    """The generic keys every config has, with their declared defaults.

    Config files start from this and set what differs; `resolve` adds the keys of the
    dataset they name (data.*) and of the objective (objective.*, and its own sample.* /
    eval.* keys).
    """
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict({"name": DEFAULT_DATA})
    for group, schema in GROUPS.items():
        c[group] = ml_collections.ConfigDict(settings.defaults(schema))
    c.model = ml_collections.ConfigDict({"name": "mlp"})
    c.objective = ml_collections.ConfigDict({"name": "flow_matching"})
    with c.optim.unlocked():
        # Multi-player objectives (GANs) may override any optim.* per player:
        # optim.players.<player>.<key> = value.
        c.optim.players = ml_collections.ConfigDict()
    return c


NAME_KEYS = tuple(f"{g}.name" for g in NAMED)
REQUIRED_KEYS = (
    "seed", "data.name", "train.steps",
    "train.batch_size", "train.log_every", "train.checkpoint_every",
    "optim.learning_rate", "model.name", "objective.name",
)


# ------------------------------------------------------------ config files
def configs_root() -> Path:
    """The folder of the shipped configs (package `jaxgen.configs`)."""
    # resolved: in a checkout jaxgen/configs links to configs/, the folder users know
    return Path(str(importlib.resources.files("jaxgen.configs"))).resolve()


def find_config(name: str | Path) -> Path:
    """A config file: a path, or a shipped config's name ("flow_matching/toy2d", with or
    without .py or a leading configs/)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    rel = Path(*[p for p in Path(str(name)).parts if p not in ("configs",)][-2:])
    shipped = configs_root() / rel.with_suffix(".py")
    if len(rel.parts) == 2 and shipped.is_file():
        return shipped
    names = [f"{p.parent.name}/{p.stem}" for p in find_configs()]
    close = difflib.get_close_matches(str(rel.with_suffix("")), names, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(f"Config file {path} does not exist (nor is it a shipped config).{hint} "
                      "`jaxgen list` shows the shipped configs.")


def shown_configs() -> list[str]:
    """The shipped config files as a user can pass them from here: relative to the working
    folder when under it (configs/... in the checkout), else absolute."""
    out = []
    for p in find_configs():
        try:
            out.append(str(p.relative_to(Path.cwd())))
        except ValueError:
            out.append(str(p))
    return out


def load_config_file(path: str | Path) -> ml_collections.ConfigDict:
    """Imports a config file (or a shipped config by name) and calls its `get_config()`."""
    path = find_config(path)
    if path.suffix != ".py":
        raise ConfigError(f"{path} is not a config file: a config is a .py file that defines "
                          "get_config() (a run's resolved config.json is read with --workdir).")
    spec = importlib.util.spec_from_file_location(f"jaxgen_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            raise ConfigError(
                f"{path} must define get_config() returning an ml_collections.ConfigDict.")
        cfg = module.get_config()
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's file: one line saying where and what
        raise ConfigError(f"{settings.raised_in(e, path)}; fix the config file.") from e
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(
            f"{path}: get_config() returned {type(cfg).__name__}, expected ConfigDict.")
    return cfg


def find_configs() -> list[Path]:
    """The shipped config files (configs/<family>/<name>.py)."""
    root = configs_root()
    return sorted(p for p in root.glob("*/*.py") if not p.name.startswith("_"))


def repo_root() -> Path:
    """The checkout (the folder above the jaxgen package)."""
    return Path(__file__).resolve().parents[2]


# --------------------------------------------------------------- resolution
def _all_keys(cfg, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        if isinstance(v, (ml_collections.ConfigDict, dict)):
            out.extend(_all_keys(v, name + "."))
        else:
            out.append(name)
    return out


def _schemas(cfg) -> dict:
    """group -> [(schema, keys it owns)] for the config's objective."""
    spec = registry.objective_spec(cfg.objective.name)
    for group, schema, generic in (("sample", spec.sample, GENERIC_SAMPLE_KEYS),
                                   ("eval", spec.eval, GENERIC_EVAL_KEYS)):
        clash = sorted(set(settings.names(schema)) & set(generic))
        if clash:
            raise ConfigError(f"objective {spec.name} declares {group}.{clash[0]}, a generic "
                              "setting; give the family's setting another name.")
    data = registry.dataset_spec(cfg.data.name)
    return {"data": [data.settings], "optim": [OptimSettings], "train": [TrainSettings],
            "sample": [SampleSettings, spec.sample], "eval": [EvalSettings, spec.eval],
            "objective": [spec.settings]}


def _group_keys(valid: list[str], key: str) -> list[str]:
    """The valid keys of `key`'s group (all of them if the group is unknown)."""
    group = key.split(".")[0] + "."
    own = [k for k in valid if k.startswith(group)]
    return own or valid


def _valid_keys(cfg, schemas) -> list[str]:
    keys = ["seed", "data.name", "model.name", "objective.name"]
    for group, parts in schemas.items():
        keys += [f"{group}.{n}" for s in parts for n in settings.names(s)]
    return keys


def _declared(schemas, group: str, name: str):
    for s in schemas.get(group, []):
        if name in settings.names(s):
            return s
    return None


def _model_keys(cfg) -> list[str]:
    try:
        return registry.model_fields(cfg.model.name)
    except UnknownNameError:  # build_model says so, with the choices
        return []


def _check_keys(cfg, schemas) -> None:
    """Every key of cfg is declared (model.* against the module's fields)."""
    valid = _valid_keys(cfg, schemas)
    for top in cfg.keys():
        if top not in TOP_LEVEL:
            raise settings.unknown_key_error(top, valid)
    for group, parts in schemas.items():
        names = [n for s in parts for n in settings.names(s)]
        for k in cfg[group].keys():
            if group in NAMED and k == "name":
                continue
            if group == "optim" and k == "players":
                _check_players(cfg.optim.players)
                continue
            if k not in names:
                raise settings.unknown_key_error(f"{group}.{k}",
                                                 _group_keys(valid, f"{group}.{k}"),
                                                 _whose(cfg, group))


def check_model_keys(cfg) -> None:
    """Every model.* key of `cfg` is a field of its network (the Experiment checks this too,
    after the network's data kind)."""
    model_keys = _model_keys(cfg)
    for k in cfg.model.keys():
        if model_keys and k != "name" and k not in model_keys:
            raise _model_key_error(cfg.model.name, k, model_keys)


def _model_key_error(model: str, key: str, model_keys: list[str]) -> ConfigError:
    return settings.unknown_key_error(f"model.{key}", ["model.name"] + [
        f"model.{k}" for k in model_keys], f" (model {model}: a field of its network)")


def _whose(cfg, group: str) -> str:
    """Who declares a group's keys, for the unknown-key error."""
    if group == "data":
        return f" (dataset {cfg.data.name})"
    return f" (objective {cfg.objective.name})" if group in (
        "objective", "sample", "eval") else ""


def _prune_data(cfg) -> None:
    """Drops the data.* keys the dataset does not declare whose value is another dataset's
    default (left by a changed data.name, or from a config.json written when every
    dataset's keys were in every config); any other such key is one error
    (`registry.dataset_keys`)."""
    own = registry.dataset_keys(cfg.data.name, cfg.data)
    with cfg.data.unlocked():
        for k in list(cfg.data.keys()):
            if k != "name" and k not in own:
                del cfg.data[k]


def _prune_objective(cfg, stock: str) -> None:
    """objective.name was changed by an override from a registered objective (e.g. a plugin
    on a shipped config; a plugin file that moved keeps its run's keys): the config file's
    objective.* keys, and the sample.* and eval.* keys the file's objective
    declares, were set for that objective; they are dropped, with one note, and the new
    objective's defaults take their place (a key of the same name may mean something else
    there). Keys given as overrides are applied afterwards and checked as usual."""
    registry.objective_spec(cfg.objective.name)  # the new one exists and loads, or its error
    old = registry.objective_spec(stock)
    own = {"objective": set(cfg.objective.keys()) - {"name"},
           "sample": set(settings.names(old.sample)) if old.sample else set(),
           "eval": set(settings.names(old.eval)) if old.eval else set()}
    dropped = []
    for group, keys in own.items():
        node = cfg[group]
        with node.unlocked():
            for k in sorted(keys & set(node.keys())):
                dropped.append(f"{group}.{k}")
                del node[k]
    if dropped:
        print(f"jaxgen: note: objective.name={cfg.objective.name} replaces {stock}; dropped "
              f"the config's {', '.join(dropped)}, set for {stock} (the new objective's "
              "defaults apply; set them with --config.KEY=VALUE).", file=sys.stderr)


def _prune_model(cfg, stock: str, overridden: set[str]) -> None:
    """model.name was changed by an override from a registered network (e.g. the DiT on a
    config written for the U-Net): the config's model.* keys that the new network does not
    have were set for the old one; they are dropped, with one note. Keys both networks have
    stay, and so do the `overridden` ones, which are applied afterwards and checked as usual
    (after the network's data kind, so a network on the wrong data says that first)."""
    own = set(_model_keys(cfg)) | overridden  # [] for an unknown name: build_model says so
    if not own - overridden:
        return
    dropped = sorted(k for k in cfg.model.keys() if k != "name" and k not in own)
    with cfg.model.unlocked():
        for k in dropped:
            del cfg.model[k]
    if dropped:
        print(f"jaxgen: note: model.name={cfg.model.name} replaces {stock}; dropped the "
              f"config's {', '.join('model.' + k for k in dropped)}, which {cfg.model.name} "
              "does not have (set its own with --config.model.KEY=VALUE).", file=sys.stderr)


def _check_players(players) -> None:
    valid = settings.names(OptimSettings)
    for player, node in (players or {}).items():
        for k in dict(node):
            if k not in valid:
                raise ConfigError(f"Unknown optimizer setting 'optim.players.{player}.{k}'. "
                                  f"A player's optimizer takes optim.players.{player}.KEY with "
                                  f"KEY one of: {', '.join(valid)}.")


def _fill_defaults(cfg, schemas) -> None:
    for group, parts in schemas.items():
        node = cfg[group]
        with node.unlocked():
            for s in parts:
                for name, default in settings.defaults(s).items():
                    if name not in node:
                        node[name] = default


def _set(node, key: str, value) -> None:
    """node[key] = value, also when the declared type differs from the one a file gave the
    key (ConfigDict keeps the type of a key's first value)."""
    with node.unlocked():
        try:
            node[key] = value
        except TypeError:
            del node[key]
            node[key] = value


def _apply_one(cfg, schemas, item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"Override '{item}' must look like --config.KEY=VALUE.")
    key, text = item.split("=", 1)
    parts = key.split(".")
    valid = _valid_keys(cfg, schemas)
    if parts[:2] == ["optim", "players"] and len(parts) == 4:
        player, leaf = parts[2], parts[3]
        if leaf not in settings.names(OptimSettings):
            _check_players({player: {leaf: None}})
        with cfg.optim.unlocked():
            if cfg.optim.get("players") is None:
                cfg.optim.players = ml_collections.ConfigDict()
        with cfg.optim.players.unlocked():
            if player not in cfg.optim.players:
                cfg.optim.players[player] = ml_collections.ConfigDict()
        value = settings.parse(text, settings.field_type(OptimSettings, leaf), key)
        _set(cfg.optim.players[player], leaf, value)
        return
    if len(parts) == 1:
        if key == "seed":
            cfg.seed = settings.parse(text, int, key)
            return
        if key in TOP_LEVEL:
            raise ConfigError(f"'{key}' is a group of keys; set one of its keys instead.")
        raise settings.unknown_key_error(key, valid)
    group, leaf = parts[0], ".".join(parts[1:])
    if len(parts) > 2 or group not in TOP_LEVEL or group == "seed":
        raise settings.unknown_key_error(key, valid)
    if group == "model":
        model_keys = _model_keys(cfg)
        if leaf != "name" and model_keys and leaf not in model_keys and leaf not in cfg.model:
            # a key of the file's model.* is left to build_model, which checks the data kind
            # first (--config.model.name=unet on points: "expects images")
            raise _model_key_error(cfg.model.name, leaf, model_keys)
        current = cfg.model.get(leaf)
        t = str if leaf == "name" else _model_field_type(cfg.model.name, leaf, current)
        _set(cfg.model, leaf, settings.parse(text, t, key))
        return
    if group in ("data", "objective") and leaf == "name":
        _set(cfg[group], "name", text)
        return
    schema = _declared(schemas, group, leaf)
    if schema is None and group == "data":
        raise registry.data_key_error(cfg.data.name, leaf, text, text=True)
    if schema is None:
        raise settings.unknown_key_error(key, _group_keys(valid, key), _whose(cfg, group))
    _set(cfg[group], leaf, settings.parse(text, settings.field_type(schema, leaf), key))


def _model_field_type(model_name: str, field: str, current):
    """The declared type of a model field, when simple; else by the current value."""
    import typing
    cls = registry.resolve(registry.model_spec(model_name).module)
    hints = typing.get_type_hints(cls)
    t = hints.get(field)
    origin = typing.get_origin(t)
    if t in (int, float, bool, str):
        return t
    if t is not None and (origin in (tuple, list) or str(origin).endswith("Sequence")
                          or "Sequence" in str(t)):
        return tuple
    if t is not None and "None" in str(t):
        inner = [a for a in typing.get_args(t) if a is not type(None)]
        if len(inner) == 1 and inner[0] in (int, float, bool, str):
            return inner[0] | None
    if current is not None:
        return type(current) if not isinstance(current, (list, tuple)) else tuple
    return Any


def _validate_values(cfg, schemas) -> None:
    """Every declared value has its type, lies in its choices and passes its check."""
    for group, parts in schemas.items():
        node = cfg[group]
        for s in parts:
            for name in settings.names(s):
                value = settings.validate_value(s, name, node[name], f"{group}.{name}")
                if value != node[name] or type(value) is not type(node[name]):
                    _set(node, name, value)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise ConfigError(f"seed must be an integer, got {cfg.seed!r}.")
    _check_model_values(cfg)
    for player, node in (cfg.optim.get("players") or {}).items():
        for k in list(node.keys()):
            _set(node, k, settings.validate_value(OptimSettings, k, node[k],
                                                  f"optim.players.{player}.{k}"))
    if not cfg.optim.learning_rate > 0:
        raise ConfigError(f"optim.learning_rate must be > 0, got {cfg.optim.learning_rate}.")
    t = cfg.train
    for key in ("log_every", "checkpoint_every"):
        if t[key] % t.steps_per_call:
            raise ConfigError(
                f"train.{key}={t[key]} must be a multiple of "
                f"train.steps_per_call={t.steps_per_call}.")
    if t.steps % t.steps_per_call:
        raise ConfigError(
            f"train.steps={t.steps} must be a multiple of train.steps_per_call={t.steps_per_call}.")
    if t.batch_size % t.grad_accum:
        raise ConfigError(f"train.batch_size={t.batch_size} must be a multiple of "
                          f"train.grad_accum={t.grad_accum} (equal micro-batches).")


def _check_model_values(cfg) -> None:
    """Range checks of the model.* numbers: counts and widths (ints, also inside tuples) must
    be >= 1 and floats finite and >= 0, unless the network declares its own check for a
    field (a class attribute FIELD_CHECKS = {field: check}, e.g. 0 residual blocks)."""
    try:
        cls = registry.resolve(registry.model_spec(cfg.model.name).module)
    except UnknownNameError:  # build_model says so, with the choices
        return
    own = getattr(cls, "FIELD_CHECKS", {})
    for key, value in cfg.model.items():
        if key == "name" or value is None or isinstance(value, (bool, str)):
            continue
        if key in own:
            problem = own[key](value)
        elif isinstance(value, int):
            problem = None if value >= 1 else "must be >= 1 (a count or a width)"
        elif isinstance(value, float):
            problem = None if math.isfinite(value) and value >= 0 else "must be finite and >= 0"
        elif isinstance(value, (tuple, list)) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            problem = None if all(v >= 1 for v in value) else "must hold widths >= 1"
        else:
            continue
        if problem:
            raise ConfigError(f"model.{key} {problem}, got {value!r} (model {cfg.model.name}).")


def resolve(cfg: ml_collections.ConfigDict,
            overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """`cfg` with every declared default merged in and `overrides` applied, validated.

    data.name, objective.name and model.name overrides are applied first (they decide
    which keys exist); an undeclared key anywhere is a ConfigError listing the valid ones.
    Idempotent: resolving a resolved config changes nothing.
    """
    overrides = list(overrides)
    for top in NAMED:
        if top not in cfg or not isinstance(cfg[top], ml_collections.ConfigDict):
            raise ConfigError(f"Config has no {top}.* group. Build configs on "
                              "jaxgen.kernel.config.base_config().")
    firsts = [o for o in overrides if o.split("=", 1)[0] in NAME_KEYS]
    stock_objective, stock_model = cfg.objective.get("name"), cfg.model.get("name")
    for item in firsts:
        key, _, text = item.partition("=")
        _set(cfg[key.split(".")[0]], "name", text)
    for top in NAMED:  # plugin files: an absolute path in config.json
        if "name" in cfg[top]:
            _set(cfg[top], "name", registry.absolute_reference(cfg[top].name))
    missing = [k for k in REQUIRED_KEYS if k not in set(_all_keys(cfg))]
    if missing:
        raise ConfigError(
            f"Config is missing required keys: {', '.join(missing)}. "
            "Build configs on jaxgen.kernel.config.base_config().")
    if (stock_objective is not None and not registry.is_reference(stock_objective)
            and cfg.objective.name != stock_objective):
        _prune_objective(cfg, stock_objective)
    if (stock_model is not None and not registry.is_reference(stock_model)
            and cfg.model.name != stock_model):
        _prune_model(cfg, stock_model, {o.split("=", 1)[0][len("model."):] for o in overrides
                                        if o.startswith("model.")})
    schemas = _schemas(cfg)
    for group in schemas:
        if group not in cfg:
            _set(cfg, group, ml_collections.ConfigDict())
    _prune_data(cfg)
    _check_keys(cfg, schemas)
    _fill_defaults(cfg, schemas)
    for item in overrides:
        if item not in firsts:
            _apply_one(cfg, schemas, item)
    _validate_values(cfg, schemas)
    return cfg


def apply_overrides(cfg: ml_collections.ConfigDict,
                    overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Applies `key=value` strings (dotted keys, without the `--config.` prefix)."""
    return resolve(cfg, overrides)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """The resolved config of a file (or a shipped config's name), with overrides."""
    return resolve(load_config_file(path), overrides)


def to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=str)


def _merge(cfg: ml_collections.ConfigDict, data: dict) -> None:
    with cfg.unlocked():
        for k, v in data.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), ml_collections.ConfigDict):
                _merge(cfg[k], v)
            elif isinstance(v, dict):
                cfg[k] = ml_collections.ConfigDict(v)
            else:
                cfg[k] = tuple(v) if isinstance(v, list) else v


# sample.* keys every config had before the families declared their own: a run written then
# still opens; a family that does not declare one never used it.
LEGACY_SAMPLE_KEYS = ("steps", "method", "temperature")


def from_json_file(path: str | Path, overrides: Iterable[str] = (), *,
                   like: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
    """Reads a resolved config written by `jaxgen train` back, resolved again, with
    `overrides` applied (as `resolve` applies them).

    Keys declared since that run was made get their defaults, so old workdirs stay
    readable. An objective.name / model.name override replaces the stored name before it
    is looked up, so a run whose plugin file has moved opens with
    `--config.objective.name=NEW/PATH.py:make`. `like` (the resume check's new config): a
    stored file reference whose file is gone is looked up as `like`'s name instead; the
    result keeps the stored name, so `config_differences` shows the change (allowed where
    it re-points the moved file, `registry.repointed`).
    """
    overrides = list(overrides)
    data = json.loads(Path(path).read_text())
    cfg = base_config()
    _merge(cfg, data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if sep and key in NAME_KEYS:
            _set(cfg[key.split(".")[0]], "name", registry.absolute_reference(text))
    stored = {}
    for top in ("model", "objective") if like is not None else ():
        if registry.missing_file(cfg[top].name) and like[top].name != cfg[top].name:
            stored[top] = cfg[top].name
            _set(cfg[top], "name", like[top].name)
    try:
        spec = registry.objective_spec(cfg.objective.name)
        own = set(settings.names(spec.sample))
        with cfg.sample.unlocked():
            for k in LEGACY_SAMPLE_KEYS:
                if k in cfg.sample and k not in own:
                    del cfg.sample[k]
        cfg = resolve(cfg, overrides)
    except ConfigError:
        for top, old in stored.items():  # the stand-in declares other keys: say what is gone
            registry.objective_spec(old) if top == "objective" else registry.model_spec(old)
        raise
    for top, old in stored.items():
        _set(cfg[top], "name", old)
    return cfg


# ----------------------------------------------------------------- describe
def describe(cfg: ml_collections.ConfigDict) -> list[tuple[str, str, str]]:
    """(key, value, doc) of every key of a resolved config, in group order."""
    schemas = _schemas(cfg)
    spec = registry.objective_spec(cfg.objective.name)
    rows = [("seed", repr(cfg.seed), SEED_DOC)]

    def group_rows(group, parts):
        out = []
        for s in parts:
            for name, _, tname, d in settings.describe(s):
                out.append((f"{group}.{name}", repr(cfg[group][name]), f"[{tname}] {d}"))
        return out

    rows.append(("data.name", repr(cfg.data.name),
                 registry.dataset_spec(cfg.data.name).summary or "the dataset"))
    rows += group_rows("data", schemas["data"])
    model_cls = registry.resolve(registry.model_spec(cfg.model.name).module)
    rows.append(("model.name", repr(cfg.model.name),
                 f"the network: {model_cls.__module__}.{model_cls.__name__}"))
    for k in sorted(cfg.model.keys()):
        if k != "name":
            rows.append((f"model.{k}", repr(cfg.model[k]), f"a field of {model_cls.__name__}"))
    rows.append(("objective.name", repr(cfg.objective.name),
                 spec.summary or "the objective"))
    rows += group_rows("objective", schemas["objective"])
    rows += group_rows("optim", schemas["optim"])
    for player, node in (cfg.optim.get("players") or {}).items():
        for k in node.keys():
            rows.append((f"optim.players.{player}.{k}", repr(node[k]),
                         f"player {player}: {settings.doc(OptimSettings, k)}"))
    for group in ("train", "sample", "eval"):
        rows += group_rows(group, schemas[group])
    return rows
