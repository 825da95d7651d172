"""Configs: the shared base, loading `configs/<objective>/<data>.py` files, overrides.

Every config file defines `get_config() -> ml_collections.ConfigDict`, built on
`base_config()` so that every run has the same keys:

    seed, data.*, model.*, objective.*, optim.*, train.*, sample.*, eval.*

Overrides use the same dotted names as the file: `--config.train.steps=100`.
A key that does not exist is an error that lists the keys that do.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
from pathlib import Path
from typing import Any, Iterable

import ml_collections
from ml_collections import config_dict


class ConfigError(ValueError):
    """A config file, key or value the user has to fix."""


def base_config() -> ml_collections.ConfigDict:
    """The keys every jaxgen config has, with defaults.

    Family configs start from this and set what differs. Objective- and
    model-specific keys live under `objective.*` and `model.*`.
    """
    c = ml_collections.ConfigDict()
    c.seed = 0  # model init, per-step noise and the data order all derive from it

    c.data = ml_collections.ConfigDict()
    c.data.name = "8gaussians"
    c.data.path = ""  # .npy/.npz for data.name=array; tfds data_dir for fashion_mnist / tfds:*
    c.data.eval_path = ""  # held-out .npy/.npz for data.name=array
    c.data.num_train = 200_000  # toy data: size of the (fixed) training set
    c.data.num_eval = 20_000  # toy data: size of the held-out set
    c.data.seed = 0  # which toy sample is drawn (independent of `seed`)
    c.data.classes = ()  # labelled data: keep only these labels, e.g. (7, 9); () = all
    c.data.std = config_dict.placeholder(float)  # toy mixtures: None = the paper's std
    c.data.source_dir = "/usr/share/datasets/fashion-mnist"  # IDX files (Debian's package)

    c.model = ml_collections.ConfigDict()
    c.model.name = "mlp"

    c.objective = ml_collections.ConfigDict()
    c.objective.name = "flow_matching"

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | adamw | rmsprop | sgd
    c.optim.learning_rate = 1e-3
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0  # adamw only
    c.optim.momentum = 0.0  # sgd (and rmsprop) momentum; rmsprop uses b2 as its decay
    c.optim.schedule = "cosine"  # cosine | constant (both after linear warmup)
    c.optim.warmup_steps = 100
    c.optim.end_lr_factor = 0.0  # cosine decays to learning_rate * end_lr_factor
    # Steps the cosine spans; 0 = train.steps. Set it when you plan to extend
    # train.steps on resume, so the schedule does not change under the run.
    c.optim.decay_steps = 0
    c.optim.grad_clip = 1.0  # global-norm clipping; 0 disables
    # Multi-player objectives (GANs) may override any of the above per player:
    # optim.players.<player>.<key> = value.
    c.optim.players = ml_collections.ConfigDict()

    c.train = ml_collections.ConfigDict()
    c.train.steps = 2000
    c.train.batch_size = 256  # global, over all devices and processes
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.train.sample_every = 1000  # sample pictures every N steps (0: only at the end)
    c.train.max_to_keep = 3
    c.train.ema_decay = 0.999
    c.train.steps_per_call = 1  # k > 1 runs k steps per device call with lax.scan
    # Each player's batch in this many sequential micro-batches, gradients averaged before
    # one optimizer update: the same update with 1/k of the activation memory.
    c.train.grad_accum = 1
    # The model's arithmetic: float32, or bfloat16 (params, optimizer state and EMA stay
    # float32; losses are computed in float32 on the model's outputs).
    c.train.compute_dtype = "float32"
    # XLA compiler options for the train step: "" = jaxgen's (image data on CPU: YNNPACK off,
    # convolutions by Eigen: U-Net step 1116 -> 652 ms here, see the README's benchmarks),
    # "none" = XLA's own defaults, or "key=value,key=value" (XLA DebugOptions names).
    c.train.xla_options = ""
    c.train.progress = True

    c.sample = ml_collections.ConfigDict()
    c.sample.num = 2000  # samples drawn for the pictures written during training
    c.sample.steps = 100  # ODE steps
    c.sample.method = "heun"  # euler | heun | rk4
    c.sample.temperature = 1.0

    c.eval = ml_collections.ConfigDict()
    c.eval.num_examples = 5000
    c.eval.batch_size = 1000
    c.eval.ode_steps = 100
    c.eval.ode_method = "rk4"
    c.eval.divergence = "auto"  # exact | hutchinson | auto (exact when dim <= 64)
    c.eval.likelihood = ""  # estimators to report, comma list (e.g. "vlb,ode"); "" = all
    c.eval.mmd_num = 2000  # 2-D data: model samples vs held-out points for MMD
    c.eval.mode_samples = 0  # > 0: mode metrics of this many samples (ring8, grid25, ...)
    # > 0 (Fashion-MNIST): Fréchet distance and precision/recall of this many samples in the
    # feature space of jaxgen's classifier (train it once: `jaxgen classifier`)
    c.eval.fd_num = 0
    c.eval.use_ema = True
    return c


REQUIRED_KEYS = (
    "seed", "data.name", "data.path", "data.eval_path", "train.steps",
    "train.batch_size", "train.log_every", "train.checkpoint_every",
    "optim.learning_rate", "model.name", "objective.name",
)


def load_config_file(path: str | Path) -> ml_collections.ConfigDict:
    """Imports a config file and calls its `get_config()`."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        configs = find_configs()
        if configs:
            hint = "\nAvailable configs:\n  " + "\n  ".join(str(p) for p in configs)
        raise ConfigError(f"Config file {path} does not exist.{hint}")
    spec = importlib.util.spec_from_file_location(f"jaxgen_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(
            f"{path} must define get_config() returning an ml_collections.ConfigDict.")
    cfg = module.get_config()
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(
            f"{path}: get_config() returned {type(cfg).__name__}, expected ConfigDict.")
    return cfg


