"""Metrics to metrics.jsonl and TensorBoard, progress (a bar, or plain lines), and summary
tables."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np


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
            from tensorboardX import SummaryWriter
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


def terminal_usable(stream=None) -> bool:
    """Whether `stream` (stderr) is a terminal that reports a width: where a redrawn bar
    shows. Under a scheduler, a pipe or a terminal of no size it is not."""
    stream = stream or sys.stderr
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class PlainProgress:
    """Progress as plain lines, at most one every `every` seconds (and one at the end):
    "train: step 1200/8000 (15%), 5.61 ms/step, ETA 0:00:38, loss=2.99". For logs, pipes and
    terminals where a redrawn bar does not show. The same calls as tqdm's that jaxgen uses."""

    EVERY_S = 30.0

    def __init__(self, total: int, initial: int = 0, desc: str = "progress", unit: str = "step",
                 every: float | None = None, file=None):
        self.total, self.n, self.start_n = total, initial, initial
        self.desc, self.unit = desc, unit
        self.every = self.EVERY_S if every is None else every
        self.file = file or sys.stderr
        self.t0 = self.last = time.perf_counter()
        self.first = None  # (time, n) of the first update: the rate leaves out compilation
        self.shown = initial  # n at the last line printed
        self.postfix = ""
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, self.n)
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def set_postfix(self, refresh: bool = False, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def _line(self, now: float, final: bool = False) -> None:
        self.shown = self.n
        done = self.n - self.start_n
        elapsed = now - self.t0
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}{pct}"]
        if done > 0:
            per = elapsed / done
            if self.first is not None and self.n > self.first[1]:
                per = (now - self.first[0]) / (self.n - self.first[1])
            parts.append(f"{per * 1000:.2f} ms/{self.unit}" if per < 1 else
                         f"{per:.2f} s/{self.unit}")
            if not final and self.total:
                parts.append(f"ETA {_clock((self.total - self.n) * per)}")
        parts.append(f"elapsed {_clock(elapsed)}")
        if self.postfix:
            parts.append(self.postfix)
        print(", ".join(parts), file=self.file, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.n > self.shown:  # the last line printed is not already this one
                self._line(time.perf_counter(), final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Disabled:
    def update(self, n=1):
        pass

    def set_postfix(self, refresh=False, **kw):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def progress_bar(total: int, initial: int, enabled: bool, desc: str = "train",
                 unit: str = "step"):
    """A tqdm bar on a usable terminal; else `PlainProgress` lines (at most every 30 s)."""
    if not enabled:
        return _Disabled()
    if not terminal_usable():
        return PlainProgress(total, initial, desc=desc, unit=unit)
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit=unit, desc=desc,
                dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                           "{rate_fmt}{postfix}]")


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
