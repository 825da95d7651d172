"""Progress on stderr with an ETA: a tqdm bar on a terminal, plain lines elsewhere (logs,
pipes, schedulers). Every long loop of jaxgen shows one (training, evaluation, sampling for
FID, `jaxgen prepare`)."""

from __future__ import annotations

import os
import sys
import time


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
                 unit: str = "step", every: float | None = None):
    """A tqdm bar on a usable terminal; else `PlainProgress` lines (at most one every
    `every` seconds, default 30)."""
    if not enabled:
        return _Disabled()
    if not terminal_usable():
        return PlainProgress(total, initial, desc=desc, unit=unit, every=every)
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit=unit, desc=desc,
                dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                           "{rate_fmt}{postfix}]")
