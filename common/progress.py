"""Progress of long work: a live tqdm bar on a terminal, a few plain lines anywhere else.

When stderr is not a terminal (CI, nohup, `make demo > log`), carriage-return bars turn into
thousands of lines. There `bar` prints one plain line each time another tenth of the work is done
(unless a line came less than every_s / 10 seconds ago) or `every_s` seconds have passed since the
last line, and the last one when the work ends; inner
bars (the steps of one batch) and bars of a few seconds are not shown at all: callers pass
`live(progress)` to them.
"""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def interactive() -> bool:
    """Whether progress goes to a terminal (a live bar is then worth drawing)."""
    return sys.stderr.isatty()


def live(progress: bool) -> bool:
    """Whether to show a bar that is only worth drawing live: one nested inside another bar's unit of
    work, or one over in seconds."""
    return progress and interactive()


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class LineBar:
    """tqdm's update / set_postfix / close, written as plain lines to `file` (default stderr)."""

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0, every_s: float = 30.0,
                 file=None, clock=time.monotonic):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every_s, self.file, self.clock = every_s, file, clock
        self.start = self.last_time = clock()
        self.start_n, self.last_tenth, self.postfix, self.printed_n = initial, self._tenth(initial), "", None

    def _tenth(self, n: int) -> int:
        return 10 * n // max(self.total, 1)

    def line(self) -> str:
        spent = self.clock() - self.start
        done = self.n - self.start_n
        left = f", ~{_clock(spent / done * (self.total - self.n))} left" if 0 < done and self.n < self.total else ""
        pct = 100 * self.n // max(self.total, 1)
        return f"{self.desc}: {self.n}/{self.total} {self.unit} ({pct}%), {_clock(spent)} elapsed{left}{self.postfix}"

    def _print(self) -> None:
        print(self.line(), file=self.file or sys.stderr, flush=True)
        self.last_time, self.last_tenth, self.printed_n = self.clock(), self._tenth(self.n), self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        gap = self.clock() - self.last_time
        if gap >= self.every_s or (self._tenth(self.n) > self.last_tenth and gap >= self.every_s / 10):
            self._print()

    def set_postfix(self, **values) -> None:
        self.postfix = "".join(f", {k} {v}" for k, v in values.items())

    def close(self) -> None:
        if self.printed_n != self.n and self.n > self.start_n:
            self._print()

    def __enter__(self) -> LineBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, desc: str, unit: str = "it", initial: int = 0, enabled: bool = True):
    """The progress display for `total` units of work: a tqdm bar on a terminal, else a LineBar."""
    if enabled and not interactive():
        return LineBar(total, desc, unit, initial)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not enabled)
