"""data_tools.progress: periodic log lines when stderr is not a terminal, a bar when it is."""
from __future__ import annotations

import logging

from tqdm import tqdm

from data_tools import progress
from data_tools.progress import PROGRESS, LogBar, progress_bar


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS.name]


def test_a_line_per_interval_with_count_percentage_and_postfix(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger=PROGRESS.name)
    clock = iter([0.0, 4.0, 11.0, 12.0, 25.0, 30.0])        # start, then one reading per update / close
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = LogBar(total=8, desc="reading trials", unit="trial", interval=10.0)
    bar.update(2)                                             # t = 4: too soon
    bar.set_postfix(loss="0.5")
    bar.update(2)                                             # t = 11: a line
    bar.update(1)                                             # t = 12: too soon after it
    bar.update(3)                                             # t = 25: a line
    bar.close()                                               # t = 30: the closing line
    assert lines(caplog) == ["reading trials: 4/8 trial (50 %), 11 s elapsed, loss 0.5",
                             "reading trials: 8/8 trial (100 %), 25 s elapsed, loss 0.5",
                             "reading trials: 8/8 trial (100 %), 30 s elapsed, loss 0.5"]


def test_a_short_step_stays_silent_and_iteration_counts(caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS.name)
    bar = LogBar(range(5), desc="quick", interval=3600.0)
    assert list(bar) == [0, 1, 2, 3, 4] and bar.n == 5 and bar.total == 5
    bar.close()
    assert lines(caplog) == []


def test_progress_bar_picks_log_lines_off_a_terminal(monkeypatch):
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress_bar(total=3, desc="x"), LogBar)
    off = progress_bar(total=3, desc="x", enabled=False)
    assert isinstance(off, tqdm) and off.disable
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True, raising=False)
    on = progress_bar(total=3, desc="x")
    assert isinstance(on, tqdm) and not on.disable
    on.close()
