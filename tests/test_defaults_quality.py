"""`jaxgen reproduce defaults-quality`: every shipped 2-D config at its default budget on
three random Gaussian mixtures meets its family's target. The check itself trains
27 runs (about two hours on 2 CPU cores) and is marked heavy; the default run checks its
parts: which configs it finds, how it judges an eval result, and one tiny run end to end."""

import math

import pytest

from jaxgen import cli
from jaxgen.kernel import config as config_lib
from jaxgen.reproduce import defaults_quality as dq

SHIPPED_2D = ["diffusion/consistency_toy2d", "diffusion/ddpm_toy2d", "diffusion/edm_toy2d",
              "diffusion/ncsn_toy2d", "flow_matching/toy2d",
              "flows/nsf_toy2d", "flows/realnvp_toy2d", "gan/minimax_toy2d", "gan/ns_toy2d",
              "gan/wgan_gp_toy2d", "gan/wgan_toy2d", "vae/vae_toy2d"]


def test_finds_every_shipped_2d_config():
    assert dq.shipped_2d_configs() == SHIPPED_2D
    for name in dq.FAILURE_PROTOCOLS:  # left out on purpose, and still shipped
        assert (config_lib.configs_root() / f"{name}.py").is_file(), name


def test_verdict_judges_each_family_by_its_target():
    # flow matching / RealNVP: one exact estimator, plain keys
    ev = {"kind": "exact", "nll_gap_nats": 0.07, "sliced_w1_ratio": 9.0, "mode_tv": 0.5}
    v = dq.verdict(ev)
    assert v["passed"] and v["target"].startswith("NLL") and v["nll_gap"] == 0.07
    assert not dq.verdict({**ev, "nll_gap_nats": 0.1})["passed"]  # "within 0.1": strictly
    # DDPM: the first estimator (a bound) has the plain keys; the exact ODE one is judged
    ev = {"nll_gap_nats": 0.3, "vlb/kind": "bound", "ode/kind": "exact",
          "ode/nll_gap_nats": 0.04, "sliced_w1_ratio": 1.2, "mode_tv": 0.02}
    v = dq.verdict(ev)
    assert v["passed"] and v["nll_gap"] == 0.04 and v["nll_gap_kind"] == "exact (ode)"
    # the VAE: bounds only, so judged as a sampler; its IWAE gap is shown as a bound
    ev = {"nll_gap_nats": 0.2, "iwae/kind": "bound", "elbo/kind": "bound",
          "elbo/nll_gap_nats": 0.3, "sliced_w1_ratio": 3.9, "mode_tv": 0.09}
    v = dq.verdict(ev)
    assert v["passed"] and v["target"].startswith("SW1") and v["nll_gap_kind"] == "bound (iwae)"
    assert not dq.verdict({**ev, "sliced_w1_ratio": 4.0})["passed"]
    assert not dq.verdict({**ev, "mode_tv": 0.1})["passed"]
    # a GAN: no likelihood at all
    v = dq.verdict({"sliced_w1_ratio": 2.0, "mode_tv": 0.2})
    assert not v["passed"] and math.isnan(v["nll_gap"])
    assert "**FAIL**" in dq.table_rows([{**v, "config": "gan/x", "mixture": "m",
                                         "train_steps": 1}])[0]


def test_one_tiny_run_end_to_end(tmp_path):
    r = dq.measure("flows/realnvp_toy2d", dq.MIXTURES[0], tmp_path / "run", fast_steps=5)
    assert r["target"].startswith("NLL") and r["nll_gap_kind"] == "exact"
    assert r["nll_gap"] == pytest.approx(r["nll_nats"] - r["true_nll_nats"])
    assert r["sliced_w1_floor"] > 0 and r["sliced_w1_ratio"] > 0 and 0 <= r["mode_tv"] <= 1
    assert r["quality_samples"] == r["mmd_num"] == 200  # the --fast eval.mmd_num
    assert r["mixture"] == "seed 1, K = 6"


@pytest.mark.heavy
def test_every_shipped_2d_config_meets_its_target_on_three_mixtures(tmp_path, capsys):
    out = tmp_path / "reports"
    assert cli.main(["reproduce", "defaults-quality", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    md = (out / "defaults-quality" / "report.md").read_text()
    assert f"| all {len(SHIPPED_2D) * 3} | jaxgen's target | agrees |" in md, md
    assert "**FAIL**" not in md and "differs" not in md, md
