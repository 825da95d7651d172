"""The report a reproduction writes: `reports/NAME/report.md` with its figures.

A report is a claim (what the lecture or paper says), a table of measured
numbers beside the claimed ones, figures, and how it was made (the command,
the budget, the wall time, jax's devices), so anyone can rerun it and compare.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import time
from pathlib import Path

import jax

from jaxgen.kernel.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much compute a reproduction spends.

    scale multiplies each reproduction's documented full step counts (1.0 =
    the budget its report quotes); fast = a tiny end-to-end run for the tests,
    whose numbers are not meant to match the claims.
    """

    scale: float = 1.0
    fast: bool = False
    seed: int = 0

    def steps(self, full: int, fast: int) -> int:
        return int(fast) if self.fast else max(1, int(round(full * self.scale)))

    def pick(self, full, fast):
        return fast if self.fast else full

    @property
    def label(self) -> str:
        return "fast (tiny, for the tests)" if self.fast else f"x{self.scale:g} of full"


# What a report concludes about its claim. A fast run concludes nothing: whatever its
# reproduction says, its verdict is written as "cannot tell at this budget".
VERDICTS = ("holds", "does not hold", "cannot tell at this budget")
CANNOT_TELL = VERDICTS[2]


class Report:
    """Collects a reproduction's sections, then writes report.md (and report.json, the
    verdict and budget in machine-readable form) into `folder`."""

    def __init__(self, folder: Path, name: str, title: str, claim: str, budget: Budget,
                 command: str, reused_runs: bool = False):
        self.folder = Path(folder)
        self.reused_runs = reused_runs
        self.name, self.title, self.claim = name, title, claim
        self.budget, self.command = budget, command
        self.rows: list[tuple] = []  # (quantity, measured, claimed, source, verdict)
        self.blocks: list[str] = []
        self.verdict_: tuple[str, str] | None = None
        self.budget_note = ""
        self.t0 = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, filename: str) -> Path:
        return self.folder / filename

    def compare(self, quantity: str, measured, claimed, source: str, ok: bool | None = None):
        """One row of the measured-vs-claimed table (ok: whether they agree, None: n/a)."""
        self.rows.append((quantity, _fmt(measured), _fmt(claimed), source,
                          "" if ok is None else ("agrees" if ok else "differs")))

    def verdict(self, verdict: str, why: str, budget_note: str = ""):
        """The report's conclusion on its claim: one of VERDICTS, with the measured reason.

        budget_note says what was trained (e.g. "5 seeds x 25 000 steps"); a fast run's
        verdict is always CANNOT_TELL, whatever its numbers."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS}")
        if self.budget.fast:
            verdict, why = CANNOT_TELL, f"fast run, tiny models (at full budget: {why})"
        self.verdict_ = (verdict, why.strip())
        self.budget_note = budget_note

    def verdict_from_rows(self, why: str, budget_note: str = ""):
        """The verdict the judged rows of the measured-vs-claimed table give: "does not hold"
        when any row differs, "holds" when some agree and none differs, else CANNOT_TELL."""
        judged = [r[4] for r in self.rows if r[4]]
        verdict = ("does not hold" if "differs" in judged else
                   "holds" if judged else CANNOT_TELL)
        self.verdict(verdict, f"{sum(j == 'agrees' for j in judged)} of {len(judged)} judged "
                              f"rows agree; {why}", budget_note)

    def text(self, markdown: str):
        self.blocks.append(markdown.strip())

    def table(self, header, rows, caption: str | None = None):
        lines = ([f"*{caption}*", ""] if caption else []) + [
            "| " + " | ".join(map(str, header)) + " |",
            "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
        self.blocks.append("\n".join(lines))

    def figure(self, filename: str, caption: str):
        self.blocks.append(f"![{caption}]({filename})\n\n*{caption}*")

    def write(self) -> Path:
        wall = time.perf_counter() - self.t0
        dev = jax.devices()[0]
        if self.verdict_ is None:
            raise RuntimeError(f"reproduction {self.name!r} wrote no verdict "
                               "(Report.verdict)")
        verdict, why = self.verdict_
        out = [f"# {self.title}", "", f"**Claim.** {self.claim}", "",
               f"**Verdict: {verdict}.** {why}", "",
               "## Measured vs claimed", "",
               "| quantity | measured | claimed | source | |", "|---|---|---|---|---|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        out += [""] + [b + "\n" for b in self.blocks]
        out += ["## How this was made", "",
                f"    {self.command}", "",
                f"Budget: {self.budget.label}, seed {self.budget.seed}; wall time {wall:.1f} s "
                f"on {jax.device_count()} x {dev.platform} ({platform.processor() or 'cpu'}); "
                f"jax {jax.__version__}. Generated by `jaxgen.reproduce.{_module(self.name)}`."]
        if self.reused_runs:
            out += ["", "The trained runs in `runs/` were reused from an earlier invocation of "
                    "the same command (`--force --reuse-runs`), so the wall time above excludes "
                    "their training; everything else was measured again."]
        path = self.folder / "report.md"
        path.write_text("\n".join(out) + "\n")
        (self.folder / "report.json").write_text(json.dumps({
            "name": self.name, "title": self.title, "claim": self.claim,
            "verdict": verdict, "why": why, "budget": self.budget.label,
            "budget_note": self.budget_note, "fast": self.budget.fast,
            "seed": self.budget.seed, "command": self.command, "wall_seconds": round(wall, 1),
            "reused_runs": self.reused_runs,
            "figures": [b.split("](", 1)[1].split(")", 1)[0] for b in self.blocks
                        if b.startswith("![")]}, indent=1) + "\n")
        self.md, self.seconds = path, wall
        return path


def _module(name: str) -> str:
    return name.replace("-", "_")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fresh_folder(folder: Path, force: bool, keep: tuple = ()) -> Path:
    """An empty report folder: refuses to replace a non-empty one unless force; with force,
    everything but the entries named in `keep` is removed."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not force:
            raise UsageError(f"{folder} is not empty; pass --force to regenerate it there "
                                  "or choose another --out.")
        for entry in folder.iterdir():
            if entry.name in keep:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
