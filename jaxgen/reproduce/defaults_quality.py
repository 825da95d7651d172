"""defaults-quality: every shipped 2-D config, at its default budget, on three random
Gaussian mixtures no config was tuned on, against its family's quality target.

The mixtures are `random_mixture` (`jaxgen.data.toy2d.random_mixture`: random means,
random full covariances with anisotropy 2 to 4, unequal weights) with
(data.mixture_seed, data.components) = (1, 6), (2, 5), (3, 8). Each run is `jaxgen
train` of the config with only data.name / data.mixture_seed / data.components changed
(and train.progress=false, train.pictures=false: no effect on the numbers), then
`jaxgen eval` at the config's own eval settings. Targets:

* a family with an exact likelihood (flow matching, RealNVP, DDPM's probability-flow
  ODE): test NLL within 0.1 nats of the true entropy (`nll_gap_nats`, held-out points);
* a sampler without one (NCSN, the GANs, and the VAE, whose IWAE is only a bound):
  sliced W1 between eval.mmd_num model samples and as many held-out points within 4x
  the two-true-sample floor, and a mode-weight TV below 0.1 (`jaxgen.eval.sample_quality`).

Every row shows all the numbers that exist for the config (a likelihood family's sample
metrics, the VAE's bound gap), but passes or fails on its family's target only.
`shipped_2d_configs` finds the configs (every configs/*/*.py whose data is a 2-D toy),
so a new 2-D config is checked without editing this file.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from jaxgen.eval.sample_quality import MODE_TV_TARGET, W1_FLOOR_FACTOR

TITLE = "Shipped 2-D defaults on three random Gaussian mixtures"
CLAIM = ("Every shipped 2-D config meets its family's quality target at its default budget on "
         "three 2-D Gaussian mixtures it was not tuned on (random means, anisotropic "
         "covariances, unequal weights): exact-likelihood families a test NLL within "
         f"0.1 nats of the true entropy; samplers a sliced W1 within {W1_FLOOR_FACTOR:g}x the "
         f"two-true-sample floor and a mode-weight TV below {MODE_TV_TARGET:g}.")

NLL_GAP_TARGET = 0.1
MIXTURES = ((1, 6), (2, 5), (3, 8))  # (data.mixture_seed, data.components); see module doc
RUN_OVERRIDES = ("train.progress=false", "train.pictures=false")

# --fast (the tests): tiny nets, data and evals, so every config runs end to end in seconds
_FAST_DATA = ("data.num_train=2000", "data.num_eval=300", "eval.num_examples=200",
              "eval.batch_size=200", "eval.mmd_num=200", "eval.ode_steps=8",
              "train.batch_size=40", "train.log_every=10", "optim.warmup_steps=2")
_FAST_MODEL = {
    "flow_matching": ("model.features=(16,)", "model.time_dim=8"),
    "realnvp": ("model.num_layers=2", "model.hidden=(16,)"),
    "ddpm": ("model.features=(16,)", "model.time_dim=8", "objective.num_steps=20",
             "eval.vlb_steps=4"),
    "ncsn": ("model.features=(16,)", "model.time_dim=8", "sample.langevin_steps=3"),
    "gan": ("model.g_features=(16,)", "model.d_features=(16,)"),
    "vae": ("model.features=(16,)", "eval.iwae_k=4", "eval.iwae_chunk=4"),
}


# Shipped 2-D configs that reproduce a paper's failing setting on purpose (a GAN built to
# collapse, for the mode-collapse report): not defaults meant to meet a quality target.
FAILURE_PROTOCOLS = ("gan/metz_ring8",)


def shipped_2d_configs() -> list[str]:
    """The shipped configs whose data is a 2-D toy, as "family/name" (sorted), except the
    FAILURE_PROTOCOLS."""
    from jaxgen.data.toy2d import TOY_DATASETS
    from jaxgen.kernel import config as config_lib
    out = []
    for path in config_lib.find_configs():
        cfg = config_lib.load_config_file(str(path))
        name = f"{path.parent.name}/{path.stem}"
        if cfg.data.name in TOY_DATASETS and name not in FAILURE_PROTOCOLS:
            out.append(name)
    return sorted(out)


def _fast_overrides(cfg, steps: int) -> list[str]:
    name = cfg.objective.name if cfg.objective.name in _FAST_MODEL else cfg.model.name
    batch = 40 * int(getattr(cfg.objective, "n_critic", 1) or 1)
    return [*_FAST_DATA, f"train.batch_size={batch}", f"train.steps={steps}",
            f"train.checkpoint_every={steps}", f"train.sample_every={steps}",
            *_FAST_MODEL.get(name, ())]


def estimators(ev: dict) -> list[tuple[str, str, float]]:
    """(estimator, "exact" | "bound", NLL gap) of each likelihood in an eval result, in
    eval's order (the first estimator's gap is the plain `nll_gap_nats`)."""
    if "nll_gap_nats" not in ev:
        return []
    named = [k[:-len("/kind")] for k, v in ev.items() if k.endswith("/kind")]
    if not named:
        return [("", ev["kind"], ev["nll_gap_nats"])]
    return [(n, ev[f"{n}/kind"], ev["nll_gap_nats"] if i == 0 else ev[f"{n}/nll_gap_nats"])
            for i, n in enumerate(named)]


def verdict(ev: dict) -> dict:
    """The family target of one eval result and whether it is met:
    {"target", "nll_gap", "nll_gap_kind", "w1_ratio", "mode_tv", "passed"}."""
    est = estimators(ev)
    exact = [e for e in est if e[1] == "exact"]
    w1, tv = ev.get("sliced_w1_ratio", math.nan), ev.get("mode_tv", math.nan)
    name, kind, gap = (exact or est or [("", "", math.nan)])[0]
    kind = f"{kind} ({name})" if name else kind
    if exact:
        target = f"NLL gap < {NLL_GAP_TARGET:g}"
        passed = bool(gap < NLL_GAP_TARGET)
    else:
        target = f"SW1 < {W1_FLOOR_FACTOR:g}x floor, TV < {MODE_TV_TARGET:g}"
        passed = bool(w1 < W1_FLOOR_FACTOR and tv < MODE_TV_TARGET)
    return {"target": target, "nll_gap": gap, "nll_gap_kind": kind, "w1_ratio": w1,
            "mode_tv": tv, "passed": passed}


def measure(config: str, mixture: tuple[int, int], workdir, *, seed: int = 0,
            overrides=(), fast_steps: int | None = None) -> dict:
    """Train (or restore) CONFIG on random mixture (mixture_seed, components) in WORKDIR,
    evaluate it, and return the eval result with `verdict`'s keys and `train_seconds`.
    fast_steps: a tiny run of that many steps (the --fast overrides)."""
    from jaxgen.eval.evaluate import evaluate
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.loop import train_and_evaluate
    mseed, k = mixture
    data = ["data.name=random_mixture", f"data.mixture_seed={mseed}", f"data.components={k}"]
    cfg = config_lib.load_config(config, [*data, f"seed={seed}", *RUN_OVERRIDES, *overrides])
    if fast_steps is not None:
        cfg = config_lib.load_config(config, [*data, f"seed={seed}", *RUN_OVERRIDES,
                                              *_fast_overrides(cfg, fast_steps), *overrides])
    t0 = time.perf_counter()
    train_and_evaluate(cfg, workdir)
    seconds = time.perf_counter() - t0
    ev = evaluate(cfg, workdir, progress=False)
    return {**ev, **verdict(ev), "config": config, "mixture": f"seed {mseed}, K = {k}",
            "train_steps": int(cfg.train.steps), "train_seconds": round(seconds, 1)}


def _cell(v, fmt="{:.3f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def table_rows(results: list[dict]) -> list[tuple]:
    rows = []
    for r in results:
        gap = _cell(r["nll_gap"])
        if r["nll_gap_kind"].startswith("bound") and gap != "-":
            gap += " (bound)"
        rows.append((r["config"], r["mixture"], r["train_steps"], r["target"], gap,
                     _cell(r["w1_ratio"], "{:.2f}"), _cell(r["mode_tv"]),
                     "pass" if r["passed"] else "**FAIL**"))
    return rows


HEADER = ("config", "mixture", "steps", "family target", "NLL gap (nats)", "SW1 / floor",
          "mode TV", "")


def run(report, budget):
    from jaxgen.data.toy2d import random_mixture
    configs = shipped_2d_configs()
    mixtures = budget.pick(MIXTURES, MIXTURES[:1])
    results = []
    for config in configs:
        for mixture in mixtures:
            wd = report.path("runs") / config.replace("/", "_") / f"mixture{mixture[0]}"
            results.append(measure(config, mixture, wd, seed=budget.seed,
                                   overrides=_steps(config, budget),
                                   fast_steps=10 if budget.fast else None))
    judged = None if budget.fast else True  # --fast: tiny runs, nothing to judge
    failed = [r for r in results if not r["passed"]]
    report.compare("configs x mixtures meeting their family's target",
                   f"{len(results) - len(failed)} of {len(results)}", f"all {len(results)}",
                   "jaxgen's target", ok=judged and not failed)
    for config in configs:
        rs = [r for r in results if r["config"] == config]
        nll = rs[0]["target"].startswith("NLL")
        worst = max(rs, key=lambda r: (not r["passed"], r["nll_gap"] if nll else r["w1_ratio"]))
        measured = (f"gap {worst['nll_gap']:.3f}" if nll
                    else f"SW1 {worst['w1_ratio']:.2f}x floor, TV {worst['mode_tv']:.3f}")
        report.compare(f"{config}: worst of {len(rs)} mixtures", measured, worst["target"],
                       "jaxgen's target", ok=judged and all(r["passed"] for r in rs))
    report.verdict_from_rows(f"{len(results) - len(failed)} of {len(results)} config x mixture "
                             "runs meet their family's target",
                             "each config's default train.steps, one seed per mixture")
    report.table(HEADER, table_rows(results),
                 "one run per config and mixture at the config's default steps"
                 + ("" if budget.scale == 1 or budget.fast else f" x {budget.scale:g}")
                 + f", seed {budget.seed}; NLL gap = test nll_nats − the true entropy on the "
                 "same held-out points; SW1 / floor = sliced W1 (eval.mmd_num model samples vs "
                 "as many held-out points) over the mean SW1 of two independent true samples "
                 "of that size")
    mix_rows = []
    for mseed, k in mixtures:
        t = random_mixture(mseed, k)
        s = np.sqrt(np.linalg.eigvalsh(t.covs))
        mix_rows.append((f"seed {mseed}, K = {k}", " ".join(f"{w:.3f}" for w in t.weights),
                         f"{s.min():.3f} to {s.max():.3f}",
                         f"{(s[:, 1] / s[:, 0]).min():.1f} to {(s[:, 1] / s[:, 0]).max():.1f}"))
    report.table(("mixture (data.mixture_seed, data.components)", "weights",
                  "component stds (minor to major axis)", "anisotropy"), mix_rows)
    report.text("Runs: `runs/<family>_<config>/mixture<seed>/` (config.json, metrics.jsonl, "
                "the eval's results). A likelihood family's SW1 and TV are shown but not "
                "judged; the VAE's NLL gap is that of its IWAE bound (above its true gap), "
                "so the VAE is judged as a sampler.")
    report.path("defaults_quality.json").write_text(json.dumps(
        [{k: r[k] for k in ("config", "mixture", "train_steps", "train_seconds", "target",
                            "nll_gap", "nll_gap_kind", "w1_ratio", "mode_tv", "passed",
                            "sliced_w1", "sliced_w1_floor", "mode_tv_floor", "mmd2")
          if k in r} for r in results], indent=1, default=float))


def _steps(config: str, budget) -> list[str]:
    """--budget X (X != 1): the config's default train.steps scaled by X."""
    if budget.fast or budget.scale == 1:
        return []
    from jaxgen.kernel import config as config_lib
    return [f"train.steps={budget.steps(int(config_lib.load_config(config).train.steps), 10)}"]
