"""`jaxgen reproduce`: every reproduction end to end at tiny size (--fast), its report and
figures; the parts of the claims that do not depend on the budget are checked exactly."""

import math
import re

import pytest

from jaxgen import cli, reproduce
from jaxgen.reproduce import js_vs_wasserstein

# Train one small model or none: the default run (CI). The others train every family.
LIGHT = ("optimal-discriminator", "js-vs-wasserstein", "forward-diffusion", "mode-collapse",
         "style-transfer", "nash-toy")
HEAVY = tuple(n for n in reproduce.REPRODUCTIONS if n not in LIGHT)


def _check_reports(out, names):
    for name in names:
        md = (out / name / "report.md").read_text()
        assert md.startswith("# ") and "## Measured vs claimed" in md, name
        assert f"jaxgen reproduce {name} --out {out} --fast" in md  # how to rerun it
        rows = [line for line in md.splitlines() if line.startswith("| ")]
        assert len(rows) >= 4, name
        assert "differs" not in md, name  # nothing judged at this size disagrees
        for fig in re.findall(r"\]\(([^)]+\.png)\)", md):
            assert (out / name / fig).stat().st_size > 0, (name, fig)


def test_reproduce_fast_writes_every_report_with_its_figures(tmp_path, capsys):
    out = tmp_path / "reports"
    for name in LIGHT:
        assert cli.main(["reproduce", name, "--fast", "--out", str(out)]) == 0, \
            capsys.readouterr().err
        assert f"Wrote {out / name / 'report.md'}" in capsys.readouterr().out
    _check_reports(out, LIGHT)
    # budget-independent parts: forward diffusion's closed form holds to float64 rounding
    fd = (out / "forward-diffusion" / "report.md").read_text()
    assert fd.count("agrees") >= 4
    # no silent overwrite; an unknown name lists the valid ones
    assert cli.main(["reproduce", "forward-diffusion", "--fast", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["reproduce", "nope", "--out", str(out)]) == 2
    assert "optimal-discriminator" in capsys.readouterr().err
    # --reuse-runs: the trained runs are restored, not retrained; the same numbers again
    before = (out / "mode-collapse" / "report.md").read_text()
    ckpt = next((out / "mode-collapse" / "runs").rglob("checkpoints"))
    stamp = sorted(p.stat().st_mtime_ns for p in ckpt.rglob("*"))
    assert cli.main(["reproduce", "mode-collapse", "--fast", "--out", str(out),
                     "--reuse-runs"]) == 2  # needs --force
    assert cli.main(["reproduce", "mode-collapse", "--fast", "--out", str(out), "--force",
                     "--reuse-runs"]) == 0, capsys.readouterr().err
    after = (out / "mode-collapse" / "report.md").read_text()
    assert "reused" in after and "reused" not in before
    assert sorted(p.stat().st_mtime_ns for p in ckpt.rglob("*")) == stamp
    table = [line for line in before.splitlines() if line.startswith("| ")]
    assert table == [line for line in after.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("theta", [-1.0, -0.3, 0.0, 0.05, 2.0])
def test_parallel_lines_closed_forms(theta):
    c = js_vs_wasserstein.closed_forms(theta)
    assert c["W1"] == abs(theta)
    if theta == 0:
        assert c == {"W1": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}
    else:
        assert c["JS"] == math.log(2) and c["KL"] == math.inf and c["TV"] == 1.0


@pytest.mark.heavy
def test_reproduce_all_fast_trains_every_family_end_to_end(tmp_path, capsys):
    out = tmp_path / "reports"
    assert cli.main(["reproduce", "all", "--fast", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    assert "jaxgen reproduce all" in capsys.readouterr().out
    _check_reports(out, reproduce.REPRODUCTIONS)
    table = (out / "summary-table" / "report.md").read_text()
    assert "round trip exact" in table  # the AR cell compresses and decompresses for real


def test_the_light_and_heavy_lists_cover_every_reproduction():
    assert set(LIGHT) | set(HEAVY) == set(reproduce.REPRODUCTIONS) and HEAVY
