"""Convert a dataset directory into an event store, one trial at a time.

Memory is O(largest trial) times the trials in flight: a trial is parsed (AEDAT 3.1 read, time
sort, windows cut into store columns) while the previous one is written. workers = 1 (default)
parses in a background thread (:mod:`data_tools.prefetch`, one trial ahead); workers = N > 1
parses in N processes (N + 1 trials ahead, results in trial order); workers = 0 parses and
writes in turn. The store appears under its name only when complete
(:mod:`data_tools.event_store`); the result does not depend on workers.
"""
from __future__ import annotations

import logging
import resource
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from data_tools.errors import ConfigError
from data_tools.event_store import CHUNK, COMPRESSION, StoreWriter
from data_tools.events import DVS128_SENSOR
from data_tools.gesture_layout import SPLIT_FILES, gesture_sensor, iter_gesture_dir, read_trial, trial_list
from data_tools.prefetch import prefetch
from data_tools.samples import SampleColumns
from data_tools.tonic_layout import is_tonic_dir, iter_tonic_dir

log = logging.getLogger(__name__)


def _in_processes(root: Path, counting: str, workers: int, progress: bool, sensor_size) -> Iterator[SampleColumns]:
    """The trials of root parsed by a pool of workers processes, in trial order."""
    from tqdm import tqdm
    trials = trial_list(root)
    with ProcessPoolExecutor(workers) as pool, tqdm(total=len(trials), desc="reading trials",
                                                   disable=not progress, unit="trial") as bar:
        pending: deque = deque()
        for name, is_train in trials:
            pending.append(pool.submit(read_trial, root, name, is_train, counting=counting, sensor_size=sensor_size))
            if len(pending) > workers:
                yield pending.popleft().result()
                bar.update(1)
        while pending:
            yield pending.popleft().result()
            bar.update(1)


def convert(src, dst, *, counting: str = "rows", compression: str | None = COMPRESSION, chunk: int = CHUNK,
            workers: int = 1, progress: bool = True, sensor=None) -> dict:
    """Convert the DVS128 Gesture directory (or tonic DVSGesture directory) src into the event
    store dst; returns counts, bytes, wall and CPU seconds (this process and its workers).
    sensor: force the chip of a gesture directory's recordings (see gesture_sensor)."""
    src = Path(src)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    size = DVS128_SENSOR
    if (src / SPLIT_FILES[True]).exists():
        rule, size = counting, gesture_sensor(src, sensor).size
        if workers > 1:
            trials = _in_processes(src, counting, workers, progress, size)
        else:
            trials = prefetch(iter_gesture_dir(src, counting=counting, progress=progress, sensor=sensor),
                              min(workers, 1))
    elif src.is_dir() and is_tonic_dir(src):
        trials, rule = prefetch(iter_tonic_dir(src, progress=progress), min(workers, 1)), "one per file"
    else:
        raise ConfigError(f"{src}: not a DVS128 Gesture directory (with {SPLIT_FILES[True]}) "
                          f"or a tonic DVSGesture directory")
    n_samples = n_train = 0
    with StoreWriter(dst, sensor_size=size, counting_rule=rule, source=str(src),
                     compression=compression, chunk=chunk) as w:
        for part in trials:
            w.append(part)
            n_samples += len(part)
            n_train += int(part.fields["train"].sum()) if isinstance(part, SampleColumns) else int(part.train.sum())
        w.finish()
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
