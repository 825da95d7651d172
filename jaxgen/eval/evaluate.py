"""`jaxgen eval`: every registered metric that applies to the run, on held-out data.

`evaluate` restores the run and runs the list of metrics (`jaxgen.eval.metrics`: the
likelihoods, the data's own entropy, the family's held-out statistics, MMD and mode
metrics on points, FD and precision/recall in a dataset's feature space, and the
composed bound of `jaxgen.composed.bound`); each says when it applies.

Results are kept, one file per evaluation, under WORKDIR/eval/:

    eval/test_step0008000.json           the run's own eval.* / sample.* settings
    eval/train_step0008000.json          another split
    eval/test_step0008000_full.json      `jaxgen eval --full` (the config's eval.full preset)
    eval/test_step0008000_3f2a91c0.json  any other settings (a hash of what differs)

The name is a function of what was evaluated: the split, the checkpoint step, and the
config keys whose values differ from the run's own config.json (overrides of eval.*,
sample.*, or anything else). So a different evaluation never lands on another's file,
while the same evaluation run again replaces its own file (it is the same measurement).
A name is derived rather than chosen per run (eval.json, eval-2.json, ...) so that a
reader can find the evaluation it wants without opening every file, and a script can
re-run an evaluation idempotently. Each file records the split, step, settings, CLI
overrides and the differing keys (`settings`); a file at the derived name whose record
says otherwise is never replaced without `force`. `read_eval(workdir, split)` returns the
newest evaluation of a split (the one every reader in jaxgen uses); runs from before
this layout, with a WORKDIR/eval.json, are read too.

Every long loop (likelihood batches, held-out statistics, sampling) shows a progress bar
with an ETA on stderr.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import jax

from jaxgen.data import get_dataset
from jaxgen.eval.metrics import EvalContext
from jaxgen.kernel import registry
from jaxgen.kernel.errors import MissingError, NonFiniteResultError, UsageError, UserError
from jaxgen.runner import distributed
from jaxgen.runner.experiment import Experiment, run_data_info
from jaxgen.runner.logging import format_table

EVAL_DIR = "eval"
LEGACY_FILE = "eval.json"  # one file per run, before the eval/ folder


def evaluate(config, workdir: str | Path, split: str = "test", step: int | None = None,
             write: bool = True, progress: bool = True, out_path: str | Path | None = None,
             overrides=(), force: bool = False, echo: bool | None = None) -> dict:
    """Scores the run in `workdir` on `split` (at checkpoint `step`, default the latest) and
    returns the results.

    `echo` (default: `write`) prints them as a table. Then, with `write`, the record (the
    results, and `settings`: eval.* and sample.*, the CLI `overrides`, the keys that differ
    from the run's config) goes to `out_path`, default WORKDIR/eval/<name> (`result_name`),
    and "Wrote PATH" is printed. A file there holding a different evaluation is refused
    before anything is computed, unless `force`; the same evaluation replaces its own file.
    """
    workdir = Path(workdir).resolve()
    echo = write if echo is None else echo
    dataset = get_dataset(config.data, split)
    info = run_data_info(dataset, workdir)
    exp = Experiment(config, info)
    state, _ = exp.restore(workdir, step)
    step = int(distributed.to_host(state.step))
    record_settings = _record_settings(config, workdir, overrides)
    path = None
    if write and distributed.is_main():  # the target is known (and checked) before the work
        path = _target(workdir, split, step, record_settings, overrides, out_path, force)
    e = config.eval
    params = state.ema_params if e.use_ema else state.params
    rng = jax.random.fold_in(jax.random.key(config.seed), 2 * 10**9)
    n = min(e.num_examples, len(dataset.source))
    bs = min(e.batch_size, n)
    t0 = time.perf_counter()
    out = {"split": split, "step": step, "num_examples": n,
           "params": "ema" if e.use_ema else "raw", "likelihood": exp.objective.likelihood_kind}

    ctx = EvalContext(exp, params, dataset, split, n, bs, rng, progress, out, workdir)
    for metric in registry.metrics():
        if metric.applies(ctx):
            out.update(metric.compute(ctx))
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)

    if echo and distributed.is_main():
        print(format_table(list(out.items()), title=f"jaxgen eval: {workdir} ({split})"),
              flush=True)
    # a NaN is never kept as a result (an inf can be one: the reverse KL of a missed mode)
    bad = [k for k, v in out.items() if isinstance(v, float) and math.isnan(v)]
    if bad:
        raise NonFiniteResultError(
            f"the evaluation of {workdir} (checkpoint {step}, {out['params']} params) gave "
            f"NaN {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}; nothing was "
            "written. A damaged or diverged checkpoint: try --step N of an earlier one, or "
            f"eval.use_ema={'false' if e.use_ema else 'true'}.")
    if path is not None:
        _write_record(path, {**out, "workdir": str(workdir), "settings": record_settings})
    return out


def _target(workdir, split, step, record_settings, overrides, out_path, force) -> Path:
    """Where the record goes (--out, or its derived name), refused before any work if a
    different evaluation is there."""
    differs = record_settings["differs_from_run"]
    path = Path(out_path) if out_path else workdir / EVAL_DIR / result_name(
        split, step, differs, _full_differences(workdir, overrides))
    _check_target(path, split, step, differs, force)
    return path


def _write_record(path: Path, record: dict) -> None:
    try:
        _write_json(path, record)
    except OSError as err:
        raise UserError(
            f"could not write {path}: {err.strerror or err}. The results are printed "
            "above; pass --out FILE to keep them elsewhere.") from err
    print(f"Wrote {path}", flush=True)


# ------------------------------------------------------------------ result files
def _flat(cfg) -> dict:
    """"group.key" -> value of a config (as config.json stores it)."""
    from jaxgen.kernel import config as config_lib
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v
    walk(json.loads(config_lib.to_json(cfg)), "")
    return out


# Keys that do not change what an evaluation measures.
_NOT_IDENTITY = ("eval.full",)


def config_differences(config, own) -> dict:
    """{key: value in `config`} for every key whose value differs from the run's own
    config `own` (None: every eval.* and sample.* key counts as set)."""
    new = _flat(config)
    if own is None:
        return {k: v for k, v in sorted(new.items())
                if k.startswith(("eval.", "sample.")) and k not in _NOT_IDENTITY}
    old = _flat(own)
    keys = sorted(set(new) | set(old))
    return {k: new.get(k) for k in keys
            if k not in _NOT_IDENTITY and new.get(k) != old.get(k)}


def name_overrides(overrides) -> list[str]:
    """The objective.name / model.name overrides: a moved plugin file re-pointed. They do not
    make another evaluation, and the run's own config can only be read with them."""
    return [o for o in overrides if o.split("=", 1)[0] in ("objective.name", "model.name")]


def _own_config(workdir, overrides=()):
    from jaxgen.runner import runs
    try:
        return runs.workdir_config(workdir, name_overrides(overrides))
    except MissingError:
        return None


def _record_settings(config, workdir, overrides) -> dict:
    return {"eval": config.eval.to_dict(), "sample": config.sample.to_dict(),
            "overrides": list(overrides),
            "differs_from_run": config_differences(config, _own_config(workdir, overrides))}


def full_overrides(config) -> list[str]:
    """The overrides of `jaxgen eval --full`: the config's eval.full preset ("KEY=VALUE"
    items of eval.* / sample.* keys, space-separated)."""
    from jaxgen.kernel.errors import ConfigError
    items = str(config.eval.get("full", "") or "").split()
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or not key.startswith(("eval.", "sample.")) or key == "eval.full":
            raise ConfigError(f"eval.full item {item!r}: each item is KEY=VALUE of an eval.* "
                              "or sample.* key (space-separated).")
    return items


def _full_differences(workdir, overrides=()) -> dict | None:
    """What `--full` changes in the run's own config (None: no preset, or no config)."""
    from jaxgen.runner import runs
    own = _own_config(workdir, overrides)
    if own is None or not full_overrides(own):
        return None
    names = name_overrides(overrides)
    return config_differences(runs.workdir_config(workdir, [*names, *full_overrides(own)]), own)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(text)).strip("-") or "split"


