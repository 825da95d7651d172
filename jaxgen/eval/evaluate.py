"""`jaxgen eval`: exact likelihood on held-out data, plus cheap sample-quality metrics.

2-D / vector data: `nll_nats` (mean −log p(x), nats); for toys with a known
density also `true_nll_nats` (−log p_true on the same points: the entropy the
model is compared with) and `nll_gap_nats`, and `mmd2` between model samples
and held-out points. Images: `bits_per_dim` under the shared convention of
`jaxgen.eval.likelihood` (and `nll_nats` per image).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxgen.core import distributed
from jaxgen.core.experiment import DatasetInfo, Experiment
from jaxgen.core.logging import format_table
from jaxgen.data import get_dataset
from jaxgen.eval import likelihood
from jaxgen.eval.mmd import mmd2
from jaxgen.eval.modes import mode_metrics


def _feature_metrics(exp, params, dataset, num: int, rng) -> dict:
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
    samples = exp.sample(params, rng, num)
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
             overrides=()) -> dict:
    """Scores the run in `workdir` on `split` and writes the results (with the settings they
    were computed with: `settings`, and the CLI `overrides`) to `out_path` (default
    WORKDIR/eval.json)."""
    workdir = Path(workdir).resolve()
    dataset = get_dataset(config.data, split)
    info = DatasetInfo.of(dataset)
    exp = Experiment(config, info)
    state, _ = exp.restore(workdir, step)
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
        for i, lo in enumerate(tqdm(range(0, n, bs), desc=f"log-likelihood ({name})",
                                    leave=False, disable=not progress)):
            idx = np.arange(lo, min(lo + bs, n))
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
        if info.kind in ("images", "tokens"):  # tokens: bits per code
            res["bits_per_dim"] = likelihood.bits_per_dim(logp, info.event_shape)
        for k, v in terms.items():  # the bound's parts, as -log terms in bits/dim (or nats)
            v = np.concatenate(v)
            if info.kind in ("images", "tokens"):
                res[f"{k}_bpd"] = float(np.mean(v) / (info.dim * math.log(2.0)))
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

    stats = exp.objective.held_out_stats
    if stats is not None:  # the family's own held-out diagnostics (e.g. active units)
        arrays = {}
        for i, lo in enumerate(tqdm(range(0, n, bs), desc="held-out statistics", leave=False,
                                    disable=not progress)):
            idx = np.arange(lo, min(lo + bs, n))
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
        samples = exp.sample(params, jax.random.fold_in(rng, -1 % 2**31), m)
        out["mmd2"] = float(mmd2(samples, held))
        out["mmd_num"] = m
    if (toy is not None and toy.modes is not None and exp.objective.sample is not None
            and e.mode_samples > 0):  # mode collapse (VEEGAN/PacGAN protocol)
        samples = exp.sample(params, jax.random.fold_in(rng, 7), int(e.mode_samples))
        out.update(mode_metrics(samples, toy.modes, toy.std))
    if (info.kind == "images" and info.name == "fashion_mnist"
            and exp.objective.sample is not None and e.fd_num > 0):
        out.update(_feature_metrics(exp, params, dataset, int(e.fd_num),
                                    jax.random.fold_in(rng, 11)))
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)

    if write and distributed.is_main():
        path = Path(out_path) if out_path else workdir / "eval.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {**out, "settings": {"eval": config.eval.to_dict(),
                                      "sample": config.sample.to_dict(),
                                      "overrides": list(overrides)}}
        path.write_text(json.dumps(record, indent=2, default=str))
        print(format_table(list(out.items()), title=f"jaxgen eval: {workdir} ({split})"),
              flush=True)
        print(f"Wrote {path}", flush=True)
    return out
