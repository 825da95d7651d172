"""What a launcher watches, in metrics.jsonl: step time, examples/s, FLOPs per step, MFU and
the learning rate; a profiler trace of a window of steps; FLOPs counted whatever the loops."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import NO_PICTURES, TINY_TOY, TOY_CONFIG, read_metrics

from jaxgen.kernel import config as config_lib
from jaxgen.runner import throughput
from jaxgen.runner.bench import setup
from jaxgen.runner.loop import train_and_evaluate
from jaxgen.runner.optim import learning_rate_schedule, player_config


def _run(tmp_path, name, *extra):
    cfg = config_lib.load_config(TOY_CONFIG, TINY_TOY + NO_PICTURES + ["train.steps=20",
                                                                       *extra])
    summary = train_and_evaluate(cfg, tmp_path / name)
    return cfg, summary, read_metrics(tmp_path / name, perf=True)


def test_log_lines_carry_step_time_examples_flops_mfu_and_the_learning_rate(tmp_path):
    cfg, summary, records = _run(tmp_path, "run", "train.profile_steps=6:9")
    schedule = learning_rate_schedule(player_config(cfg.optim, "model"), cfg.train.steps)
    exp, state, batch = setup(cfg)
    exact = throughput.cost_flops(exp.train_step().lower(state, batch).compile())
    timed = [r for r in records if "perf/step_time_ms" in r]
    assert len(timed) >= 3  # every log line after the first call
    for r in records:  # the rate of the step's update: warmup from 0, then the cosine
        np.testing.assert_allclose(r["lr"], float(schedule(r["step"] - 1)), rtol=1e-5)
    for r in timed:
        assert r["perf/step_time_ms"] > 0
        np.testing.assert_allclose(r["perf/examples_per_s"],
                                   cfg.train.batch_size / (r["perf/step_time_ms"] / 1e3))
        np.testing.assert_allclose(r["perf/tflop_per_step"], exact / 1e12, rtol=1e-6)
        assert 0 < r["perf/mfu"] < 2
    assert "MFU" in summary and "measured" in summary["MFU"]
    traces = list((tmp_path / "run" / "profile").rglob("*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0


# the trainer and `jaxgen bench` read the FLOPs from the one throughput.step_flops; by default
# test_train's test_bench_counts_the_flops_of_a_whole_step_whatever_its_loops holds it
@pytest.mark.heavy
def test_a_looped_step_logs_the_flops_of_the_whole_step(tmp_path):
    """XLA counts a loop body once: 4 micro-batches a step (or 5 steps a call) still log the
    FLOPs of one whole step over the same global batch (within 5 %: on this tiny MLP the
    optimizer update, which the loop does once per call, is a large share of the step)."""
    plain = _run(tmp_path, "plain")[2][-1]["perf/tflop_per_step"]
    for loop in ("train.grad_accum=4", "train.steps_per_call=5"):
        looped = _run(tmp_path, loop.split("=")[0], loop)[2][-1]["perf/tflop_per_step"]
        assert looped == pytest.approx(plain, rel=0.05), loop


def test_a_critic_updated_several_times_a_step_is_counted_every_time(tiny_toy_config):
    """A GAN's critic updated 3 times per step runs in a loop, which XLA counts once: the
    step's FLOPs are those of the program with the loop written out, compiled."""
    from jaxgen.kernel import config as config_lib
    from jaxgen.runner.experiment import DatasetInfo, Experiment
    cfg = config_lib.load_config(config_lib.find_config("gan/wgan_gp_toy2d"),
                                 ["objective.n_critic=3", "train.batch_size=24"])
    exp = Experiment(cfg, DatasetInfo("8gaussians", "points", (2,)))
    args = (exp.abstract_state(), exp.abstract_batch())
    lowered = exp.train_step().lower(*args)
    counted = throughput.step_flops(exp, cfg, lowered, lowered.compile())
    whole = throughput.cost_flops(exp.train_step(unroll=True).lower(*args).compile())
    once = throughput.cost_flops(lowered.compile())
    assert counted == pytest.approx(whole, rel=0.05) and counted > 1.5 * once


def test_peak_table_and_override(tiny_toy_config):
    t = tiny_toy_config("train.peak_tflops=123").train
    assert throughput.device_peak(t) == (123.0, "train.peak_tflops")
    peak, source = throughput.device_peak(tiny_toy_config().train)
    assert jax.default_backend() != "cpu" or ("measured" in source and peak > 0)
    assert throughput.PEAK_TFLOPS["H100"][0] == 989.0
