"""Summaries of event files (what `gpusnn data inspect` prints)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools.aedat2 import read_aedat2
from data_tools.aedat3 import inspect_aedat3, read_aedat3
from data_tools.aedat4 import read_aedat4
from data_tools.errors import DataFormatError
from data_tools.event_store import EventStore
from data_tools.evt2 import read_evt2, sensor_size


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


def inspect_file(path) -> dict:
    """Format, header fields and event statistics of an AEDAT 2.0/3.1/4.0 file, a Prophesee
    EVT 2.0 RAW file or an event store."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"\x89HDF"):
        with EventStore(path) as store:
            s = store.samples()
        return {"file": str(path), "format": "gpusnn event store", "samples": len(s),
                "train": int(s.train.sum()), "test": int((~s.train).sum()), "sensor_size": list(s.sensor_size),
                "counting_rule": s.counting_rule, "source": s.source,
                "class_counts": np.bincount(s.labels, minlength=11).tolist(), **event_stats(s.events)}
    if head.startswith(b"#!AER-DAT3"):
        return {"file": str(path), **inspect_aedat3(path), **event_stats(read_aedat3(path))}
    if head.startswith(b"#!AER-DAT4"):
        return {"file": str(path), "format": "AEDAT 4.0", **event_stats(read_aedat4(path))}
    if head.startswith(b"% "):
        events, fields = read_evt2(path)
        return {"file": str(path), "format": f"Prophesee RAW EVT {fields.get('evt', '2.0')}", "header": fields,
                "sensor_size": sensor_size(fields), **event_stats(events)}
    if head.startswith(b"#!AER-DAT2"):
        return {"file": str(path), "format": "AEDAT 2.0 (DVS128, doc convention)", **event_stats(read_aedat2(path))}
    if not head:
        raise DataFormatError(f"{path}: empty file (0 bytes), not an event file")
    raise DataFormatError(f"{path}: byte offset 0: unknown event file format (starts {head!r}; expected "
                          f"#!AER-DAT2/3/4, a Prophesee '% ' header or HDF5)")
