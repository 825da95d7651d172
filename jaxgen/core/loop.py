"""`train_and_evaluate(config, workdir)`: the one training loop.

Resumes from `workdir/checkpoints` when it holds a checkpoint; writes
config.json, run.json, metrics.jsonl, TensorBoard events, checkpoints and
sample pictures. A non-finite loss stops the run naming the step and the
metric, keeping the last good checkpoint. SIGTERM saves and exits cleanly.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen.core import config as config_lib
from jaxgen.core import distributed, pictures
from jaxgen.core.checkpoint import Checkpointer, has_checkpoint
from jaxgen.core.errors import NonFiniteLossError
from jaxgen.core.experiment import DatasetInfo, Experiment, write_run_info
from jaxgen.core.logging import MetricsWriter, format_table, progress_bar
from jaxgen.core.state import param_count
from jaxgen.data import get_dataset
from jaxgen.data.pipeline import BatchPipeline


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between device calls."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handle(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def _check_config(workdir: Path, config) -> None:
    """Refuses to resume a workdir that was trained with a different config."""
    path = workdir / "config.json"
    if not (path.exists() and has_checkpoint(workdir)):
        return
    old = json.loads(config_lib.to_json(config_lib.from_json_file(path)))
    new = json.loads(config_lib.to_json(config))
    diffs = config_lib.config_differences(old, new)
    old_steps, new_steps = old["train"]["steps"], new["train"]["steps"]
    if old_steps != new_steps and not new["optim"].get("decay_steps") and distributed.is_main():
        print(f"Note: train.steps changed {old_steps} -> {new_steps}; the learning-rate schedule "
              "now spans the new length (set optim.decay_steps to pin it).", flush=True)
    if diffs:
        raise config_lib.ConfigError(
            f"{workdir} holds a run trained with a different config:\n  " + "\n  ".join(diffs)
            + f"\nResume with the same config (only {', '.join(config_lib.RESUMABLE_CHANGES)}, "
            "sample.* and eval.* may change), or pick a new --workdir.")


def _check_workdir(workdir: Path) -> None:
    """Refuses a non-empty folder that is not a jaxgen run: never overwrite a user's files."""
    if workdir.exists() and not workdir.is_dir():
        raise config_lib.ConfigError(f"--workdir {workdir} is a file; pass a folder.")
    if workdir.is_dir():
        names = {p.name for p in workdir.iterdir()}
        if names and not (names & {"run.json", "checkpoints", "config.json", "logs"}):
            raise config_lib.ConfigError(
                f"--workdir {workdir} is not empty and holds no jaxgen run "
                f"(found {', '.join(sorted(names)[:5])}). Pick a new or empty folder.")


