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
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from data_tools.aedat3 import (
    PolarityRecords,
    common_sensor,
    decode_fields,
    read_records,
)
from data_tools.errors import DataFormatError
from data_tools.events import DVS128_SENSOR, GESTURE_CLASSES
from data_tools.progress import progress_bar
from data_tools.samples import COLUMN_DTYPES, SampleColumns, SampleSet, concat_sets
from data_tools.sensors import Sensor

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


def _window_bounds(t: np.ndarray, rows: np.ndarray, path) -> tuple[np.ndarray, np.ndarray]:
    """First and past-the-last event index of each label window in the time-sorted t."""
    if rows.size and t.size:
        outside = (rows["end"] <= t[0]) | (rows["start"] > t[-1])
        if outside.any():
            r = rows[np.argmax(outside)]
            raise DataFormatError(f"{path}: label window [{r['start']}, {r['end']}) of class {r['cls']} lies outside "
                                  f"the recording [{t[0]}, {t[-1]}] us")
    keys = np.concatenate((rows["start"], rows["end"]))
    if keys.size and keys.max() <= np.iinfo(t.dtype).max:
        keys = keys.astype(t.dtype)                       # else searchsorted would cast all of t
    bounds = np.searchsorted(t, keys, "left")
    return bounds[:rows.size], bounds[rows.size:]


def trial_list(root) -> list[tuple[str, bool]]:
    """(trial file name, is_train) of every trial of the split files, train split first."""
    root = Path(root)
    return [(name, is_train) for is_train in (True, False) for name in read_split(root / SPLIT_FILES[is_train])]


def empty_columns(n: int) -> dict:
    """Store columns for n events (COLUMN_DTYPES arrays [n], uninitialised)."""
    return {k: np.empty(n, dt) for k, dt in COLUMN_DTYPES.items()}


def window_columns(events: PolarityRecords, rows: np.ndarray, path,
                   allocate: Callable[[int], dict] = empty_columns) -> tuple[dict, np.ndarray]:
    """Per label row, the events with start <= t < end, re-based to start (t - start), as store
    columns (COLUMN_DTYPES arrays [N] from allocate(N)) and their lengths int64 [R]. Each
    window's bit fields are split straight into its slice of the columns (decode_fields).
    events must be time-sorted; DataFormatError if a window lies outside the recording."""
    t = events.t
    lo, hi = _window_bounds(t, rows, path)
    lengths = (hi - lo).astype(np.int64)
    if lengths.size and int(rows["end"].max() - rows["start"].min()) > np.iinfo(np.int32).max:
        raise DataFormatError(f"{path}: label windows longer than 2^31 us are not supported")
    out = np.concatenate(([0], np.cumsum(lengths)))
    cols = allocate(int(out[-1]))
    for a, b, o, start in zip(lo, hi, out[:-1], rows["start"]):
        end = o + b - a
        decode_fields(events.records[a:b], cols["x"][o:end], cols["y"][o:end], cols["p"][o:end])
        base = t.dtype.type(start) if start <= np.iinfo(t.dtype).max else start   # same-type subtraction
        np.subtract(t[a:b], base, out=cols["t"][o:end], casting="unsafe")
    return cols, lengths


def gesture_sensor(root, sensor=None) -> Sensor:
    """The one sensor of a DVS128 Gesture directory's recordings (their `#Source` lines, or
    sensor, a name in data_tools.sensors.SENSORS, to force one); recordings of different sizes
    are a DataFormatError."""
    root = Path(root)
    return common_sensor([root / name for name, _ in trial_list(root)], sensor)


def read_trial(root, name: str, is_train: bool, *, counting: str = "rows",
               sensor_size: tuple[int, int, int] = DVS128_SENSOR,
               allocate: Callable[[int], dict] = empty_columns) -> SampleColumns:
    """The labelled samples of one trial as store columns (memory: that trial's events);
    sensor_size (W, H, P): the recordings' (gesture_sensor); allocate(n): where the columns of
    the trial's n window events go (e.g. shared memory, see data_tools.convert)."""
    root = Path(root)
    m = TRIAL_NAME.search(name)
    if m is None:
        raise DataFormatError(f"{root / SPLIT_FILES[is_train]}: trial name {name!r} is not userNN_<lighting>.aedat")
    label_path = root / (name[:-len(".aedat")] + "_labels.csv")
    rows = select_rows(parse_labels(label_path), counting)
    cols, lengths = window_columns(read_records(root / name).time_sorted(), rows, label_path, allocate)
    n = rows.size
    fields = {"labels": rows["cls"] - 1, "durations": rows["end"] - rows["start"], "window_start": rows["start"],
              "users": np.full(n, int(m.group(1))), "lighting": np.array([m.group(2)] * n, str),
              "train": np.full(n, is_train), "trial": np.array([name] * n, str)}
    return SampleColumns(cols, lengths, fields, tuple(sensor_size), counting, str(root))


def iter_gesture_dir(root, *, counting: str = "rows", progress: bool = True,
                     sensor=None) -> Iterator[SampleColumns]:
    """The samples of a DVS128 Gesture directory one trial at a time (train split first;
    sensor: as gesture_sensor)."""
    trials = trial_list(root)
    size = gesture_sensor(root, sensor).size
    for name, is_train in progress_bar(trials, desc="reading trials", enabled=progress, unit="trial"):
        yield read_trial(root, name, is_train, counting=counting, sensor_size=size)


def load_gesture_dir(root, *, counting: str = "rows", progress: bool = True, sensor=None) -> SampleSet:
    """All labelled samples of a DVS128 Gesture directory (train split first, then test), in
    memory (sensor: as gesture_sensor); :func:`data_tools.convert.convert` streams a directory
    into a store instead."""
    out = concat_sets([t.to_samples() for t in iter_gesture_dir(root, counting=counting, progress=progress,
                                                               sensor=sensor)],
                      source=str(root), counting_rule=counting, sensor_size=gesture_sensor(root, sensor).size)
    log.info("%s: %d samples (counting rule %r)", root, len(out), counting)
    return out
