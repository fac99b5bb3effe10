"""Summaries of event files (what `gpusnn data inspect` prints).

The format comes from the file's signature or header; a file without a recognised one is
refused unless the caller names the format (``format="aedat2"`` etc.; CLI ``--format``).
Every summary has plausibility counts (timestamps going backwards, events outside the
sensor, for AEDAT 2.0 also addresses with bits the chip never sets); when one is not zero,
a line is added to ``warnings`` and logged.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from data_tools.aedat2 import decode_aedat2
from data_tools.aedat3 import inspect_aedat3, read_aedat3
from data_tools.aedat4 import decode_aedat4
from data_tools.errors import DataFormatError
from data_tools.event_store import EventStore
from data_tools.evt2 import encoding, read_evt2, read_header, sensor_size
from data_tools.evt3 import read_evt3

log = logging.getLogger(__name__)

#: Formats a caller may name (for files whose header does not say).
FORMATS = ("aedat2", "aedat3", "aedat4", "evt2", "evt3")
_SIGNATURES = ((b"\x89HDF", "store"), (b"#!AER-DAT3", "aedat3"), (b"#!AER-DAT4", "aedat4"),
               (b"#!AER-DAT2", "aedat2"))


def event_stats(events: np.ndarray) -> dict:
    """Number of events, duration (s), rate (events/s), x/y ranges and ON fraction."""
    n = int(events.size)
    if n == 0:
        return {"events": 0}
    t = events["t"]
    duration = (int(t.max()) - int(t.min())) * 1e-6
    return {"events": n, "t_first_us": int(t.min()), "t_last_us": int(t.max()), "duration_s": duration,
            "event_rate_per_s": n / duration if duration > 0 else None,
            "x_range": [int(events["x"].min()), int(events["x"].max())],
            "y_range": [int(events["y"].min()), int(events["y"].max())],
            "p_values": sorted(int(v) for v in np.unique(events["p"])), "on_fraction": float(events["p"].mean())}


def plausibility(events: np.ndarray, size) -> dict:
    """timestamps_backwards: events with t below the previous event's; outside_sensor: events
    with x >= W or y >= H (or negative) for size (W, H, P), None when the size is unknown."""
    t = events["t"]
    out = {"timestamps_backwards": int(np.count_nonzero(t[1:] < t[:-1]))}
    if size is not None:
        x, y = events["x"], events["y"]
        out["outside_sensor"] = int(np.count_nonzero((x < 0) | (y < 0) | (x >= size[0]) | (y >= size[1])))
    return out


def detect(path: Path, head: bytes) -> str | None:
    """The format of a file from its first bytes (and, for `% ` headers, the encoding they
    name), else None."""
    for sig, name in _SIGNATURES:
        if head.startswith(sig):
            return name
    if head.startswith(b"% "):
        with path.open("rb") as f:
            fields, _ = read_header(f.read(1 << 20), path)
        return {"2.0": "evt2", "3.0": "evt3"}.get(encoding(fields) or "")
    return None


def _aedat2(path, sensor, headerless: bool) -> dict:
    rec = decode_aedat2(path, sensor=sensor, headerless=headerless)
    return {"format": f"AEDAT 2.0 ({rec.sensor.name}, {'headerless' if rec.header is None else 'header'})",
            "header": rec.header.fields if rec.header is not None else None, "sensor": rec.sensor.name,
            "sensor_size": list(rec.sensor.size), "convention": asdict(rec.convention),
            "records": rec.counts, "unused_bits": rec.unused_bits, "outside_sensor_dropped": rec.outside_sensor,
            **event_stats(rec.events), **plausibility(rec.events, rec.sensor.size)}


def _evt(path, fmt: str, forced: bool) -> dict:
    events, fields = (read_evt2 if fmt == "evt2" else read_evt3)(path, encoding=fmt if forced else None)
    size = sensor_size(fields)
    return {"format": f"Prophesee RAW EVT {encoding(fields) or fmt[-1] + '.0'}", "header": fields,
            "sensor_size": list(size) if size else None, **event_stats(events), **plausibility(events, size)}


def _store(path) -> dict:
    with EventStore(path) as store:
        s = store.samples()
    return {"format": "gpusnn event store", "samples": len(s), "train": int(s.train.sum()),
            "test": int((~s.train).sum()), "sensor_size": list(s.sensor_size), "counting_rule": s.counting_rule,
            "source": s.source, "class_counts": np.bincount(s.labels, minlength=11).tolist(),
            **event_stats(s.events)}


def _aedat3(path, sensor) -> dict:
    info = inspect_aedat3(path, sensor)
    events = read_aedat3(path)
    return {**info, **event_stats(events), **plausibility(events, info["sensor_size"])}


def _aedat4(path) -> dict:
    rec = decode_aedat4(path)
    return {"format": "AEDAT 4.0", "sensor_size": list(rec.sensor_size), "skipped_records": rec.skipped,
            **event_stats(rec.events), **plausibility(rec.events, rec.sensor_size)}


def warnings_for(info: dict) -> list[str]:
    """A warning per non-zero plausibility count of a summary."""
    texts = {"timestamps_backwards": "events with a timestamp before the previous event's",
             "outside_sensor": "events outside the sensor",
             "outside_sensor_dropped": "DVS records outside the sensor (dropped)",
             "unused_bits": "addresses with bits the chip never sets"}
    return [f"{info[k]} {v}" for k, v in texts.items() if info.get(k)]


def inspect_file(path, *, format: str | None = None, sensor=None) -> dict:
    """Format, header fields, event statistics and plausibility counts of an AEDAT 2.0/3.1/4.0
    file, a Prophesee EVT 2.0/3.0 RAW file or an event store.

    format: one of FORMATS, for a file whose header does not name it (headerless AEDAT 2.0,
    RAW without an `evt` line); sensor: a name in data_tools.sensors.SENSORS overriding the
    chip the header names (AEDAT 2.0 / 3.1).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise DataFormatError(f"{path}: byte offset 0: empty file")
    if format is not None and format not in FORMATS:
        raise DataFormatError(f"{path}: unknown format {format!r}: expected one of {', '.join(FORMATS)}")
    found = detect(path, head)
    fmt = format or found
    if fmt is None:
        raise DataFormatError(f"{path}: byte offset 0: no recognised header (starts {head!r}); name the format "
                              f"(format=...; CLI: --format {'|'.join(FORMATS)})")
    if fmt == "store":
        info = _store(path)
    elif fmt == "aedat2":
        info = _aedat2(path, sensor, headerless=found is None)
    elif fmt == "aedat3":
        info = _aedat3(path, sensor)
    elif fmt == "aedat4":
        info = _aedat4(path)
    else:
        info = _evt(path, fmt, forced=format is not None)
    info = {"file": str(path), **info}
    info["warnings"] = warnings_for(info)
    for w in info["warnings"]:
        log.warning("%s: %s", path, w)
    return info
