"""`train_and_evaluate(config, workdir)`: the one training loop.

Trains only in a new or empty folder or in a jaxgen run (`jaxgen.runner.workdir`: the run
marker; one process at a time, under a lock). Resumes from the newest good checkpoint in
`workdir/checkpoints` (damaged ones are named, moved to checkpoints_damaged/ and skipped);
writes config.json, run.json, metrics.jsonl, TensorBoard events (both cut back to the
restored step on resume, flushed at every checkpoint), checkpoints and sample pictures.
A non-finite loss stops the run naming the step, the metric and the last good checkpoint.
SIGTERM and Ctrl-C save at the current step and exit cleanly; a second Ctrl-C aborts
(`jaxgen.runner.stops`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxgen.data import check_held_out, get_dataset
from jaxgen.data.pipeline import BatchPipeline
from jaxgen.kernel import config as config_lib
from jaxgen.kernel.errors import NonFiniteLossError
from jaxgen.runner import distributed, pictures, provenance, resume, sharding, stops, throughput
from jaxgen.runner import workdir as workdir_lib
from jaxgen.runner.checkpoint import Checkpointer, checkpoint_dir, checkpoint_steps
from jaxgen.runner.experiment import Experiment, run_data_info, write_run_info
from jaxgen.runner.logging import MetricsWriter, format_table, progress_bar
from jaxgen.runner.optim import learning_rates
from jaxgen.runner.state import param_count

#: Device calls the host may dispatch ahead of the last finished one (each holds its batch).
IN_FLIGHT = 2


def _resume_checks(workdir: Path, config) -> None:
    """Refuses to resume a workdir that was trained with a different config (the resumable
    changes are noted), or to train it back to fewer steps. Writes nothing."""
    steps = checkpoint_steps(workdir, config)
    path = workdir / "config.json"
    if not steps:
        return
    total = int(config.train.steps)
    if max(steps) > total:
        raise config_lib.ConfigError(
            f"{workdir} holds checkpoints up to step {max(steps)}, past train.steps={total}: "
            f"a run cannot train back to fewer steps. Pass --config.train.steps={max(steps)} or "
            f"more to train on, use `jaxgen sample/eval --step N` for an earlier checkpoint "
            f"({', '.join(map(str, steps))}), or pick a new --workdir. Nothing was changed.")
    if not path.exists():
        return
    old = json.loads(config_lib.to_json(config_lib.from_json_file(path, like=config)))
    new = json.loads(config_lib.to_json(config))
    diffs = resume.config_differences(old, new)
    if not diffs and not distributed.is_main():
        return
    say = functools.partial(print, flush=True) if distributed.is_main() else (lambda *a: None)
    old_steps, new_steps = old["train"]["steps"], new["train"]["steps"]
    if old_steps != new_steps and not new["optim"].get("decay_steps"):
        say(f"Note: train.steps changed {old_steps} -> {new_steps}; the learning-rate schedule "
            "now spans the new length (set optim.decay_steps to pin it).")
    for change in resume.config_differences(old, new, allowed=resume.ADJUSTABLE):
        say(f"Note: {change} on resume (allowed; config.json records the new value).")
    if diffs:
        raise config_lib.ConfigError(
            f"{workdir} holds a run trained with a different config:\n  " + "\n  ".join(diffs)
            + f"\nResume with the same config (only {', '.join(resume.RESUMABLE_CHANGES)}, "
            f"{', '.join(resume.ADJUSTABLE)}, sample.* and eval.* may change, and a moved "
            "plugin file may be re-pointed), or pick a new --workdir.")


def _nan_error(bad, m, s, ckpt, config, restored_from) -> NonFiniteLossError:
    """The message of a non-finite metric at step `s`: the step, the checkpoint kept, the
    suspect checkpoint when the run resumed just before, and advice that can be followed."""
    kept = ckpt.latest_step()
    values = ", ".join(f"{n}={float(np.ravel(m[n])[0])}" for n in bad)
    where = (f"The last good checkpoint, step {kept}, is kept in {ckpt.directory}."
             if kept is not None else "No checkpoint was saved before it.")
    suspect = ""
    window = max(int(config.train.log_every), 10)
    if restored_from is not None and s - restored_from <= window:
        suspect = (f" This is {s - restored_from} step(s) after resuming from checkpoint "
                   f"{restored_from}: that checkpoint is a suspect (move "
                   f"{ckpt.step_dir(restored_from)} aside to resume from an earlier one).")
    lr, clip = float(config.optim.learning_rate), float(config.optim.grad_clip)
    if clip > 0:
        advice = (f"Resume with a lower learning rate, e.g. --config.optim.learning_rate="
                  f"{lr / 3:.3g} (gradients are already clipped at {clip:g})")
    else:
        advice = (f"Resume with gradient clipping, --config.optim.grad_clip=1.0, or a lower "
                  f"learning rate, e.g. --config.optim.learning_rate={lr / 3:.3g}")
    return NonFiniteLossError(
        f"Non-finite {', '.join(bad)} at step {s} ({values}). {where}{suspect} {advice}: "
        "optim.learning_rate and optim.grad_clip may change when a run resumes.")


def train_and_evaluate(config, workdir: str | Path) -> dict:
    """Trains (or resumes) the run in `workdir`; returns the end-of-run summary."""
    workdir = Path(workdir).resolve()
    main = distributed.is_main()
    say = functools.partial(print, flush=True) if main else (lambda *a, **k: None)
    t_cfg = config.train
    distributed.use_compilation_cache(t_cfg.compilation_cache)
    if main:  # the other processes' launchers may already be writing their logs/ there
        workdir_lib.check_writable(workdir)
    _resume_checks(workdir, config)
    # Everything that can be wrong with the config fails here, before DIR is made.
    dataset = get_dataset(config.data, "train")
    check_held_out(config.data, dataset)
    info = run_data_info(dataset, workdir, measure=True)
    exp = Experiment(config, info)
    pipeline = BatchPipeline(dataset.source, t_cfg.batch_size, seed=config.seed,
                             process_index=jax.process_index(),
                             process_count=jax.process_count(),
                             steps_per_call=t_cfg.steps_per_call,
                             workers=t_cfg.data_workers, in_memory_mb=t_cfg.data_in_memory_mb)
    if main:
        workdir_lib.claim(workdir)
    distributed.sync("workdir")
    lock = workdir_lib.RunLock(workdir, say=say) if main else contextlib.nullcontext()
    with lock:
        return _train(config, workdir, exp, dataset, info, pipeline, say)


def _restore(ckpt: Checkpointer, exp: Experiment, say):
    """(state, meta, step) of the newest good checkpoint, or None; damaged newer ones are
    named and moved aside (checkpoints_damaged/), so this run can save their steps again."""
    if not ckpt.all_steps():
        return None
    state, meta, step, skipped = ckpt.restore_newest_good(exp.abstract_state(), say=say)
    if skipped:
        if distributed.is_main():
            for s, _ in skipped:
                moved = ckpt.set_aside(s)
                say(f"Moved the damaged checkpoint {s} to {moved} (kept, not deleted).")
        distributed.sync("damaged-checkpoints")
        ckpt.manager.reload()
    return state, meta, step


def _train(config, workdir, exp, dataset, info, pipeline, say) -> dict:
    main = distributed.is_main()
    t_cfg = config.train
    total = t_cfg.steps
    ckpt = Checkpointer(checkpoint_dir(workdir, config), max_to_keep=t_cfg.max_to_keep)
    restored = _restore(ckpt, exp, say)
    if restored is not None:
        state, meta, resume_step = restored
        start = int(distributed.to_host(state.step))
        if start >= total:
            ckpt.close()
            say(f"{workdir} already holds step {start} = train.steps; nothing to train (nothing "
                "was written). Raise --config.train.steps to train further; `jaxgen pictures "
                f"--workdir {workdir}` draws the end-of-run pictures.")
            return {"workdir": str(workdir), "steps": f"{start} -> {start} of {total}",
                    "checkpoint": str(ckpt.step_dir(resume_step))}
        say(f"Resuming from {ckpt.step_dir(resume_step)} (step {start}, data epoch "
            f"{meta['data']['epoch']}, batch {meta['data']['batch_in_epoch']}).")
    else:
        resume_step = None
        first = pipeline.local_batch(0)
        if t_cfg.steps_per_call > 1:
            first = {k: v[0] for k, v in first.items()}
        state = exp.init_state(distributed.to_global(first, exp.mesh, t_cfg.batch_size))
        start = 0

    nparams = param_count(state.params, exp.objective.players)
    if main:
        code, code_log = provenance.code_hashes(config), []
        if restored is not None:
            code_log = provenance.previous_log(workdir)
            if provenance.note_changes(workdir, config, say, "the resumed training"):
                code_log.append({"step": start, "was": provenance.recorded(workdir),
                                 "now": code})
        (workdir / "config.json").write_text(config_lib.to_json(config))
        write_run_info(workdir, info, {"objective": exp.objective.name,
                                       "model": config.model.name, "param_count": nparams,
                                       "likelihood": exp.objective.likelihood_kind,
                                       "devices": jax.device_count(),
                                       "processes": jax.process_count(),
                                       "code": code, "code_changes": code_log})
    writer = MetricsWriter(workdir, resume_step, enabled=main)
    # compiled ahead of the first batch, from shapes: its FLOP count is read before the loop
    lowered = exp.train_step().lower(state, exp.abstract_batch())
    step_fn = lowered.compile()
    flops = throughput.step_flops(exp, config, lowered, step_fn)
    peak, peak_source = throughput.device_peak(t_cfg)
    window = throughput.Window(t_cfg.batch_size, flops, jax.device_count(), peak)
    profile = config_lib.parse_step_window(t_cfg.profile_steps)
    rates = learning_rates(config.optim, exp.objective.players, total)
    tracing = False
    sample_rng = jax.random.fold_in(jax.random.key(config.seed), 10**9)

    def save(step: int):
        ckpt.save(step, state, {"data": pipeline.position(step), "step": step})
        writer.flush()  # the logs hold what the checkpoint holds

    def write_samples(step: int):
        path = pictures.write_samples(exp, state.ema_params, sample_rng, dataset,
                                      workdir / "samples" / f"step_{step:07d}.png", main)
        return path

    k = t_cfg.steps_per_call
    bar = progress_bar(total, start, enabled=main and t_cfg.progress)
    last, times, stopped_by = {}, [], None
    t_start = time.perf_counter()
    sample_path = None
    step = start

    def check_and_log(calls) -> dict:
        """The metrics of the calls [(first step, device metrics), ...] not yet checked,
        fetched now in one transfer: the NaN check (naming the first bad step) and the log
        lines. Returns the last step's metrics."""
        per_step = []
        for first, metrics in zip([c[0] for c in calls],
                                  distributed.to_host([c[1] for c in calls])):
            per_step += [(first + 1, metrics)] if k == 1 else [
                (first + i + 1, {m: v[i] for m, v in metrics.items()}) for i in range(k)]
        perf = window.figures()  # the steps since the last log line
        logged = [s for s, _ in per_step if s % t_cfg.log_every == 0 or s == total]
        for s, m in per_step:  # s: the step count after this update
            bad = sorted(n for n, v in m.items() if not np.all(np.isfinite(v)))
            if bad:
                raise _nan_error(bad, m, s, ckpt, config, resume_step)
            if s in logged:
                lrs = rates(s)
                extra = ({"lr": lrs.popitem()[1]} if len(lrs) == 1 else
                         {f"{name}/lr": v for name, v in lrs.items()})
                writer.write(s, {**m, **extra, **(perf if s == logged[-1] else {})})
        post = {"loss": f"{float(per_step[-1][1]['loss']):.4f}"}
        if perf:
            post["ex/s"] = f"{perf['perf/examples_per_s']:.4g}"
        bar.set_postfix(refresh=False, **post)
        return per_step[-1][1]

    # The device runs ahead of the host: the metrics stay on the device and are fetched, all
    # at once, every `log_every` steps (NaN check and log lines), batches are read and placed
    # on the devices by the pipeline's thread, and the only other syncs are the checkpoint,
    # sample and stop points, which first check what is pending (a checkpoint never holds a
    # state past a non-finite step).
    place = functools.partial(distributed.to_global, mesh=exp.mesh,
                              global_batch_size=t_cfg.batch_size, steps_per_call=k)
    pending = []  # (first step, device metrics) of the calls not yet checked
    with stops.saving(say) as signals:  # closing (saves) stays under it: Ctrl-C twice aborts
        try:
            t_prev = time.perf_counter()
            for step, batch in pipeline.iterate(start, total, place=place):
                if profile and not tracing and profile[0] <= step < profile[1]:
                    jax.profiler.start_trace(str(workdir / "profile"))
                    tracing = True
                state, metrics = step_fn(state, batch)
                if tracing and step + k >= profile[1]:
                    jax.block_until_ready(metrics)
                    jax.profiler.stop_trace()
                    tracing = False
                    say(f"Wrote a profiler trace of steps {profile[0]}-{step + k} to "
                        f"{workdir / 'profile'} (TensorBoard's profile tab, or Perfetto).")
                pending.append((step, metrics))
                if len(pending) > IN_FLIGHT:  # bounded: the batches of queued calls stay alive
                    jax.block_until_ready(pending[-1 - IN_FLIGHT][1])
                step = step + k
                now = time.perf_counter()
                times.append(now - t_prev)
                if len(times) > 1:  # the first call of a process warms up
                    window.add(now - t_prev, k)
                t_prev = now
                bar.update(k)
                periodic = t_cfg.sample_every and step % t_cfg.sample_every == 0
                stop = signals.agreed(step, boundary=step % t_cfg.log_every == 0  # all alike
                                      or step % t_cfg.checkpoint_every == 0 or step == total)
                sync = (step % t_cfg.checkpoint_every == 0 or step == total or periodic
                        or stop)
                if sync or step % t_cfg.log_every == 0:
                    last = check_and_log(pending)
                    pending = []
                if step % t_cfg.checkpoint_every == 0 or step == total:
                    save(step)
                if periodic or (step == total and t_cfg.pictures):
                    sample_path = write_samples(step)
                if stop:  # the same step on every process (`stops.Saving.agreed`)
                    if ckpt.latest_step() != step:
                        save(step)
                    stopped_by = stop
                    break
                if sync:
                    t_prev = time.perf_counter()  # a checkpoint or picture is not a step
        finally:
            if tracing:
                jax.profiler.stop_trace()
            bar.close()
            ckpt.close()
            writer.close()

    if step == total and start < total and not stopped_by and t_cfg.pictures:
        stops.note(f"the run is complete and saved at step {step}; `jaxgen pictures "
                   f"--workdir {workdir}` draws its end-of-run pictures")
        for path, note in pictures.write_end_of_run(exp, state.ema_params, sample_rng, dataset,
                                                    workdir / "samples", main, say=say):
            say(f"Wrote {path}{f' ({note})' if note else ''}")
        stops.note("")
    wall = time.perf_counter() - t_start
    steady = times[2:] if len(times) > 2 else times  # the first calls compile
    summary = {
        "workdir": str(workdir),
        "objective": exp.objective.name,
        "model": f"{config.model.name} ({nparams:,} trained params)",
        "data": f"{info.name} {tuple(info.event_shape)}",
        "devices": f"{jax.device_count()} ({jax.process_count()} process(es))",
        "mesh": sharding.describe(exp.mesh)
        + (" (state sharded over fsdp)" if config.train.shard_state else ""),
        "state per device (MiB)": round(sharding.bytes_per_device(state) / 2 ** 20, 3),
        "steps": f"{start} -> {step} of {total}",
        "final loss": float(last["loss"]) if last else float("nan"),
        "wall time (s)": round(wall, 1),
        "ms/step (median, after 2 calls)": round(1000 * float(np.median(steady)) / k, 2)
        if steady else float("nan"),
        "checkpoint": str(ckpt.step_dir(step)),
        "samples": str(sample_path) if sample_path else "-",
    }
    if steady:
        perf = window.at(float(np.median(steady)) / k)
        summary["examples/s"] = round(perf["perf/examples_per_s"], 1)
        if "perf/tflop_per_step" in perf:
            summary["TFLOP/step (XLA's count)"] = round(perf["perf/tflop_per_step"], 6)
        if "perf/mfu" in perf:
            summary["MFU"] = f"{perf['perf/mfu']:.4f} ({peak_source})"
    if stopped_by:
        summary["stopped by"] = f"{stopped_by}: checkpoint saved at step {step}; rerun to resume"
    say(format_table(list(summary.items()), title="\njaxgen train: summary"))
    return summary
