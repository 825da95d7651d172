"""The metrics `jaxgen eval` reports, each registered with when it applies and how it
computes (`jaxgen.kernel.registry.Metric`); `jaxgen.eval.evaluate` runs the list.

    order  metric            applies when
    10     likelihood        the objective has a likelihood: NLL (nats), bits/dim for images
                             and codes, the bound's terms, per estimator
    20     true_nll          the data have a known density: its entropy and the NLL gap
    30     composed bound    (`jaxgen.composed.bound`) a prior on a VAE's latents
    40     held_out_stats    the family declares held-out diagnostics (`HeldOutStats`)
    50     mmd               points and a sampler: MMD² vs held-out points; on a Gaussian
                             mixture also sliced W1 and the mode-weight TV
    60     modes             a mixture with known modes and eval.mode_samples > 0
    70     features          images of a dataset with a feature space (`DatasetSpec.features`)
                             and eval.fd_num > 0: FD, precision/recall, two-sample tests
    80     inception         images and eval.fid_num > 0: Inception FID and IS, streamed
                             (`jaxgen.eval.fid`), with what the number depends on

Each metric's randomness is its own fold of the evaluation's key, so adding one changes no
other's numbers. A metric of your own: `register_metric(Metric(name, applies, compute))`
from a module an entry point of "jaxgen.plugins" names.

This module also registers the feature classifier's network and objective
(`jaxgen.eval.classifier`), like any other network and objective.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxgen.eval import likelihood
from jaxgen.eval.mmd import mmd2
from jaxgen.eval.modes import mode_metrics
from jaxgen.eval.sample_quality import mixture_sample_metrics
from jaxgen.kernel.registry import (
    Metric,
    ModelSpec,
    ObjectiveSpec,
    register_metric,
    register_model,
    register_objective,
    resolve,
)

register_model("fmnist_cnn", ModelSpec("jaxgen.eval.classifier:FmnistCNN", ("images",)))
register_objective(ObjectiveSpec("classifier", "jaxgen.eval.classifier:make_objective",
                                 kinds=("images",), summary="a supervised classifier "
                                 "(cross-entropy on the labels)"))


@dataclasses.dataclass
class EvalContext:
    """What a metric sees: the run, the params scored, the held-out data and the results
    so far (`out`, which `compute`'s results are merged into)."""

    exp: Any
    params: Any
    dataset: Any
    split: str
    n: int  # held-out examples scored
    bs: int  # examples per call
    rng: Any
    progress: bool
    out: dict
    workdir: Any = None  # the run's folder (its run.json)

    @property
    def settings(self):
        return self.exp.config.eval

    @property
    def info(self):
        return self.exp.info

    @property
    def toy(self):
        return self.dataset.toy

    def batches(self, n: int, bs: int, desc: str):
        """(i, indices) of the batches of range(n), with a progress bar over the examples."""
        bar = bar_of(n, desc, self.progress)
        try:
            for i, lo in enumerate(range(0, n, bs)):
                idx = np.arange(lo, min(lo + bs, n))
                yield i, idx
                bar.update(len(idx))
        finally:
            bar.close()

    def draw(self, rng, num: int, *, chunk: int, desc: str):
        """`num` samples of the run (`draw`)."""
        return draw(self.exp, self.params, rng, num, chunk=chunk, desc=desc,
                    progress=self.progress)

    def padded(self, idx, arrays):
        """`arrays` of a batch `idx`, its last row repeated up to `bs` (one compiled shape)."""
        pad = self.bs - len(idx)
        if not pad:
            return arrays
        return [None if a is None else np.concatenate([a, np.repeat(a[-1:], pad, 0)])
                for a in arrays]


def bar_of(total: int, desc: str, enabled: bool, unit: str = "example"):
    """Progress with an ETA on stderr (`jaxgen.runner.logging.progress_bar`)."""
    from jaxgen.runner.logging import progress_bar
    return progress_bar(total, 0, enabled, desc=desc, unit=unit)


def draw(exp, params, rng, num: int, *, chunk: int, desc: str, progress: bool):
    """`num` samples of the run with a progress bar, `chunk` per sampler call.

    num <= chunk: one call, exactly what `exp.sample(params, rng, num)` draws (the 2-D
    metrics keep the samples of earlier versions). More: chunk i is drawn with key
    fold_in(rng, i), so the bar moves and shows an ETA."""
    bar = bar_of(num, desc, progress, unit="sample")
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


def _samples(ctx) -> bool:
    return ctx.exp.objective.sample is not None


# ------------------------------------------------------------------ likelihood
def _likelihood(ctx: EvalContext) -> dict:
    exp, params, info, out = ctx.exp, ctx.params, ctx.info, {}
    names = exp.likelihood_names()
    e = ctx.settings
    for name in names:
        lik = exp.objective.likelihoods[name]
        logps, terms = [], {}
        for i, idx in ctx.batches(ctx.n, ctx.bs, f"log-likelihood ({name})"):
            (x,) = ctx.padded(idx, [ctx.dataset.source.get(idx)["x"]])
            lp, tm = exp.log_likelihood_terms(params, x, jax.random.fold_in(ctx.rng, i),
                                              name=name)
            logps.append(lp[:len(idx)])
            for k, v in tm.items():
                terms.setdefault(k, []).append(np.asarray(v)[:len(idx)])
        logp = np.concatenate(logps)
        # One estimator: plain keys. Several: "<name>/..." keys, and the plain
        # nll_nats / bits_per_dim are the first (default) estimator's.
        pre = "" if len(names) == 1 else f"{name}/"
        res = {"nll_nats": likelihood.nll_nats(logp),
               "nll_nats_stderr": float(np.std(logp) / math.sqrt(ctx.n))}
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
    return out


def _true_nll(ctx: EvalContext) -> dict:
    """The data's own entropy on the same points, and each estimator's gap to it."""
    x = np.asarray(ctx.dataset.source.get(np.arange(ctx.n))["x"], np.float64)
    out = {"true_nll_nats": float(-np.mean(ctx.toy.log_prob(x)))}
    out["nll_gap_nats"] = ctx.out["nll_nats"] - out["true_nll_nats"]
    for name in ctx.exp.likelihood_names()[1:]:
        out[f"{name}/nll_gap_nats"] = ctx.out[f"{name}/nll_nats"] - out["true_nll_nats"]
    return out


# --------------------------------------------------------------- held-out stats
def _held_out_stats(ctx: EvalContext) -> dict:
    """The family's own held-out diagnostics (e.g. a VAE's active units)."""
    exp, arrays = ctx.exp, {}
    for i, idx in ctx.batches(ctx.n, ctx.bs, "held-out statistics"):
        got = ctx.dataset.source.get(idx)
        x, label = ctx.padded(idx, [got["x"], got.get("label")])
        got = exp.held_out_stats_batch(ctx.params, x, jax.random.fold_in(ctx.rng, 10**6 + i),
                                       label)
        for k, v in got.items():
            arrays.setdefault(k, []).append(np.asarray(v)[:len(idx)])
    return exp.objective.held_out_stats.reduce({k: np.concatenate(v)
                                                for k, v in arrays.items()})


# ------------------------------------------------------------ sample quality
def _mmd(ctx: EvalContext) -> dict:
    """MMD² of samples vs the last held-out points; on a Gaussian mixture's components also
    sliced W1 / its two-true-sample floor and the mode-weight TV (`eval.sample_quality`)."""
    src = ctx.dataset.source
    m = min(ctx.settings.mmd_num, len(src))
    held = np.asarray(src.get(np.arange(len(src) - m, len(src)))["x"])
    samples = ctx.draw(jax.random.fold_in(ctx.rng, -1 % 2**31), m, chunk=m,
                       desc="samples for MMD")
    out = {"mmd2": float(mmd2(samples, held)), "mmd_num": m}
    if getattr(ctx.toy, "weights", None) is not None:
        out.update(mixture_sample_metrics(np.asarray(samples), held, ctx.toy))
    return out


def _modes(ctx: EvalContext) -> dict:
    """Mode coverage (the VEEGAN/PacGAN protocol)."""
    k = int(ctx.settings.mode_samples)
    samples = ctx.draw(jax.random.fold_in(ctx.rng, 7), k, chunk=k,
                       desc="samples for mode metrics")
    return mode_metrics(samples, ctx.toy.modes, ctx.toy.std)


def feature_metrics(exp, params, dataset, num: int, rng, chunk: int = 1000,
                    progress: bool = False) -> dict:
    """In the feature space of `dataset` (`Dataset.features`): FD vs the cached reference
    statistics; and, against `num` held-out images, k-NN precision/recall and two
    two-sample tests of "samples ~ data": the lecture's learned test statistic (a
    classifier two-sample test: held-out accuracy, binomial p-value) and the kernel MMD
    with its permutation p-value."""
    from jaxgen.eval.mmd import mmd_test
    from jaxgen.eval.two_sample import c2st
    space = resolve(dataset.features)
    loaded = space.load()
    if loaded is None:
        return {"fd": space.missing}
    fparams, finfo = loaded
    samples = draw(exp, params, rng, num, chunk=chunk, desc="samples for FD", progress=progress)
    real = dataset.source.get(np.arange(min(num, len(dataset.source))))["x"]
    q = space.quality(fparams, samples, real)
    fr, fs = space.embed(fparams, real), space.embed(fparams, samples)
    t = c2st(fr, fs)
    m = mmd_test(fr, fs)
    return {**q, "classifier_test_accuracy": finfo["test_accuracy"],
            "c2st_accuracy": t["accuracy"], "c2st_p": t["p_value"], "c2st_n_test": t["n_test"],
            "mmd2_features": m["mmd2"], "mmd_p": m["p_value"], "mmd_n": len(fr)}


def _features(ctx: EvalContext) -> dict:
    return feature_metrics(ctx.exp, ctx.params, ctx.dataset, int(ctx.settings.fd_num),
                           jax.random.fold_in(ctx.rng, 11), chunk=min(ctx.bs, 1000),
                           progress=ctx.progress)


# ------------------------------------------------------------ Inception FID / IS
def run_record(exp, workdir) -> dict:
    """What a sample-quality number depends on besides the samples: the sampler and its
    NFE, the run's global batch, device count and EMA rate."""
    from jaxgen.kernel.registry import objective_settings
    t, s = exp.config.train, exp.sample_settings
    nfe = getattr(s, "nfe", None)
    out = {"sampler": {k: getattr(s, k) for k in sorted(f.name for f in
                                                         dataclasses.fields(s))},
           "nfe": nfe(objective_settings(exp.config)) if nfe else
           "not declared by this objective's sample settings",
           "train_global_batch": int(t.batch_size), "train_ema_decay": float(t.ema_decay)}
    run = Path(workdir or "") / "run.json"
    devices = json.loads(run.read_text()).get("devices") if run.is_file() else None
    out["train_devices"] = devices if devices is not None else "not recorded by this run"
    return out


def _inception(ctx: EvalContext) -> dict:
    from jaxgen.eval import fid
    e = ctx.settings
    net = fid.FeatureNet.load(e.inception_weights)
    ref = e.fid_ref or fid.reference_stats(ctx.exp.config.data, net, "train",
                                           batch=e.fid_batch, progress=ctx.progress)
    out = fid.sample_scores(ctx.exp, ctx.params, net, ref, num=int(e.fid_num),
                            batch=int(e.fid_batch), seed=int(e.fid_seed),
                            seeds=int(e.fid_seeds), splits=int(e.is_splits),
                            progress=ctx.progress)
    out["inception_weights"] = net.path
    return {**out, **run_record(ctx.exp, ctx.workdir)}


register_metric(Metric("likelihood", lambda c: bool(c.exp.likelihood_names()), _likelihood,
                       order=10))
register_metric(Metric("true_nll", lambda c: bool(c.exp.likelihood_names())
                       and getattr(c.toy, "log_prob", None) is not None, _true_nll, order=20))
register_metric(Metric("held_out_stats", lambda c: c.exp.objective.held_out_stats is not None,
                       _held_out_stats, order=40))
register_metric(Metric("mmd", lambda c: c.info.kind == "points" and _samples(c)
                       and c.settings.mmd_num > 0, _mmd, order=50))
register_metric(Metric("modes", lambda c: c.toy is not None
                       and getattr(c.toy, "modes", None) is not None
                       and getattr(c.toy, "std", None) is not None and _samples(c)
                       and c.settings.mode_samples > 0, _modes, order=60))
register_metric(Metric("inception", lambda c: c.info.kind == "images" and _samples(c)
                       and c.settings.fid_num > 0, _inception, order=80))
register_metric(Metric("features", lambda c: c.info.kind == "images"
                       and bool(c.dataset.features) and _samples(c) and c.settings.fd_num > 0,
                       _features, order=70))
