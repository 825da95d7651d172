"""latent-vs-pixel: flow matching on Fashion-MNIST pixels against flow matching in a VAE's
latent space, each given the same training wall time on this machine's CPU.

Latent models (Rombach et al., 2022) move the generative model from pixels into a learned
autoencoder's latent space, so that it trains and samples on a few numbers per image. The
cells, per seed:

  * pixel: `configs/flow_matching/fashion_mnist.py` (the U-Net on 28x28x1), trained for
    as many steps as fit in WALL seconds;
  * latent: `configs/vae/vae_fashion_mnist.py` (the conv VAE, 32-d latent) for VAE_SHARE
    of WALL, the encoding of its 60 000 training images (one posterior draw each), and
    `configs/latent/fm_vae_fashion_mnist.py` (the flow-matching MLP on those latents) for
    what is left: the whole latent pipeline, autoencoder included, costs WALL.

Equal wall time is set by calibration, not by stopping a run mid-schedule: each config's
ms/step is measured by the trainer itself (`jaxgen.runner.bench.trainer_ms_per_step`, a
short run in a temporary folder, compilation excluded) just before its run, and
`train.steps` = the seconds it gets / ms per step; every run then finishes its own
learning-rate schedule, and the wall each one actually took is in the table.

Both sample with the same ODE solver (Heun, SAMPLE_STEPS steps); samples/s counts the
whole path from noise to uint8 images (for the latent model: the prior's ODE and the VAE's
decoder), compiled ahead. FD / precision / recall: N samples in jaxgen's classifier
features against the 10 000 test images (skipped without `jaxgen classifier`'s cache).
Likelihood on the same NB test images: the pixel model's ODE bits/dim (Hutchinson, RK4),
the latent model's composed bound (VAE decoder + flow-matching prior, one posterior draw per
image, `jaxgen.composed.bound`) beside the VAE's own N(0, I) ELBO.
"""

from __future__ import annotations

import copy
import json
import time

import numpy as np

from jaxgen import viz
from jaxgen.reproduce.runs import timed_samples

TITLE = "Flow matching in pixel space vs in a VAE's latent space, at equal training wall time"
CLAIM = ("A generative model trained in a learned autoencoder's latent space reaches better "
         "sample quality than the same model on pixels for the same training compute, and "
         "samples much faster (Rombach et al., 2022, Sec. 4.1: pixel-space LDM-1 against "
         "LDM-4 to -16 at equal training steps, and their sample throughput).")

PIXEL = "flow_matching/fashion_mnist.py"
VAE = "vae/vae_fashion_mnist.py"
PRIOR = "latent/fm_vae_fashion_mnist.py"
WALL = 240.0          # seconds of training per cell at --budget 1 (scaled by --budget)
VAE_SHARE = 0.5       # of the latent cell's wall: the autoencoder's training
SAMPLE_STEPS = 25     # Heun steps of both samplers (50 network evaluations)
SEEDS = (0, 1)        # added to --seed
N_SAMPLES = 500       # samples per cell for FD / precision / recall and samples/s
N_BOUND = 256         # test images per cell for bits/dim
CALIBRATION_STEPS = 20

COMMON = ("train.progress=false", "train.pictures=false", "train.sample_every=0")
SAMPLER = ("sample.method=heun", f"sample.steps={SAMPLE_STEPS}")  # the two flow models
# --fast (the tests): tiny nets, a 3-second wall, a few samples and test images
FAST = {"pixel": ("model.channels=(8, 16)", "model.time_dim=16", "model.groups=4"),
        "vae": ("model.channels=(8, 16)", "model.hidden=32"),
        "prior": ("model.features=(32,)",)}


def steps_for(cfg, seconds: float, calibration: int, low: int, high: int | None):
    """(train.steps that fit in `seconds`, measured ms/step) for config `cfg`."""
    from jaxgen.runner.bench import trainer_ms_per_step
    ms = trainer_ms_per_step(cfg, calibration)
    steps = max(low, int(seconds * 1000.0 / ms))
    return (min(steps, high) if high else steps), ms


