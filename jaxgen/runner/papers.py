"""The paper configs: shipped configs that reproduce a published number, and their records.

A paper config is a shipped config named ``configs/<family>/<model>_<data.name>.py`` (e.g.
``diffusion/ddpm_cifar10``, ``flow_matching/fm_imagenet64``) whose module has

* a docstring naming the paper (authors, year), the table the number is from, its
  hyperparameters (global batch, learning rate, EMA, steps, augmentation, the NFE the
  number used) and the ``jaxgen train`` command;
* a module-level ``PAPER = dict(...)`` with the keys of `RECORD_KEYS`:

  ``paper``          "Authors, year. Title." of the paper the numbers are from
  ``table``          where in it: "Table 1", "Table 2 and Appendix B"
  ``params``         the parameter count the paper states, or None when it states none
  ``params_source``  where ``params`` comes from; with ``params=None``, which official
                     implementation's count ``params_count`` is and how it was obtained
  ``params_count``   (only with ``params=None``) that official implementation's count
  ``metrics``        the paper's numbers, e.g. {"fid": 3.17, "is": 9.46, "bits_per_dim": 3.75}
  ``nfe``            network evaluations per sample behind the sample metrics
  ``global_batch``   = the config's train.batch_size
  ``lr``             = optim.learning_rate
  ``ema``            = train.ema_decay (0.0 where the paper keeps no EMA)
  ``steps``          = train.steps
  ``augmentation``   = train.augment ("none", "hflip")
  ``smoke``          a tuple of "KEY=VALUE" overrides that shrink the config for a CPU smoke
                     run: train.batch_size=2 and a narrower network (model.channels), the
                     same architecture otherwise; plus the family's own eval/sample keys
                     that keep a tiny `jaxgen eval` short

  and optionally ``params_of``: the top-level keys of the params tree the count covers
  (e.g. ("generator",)); absent: all of them.

`paper_configs()` lists them; tests/test_paper_configs.py checks every one (the record,
the docstring, the settings against the record, the parameter count within 1%, a CPU smoke
run of two steps and a tiny eval).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import ConfigError

__all__ = ["RECORD_KEYS", "SETTINGS", "PaperConfig", "paper_configs", "paper_config",
           "record_problems", "expected_params"]

RECORD_KEYS = ("paper", "table", "params", "params_source", "metrics", "nfe", "global_batch",
               "lr", "ema", "steps", "augmentation", "smoke")
# record key -> the config key that must hold the same value
SETTINGS = {"global_batch": "train.batch_size", "lr": "optim.learning_rate",
            "ema": "train.ema_decay", "steps": "train.steps",
            "augmentation": "train.augment"}


@dataclasses.dataclass(frozen=True)
class PaperConfig:
    """A shipped paper config: ``name`` as `jaxgen train --config` takes it
    ("diffusion/ddpm_cifar10"), its file, its module docstring and its PAPER record."""

    name: str
    path: Path
    doc: str
    record: dict

    def load(self, overrides=()):
        """The resolved config, with `overrides` ("KEY=VALUE" strings) applied."""
        return config_lib.load_config(self.path, list(overrides))

    def smoke(self) -> tuple[str, ...]:
        return tuple(self.record["smoke"])


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"jaxgen_paper_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - a config file: say which
        raise ConfigError(f"{path} cannot be imported: {e}") from e
    return module


def paper_config(path: str | Path) -> PaperConfig | None:
    """The paper config of one config file (or shipped name); None if it has no PAPER."""
    path = config_lib.find_config(path)
    module = _module(path)
    record = getattr(module, "PAPER", None)
    if record is None:
        return None
    return PaperConfig(f"{path.parent.name}/{path.stem}", path, module.__doc__ or "",
                       dict(record))


def paper_configs() -> list[PaperConfig]:
    """Every shipped config with a PAPER record, by name."""
    out = []
    for path in config_lib.find_configs():
        if "PAPER" not in path.read_text():
            continue
        found = paper_config(path)
        if found is not None:
            out.append(found)
    return out


def expected_params(record: dict) -> int:
    """The count a config's network must match: the paper's, else the official code's."""
    return record["params"] if record["params"] is not None else record["params_count"]


def record_problems(pc: PaperConfig) -> list[str]:
    """What is missing or inconsistent in a paper config's record, name and docstring
    (empty: nothing); the settings are compared with the resolved config."""
    r, problems = pc.record, []
    missing = [k for k in RECORD_KEYS if k not in r]
    if missing:
        return [f"PAPER lacks {', '.join(missing)}"]
    if r["params"] is None and not isinstance(r.get("params_count"), int):
        problems.append("params is None: params_count (the official code's count) is needed")
    if not isinstance(r["metrics"], dict) or not r["metrics"]:
        problems.append("metrics must be a non-empty dict")
    smoke = r["smoke"]
    if isinstance(smoke, str) or not all(isinstance(s, str) and "=" in s for s in smoke):
        problems.append("smoke must be a tuple of 'KEY=VALUE' strings")
    elif "train.batch_size=2" not in smoke:
        problems.append("smoke must set train.batch_size=2")
    cfg = pc.load()
    for key, setting in SETTINGS.items():
        group, leaf = setting.split(".")
        if cfg[group][leaf] != r[key]:
            problems.append(f"PAPER[{key!r}]={r[key]!r} but {setting}={cfg[group][leaf]!r}")
    if not pc.path.stem.endswith(f"_{cfg.data.name}"):
        problems.append(f"the file name must end in _{cfg.data.name} (data.name)")
    doc = " ".join(pc.doc.split())  # lines joined: a phrase may wrap
    year = re.search(r"\b(19|20)\d\d\b", str(r["paper"]))
    surname = str(r["paper"]).split(",")[0].split()[-1] if r["paper"] else ""
    for what, present in (("the paper's first author", surname and surname in doc),
                          ("the paper's year", year and year.group(0) in doc),
                          ("the table", str(r["table"]) in doc),
                          ("the train command", f"jaxgen train --config {pc.name}" in doc
                           or f"--config configs/{pc.name}.py" in doc),
                          ("the global batch", _named(doc, r["global_batch"])),
                          ("the learning rate", _named(doc, r["lr"])),
                          ("the EMA", r["ema"] == 0 or _named(doc, r["ema"])),
                          ("the steps", _named(doc, r["steps"])),
                          ("the NFE", _named(doc, r["nfe"]))):
        if not present:
            problems.append(f"the docstring does not name {what}")
    return problems


def _named(doc: str, value) -> bool:
    """Whether `value` is written in `doc` in one of its usual forms (2e-4, 0.0002,
    800000, 800k, 800,000)."""
    if isinstance(value, bool) or value is None:
        return False
    forms = {str(value), f"{value:g}"}
    if isinstance(value, float):
        mantissa, _, exp = f"{value:e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        forms |= {f"{mantissa}e{int(exp)}", f"{mantissa}e{int(exp):+03d}",
                  f"{mantissa}e{int(exp):03d}"}
    if isinstance(value, int):
        forms.add(f"{value:,}")
        if value % 1000 == 0 and value >= 1000:
            forms.add(f"{value // 1000}k")
        if value % 1_000_000 == 0 and value >= 1_000_000:
            forms.add(f"{value // 1_000_000}M")
    return any(re.search(rf"(?<![\w.]){re.escape(f)}(?![\w]|\.\d)", doc) for f in forms)
