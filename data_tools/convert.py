"""Convert a dataset directory into an event store, one trial at a time.

Memory is O(largest trial): a trial is parsed (AEDAT 3.1 read, time sort, windows cut) in a
background thread while the previous one is written, through a queue one trial deep (see
:mod:`data_tools.prefetch`), so peak memory holds about three trials. The store appears under
its name only when complete (see :mod:`data_tools.event_store`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from data_tools.errors import ConfigError
from data_tools.event_store import COMPRESSION, CHUNK, StoreWriter
from data_tools.events import DVS128_SENSOR
from data_tools.gesture_layout import SPLIT_FILES, iter_gesture_dir
from data_tools.prefetch import prefetch
from data_tools.tonic_layout import is_tonic_dir, iter_tonic_dir

log = logging.getLogger(__name__)


def convert(src, dst, *, counting: str = "rows", compression: str | None = COMPRESSION, chunk: int = CHUNK,
            threaded: bool = True, progress: bool = True) -> dict:
    """Convert the DVS128 Gesture directory (or tonic DVSGesture directory) src into the event
    store dst; returns counts and the seconds it took. threaded=False parses and writes in turn."""
    src = Path(src)
    t0 = time.perf_counter()
    if (src / SPLIT_FILES[True]).exists():
        trials, rule = iter_gesture_dir(src, counting=counting, progress=progress), counting
    elif src.is_dir() and is_tonic_dir(src):
        trials, rule = iter_tonic_dir(src, progress=progress), "one per file"
    else:
        raise ConfigError(f"{src}: not a DVS128 Gesture directory (with {SPLIT_FILES[True]}) "
                          f"or a tonic DVSGesture directory")
    n_samples = n_train = 0
    with StoreWriter(dst, sensor_size=DVS128_SENSOR, counting_rule=rule, source=str(src),
                     compression=compression, chunk=chunk) as w:
        for part in prefetch(trials, 1 if threaded else 0):
            w.append(part)
            n_samples += len(part)
            n_train += int(part.train.sum())
        w.finish()
    out = {"src": str(src), "dst": str(dst), "samples": n_samples, "train": n_train, "test": n_samples - n_train,
           "events": w.n_events, "counting_rule": rule, "compression": compression, "chunk": chunk,
           "bytes": Path(dst).stat().st_size, "seconds": round(time.perf_counter() - t0, 3)}
    log.info("converted %(src)s: %(samples)d samples, %(events)d events in %(seconds)s s", out)
    return out
