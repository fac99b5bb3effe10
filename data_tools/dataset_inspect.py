"""`gpusnn data inspect DIR`: what a DVS128 Gesture directory holds and what converting it costs.

Reads the split and label files, then every recording once (one trial in memory at a time,
the next read in a background thread) to count the events of each label window. Reports
trials, users and lighting tags per split; samples per split under both counting rules;
events per sample (min / median / max) and window durations under the chosen rule; the
recordings' bytes, events and duration; and the conversion's estimated cost: store bytes
(STORE_BYTES_PER_EVENT per window event for each compression, measured on the real-size
synthetic set, docs/data.md, plus at most one partly filled chunk per field) and time (this inspection's own read time, which conversion
repeats, plus writing the window events at WRITE_EVENTS_PER_S).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from data_tools.aedat3 import read_aedat3
from data_tools.errors import DataFormatError
from data_tools.event_store import CHUNK, COMPRESSION
from data_tools.events import sort_by_time
from data_tools.gesture_layout import COUNTING_RULES, SPLIT_FILES, TRIAL_NAME, parse_labels, select_rows, trial_list
from data_tools.prefetch import prefetch
from data_tools.samples import COLUMN_DTYPES

#: store bytes per stored event by compression (benchmarks/results/data-store-options.json)
STORE_BYTES_PER_EVENT = {"none": 9.02, "lzf": 3.78, "gzip": 2.91}
#: events per second the store writer takes without compression (same benchmark, median)
WRITE_EVENTS_PER_S = 35e6


def _spread(values) -> dict:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def inspect_dataset(root, *, counting: str = "rows", progress: bool = False) -> dict:
    """Summary of the DVS128 Gesture directory root (see the module docstring), JSON-able."""
    root = Path(root)
    if not (root / SPLIT_FILES[True]).exists():
        raise DataFormatError(f"{root}: not a DVS128 Gesture directory (no {SPLIT_FILES[True]})")
    if counting not in COUNTING_RULES:
        raise DataFormatError(f"counting rule must be one of {COUNTING_RULES}, got {counting!r}")
    trials = trial_list(root)
    per_split = {split: {"trials": 0, "users": set(), "lighting": set(), **{f"samples_{c}": 0 for c in COUNTING_RULES}}
                 for split in ("train", "test")}
    chosen = []
    for name, is_train in trials:
        m = TRIAL_NAME.search(name)
        if m is None:
            raise DataFormatError(f"{root / SPLIT_FILES[is_train]}: trial name {name!r} is not userNN_<lighting>.aedat")
        d = per_split["train" if is_train else "test"]
        d["trials"] += 1
        d["users"].add(int(m.group(1)))
        d["lighting"].add(m.group(2))
        labels = parse_labels(root / (name[:-len(".aedat")] + "_labels.csv"))
        for c in COUNTING_RULES:
            d[f"samples_{c}"] += select_rows(labels, c).size
        chosen.append(select_rows(labels, counting))

    def counts():
        for (name, _), rows in zip(trials, chosen):
            t = sort_by_time(read_aedat3(root / name))["t"]
            lo, hi = np.searchsorted(t, rows["start"]), np.searchsorted(t, rows["end"])
            yield t.size, (int(t[-1] - t[0]) if t.size else 0), hi - lo

    t0 = time.perf_counter()
    n_file_events, recorded_us, per_sample = 0, 0, []
    for n, dur, windows in prefetch(counts(), 1):
        n_file_events += n
        recorded_us += dur
        per_sample.append(windows)
    read_s = time.perf_counter() - t0
    per_sample = np.concatenate(per_sample) if per_sample else np.zeros(0, np.int64)
    window_events = int(per_sample.sum())
    durations = np.concatenate([r["end"] - r["start"] for r in chosen]) if chosen else np.zeros(0)
    file_bytes = sum((root / n).stat().st_size for n, _ in trials)
    last_chunk = CHUNK * sum(np.dtype(d).itemsize for d in COLUMN_DTYPES.values())   # at most one per field
    estimate = {f"store_bytes_{k}": int(window_events * b + last_chunk) for k, b in STORE_BYTES_PER_EVENT.items()}
    estimate.update(default_compression=COMPRESSION or "none",
                    seconds=round(read_s + window_events / WRITE_EVENTS_PER_S, 1),
                    basis="this inspection's read time plus writing the window events at "
                          f"{WRITE_EVENTS_PER_S / 1e6:.0f} M events/s; bytes per event measured (docs/data.md)")
    splits = {k: {**v, "users": sorted(v["users"]), "lighting": sorted(v["lighting"])} for k, v in per_split.items()}
    return {"dir": str(root), "format": "DVS128 Gesture (AEDAT 3.1 + labels + split files)", "counting_rule": counting,
            "trials": len(trials), "splits": splits, "samples": int(per_sample.size),
            "events_per_sample": _spread(per_sample), "sample_duration_s": _spread(durations * 1e-6),
            "file_bytes": int(file_bytes), "file_events": int(n_file_events),
            "recorded_duration_s": round(recorded_us * 1e-6, 1), "window_events": window_events,
            "read_seconds": round(read_s, 2), "conversion_estimate": estimate}
