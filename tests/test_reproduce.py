"""`jaxgen reproduce`: every reproduction end to end at tiny size (--fast), its report and
figures; the parts of the claims that do not depend on the budget are checked exactly."""

import json
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
        # a fast run concludes nothing, whatever its numbers; report.json says the same
        assert "**Verdict: cannot tell at this budget.** fast run" in md, name
        meta = json.loads((out / name / "report.json").read_text())
        assert meta["verdict"] == "cannot tell at this budget" and meta["fast"], name
        assert meta["name"] == name and meta["wall_seconds"] > 0, name
        for fig in re.findall(r"\]\(([^)]+\.png)\)", md):
            assert (out / name / fig).stat().st_size > 0, (name, fig)


def test_reproduce_fast_writes_every_report_with_its_figures(tmp_path, capsys):
    out = tmp_path / "reports"
    for name in LIGHT:
        assert cli.main(["reproduce", name, "--fast", "--out", str(out)]) == 0, \
            capsys.readouterr().err
        assert f"Wrote {out / name / 'report.md'}" in capsys.readouterr().out
    _check_reports(out, LIGHT)
    # the verdict table: one row per report folder, the others named as missing
    assert cli.main(["reproduce", "verdicts", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    for name in LIGHT:
        assert f"[{name}]({out.as_posix()}/{name}/report.md)" in table
    assert "**cannot tell at this budget**" in table
    assert "No report.json" in table and "summary-table" in table.split("No report.json")[1]
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


@pytest.mark.parametrize("judged,expected", [
    ((True, True, None), "holds"), ((True, False), "does not hold"),
    ((None, None), "cannot tell at this budget"), ((), "cannot tell at this budget"),
    ((False, None), "does not hold")])
def test_a_full_run_takes_its_verdict_from_the_judged_rows(tmp_path, judged, expected):
    rep = reproduce.Report(tmp_path, "x", "T", "C", reproduce.Budget(), "cmd")
    for i, ok in enumerate(judged):
        rep.compare(f"q{i}", 1.0, 1.0, "src", ok)
    rep.verdict_from_rows("why", "3 steps")
    rep.write()
    meta = json.loads((tmp_path / "report.json").read_text())
    assert meta["verdict"] == expected and meta["budget_note"] == "3 steps"
    assert f"**Verdict: {expected}.**" in (tmp_path / "report.md").read_text()


def test_a_report_needs_a_known_verdict(tmp_path):
    rep = reproduce.Report(tmp_path, "x", "T", "C", reproduce.Budget(), "cmd")
    with pytest.raises(ValueError, match="holds"):
        rep.verdict("probably", "why")
    with pytest.raises(RuntimeError, match="no verdict"):
        rep.write()
    fast = reproduce.Report(tmp_path, "x", "T", "C", reproduce.Budget(fast=True), "cmd")
    fast.verdict("holds", "a strong reason")
    assert fast.verdict_ == ("cannot tell at this budget",
                             "fast run, tiny models (at full budget: a strong reason)")


def test_the_light_and_heavy_lists_cover_every_reproduction():
    assert set(LIGHT) | set(HEAVY) == set(reproduce.REPRODUCTIONS) and HEAVY


def test_a_run_stopped_by_a_signal_stops_its_reproduction(tmp_path, monkeypatch):
    """A Ctrl-C / SIGTERM that stops a reproduction's training run ends the reproduction
    with one error naming how to resume, instead of measuring a half-trained model."""
    from jaxgen.kernel.errors import UserError
    from jaxgen.reproduce import runs
    from jaxgen.runner import loop
    monkeypatch.setattr(loop, "train_and_evaluate", lambda cfg, wd: {
        "stopped by": "SIGTERM: checkpoint saved at step 3; rerun to resume"})
    rep = reproduce.Report(tmp_path, "x", "T", "C", reproduce.Budget(), "cmd")
    with pytest.raises(UserError, match="--force --reuse-runs"):
        runs.train_run(rep, "a", "flow_matching/toy2d.py", [], steps=5, batch=8)