def _all_keys(cfg: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        if isinstance(v, ml_collections.ConfigDict):
            out.extend(_all_keys(v, name + "."))
        else:
            out.append(name)
    return out


def _parse_value(text: str, current: Any, key: str, field_type: type | None) -> Any:
    if field_type is bool or isinstance(current, bool):
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ConfigError(f"--config.{key}={text}: expected true or false.")
    if text.lower() == "none":
        return None
    target = field_type or (type(current) if current is not None else None)
    if target is str:
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if target in (None, str):
            return text
        raise ConfigError(f"--config.{key}={text}: expected {target.__name__}.") from None
    if target is float and isinstance(value, int):
        value = float(value)
    if target in (list, tuple) and isinstance(value, (list, tuple)):
        value = target(value)
    if target is not None and not isinstance(value, target):
        raise ConfigError(
            f"--config.{key}={text}: expected {target.__name__}, got {type(value).__name__}.")
    return value


def apply_overrides(cfg: ml_collections.ConfigDict,
                    overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Applies `key=value` strings (dotted keys, without the `--config.` prefix)."""
    keys = _all_keys(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' must look like --config.KEY=VALUE.")
        key, text = item.split("=", 1)
        parts = key.split(".")
        if parts[:2] == ["optim", "players"] and len(parts) == 4 and "optim" in cfg:
            _set_player_optim(cfg, parts[2], parts[3], text, key)
            continue
        node = cfg
        for i, part in enumerate(parts):
            is_last = i == len(parts) - 1
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                close = difflib.get_close_matches(key, keys, n=5, cutoff=0.5)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"Unknown config key '{key}'.{hint}\nValid keys:\n  " + "\n  ".join(keys))
            if not is_last:
                node = node[part]
        leaf = parts[-1]
        field_type = None
        ref = node.get_ref(leaf)
        if ref is not None:
            field_type = ref.get_type()
        current = node[leaf]
        if isinstance(current, ml_collections.ConfigDict):
            raise ConfigError(f"'{key}' is a group of keys; set one of its keys instead.")
        with node.unlocked():
            node[leaf] = _parse_value(text, current, key, field_type)
    return cfg


def _set_player_optim(cfg, player: str, leaf: str, text: str, key: str) -> None:
    """--config.optim.players.PLAYER.KEY=VALUE: one player's optimizer setting (created if
    new); KEY must be an optimizer setting (optim.KEY), parsed with its type."""
    optim = cfg.optim
    valid = sorted(k for k in optim.keys() if k != "players"
                   and not isinstance(optim[k], ml_collections.ConfigDict))
    if leaf not in valid:
        raise ConfigError(f"Unknown optimizer setting '{key}'. A player's optimizer takes "
                          f"optim.players.{player}.KEY with KEY one of: {', '.join(valid)}.")
    with optim.unlocked():
        if "players" not in optim or optim.players is None:
            optim.players = ml_collections.ConfigDict()
    players = optim.players
    with players.unlocked():
        if player not in players:
            players[player] = ml_collections.ConfigDict()
    node = players[player]
    base = node[leaf] if leaf in node else optim[leaf]
    with node.unlocked():
        node[leaf] = _parse_value(text, base, key, type(optim[leaf]) if optim[leaf] is not None
                                  else None)


def validate(cfg: ml_collections.ConfigDict) -> None:
    """Checks the keys every config must have and the basic value ranges."""
    have = set(_all_keys(cfg))
    missing = [k for k in REQUIRED_KEYS if k not in have]
    if missing:
        raise ConfigError(
            f"Config is missing required keys: {', '.join(missing)}. "
            "Build configs on jaxgen.config.base_config().")
    t = cfg.train
    for key in ("steps", "batch_size", "log_every", "checkpoint_every", "steps_per_call",
                "grad_accum"):
        if not isinstance(t[key], int) or t[key] < 1:
            raise ConfigError(f"train.{key} must be a positive integer, got {t[key]!r}.")
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
    from jaxgen.nn.precision import DTYPES
    if t.compute_dtype not in DTYPES:
        raise ConfigError(f"train.compute_dtype={t.compute_dtype!r}: choose one of "
                          f"{', '.join(DTYPES)}.")
    if not cfg.optim.learning_rate > 0:
        raise ConfigError(f"optim.learning_rate must be > 0, got {cfg.optim.learning_rate}.")


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    cfg = load_config_file(path)
    cfg = apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


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
                cfg[k] = v


def from_json_file(path: str | Path) -> ml_collections.ConfigDict:
    """Reads a resolved config written by `jaxgen train` back onto the base schema.

    Keys added to the base since that run was made get their defaults, so old
    workdirs stay readable.
    """
    data = json.loads(Path(path).read_text())
    cfg = ml_collections.ConfigDict(base_config().to_dict())  # plain types, no placeholders
    _merge(cfg, data)
    return cfg


# Keys that may change between a run and its resumption (they do not change
# what is computed at each step).
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.checkpoint_every",
                     "train.sample_every", "train.progress", "train.max_to_keep",
                     "train.xla_options")


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs.extend(config_differences(a, b, name + "."))
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                             and list(a) == list(b)):
            if not (name in RESUMABLE_CHANGES or name.startswith(("sample.", "eval."))):
                diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def find_configs() -> list[Path]:
    """Config files shipped with jaxgen (configs/<objective>/<data>.py)."""
    for base in (Path.cwd() / "configs", repo_root() / "configs"):
        if base.is_dir():
            return sorted(p for p in base.glob("*/*.py") if not p.name.startswith("_"))
    return []
