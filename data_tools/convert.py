"""Convert a dataset directory into an event store, one trial at a time.

Memory is O(largest trial) times the trials in flight: a trial is parsed (AEDAT 3.1 records
read, time-sortedness checked, windows cut straight into store columns) while an earlier one is
written. workers = N > 1 parses in N processes that hand each trial's columns back through
shared memory (:mod:`data_tools.trial_workers`: N + 1 trials in flight, results in trial order,
no pickled event arrays); workers = 1 parses in a background thread (:mod:`data_tools.prefetch`,
one trial ahead); workers = 0 parses and writes in turn. WORKERS (the default) was chosen by
measurement (benchmarks/data_bench.py convert, docs/data.md). The store appears under its name
only when complete (:mod:`data_tools.event_store`); the result does not depend on workers.
"""
from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from data_tools import trial_workers
from data_tools.errors import ConfigError
from data_tools.event_store import CHUNK, COMPRESSION, StoreWriter
from data_tools.events import DVS128_SENSOR
from data_tools.gesture_layout import (
    SPLIT_FILES,
    gesture_sensor,
    iter_gesture_dir,
    trial_list,
)
from data_tools.prefetch import prefetch
from data_tools.progress import progress_bar
from data_tools.samples import SampleColumns
from data_tools.tonic_layout import is_tonic_dir, iter_tonic_dir

log = logging.getLogger(__name__)

#: Default parse workers (processes when > 1; see the module docstring and docs/data.md).
WORKERS = 2

Feed = Callable[[Callable], None]


def _from(parts: Iterable) -> Feed:
    """A feed that hands each item of parts to consume in turn."""
    def feed(consume: Callable) -> None:
        for part in parts:
            consume(part)
    return feed


def _gesture_feed(src: Path, counting: str, workers: int, progress: bool, sensor, size) -> Feed:
    """How the trials of a DVS128 Gesture directory reach the writer for a workers value."""
    if workers > 1 and not trial_workers.available(src, workers):
        log.info("no fork, /dev/shm or room in it here: parsing in a thread instead of %d processes", workers)
        workers = 1
    if workers <= 1:
        return _from(prefetch(iter_gesture_dir(src, counting=counting, progress=progress, sensor=sensor), workers))

    def feed(consume: Callable) -> None:
        bar = progress_bar(total=len(trial_list(src)), desc="reading trials", enabled=progress, unit="trial")
        try:
            trial_workers.each_trial(src, consume, workers=workers, counting=counting, sensor_size=size,
                                     progress=lambda: bar.update(1))
        finally:
            bar.close()
    return feed


def convert(src, dst, *, counting: str = "rows", compression: str | None = COMPRESSION, chunk: int = CHUNK,
            workers: int = WORKERS, progress: bool = True, sensor=None) -> dict:
    """Convert the DVS128 Gesture directory (or tonic DVSGesture directory) src into the event
    store dst; returns counts, bytes, wall and CPU seconds (this process and its workers).
    sensor: force the chip of a gesture directory's recordings (see gesture_sensor)."""
    src = Path(src)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    if (src / SPLIT_FILES[True]).exists():
        rule, size = counting, gesture_sensor(src, sensor).size
        feed = _gesture_feed(src, counting, workers, progress, sensor, size)
    elif src.is_dir() and is_tonic_dir(src):
        rule, size = "one per file", DVS128_SENSOR
        feed = _from(prefetch(iter_tonic_dir(src, progress=progress), min(workers, 1)))
    else:
        raise ConfigError(f"{src}: not a DVS128 Gesture directory (with {SPLIT_FILES[True]}) "
                          f"or a tonic DVSGesture directory")
    counts = {"samples": 0, "train": 0}
    with StoreWriter(dst, sensor_size=size, counting_rule=rule, source=str(src),
                     compression=compression, chunk=chunk) as w:
        def append(part) -> None:
            w.append(part)
            counts["samples"] += len(part)
            counts["train"] += int(part.fields["train"].sum()) if isinstance(part, SampleColumns) \
                else int(part.train.sum())
        feed(append)
        w.finish()
    n_samples, n_train = counts["samples"], counts["train"]
    out = {"src": str(src), "dst": str(dst), "samples": n_samples, "train": n_train, "test": n_samples - n_train,
           "events": w.n_events, "counting_rule": rule, "compression": compression, "chunk": chunk,
           "workers": workers, "bytes": Path(dst).stat().st_size, "seconds": round(time.perf_counter() - t0, 3),
           "cpu_seconds": round(_cpu_seconds() - cpu0, 3)}
    log.info("converted %(src)s: %(samples)d samples, %(events)d events in %(seconds)s s", out)
    return out


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
