"""`jaxgen eval`: exact likelihood on held-out data, plus cheap sample-quality metrics.

2-D / vector data: `nll_nats` (mean −log p(x), nats); for toys with a known
density also `true_nll_nats` (−log p_true on the same points: the entropy the
model is compared with) and `nll_gap_nats`, and `mmd2` between model samples
and held-out points. Images: `bits_per_dim` under the shared convention of
`jaxgen.eval.likelihood` (and `nll_nats` per image).

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
import numpy as np

from jaxgen.core import distributed
from jaxgen.core.errors import MissingError, UsageError, UserError
from jaxgen.core.experiment import DatasetInfo, Experiment
from jaxgen.core.logging import format_table
from jaxgen.data import get_dataset
from jaxgen.eval import likelihood
from jaxgen.eval.mmd import mmd2
from jaxgen.eval.modes import mode_metrics
from jaxgen.eval.sample_quality import mixture_sample_metrics

EVAL_DIR = "eval"
LEGACY_FILE = "eval.json"  # one file per run, before the eval/ folder


def _bar(total: int, desc: str, enabled: bool, unit: str = "example"):
    """Progress with an ETA on stderr: a tqdm bar on a terminal, else a plain line at most
    every 30 s and one at the end (`jaxgen.core.logging.progress_bar`)."""
    from jaxgen.core.logging import progress_bar
    return progress_bar(total, 0, enabled, desc=desc, unit=unit)


def _batches(n: int, bs: int, desc: str, progress: bool):
    """(i, indices) of the batches of range(n), with a progress bar over the examples."""
    bar = _bar(n, desc, progress)
    try:
        for i, lo in enumerate(range(0, n, bs)):
            idx = np.arange(lo, min(lo + bs, n))
            yield i, idx
            bar.update(len(idx))
    finally:
        bar.close()


def _draw(exp, params, rng, num: int, *, chunk: int, desc: str, progress: bool):
    """`num` samples of the run with a progress bar, `chunk` per sampler call.

    num <= chunk: one call, exactly what `exp.sample(params, rng, num)` draws (the 2-D
    metrics keep the samples of earlier versions). More: chunk i is drawn with key
    fold_in(rng, i), so the bar moves and shows an ETA."""
    bar = _bar(num, desc, progress, unit="sample")
    try:
        if num <= chunk:
            x = exp.sample(params, rng, num)
            bar.update(num)
            return x
        outs = []
        for i, lo in enumerate(range(0, num, chunk)):
            n = min(chunk, num - lo)
            outs.append(exp.sample(params, jax.random.fold_in(rng, i), n, chunk=n))
            bar.update(n)
        return np.concatenate(outs)
    finally:
        bar.close()


def _feature_metrics(exp, params, dataset, num: int, rng, chunk: int = 1000,
                     progress: bool = False) -> dict:
    """In the feature space of jaxgen's Fashion-MNIST classifier (`jaxgen.eval.classifier`):
    FD vs the cached test-set reference; and, against `num` test images, k-NN
    precision/recall and two two-sample tests of "samples ~ data": the lecture's learned
    test statistic (a classifier two-sample test: held-out accuracy, binomial p-value) and
    the kernel MMD with its permutation p-value."""
    from jaxgen.eval import classifier as clf
    from jaxgen.eval.mmd import mmd_test
    from jaxgen.eval.two_sample import c2st
    cached = clf.load_cached()
    if cached is None:
        return {"fd": "skipped: train the feature classifier once with `jaxgen classifier`"}
    cparams, cinfo = cached
    samples = _draw(exp, params, rng, num, chunk=chunk, desc="samples for FD", progress=progress)
    real = dataset.source.get(np.arange(min(num, len(dataset.source))))["x"]
    q = clf.sample_quality(cparams, samples, ref=clf.reference_stats(cparams), real_for_pr=real)
    fr, fs = clf.embed(cparams, real), clf.embed(cparams, samples)
    t = c2st(fr, fs)
    m = mmd_test(fr, fs)
    return {**q, "classifier_test_accuracy": cinfo["test_accuracy"],
            "c2st_accuracy": t["accuracy"], "c2st_p": t["p_value"], "c2st_n_test": t["n_test"],
            "mmd2_features": m["mmd2"], "mmd_p": m["p_value"], "mmd_n": len(fr)}


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
    info = DatasetInfo.of(dataset)
    exp = Experiment(config, info)
    state, _ = exp.restore(workdir, step)
    record_settings = _record_settings(config, workdir, overrides)
    path = None
    if write and distributed.is_main():  # the target is known (and checked) before the work
        path = Path(out_path) if out_path else workdir / EVAL_DIR / result_name(
            split, int(distributed.to_host(state.step)), record_settings["differs_from_run"],
            _full_differences(workdir, overrides))
        _check_target(path, split, int(distributed.to_host(state.step)),
                      record_settings["differs_from_run"], force)
    e = config.eval
    params = state.ema_params if e.use_ema else state.params
    rng = jax.random.fold_in(jax.random.key(config.seed), 2 * 10**9)
    n = min(e.num_examples, len(dataset.source))
    bs = min(e.batch_size, n)
    t0 = time.perf_counter()
    out = {"split": split, "step": int(distributed.to_host(state.step)), "num_examples": n,
           "params": "ema" if e.use_ema else "raw", "likelihood": exp.objective.likelihood_kind}

    names = exp.likelihood_names()
    toy = getattr(dataset, "toy", None)
    for name in names:
        lik = exp.objective.likelihoods[name]
        logps, terms = [], {}
        for i, idx in _batches(n, bs, f"log-likelihood ({name})", progress):
            x = dataset.source.get(idx)["x"]
            pad = bs - len(idx)
            if pad:  # keep one compiled shape
                x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
            lp, tm = exp.log_likelihood_terms(params, x, jax.random.fold_in(rng, i), name=name)
            logps.append(lp[:len(idx)])
            for k, v in tm.items():
                terms.setdefault(k, []).append(np.asarray(v)[:len(idx)])
        logp = np.concatenate(logps)
        # One estimator: plain keys. Several: "<name>/..." keys, and the plain
        # nll_nats / bits_per_dim are the first (default) estimator's.
        pre = "" if len(names) == 1 else f"{name}/"
        res = {"nll_nats": likelihood.nll_nats(logp),
               "nll_nats_stderr": float(np.std(logp) / math.sqrt(n))}
        dims = lik.dims or info.dim  # the dimensions scored (a given prefix is not)
        if info.kind in ("images", "tokens"):  # tokens: bits per code
            res["bits_per_dim"] = likelihood.bits_per_dim(logp, (dims,))
        for k, v in terms.items():  # the bound's parts, as -log terms in bits/dim (or nats)
            v = np.concatenate(v)
            if info.kind in ("images", "tokens"):
                res[f"{k}_bpd"] = float(np.mean(v) / (dims * math.log(2.0)))
            else:
                res[f"{k}_nats"] = float(np.mean(v))
        res["kind"] = lik.kind
        if lik.ode:
            res["divergence"] = exp.divergence_mode()
            res["ode"] = f"{e.ode_method} x {e.ode_steps}"
        if pre and name == names[0]:
            out.update({k: res[k] for k in ("nll_nats", "nll_nats_stderr", "bits_per_dim")
                        if k in res})
        out.update({pre + k: v for k, v in res.items()})
    if names and toy is not None and toy.log_prob is not None:
        true_logp = toy.log_prob(np.asarray(dataset.source.get(np.arange(n))["x"], np.float64))
        out["true_nll_nats"] = float(-np.mean(true_logp))
        out["nll_gap_nats"] = out["nll_nats"] - out["true_nll_nats"]
        for name in names[1:]:
            out[f"{name}/nll_gap_nats"] = out[f"{name}/nll_nats"] - out["true_nll_nats"]

    if config.data.get("name") == "latents":  # a prior in a VAE's latent space: the bound
        # with the learned prior beside the VAE's own N(0, I) ELBO (`eval.latent_bound`)
        from jaxgen.eval.latent_bound import composed_bound
        out.update(composed_bound(exp, params, split, n, bs, jax.random.fold_in(rng, 13),
                                  lambda m, b, desc: _batches(m, b, desc, progress)))

    stats = exp.objective.held_out_stats
    if stats is not None:  # the family's own held-out diagnostics (e.g. active units)
        arrays = {}
        for i, idx in _batches(n, bs, "held-out statistics", progress):
            got = dataset.source.get(idx)
            x, label = got["x"], got.get("label")
            if bs - len(idx):
                x = np.concatenate([x, np.repeat(x[-1:], bs - len(idx), 0)])
                if label is not None:
                    label = np.concatenate([label, np.repeat(label[-1:], bs - len(idx), 0)])
            got = exp.held_out_stats_batch(params, x, jax.random.fold_in(rng, 10**6 + i), label)
            for k, v in got.items():
                arrays.setdefault(k, []).append(np.asarray(v)[:len(idx)])
        out.update(stats.reduce({k: np.concatenate(v) for k, v in arrays.items()}))

    if info.kind == "points" and exp.objective.sample is not None and e.mmd_num > 0:
        m = min(e.mmd_num, len(dataset.source))
        held = np.asarray(dataset.source.get(np.arange(len(dataset.source) - m,
                                                        len(dataset.source)))["x"])
        samples = _draw(exp, params, jax.random.fold_in(rng, -1 % 2**31), m, chunk=m,
                        desc="samples for MMD", progress=progress)
        out["mmd2"] = float(mmd2(samples, held))
        out["mmd_num"] = m
        if getattr(toy, "weights", None) is not None:  # a Gaussian mixture's components:
            # sliced W1 / its two-true-sample floor, mode-weight TV (`eval.sample_quality`)
            out.update(mixture_sample_metrics(np.asarray(samples), held, toy))
    if (toy is not None and toy.modes is not None and toy.std is not None
            and exp.objective.sample is not None
            and e.mode_samples > 0):  # mode collapse (VEEGAN/PacGAN protocol)
        samples = _draw(exp, params, jax.random.fold_in(rng, 7), int(e.mode_samples),
                        chunk=int(e.mode_samples), desc="samples for mode metrics",
                        progress=progress)
        out.update(mode_metrics(samples, toy.modes, toy.std))
    if (info.kind == "images" and info.name == "fashion_mnist"
            and exp.objective.sample is not None and e.fd_num > 0):
        out.update(_feature_metrics(exp, params, dataset, int(e.fd_num),
                                    jax.random.fold_in(rng, 11), chunk=min(bs, 1000),
                                    progress=progress))
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)

    if echo and distributed.is_main():
        print(format_table(list(out.items()), title=f"jaxgen eval: {workdir} ({split})"),
              flush=True)
    if path is not None:
        record = {**out, "workdir": str(workdir), "settings": record_settings}
        try:
            _write_json(path, record)
        except OSError as err:
            raise UserError(
                f"could not write {path}: {err.strerror or err}. The results are printed "
                "above; pass --out FILE to keep them elsewhere.") from err
        print(f"Wrote {path}", flush=True)
    return out


# ------------------------------------------------------------------ result files
def _flat(cfg) -> dict:
    """"group.key" -> value of a config (as config.json stores it)."""
    from jaxgen.core import config as config_lib
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
    from jaxgen.core import runs
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
    from jaxgen.core.errors import ConfigError
    items = str(config.eval.get("full", "") or "").split()
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or not key.startswith(("eval.", "sample.")) or key == "eval.full":
            raise ConfigError(f"eval.full item {item!r}: each item is KEY=VALUE of an eval.* "
                              "or sample.* key (space-separated).")
    return items


def _full_differences(workdir, overrides=()) -> dict | None:
    """What `--full` changes in the run's own config (None: no preset, or no config)."""
    from jaxgen.core import runs
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