def _config(config: str, overrides, fast_key: str, fast: bool):
    from jaxgen.kernel import config as config_lib
    return config_lib.load_config(config, [*COMMON, *overrides,
                                           *(FAST[fast_key] if fast else ())])


def _train(cfg, seconds: float, calibration: int, high: int | None, workdir) -> dict:
    """Train `cfg` in `workdir` for the steps that fit in `seconds`: {"steps",
    "ms_per_step", "seconds" (the wall it took)}, also kept as WORKDIR/timing.json, which a
    rerun with --reuse-runs reads instead of training again (`cfg` then holds its steps)."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.loop import train_and_evaluate
    record = workdir / "timing.json"
    done = json.loads(record.read_text()) if record.exists() else None
    steps, ms = (done["steps"], done["ms_per_step"]) if done else steps_for(
        cfg, seconds, calibration, 2, high)
    config_lib.apply_overrides(cfg, [
        f"train.steps={steps}", f"train.checkpoint_every={steps}",
        f"optim.warmup_steps={min(int(cfg.optim.warmup_steps), max(1, steps // 10))}"])
    if done:
        return done
    t0 = time.perf_counter()
    train_and_evaluate(cfg, workdir)
    done = {"steps": steps, "ms_per_step": ms, "seconds": time.perf_counter() - t0}
    record.write_text(json.dumps(done))
    return done


def _encode(vae_wd: str, cfg, record) -> float:
    """Encode the VAE run's training set as `cfg`'s latents (cached for the prior's run);
    the seconds it took, kept in `record` for a rerun with --reuse-runs."""
    from jaxgen.composed.latents import latent_source
    t0 = time.perf_counter()
    latent_source(vae_wd, True, cfg.data.latent, int(cfg.data.seed))
    if record.exists():
        return json.loads(record.read_text())["seconds"]
    seconds = time.perf_counter() - t0
    record.write_text(json.dumps({"seconds": seconds}))
    return seconds


def _restore(cfg, workdir):
    from jaxgen.runner.experiment import Experiment, read_run_info
    exp = Experiment(cfg, read_run_info(workdir))
    state, _ = exp.restore(workdir)
    return exp, state.ema_params


def decoded_samples(exp, params, n: int, seed: int) -> tuple[np.ndarray, float]:
    """n uint8 images of a prior run in a VAE's latent space (the prior's ODE, then the
    VAE's decoder) and images/s of that whole path (one untimed pass first: compilation)."""
    import jax

    from jaxgen.composed.decoding import decode

    def draw():
        z = exp.sample(params, jax.random.key(seed), n, chunk=n)
        return decode(exp.config, np.asarray(z))

    exp.compile_sample(params, n, chunk=n)
    draw()
    t0 = time.perf_counter()
    x = draw()
    return x, n / (time.perf_counter() - t0)


def _quality(x, cached, ref, real) -> dict:
    from jaxgen.eval import classifier as clf
    return clf.sample_quality(cached[0], x, ref=ref, real_for_pr=real) if cached else {}


def _evaluate(cfg, workdir, n: int, fast: bool) -> dict:
    from jaxgen.eval.evaluate import evaluate
    from jaxgen.kernel import config as config_lib
    over = [f"eval.num_examples={n}", f"eval.batch_size={min(n, 128)}",
            f"eval.ode_steps={2 if fast else 20}", "eval.ode_method=rk4"]
    return evaluate(config_lib.apply_overrides(copy.deepcopy(cfg), over), workdir, progress=False,
                    echo=False, overrides=over)


def run(report, budget):
    from jaxgen.data import get_dataset
    from jaxgen.eval import classifier as clf

    fast = budget.fast
    wall = budget.pick(WALL * budget.scale, 3.0)
    calib = budget.pick(CALIBRATION_STEPS, 2)
    high = budget.pick(None, 4)
    n, nb = budget.pick(N_SAMPLES, 8), budget.pick(N_BOUND, 8)
    seeds = [budget.seed + s for s in budget.pick(SEEDS, SEEDS[:1])]
    cached = clf.load_cached()
    ref = clf.reference_stats(cached[0]) if cached else None
    real = None
    cells, pics = [], {}
    for seed in seeds:
        runs = report.path("runs") / f"seed{seed}"
        # pixel flow matching: all of the wall
        pcfg = _config(PIXEL, [f"seed={seed}", *SAMPLER], "pixel", fast)
        if real is None:
            real = get_dataset(pcfg.data, "test").source.get(np.arange(n))["x"]
        p = _train(pcfg, wall, calib, high, runs / "pixel_fm")
        exp, params = _restore(pcfg, runs / "pixel_fm")
        x, per_s = timed_samples(exp, params, n, seed)
        ev = _evaluate(pcfg, runs / "pixel_fm", nb, fast)
        cells.append({"cell": "pixel", "seed": seed, "steps": p["steps"],
                      "ms_per_step": p["ms_per_step"], "batch": int(pcfg.train.batch_size),
                      "train_s": p["seconds"], "samples_per_s": per_s, "n": n, "n_bpd": nb,
                      "bits_per_dim": ev.get("bits_per_dim"), **_quality(x, cached, ref, real)})
        pics.setdefault("pixel", x[:10])
        # latent flow matching: the VAE, its encoded training set and the prior share the wall
        vcfg = _config(VAE, [f"seed={seed}"], "vae", fast)
        v = _train(vcfg, VAE_SHARE * wall, calib, high, runs / "vae")
        vae_wd = str((runs / "vae").resolve())
        qcfg = _config(PRIOR, [f"seed={seed}", f"data.workdir={vae_wd}", *SAMPLER], "prior",
                       fast)
        enc_s = _encode(vae_wd, qcfg, runs / "encode_timing.json")
        q = _train(qcfg, max(0.0, wall - v["seconds"] - enc_s), calib, high, runs / "latent_fm")
        exp, params = _restore(qcfg, runs / "latent_fm")
        x, per_s = decoded_samples(exp, params, n, seed)
        ev = _evaluate(qcfg, runs / "latent_fm", nb, fast)
        cells.append({"cell": "latent", "seed": seed, "steps": q["steps"],
                      "vae_steps": v["steps"], "batch": int(qcfg.train.batch_size),
                      "vae_batch": int(vcfg.train.batch_size), "ms_per_step": q["ms_per_step"],
                      "vae_ms_per_step": v["ms_per_step"], "vae_s": v["seconds"],
                      "encode_s": enc_s, "prior_s": q["seconds"],
                      "train_s": v["seconds"] + enc_s + q["seconds"],
                      "samples_per_s": per_s, "n": n, "n_bpd": nb,
                      "bits_per_dim": ev.get("composed/bits_per_dim"),
                      "vae_elbo_bits_per_dim": ev.get("vae/elbo_bits_per_dim"),
                      **_quality(x, cached, ref, real)})
        pics.setdefault("latent", x[:10])
    _write(report, budget, cells, pics, real, wall, seeds, bool(cached))


def _f(v, fmt="{:.3g}") -> str:
    return "-" if v is None or isinstance(v, str) else fmt.format(v)


def _mean(cells, key):
    v = [c[key] for c in cells if isinstance(c.get(key), (int, float))]
    return float(np.mean(v)) if v else None


def _write(report, budget, cells, pics, real, wall, seeds, have_fd):
    fast = budget.fast
    rows = []
    for c in cells:
        if c["cell"] == "pixel":
            what = f"pixel FM (U-Net): {c['steps']} steps x {c['batch']}"
        else:
            what = (f"latent FM: VAE {c['vae_steps']} x {c['vae_batch']} ({c['vae_s']:.0f} s)"
                    f" + encode ({c['encode_s']:.0f} s) + prior {c['steps']} x {c['batch']} "
                    f"({c['prior_s']:.0f} s)")
        bpd = _f(c["bits_per_dim"], "{:.3f}")
        if c["cell"] == "latent" and bpd != "-":
            bpd += f" (bound; VAE N(0, I): {_f(c['vae_elbo_bits_per_dim'], '{:.3f}')})"
        rows.append((c["seed"], what, f"{c['train_s']:.0f}", _f(c.get("fd"), "{:.1f}"),
                     _f(c.get("precision"), "{:.3f}"), _f(c.get("recall"), "{:.3f}"),
                     f"{c['samples_per_s']:.1f}", bpd, f"{c['n']} / {c['n_bpd']}"))
    report.table(("seed", "cell: training", "training wall (s)", "FD", "precision",
                  "recall", "samples/s", "bits/dim", "n (FD, samples/s / bits/dim)"), rows,
                 f"each cell's training got {wall:.0f} s of wall time, set by calibrating "
                 "ms/step (the trainer's own, compilation excluded) just before each run; "
                 f"seeds {', '.join(map(str, seeds))}; both samplers Heun x {SAMPLE_STEPS}; "
                 "FD / precision / recall (k = 3) in jaxgen's classifier features against the "
                 "10 000 test images"
                 + ("" if have_fd else " (skipped: no cached classifier, run `jaxgen "
                                      "classifier` once)")
                 + "; bits/dim on the first test images: the pixel model's ODE likelihood "
                   "(Hutchinson, RK4 x 20), the latent model's composed bound (one posterior "
                   "draw per image)")
    pix = [c for c in cells if c["cell"] == "pixel"]
    lat = [c for c in cells if c["cell"] == "latent"]
    summary = {k: (_mean(pix, k), _mean(lat, k)) for k in
               ("fd", "samples_per_s", "bits_per_dim", "train_s")}
    judged = None if fast else True
    fd_p, fd_l = summary["fd"]
    if fd_p is not None and fd_l is not None:
        report.compare(f"FD, pixel / latent (mean of {len(seeds)} seeds, n = {cells[0]['n']})",
                       f"{fd_p:.1f} / {fd_l:.1f}", "latent lower", "Rombach et al. 2022",
                       ok=judged and fd_l < fd_p)
    sp_p, sp_l = summary["samples_per_s"]
    report.compare("samples/s, latent / pixel", f"{sp_l / sp_p:.1f}x", "> 1",
                   "Rombach et al. 2022", ok=judged and sp_l > sp_p)
    b_p, b_l = summary["bits_per_dim"]
    if b_p is not None and b_l is not None:
        report.compare("bits/dim, pixel (ODE) / latent (composed bound)",
                       f"{b_p:.3f} / {b_l:.3f}", "not claimed", "-", ok=None)
    t_p, t_l = summary["train_s"]
    report.compare("training wall, pixel / latent (s)", f"{t_p:.0f} / {t_l:.0f}",
                   f"equal ({wall:.0f})", "this reproduction's setting",
                   ok=judged and abs(t_l - t_p) < 0.2 * wall)
    report.verdict_from_rows(
        f"at equal training wall ({wall:.0f} s) the latent model's FD is {fd_l:.1f} against "
        f"{fd_p:.1f} on pixels, and it samples {sp_l / sp_p:.0f}x faster",
        f"{wall:.0f} s of training per cell, {len(seeds)} seeds")
    viz.save_image_rows([real[:10], pics["pixel"], pics["latent"]], report.path("samples.png"),
                        row_labels=["real", "pixel FM", "latent FM"],
                        title=f"equal training wall ({wall:.0f} s)")
    report.figure("samples.png", "ten test images; ten samples of the pixel model; ten of the "
                                 f"latent model (seed {seeds[0]})")
    report.text("Runs: `runs/seed<S>/{pixel_fm,vae,latent_fm}` (config.json, metrics.jsonl, "
                "checkpoints, eval/). The bits/dim columns differ in kind: the pixel model's is "
                "its exact ODE likelihood (a stochastic trace estimate), the latent model's a "
                "lower bound on the likelihood (an upper bound in bits/dim) through the VAE.")
    report.path("latent_vs_pixel.json").write_text(json.dumps(cells, indent=1, default=float))