def result_name(split: str, step: int, differences: dict,
                full_differences: dict | None = None) -> str:
    """The file name of an evaluation: SPLIT_stepNNNNNNN.json for the run's own settings,
    ..._full.json for its eval.full preset, else ..._HASH.json (8 hex digits of the
    differing keys and values)."""
    stem = f"{_safe(split)}_step{int(step):07d}"
    if not differences:
        return f"{stem}.json"
    if full_differences is not None and differences == full_differences:
        return f"{stem}_full.json"
    digest = hashlib.sha1(json.dumps(differences, sort_keys=True, default=str).encode())
    return f"{stem}_{digest.hexdigest()[:8]}.json"


def _check_target(path: Path, split: str, step: int, differences: dict, force: bool) -> None:
    """Refuses to replace a file that holds anything but this same evaluation."""
    if force or not path.exists():
        return
    try:
        old = json.loads(path.read_text())
        same = (old.get("split") == split and old.get("step") == step
                and old.get("settings", {}).get("differs_from_run") == json.loads(
                    json.dumps(differences, default=str)))
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise UsageError(f"{path} holds a different evaluation (or is not a jaxgen eval "
                         "record); pass --force to replace it, or --out FILE.")


def _write_json(path: Path, record: dict) -> None:
    """Writes `record` whole or not at all (a temporary file renamed over `path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def eval_records(workdir, split: str | None = None) -> list[tuple[Path, dict]]:
    """(path, record) of every evaluation kept in `workdir` (of `split`, if given): the
    files of WORKDIR/eval/, and a WORKDIR/eval.json of runs from before that folder."""
    workdir = Path(workdir)
    paths = sorted((workdir / EVAL_DIR).glob("*.json"))
    if (workdir / LEGACY_FILE).is_file():
        paths.append(workdir / LEGACY_FILE)
    out = []
    for p in paths:
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and (split is None or rec.get("split", "test") == split):
            out.append((p, rec))
    return out


def read_eval(workdir, split: str = "test", step: int | None = None) -> dict:
    """The newest evaluation of `split` kept in `workdir`: of checkpoint `step` (default:
    the latest step evaluated), and of those the one written last. Raises MissingError if
    there is none."""
    got = [(p, r) for p, r in eval_records(workdir, split)
           if step is None or r.get("step") == step]
    if not got:
        at = "" if step is None else f" at step {step}"
        raise MissingError(f"{workdir} holds no evaluation of split {split!r}{at}; run "
                           f"jaxgen eval --workdir {workdir} --split {split}")
    return max(got, key=lambda pr: (pr[1].get("step", -1), pr[0].stat().st_mtime_ns))[1]
