"""Golden traces: the same seed gives the same numbers as when the traces were recorded.

One tiny run per objective (the shipped config, shrunk): every metric of the first
STEPS train steps, a checksum of the params and EMA params after them, and the mean and
std of a few samples where the family samples. Recorded once, before a restructuring of
the code, into tests/golden_traces.json (git log says when); any change of what a step
computes or draws (a reordered key split, a changed default, a different init) shows as
a mismatch here. Re-record only for an intended change of the numbers, and say so in
the commit:

    python tests/test_golden.py --record
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden_traces.json")
STEPS = 4

TOY = ["train.batch_size=64", "optim.warmup_steps=2"]
MLP = ["model.features=(16, 16)", "model.time_dim=8"]
IMAGES = (8, 8, 1)

# name: (config, overrides, data kind, event shape, num_classes, sample?)
CASES = {
    "flow_matching": ("flow_matching/toy2d.py", TOY + MLP + ["sample.steps=4"],
                      "points", (2,), None, True),
    "flow_nll": ("flows/realnvp_toy2d.py", TOY + ["model.num_layers=2", "model.hidden=(16,)"],
                 "points", (2,), None, True),
    "ddpm": ("diffusion/ddpm_toy2d.py", TOY + MLP + ["objective.num_steps=20"],
             "points", (2,), None, True),
    "ncsn": ("diffusion/ncsn_toy2d.py", TOY + MLP + ["sample.langevin_steps=3"],
             "points", (2,), None, True),
    "consistency": ("diffusion/consistency_toy2d.py", TOY + MLP, "points", (2,), None, True),
    "edm": ("diffusion/edm_toy2d.py", TOY + MLP + ["sample.steps=3"], "points", (2,), None,
            True),
    "vae": ("vae/vae_toy2d.py", TOY + ["model.features=(16,)"], "points", (2,), None, True),
    "vqvae": ("vae/vqvae_fashion_mnist.py",
              ["train.batch_size=8", "model.channels=(4, 8)", "model.embed_dim=3",
               "model.num_res=0", "objective.num_codes=6", "objective.restart_after=2"],
              "images", IMAGES, None, True),
    "vqvae2": ("vae/vqvae2_fashion_mnist.py",
               ["train.batch_size=8", "model.channels=(4, 8)", "model.embed_dim=3",
                "model.num_res=0", "objective.num_codes=6", "objective.restart_after=2"],
               "images", IMAGES, None, True),
    "gan": ("gan/wgan_gp_toy2d.py",
            ["train.batch_size=40", "model.g_features=(16, 16)", "model.d_features=(16, 16)"],
            "points", (2,), None, True),
    "pix2pix": ("gan/pix2pix_fashion_mnist.py",
                ["model.g_channels=4", "model.d_channels=4", "model.groups=2",
                 "train.batch_size=8"], "images", IMAGES, 3, False),
    "cyclegan": ("gan/cyclegan_fashion_mnist.py",
                 ["model.g_channels=4", "model.d_channels=4", "model.groups=2",
                  "train.batch_size=8", "data.classes=()", "objective.class_x=0",
                  "objective.class_y=1"], "images", IMAGES, 3, False),
    "autoregressive": ("autoregressive/ar_toy.py",
                       ["train.batch_size=16", "model.features=(16,)"],
                       "points", (8,), None, True),
    "pixelcnn": ("autoregressive/pixelcnn_fashion_mnist.py",
                 ["train.batch_size=8", "model.channels=4", "model.num_layers=1",
                  "model.hidden=4"], "images", (4, 4, 1), None, True),
}


def _batches(kind, shape, num_classes, batch_size, n):
    rng = np.random.default_rng(123)
    out = []
    for _ in range(n):
        if kind == "images":
            b = {"x": rng.integers(0, 256, (batch_size, *shape), dtype=np.uint8)}
        else:
            b = {"x": rng.normal(size=(batch_size, *shape)).astype(np.float32)}
        if num_classes:
            b["label"] = rng.integers(0, num_classes, (batch_size,)).astype(np.int32)
        out.append(b)
    return out


@functools.lru_cache(maxsize=None)
def golden_run(name: str):
    """Case `name` run in this process: the trainer's init and STEPS steps on fixed batches.

    Returns (experiment, the initial params (host copies), the state after the steps, the
    metrics of every step). Cached: tests/test_contract.py continues from the same run, in
    the same worker (their xdist group), reusing its compiled step and sampler.
    """
    import jax

    from jaxgen.kernel import config as config_lib
    from jaxgen.runner import distributed
    from jaxgen.runner.experiment import DatasetInfo, Experiment

    config, overrides, kind, shape, num_classes, _ = CASES[name]
    cfg = config_lib.load_config(ROOT / "configs" / config, overrides)
    exp = Experiment(cfg, DatasetInfo("array", kind, tuple(shape), num_classes))
    bs = cfg.train.batch_size
    batches = _batches(kind, shape, num_classes, bs, STEPS)
    state = exp.init_state(distributed.to_global(batches[0], exp.mesh, bs))
    init_params = jax.tree.map(np.asarray, state.params)
    step_fn = exp.train_step()
    metrics = []
    for b in batches:
        state, m = step_fn(state, distributed.to_global(b, exp.mesh, bs))
        metrics.append({k: float(v) for k, v in sorted(distributed.to_host(m).items())})
    return exp, init_params, state, metrics


def trace(name: str) -> dict:
    """The golden figures of case `name`: metrics, param checksums, sample statistics."""
    import jax

    exp, _, state, metrics = golden_run(name)

    def checksum(tree):
        return float(sum(np.sum(np.abs(np.asarray(v, np.float64)))
                         for v in jax.tree.leaves(tree)))

    out = {"metrics": metrics, "params": checksum(state.params),
           "ema_params": checksum(state.ema_params)}
    if CASES[name][5]:
        x = np.asarray(exp.sample(state.ema_params, jax.random.key(1), 8), np.float64)
        out["sample"] = [float(x.mean()), float(x.std())]
    return out


def group(name: str):
    """The xdist group of a case: its golden and contract tests share one worker."""
    return pytest.mark.xdist_group(f"case-{name}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=group(n)) for n in sorted(CASES)])
def test_golden_trace(name):
    want = json.loads(GOLDEN.read_text())[name]
    got = trace(name)
    assert [sorted(m) for m in got["metrics"]] == [sorted(m) for m in want["metrics"]]
    for i, (g, w) in enumerate(zip(got["metrics"], want["metrics"])):
        for k in w:
            np.testing.assert_allclose(g[k], w[k], rtol=2e-5, atol=1e-6,
                                       err_msg=f"{name}: step {i + 1}, metric {k}")
    for k in ("params", "ema_params", "sample"):
        assert (k in got) == (k in want), k
        if k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=1e-6,
                                       err_msg=f"{name}: {k}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_golden.py --record")
    traces = {name: trace(name) for name in sorted(CASES)}
    GOLDEN.write_text(json.dumps(traces, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(traces)} cases)")