def train_and_evaluate(config, workdir: str | Path) -> dict:
    """Trains (or resumes) the run in `workdir`; returns the end-of-run summary."""
    workdir = Path(workdir).resolve()
    main = distributed.is_main()
    t_cfg = config.train
    _check_workdir(workdir)
    _check_config(workdir, config)
    # Everything that can be wrong with the config fails here, before DIR is made.
    dataset = get_dataset(config.data, "train")
    info = DatasetInfo.of(dataset)
    exp = Experiment(config, info)
    pipeline = BatchPipeline(dataset.source, t_cfg.batch_size, seed=config.seed,
                             process_index=jax.process_index(),
                             process_count=jax.process_count(),
                             steps_per_call=t_cfg.steps_per_call)
    if main:
        workdir.mkdir(parents=True, exist_ok=True)
    distributed.sync("workdir")

    ckpt = Checkpointer(workdir / "checkpoints", max_to_keep=t_cfg.max_to_keep)
    resume_step = ckpt.latest_step()
    if resume_step is not None:
        state, meta = ckpt.restore(exp.abstract_state(), resume_step)
        start = int(distributed.to_host(state.step))
        if main:
            print(f"Resuming from {ckpt.directory}/{resume_step} (step {start}, "
                  f"data epoch {meta['data']['epoch']}, batch {meta['data']['batch_in_epoch']}).",
                  flush=True)
    else:
        first = pipeline.local_batch(0)
        if t_cfg.steps_per_call > 1:
            first = {k: v[0] for k, v in first.items()}
        state = exp.init_state(distributed.to_global(first, exp.mesh, t_cfg.batch_size))
        start = 0

    nparams = param_count(state.params)
    if main:
        (workdir / "config.json").write_text(config_lib.to_json(config))
        write_run_info(workdir, info, {"objective": exp.objective.name,
                                       "model": config.model.name, "param_count": nparams,
                                       "likelihood": exp.objective.likelihood_kind})
    writer = MetricsWriter(workdir, resume_step, enabled=main)
    step_fn = exp.train_step()
    sample_rng = jax.random.fold_in(jax.random.key(config.seed), 10**9)

    def save(step: int):
        ckpt.save(step, state, {"data": pipeline.position(step), "step": step})

    def write_samples(step: int):
        path = pictures.write_samples(exp, state.ema_params, sample_rng, dataset,
                                      workdir / "samples" / f"step_{step:07d}.png", main)
        return path

    total = t_cfg.steps
    k = t_cfg.steps_per_call
    bar = progress_bar(total, start, enabled=main and t_cfg.progress)
    last, times, stopped_by = {}, [], None
    t_start = time.perf_counter()
    sample_path = None
    step = start
    try:
        with _SigtermFlag() as sigterm:
            for step, local in pipeline.iterate(start, total):
                t0 = time.perf_counter()
                batch = distributed.to_global(local, exp.mesh, t_cfg.batch_size, k)
                state, metrics = step_fn(state, batch)
                metrics = distributed.to_host(metrics)
                times.append(time.perf_counter() - t0)
                per_step = [metrics] if k == 1 else [
                    {m: v[i] for m, v in metrics.items()} for i in range(k)]
                for i, m in enumerate(per_step):
                    s = step + i + 1  # the step count after this update
                    bad = sorted(n for n, v in m.items() if not np.all(np.isfinite(v)))
                    if bad:
                        kept = ckpt.latest_step()
                        raise NonFiniteLossError(
                            f"Non-finite {', '.join(bad)} at step {s} "
                            f"({', '.join(f'{n}={float(m[n])}' for n in bad)}). "
                            f"The last good checkpoint (step {kept}) is kept in {ckpt.directory}. "
                            "Try a lower optim.learning_rate or optim.grad_clip > 0.")
                    if s % t_cfg.log_every == 0 or s == total:
                        writer.write(s, m)
                last = per_step[-1]
                step = step + k
                bar.update(k)
                bar.set_postfix(loss=f"{float(last['loss']):.4f}", refresh=False)
                if step % t_cfg.checkpoint_every == 0 or step == total:
                    save(step)
                periodic = t_cfg.sample_every and step % t_cfg.sample_every == 0
                if periodic or (step == total and t_cfg.pictures):
                    sample_path = write_samples(step)
                if sigterm.set:
                    save(step)
                    stopped_by = "SIGTERM"
                    break
    finally:
        bar.close()
        ckpt.close()
        writer.close()

    if step == total and start < total and not stopped_by and t_cfg.pictures:
        for path, note in pictures.write_end_of_run(exp, state.ema_params, sample_rng, dataset,
                                                    workdir / "samples", main):
            if main:
                print(f"Wrote {path}{f' ({note})' if note else ''}", flush=True)
    if start == total and main:
        print(f"{workdir} already holds step {total} = train.steps; nothing to train. "
              "Raise --config.train.steps to train further.", flush=True)
    wall = time.perf_counter() - t_start
    steady = times[1:] if len(times) > 1 else times
    summary = {
        "workdir": str(workdir),
        "objective": exp.objective.name,
        "model": f"{config.model.name} ({nparams:,} params)",
        "data": f"{info.name} {tuple(info.event_shape)}",
        "devices": f"{jax.device_count()} ({jax.process_count()} process(es))",
        "steps": f"{start} -> {step} of {total}",
        "final loss": float(last["loss"]) if last else float("nan"),
        "wall time (s)": round(wall, 1),
        "ms/step (median, after 1st call)": round(1000 * float(np.median(steady)) / k, 2)
        if steady else float("nan"),
        "checkpoint": str(workdir / "checkpoints" / str(step)),
        "samples": str(sample_path) if sample_path else "-",
    }
    if stopped_by:
        summary["stopped by"] = f"{stopped_by}: checkpoint saved at step {step}; rerun to resume"
    if main:
        print(format_table(list(summary.items()), title="\njaxgen train: summary"), flush=True)
    return summary
