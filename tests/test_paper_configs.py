"""Every paper config (a shipped config with a PAPER record, `jaxgen.runner.papers`): its
record and docstring, its settings against the record, and its network's parameter count
against the paper's (within 1%, from shapes alone), in the default run; and a CPU smoke run
of two training steps on a tiny file in the dataset's official format, then a tiny
`jaxgen eval`, both with PAPER["smoke"] (batch 2, narrower) and at full width (batch 2), in
the heavy run (-m heavy)."""

from __future__ import annotations

import json
import math
import time

import jax
import numpy as np
import pytest
from conftest import flags
from test_imagenet import official_set
from tiny_data import write_cifar10

from jaxgen import cli
from jaxgen.data import get_dataset
from jaxgen.kernel.contract import DatasetInfo
from jaxgen.runner import papers
from jaxgen.runner.experiment import Experiment
from jaxgen.runner.state import param_count

PAPERS = papers.paper_configs()
IDS = [pc.name for pc in PAPERS]

# the tiny files the smoke runs and the parameter counts read, by data.name
WRITERS = {"cifar10": lambda root: write_cifar10(root, np.random.default_rng(0))[0],
           "imagenet64": lambda root: official_set(root, 64, np.random.default_rng(0)) and root}

# what every smoke run adds to PAPER["smoke"]: two steps, nothing but the checkpoint
SMOKE_RUN = ("train.steps=2", "train.log_every=1", "train.checkpoint_every=2",
             "train.sample_every=0", "train.pictures=false", "train.progress=false")
SMOKE_EVAL = ("eval.num_examples=2", "eval.batch_size=2")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """data.name -> a tiny file of that dataset (its data.source)."""
    root = tmp_path_factory.mktemp("paper-data")
    return {name: write(root / name) for name, write in WRITERS.items()}


def _source(sources, pc):
    name = pc.load().data.name
    assert name in sources, (f"{pc.name}: no tiny {name} file for the smoke run; add its "
                             "writer to WRITERS (tests/tiny_data.py)")
    return f"data.source={sources[name]}"


def test_there_are_paper_configs_and_the_lister_finds_exactly_them():
    assert {"diffusion/ddpm_cifar10", "flow_matching/fm_cifar10",
            "flow_matching/fm_imagenet64"} <= set(IDS)
    with_record = {f"{p.parent.name}/{p.stem}" for p in papers.config_lib.find_configs()
                   if "\nPAPER = " in p.read_text()}
    assert set(IDS) == with_record
    assert papers.paper_config("diffusion/ddpm_fashion_mnist") is None


@pytest.mark.parametrize("pc", PAPERS, ids=IDS)
def test_record_docstring_and_settings_agree(pc):
    assert papers.record_problems(pc) == []


def test_the_record_check_catches_what_is_wrong():
    pc = papers.paper_config("diffusion/ddpm_cifar10")
    broken = papers.PaperConfig(pc.name, pc.path, pc.doc.replace("0.9999", "an EMA"),
                                {**pc.record, "lr": 1e-4, "smoke": ("train.batch_size=4",)})
    problems = papers.record_problems(broken)
    assert any("optim.learning_rate=0.0002" in p for p in problems)
    assert any("train.batch_size=2" in p for p in problems)
    assert any("the EMA" in p for p in problems)
    assert papers.record_problems(papers.PaperConfig(
        pc.name, pc.path, pc.doc, {k: v for k, v in pc.record.items() if k != "nfe"})) == [
        "PAPER lacks nfe"]


def _counted(params, record) -> int:
    keys = record.get("params_of") or tuple(params)
    return sum(param_count(params[k]) for k in keys)


def test_parameter_counts_match_the_papers_within_one_percent(sources):
    rows, bad = [], []
    for pc in PAPERS:
        cfg = pc.load([_source(sources, pc)])
        exp = Experiment(cfg, DatasetInfo.of(get_dataset(cfg.data, "train")))
        got = _counted(exp._abstract[0], pc.record)  # jax.eval_shape of the init: no compile
        want = papers.expected_params(pc.record)
        source = "paper" if pc.record["params"] is not None else "official code"
        rows.append(f"{pc.name:34s} | {want:>13,d} ({source:13s}) | {got:>13,d} | "
                    f"{got / want - 1:+.3%}")
        if abs(got / want - 1) > 0.01:
            bad.append(pc.name)
    table = "\n".join([f"{'config':34s} | {'expected (from)':>29s} | {'jaxgen':>13s} | diff",
                       *rows])
    print("\n" + table)
    assert not bad, f"parameter counts off by more than 1%: {bad}\n{table}"


def _smoke(pc, sources, tmp_path, shrink: bool):
    smoke = pc.smoke() if shrink else tuple(
        s for s in pc.smoke() if not s.startswith("model."))
    wd = tmp_path / "run"
    t0 = time.perf_counter()
    assert cli.main(["train", "--config", str(pc.path), "--workdir", str(wd),
                     *flags([*smoke, *SMOKE_RUN, _source(sources, pc)])]) == 0
    t_train = time.perf_counter() - t0
    records = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(math.isfinite(r["loss"]) for r in steps)
    t0 = time.perf_counter()
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--workdir", str(wd), "--out", str(out),
                     *flags(SMOKE_EVAL)]) == 0
    t_eval = time.perf_counter() - t0
    assert out.exists()
    print(f"\n{pc.name} smoke ({'shrunk' if shrink else 'full width'}, "
          f"{jax.device_count()} device(s)): train 2 steps {t_train:.1f} s, "
          f"eval {t_eval:.1f} s")


# A smoke run compiles the network's init, train step, checkpoint fingerprint and
# likelihood: with the shrunk widths 1.5-5 minutes per config on 2 shared CPU cores (compile
# time follows the number of layers, not their width), so both sizes are in the heavy run.
@pytest.mark.heavy
@pytest.mark.parametrize("width", ["shrunk", "full"])
@pytest.mark.parametrize("pc", PAPERS, ids=IDS)
def test_smoke_two_steps_and_a_tiny_eval(pc, width, sources, tmp_path):
    _smoke(pc, sources, tmp_path, shrink=width == "shrunk")
