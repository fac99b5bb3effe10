"""Progress of long steps (data generation, conversion, training): a tqdm bar when stderr is a
terminal, otherwise a line on the PROGRESS logger every INTERVAL seconds, so that a job whose
output goes to a file or a pipe is never silent for minutes.

PROGRESS is the logger of progress lines and step summaries; the gpusnn CLI shows it at INFO
unless -q is given, independently of the -v level of the other loggers.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

from tqdm import tqdm

PROGRESS = logging.getLogger("data_tools.progress")
INTERVAL = 10.0  # seconds between two progress lines when stderr is not a terminal


class LogBar:
    """The part of tqdm's interface gpusnn uses (update, set_postfix, close, iteration), writing
    "desc: n/total unit (p %), s elapsed" to PROGRESS at most every `interval` seconds."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, interval: float = INTERVAL):
        self.iterable = iterable
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.desc, self.unit, self.n, self.interval = desc, unit, initial, interval
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.lines = 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def _line(self, now: float) -> None:
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        PROGRESS.info("%s: %d%s %s%s, %.0f s elapsed%s", self.desc, self.n, of, self.unit, pct,
                      now - self.start, extra)
        self.last = now
        self.lines += 1

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self._line(now)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if self.lines:  # a step long enough to have reported says when it ends
            self._line(time.monotonic())


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, enabled: bool = True, leave: bool = True):
    """A tqdm bar on a terminal, a LogBar elsewhere, a disabled tqdm when enabled is False."""
    if enabled and not sys.stderr.isatty():
        return LogBar(iterable, total, desc, unit, initial)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=not enabled, leave=leave)
