"""The original DVS128 Gesture layout: `userNN_<lighting>.aedat` (AEDAT 3.1), their
`userNN_<lighting>_labels.csv` (class,startTime_usec,endTime_usec; classes 1..11, times in the
recording's microsecond clock) and the split files trials_to_train.txt / trials_to_test.txt.

Counting rule (how many samples a trial gives), an option of :func:`load_gesture_dir`:

- "rows" (default): one sample per label row, so a class that appears twice in a trial gives
  two samples (SpikingJelly-like, 1464 on the original release);
- "first": one sample per class and trial, the first row of that class in time
  (tonic-like, one file per class).

A sample holds the events with start <= t < end, re-based to start (t - start). Windows may
overlap; an event in two windows belongs to both samples.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_tools.aedat3 import read_aedat3
from data_tools.errors import DataFormatError
from data_tools.events import DVS128_SENSOR, GESTURE_CLASSES, sort_by_time
from data_tools.samples import SampleSet, concat_sets, from_samples

log = logging.getLogger(__name__)

LABEL_HEADER = ("class", "startTime_usec", "endTime_usec")
LABEL_DTYPE = np.dtype([("cls", np.int64), ("start", np.int64), ("end", np.int64)])
SPLIT_FILES = {True: "trials_to_train.txt", False: "trials_to_test.txt"}
TRIAL_NAME = re.compile(r"user(\d+)_(.+)\.aedat$")
COUNTING_RULES = ("rows", "first")


def parse_labels(path) -> np.ndarray:
    """Rows of a `_labels.csv` file in file order: LABEL_DTYPE [R] (cls 1..11, start < end, us).
    DataFormatError naming the byte offset of a bad header, row, class or window."""
    raw = Path(path).read_bytes()
    rows, offset = [], 0
    for i, line in enumerate(raw.split(b"\n")):
        here, offset = offset, offset + len(line) + 1
        cells = [c.strip() for c in line.decode("latin-1").strip().split(",")]
        if i == 0:
            if tuple(cells) != LABEL_HEADER:
                raise DataFormatError(f"{path}: byte offset 0: expected header {','.join(LABEL_HEADER)}, "
                                      f"found {line.decode('latin-1').strip()!r}")
            continue
        if cells == [""]:
            continue
        try:
            if len(cells) != 3:
                raise ValueError
            cls, start, end = (int(c) for c in cells)
        except ValueError:
            raise DataFormatError(f"{path}: byte offset {here}: expected 3 integer columns "
                                  f"class,startTime_usec,endTime_usec, found {line.decode('latin-1').strip()!r}") from None
        if not 1 <= cls <= len(GESTURE_CLASSES) or not 0 <= start < end:
            raise DataFormatError(f"{path}: byte offset {here}: bad row (class {cls} must be 1..{len(GESTURE_CLASSES)}, "
                                  f"window [{start}, {end}) must have 0 <= start < end)")
        rows.append((cls, start, end))
    return np.array(rows, LABEL_DTYPE)


def read_split(path) -> list[str]:
    """Trial file names listed in a split file (blank lines ignored)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def select_rows(labels: np.ndarray, counting: str) -> np.ndarray:
    """The label rows that become samples under a counting rule, in time order."""
    if counting not in COUNTING_RULES:
        raise ValueError(f"counting rule must be one of {COUNTING_RULES}, got {counting!r}")
    rows = labels[np.argsort(labels["start"], kind="stable")]
    if counting == "first":
        _, first = np.unique(rows["cls"], return_index=True)
        rows = rows[np.sort(first)]
    return rows


def cut_windows(events: np.ndarray, rows: np.ndarray, path) -> list[np.ndarray]:
    """Per label row, the events with start <= t < end re-based to start. events must be
    time-sorted; DataFormatError if a window lies outside the recording."""
    t = events["t"]
    if rows.size and t.size:
        outside = (rows["end"] <= t[0]) | (rows["start"] > t[-1])
        if outside.any():
            r = rows[np.argmax(outside)]
            raise DataFormatError(f"{path}: label window [{r['start']}, {r['end']}) of class {r['cls']} lies outside "
                                  f"the recording [{t[0]}, {t[-1]}] us")
    lo = np.searchsorted(t, rows["start"], "left")
    hi = np.searchsorted(t, rows["end"], "left")
    out = []
    for a, b, s in zip(lo, hi, rows["start"]):
        part = events[a:b].copy()
        part["t"] -= s
        out.append(part)
    return out


def trial_list(root) -> list[tuple[str, bool]]:
    """(trial file name, is_train) of every trial of the split files, train split first."""
    root = Path(root)
    return [(name, is_train) for is_train in (True, False) for name in read_split(root / SPLIT_FILES[is_train])]


def read_trial(root, name: str, is_train: bool, *, counting: str = "rows") -> SampleSet:
    """The labelled samples of one trial (memory: that trial's events and its windows)."""
    root = Path(root)
    m = TRIAL_NAME.search(name)
    if m is None:
        raise DataFormatError(f"{root / SPLIT_FILES[is_train]}: trial name {name!r} is not userNN_<lighting>.aedat")
    label_path = root / (name[:-len(".aedat")] + "_labels.csv")
    rows = select_rows(parse_labels(label_path), counting)
    windows = cut_windows(sort_by_time(read_aedat3(root / name)), rows, label_path)
    n = rows.size
    return from_samples(windows, labels=rows["cls"] - 1, durations=rows["end"] - rows["start"],
                        window_start=rows["start"], users=[int(m.group(1))] * n, lighting=[m.group(2)] * n,
                        train=[is_train] * n, trial=[name] * n, sensor_size=DVS128_SENSOR, counting_rule=counting,
                        source=str(root))


def iter_gesture_dir(root, *, counting: str = "rows", progress: bool = True) -> Iterator[SampleSet]:
    """The samples of a DVS128 Gesture directory one trial at a time (train split first)."""
    trials = trial_list(root)
    for name, is_train in tqdm(trials, desc="reading trials", disable=not progress, unit="trial"):
        yield read_trial(root, name, is_train, counting=counting)


def load_gesture_dir(root, *, counting: str = "rows", progress: bool = True) -> SampleSet:
    """All labelled samples of a DVS128 Gesture directory (train split first, then test), in
    memory; :func:`data_tools.convert.convert` streams a directory into a store instead."""
    out = concat_sets(list(iter_gesture_dir(root, counting=counting, progress=progress)), source=str(root),
                      counting_rule=counting, sensor_size=DVS128_SENSOR)
    log.info("%s: %d samples (counting rule %r)", root, len(out), counting)
    return out
