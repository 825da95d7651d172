"""Metrics to metrics.jsonl and TensorBoard, progress (a bar, or plain lines), and summary
tables."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

# progress lives in the kernel (the data package shows it too); its runner names stay
from jaxgen.kernel.progress import PlainProgress, progress_bar, terminal_usable  # noqa: F401


def _summary_writer_class():
    """tensorboardX's SummaryWriter, imported without torch: tensorboardX imports torch when
    it is installed (seconds of start-up) only to accept torch tensors, and jaxgen logs
    Python floats. A torch that is already imported is left as it is."""
    import sys
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    sys.modules["torch"] = None  # `import torch` raises ImportError while this is set
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class MetricsWriter:
    """Appends one JSON object per logged step; mirrors scalars to TensorBoard.

    On resume, entries after the restored step (written by the interrupted
    run and about to be recomputed) are dropped so every step appears once: metrics.jsonl
    is cut back, and TensorBoard is told to purge them (tensorboardX's `purge_step`: the
    new event file starts with a session-start event at restored step + 1, and TensorBoard
    drops the older files' points from there on). `flush()` (at every checkpoint) makes
    both durable, so a kill loses nothing a checkpoint covers.
    """

    def __init__(self, workdir: str | Path, resume_step: int | None, enabled: bool = True,
                 tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(workdir) / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if self.path.exists():
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if resume_step is not None and rec.get("step", 0) <= resume_step:
                    keep.append(line)
            self.path.write_text("".join(line + "\n" for line in keep))
        if tensorboard:
            SummaryWriter = _summary_writer_class()
            tb_dir = Path(workdir) / "tensorboard"
            purge = None
            if tb_dir.is_dir() and any(tb_dir.iterdir()):
                purge = (resume_step or 0) + 1
            self.tb = SummaryWriter(str(tb_dir), purge_step=purge)

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        rec = {"step": int(step)}
        rec.update({k: _py(v) for k, v in sorted(metrics.items())})
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for k, v in rec.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def flush(self) -> None:
        """metrics.jsonl is appended and closed per line; this also syncs it to disk and
        flushes TensorBoard's queue."""
        if not self.enabled:
            return
        if self.path.exists():
            with self.path.open("a") as f:
                os.fsync(f.fileno())
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None


def _py(v):
    v = np.asarray(v)
    return v.item() if v.size == 1 else v.tolist()


def read_metrics(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]




def format_table(rows: list[tuple], title: str | None = None,
                 header: tuple | None = None) -> str:
    """A table for the end of a run: (name, value) rows, or rows of any width with a header."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, (list, tuple)) and len(v) > 8:  # the whole list is in the JSON
            return "[" + ", ".join(fmt(u) for u in v[:8]) + f", ... ({len(v)} values)]"
        return str(v)
    cells = [tuple(str(c) if j == 0 else fmt(c) for j, c in enumerate(r)) for r in rows]
    if header:
        cells = [tuple(map(str, header)), *cells]
    ncol = max(len(r) for r in cells) if cells else 2
    cells = [r + ("",) * (ncol - len(r)) for r in cells]
    widths = [max([len(r[j]) for r in cells] + [6]) for j in range(ncol)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def show(r):
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(r, widths)) + "|"
    out = [title] if title else []
    out.append(line)
    if header:
        out += [show(cells[0]), line]
        cells = cells[1:]
    out.extend(show(r) for r in cells)
    out.append(line)
    return "\n".join(out)
