"""Training runs inside a report: `jaxgen train` of a config into REPORT/runs/NAME.

Reproductions that need trained models train them here, through the one
trainer and the config files, so a report's numbers can be traced to a run
(its config.json, metrics.jsonl, checkpoints) in the report folder.
"""

from __future__ import annotations

import time

import jax
import numpy as np

# Fashion-MNIST families at a matched budget (the same steps x batch for each);
# `fast` shrinks the nets so the tests can run every reproduction end to end.
FAMILIES = {
    "VAE": ("vae/vae_fashion_mnist.py", ["model.channels=(8, 16)", "model.hidden=32"]),
    "flow (RealNVP)": ("flows/realnvp_fashion_mnist.py",
                       ["model.num_scales=1", "model.hidden=8"]),
    "diffusion (DDPM)": ("diffusion/ddpm_fashion_mnist.py",
                         ["model.channels=(8, 16)", "model.time_dim=16", "sample.steps=5",
                          "objective.num_steps=40"]),
    "GAN (DCGAN)": ("gan/dcgan_fashion_mnist.py",
                    ["model.g_channels=8", "model.d_channels=8"]),
}


def train_run(report, name: str, config: str, overrides, *, steps: int, batch: int,
              seed: int = 0, fast_overrides=(), fast: bool = False):
    """Train (or resume) CONFIG in REPORT/runs/NAME; returns (exp, ema params, summary,
    workdir). summary["train_seconds"] is the wall time of the invocation that trained the
    run, kept in runs/record.json, so a run restored by `--force --reuse-runs` reports its
    training rather than the restore."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import Experiment, read_run_info
    from jaxgen.runner.loop import train_and_evaluate
    wd = report.path("runs") / name.replace(" ", "_").replace("(", "").replace(")", "")
    cfg = config_lib.load_config(config, [
        f"train.steps={steps}", f"train.batch_size={batch}", f"seed={seed}",
        "train.progress=false", f"train.checkpoint_every={steps}", f"train.sample_every={steps}",
        "optim.warmup_steps=" + str(min(100, max(1, steps // 10))),
        *overrides, *(fast_overrides if fast else ())])
    t0 = time.perf_counter()
    summary = train_and_evaluate(cfg, wd)
    if "stopped by" in summary:  # Ctrl-C / SIGTERM: the reproduction stops with its run
        from jaxgen.kernel.errors import UserError
        raise UserError(f"the training run {wd} was stopped ({summary['stopped by']}); "
                        "nothing was measured on it. Rerun the reproduction with --force "
                        "--reuse-runs to resume its runs.")
    summary["train_seconds"] = run_record(report, name,
                                          train_s=time.perf_counter() - t0)["train_s"]
    exp = Experiment(cfg, read_run_info(wd))
    state, _ = exp.restore(wd)
    return exp, state.ema_params, summary, wd


def run_record(report, name: str, **first) -> dict:
    """REPORT/runs/record.json's entry for run NAME, `first`'s values added where it has none
    yet: what a run was given and measured when it was trained (its steps, its training
    seconds), kept so that `--force --reuse-runs` reports them rather than the restore."""
    import json
    record = report.path("runs") / "record.json"
    done = json.loads(record.read_text()) if record.exists() else {}
    entry = done.setdefault(name, {})
    if any(k not in entry for k in first):
        entry.update({k: v for k, v in first.items() if k not in entry})
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(done, indent=1))
    return entry


def steps_for_wall(report, name: str, cfg, wall: float, calibration: int,
                   fast: bool) -> tuple[int, float]:
    """(train.steps of CFG that fit in `wall` seconds, its ms/step), measured once by a
    `calibration`-step run of the trainer and kept in runs/record.json under NAME, so that
    `--force --reuse-runs` restores the same run; fast: 4 steps, no calibration."""
    import math

    from jaxgen.runner.bench import trainer_ms_per_step
    if "steps" not in run_record(report, name):
        if fast:
            run_record(report, name, steps=4, ms_per_step=math.nan)
        else:
            ms = trainer_ms_per_step(cfg, calibration)
            run_record(report, name, steps=max(100, int(wall * 1000.0 / ms)), ms_per_step=ms)
    entry = run_record(report, name)
    return entry["steps"], entry["ms_per_step"]


def tiny_images(report, config: str, n: int = 128) -> list[str]:
    """The overrides that train CONFIG on the first `n` images of its test split, written
    once to runs/ as the user's array: --fast runs without decoding a whole dataset."""
    from jaxgen.data import get_dataset
    from jaxgen.kernel import config as config_lib
    tiny = report.path("runs") / "tiny_images.npz"
    if not tiny.exists():
        tiny.parent.mkdir(parents=True, exist_ok=True)
        got = get_dataset(config_lib.load_config(config, []).data, "test").source.get(
            np.arange(n))
        np.savez(tiny, x=got["x"], label=got["label"])
    return ["data.name=array", f"data.path={tiny}"]


def feature_classifier(report, fast: bool):
    """(params, info) of jaxgen's Fashion-MNIST feature classifier: the cached one, trained
    once if absent; fast: a tiny one in the report folder (the tests must not train the
    real one)."""
    from jaxgen.eval import classifier as clf
    if fast:
        return clf.load_or_train(report.path("runs") / "classifier", steps=20, num_train=500,
                                 num_test=200, progress=False)
    return clf.load_cached() or clf.load_or_train()


def timed_samples(exp, params, n: int, seed: int = 0, **options) -> tuple[np.ndarray, float]:
    """n samples and samples/s (the sampler compiled ahead, so the time is sampling alone);
    `options` replace sample settings for this call (e.g. sampler="ddim", steps=50)."""
    exp.compile_sample(params, n, chunk=n, **options)
    t0 = time.perf_counter()
    x = exp.sample(params, jax.random.key(seed), n, chunk=n, **options)
    return x, n / (time.perf_counter() - t0)


def high_frequency_energy(images_uint8, cutoff: float = 0.25) -> np.ndarray:
    """Per image: the fraction of spectral power (DC removed) at radial frequencies above
    `cutoff` cycles/pixel (Nyquist = 0.5): a blur measure, lower = blurrier."""
    x = np.asarray(images_uint8, np.float64).reshape(len(images_uint8), *np.shape(
        images_uint8)[1:3])
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2
    fy = np.fft.fftfreq(x.shape[1])[:, None]
    fx = np.fft.fftfreq(x.shape[2])[None, :]
    high = np.sqrt(fx ** 2 + fy ** 2) > cutoff
    total = power.sum(axis=(1, 2))
    return np.where(total > 0, (power * high).sum(axis=(1, 2)) / np.maximum(total, 1e-12), 0.0)
