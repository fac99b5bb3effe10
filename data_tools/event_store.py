"""The HDF5 event store: a whole dataset converted once into one file, read per sample or per
batch (random access through the offsets index) without reparsing the event files.

Schema (format attribute "gpusnn-event-store", version 2):

    /events/x, /events/y   int16 [N]    pixel column and row
    /events/p              uint8 [N]    polarity, 1 = ON
    /events/t              int32 [N]    us since the sample's window start (version 1: int64)
                           (resizable, chunked CHUNK events, COMPRESSION; see docs/data.md)
    /samples/offsets       int64 [S+1]  sample i = events[offsets[i]:offsets[i+1]]
    /samples/labels        int64 [S]    class 0..10
    /samples/durations     int64 [S]    window length (us)
    /samples/window_start  int64 [S]    window start in the recording clock (us)
    /samples/users         int64 [S]    subject number
    /samples/lighting      str   [S]    lighting condition
    /samples/train         bool  [S]    True = train split
    /samples/trial         str   [S]    source trial (file) name
    attrs: format, version, sensor_size (W, H, P), counting_rule, source, class_names,
           complete (True, written last)

A store is written trial by trial (:class:`StoreWriter`: memory O(largest trial)) into
``<name>.partial-<pid>`` and renamed to its name only after the complete attribute is set, so a
conversion killed at any moment leaves no store that looks complete; readers refuse a file
without complete = True (version 2) and the next conversion starts again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE, GESTURE_CLASSES
from data_tools.processes import alive
from data_tools.samples import (
    COLUMN_DTYPES,
    FIELDS,
    SampleColumns,
    SampleSet,
    to_columns,
)

log = logging.getLogger(__name__)

FORMAT = "gpusnn-event-store"
VERSION = 2
READABLE_VERSIONS = (1, 2)
CHUNK = 1 << 16                       # events per chunk (chosen by benchmarks/data_bench.py, docs/data.md)
COMPRESSION = None                      # None, "lzf" or "gzip" (level 1, with shuffle); docs/data.md
EVENT_FIELDS = COLUMN_DTYPES
SAMPLE_FIELDS = FIELDS
T_MAX = np.iinfo(np.int32).max
_STR = h5py.string_dtype()


def partial_name(path: Path, pid: int | None = None) -> Path:
    """Where the store at path is written until it is complete."""
    return path.with_name(f"{path.name}.partial-{os.getpid() if pid is None else pid}")


def remove_stale_partials(path) -> int:
    """Delete partial files of path left by processes that no longer run; returns how many."""
    path = Path(path)
    removed = 0
    for p in path.parent.glob(f"{path.name}.partial-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not alive(int(pid)):
            p.unlink(missing_ok=True)
            removed += 1
    return removed




class StoreWriter:
    """Append samples to a new event store, trial by trial; the store appears at path (complete)
    only when :meth:`finish` runs. As a context manager, an exception removes the partial file.

    compression: None, "lzf" or "gzip" (level 1), always with the shuffle filter; chunk: events
    per HDF5 chunk.
    """

    def __init__(self, path, *, sensor_size, counting_rule: str, source: str,
                 compression: str | None = COMPRESSION, chunk: int = CHUNK):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.path)
        self.tmp = partial_name(self.path)
        self._f = h5py.File(self.tmp, "w")
        self._f.attrs.update(format=FORMAT, version=VERSION, sensor_size=np.asarray(sensor_size, np.int64),
                             counting_rule=counting_rule, source=source,
                             class_names=np.asarray(GESTURE_CLASSES, dtype=_STR))
        opts = {"compression": compression, "compression_opts": 1 if compression == "gzip" else None,
                "shuffle": compression is not None}
        g = self._f.create_group("events")
        self._events = {name: g.create_dataset(name, (0,), dtype=dt, maxshape=(None,), chunks=(chunk,), **opts)
                        for name, dt in EVENT_FIELDS.items()}
        self._fields = {k: [] for k in SAMPLE_FIELDS}
        self._lengths: list[np.ndarray] = []
        self.n_events = 0

    def append(self, samples: SampleSet | SampleColumns) -> None:
        """Append the samples (e.g. one trial's) at the end of the store."""
        if isinstance(samples, SampleSet):
            t = samples.events["t"]
            if t.size and (int(t.max()) > T_MAX or int(t.min()) < 0):
                raise DataFormatError(f"{samples.source}: event times re-based to their window must lie in "
                                      f"0..{T_MAX} us, got {int(t.min())}..{int(t.max())}")
            samples = to_columns(samples)
        n0, n1 = self.n_events, self.n_events + samples.n_events
        for name, ds in self._events.items():
            ds.resize((n1,))
            if n1 > n0:
                ds[n0:n1] = np.ascontiguousarray(samples.columns[name], EVENT_FIELDS[name])
        self.n_events = n1
        self._lengths.append(np.asarray(samples.lengths, np.int64))
        for k in SAMPLE_FIELDS:
            self._fields[k].append(np.asarray(samples.fields[k]))

    def finish(self) -> Path:
        """Write the sample index, mark the store complete, close it and move it to path."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        s = self._f.create_group("samples")
        s.create_dataset("offsets", data=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64))
        for k in SAMPLE_FIELDS:
            values = np.concatenate(self._fields[k]) if self._fields[k] else np.zeros(0)
            if k in ("lighting", "trial"):
                s.create_dataset(k, data=np.asarray(values, dtype=object), dtype=_STR)
            else:
                s.create_dataset(k, data=values.astype(bool if k == "train" else np.int64))
        self._f.flush()
        self._f.attrs["complete"] = True            # last: a store without it is incomplete
        self._f.close()
        os.replace(self.tmp, self.path)
        log.info("wrote %d samples (%d events) to %s", lengths.size, self.n_events, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        if self._f.id.valid:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self.abort()


def write_store(path, samples: SampleSet, **options) -> Path:
    """Write samples held in memory to an event store at path (as one append)."""
    with StoreWriter(path, sensor_size=samples.sensor_size, counting_rule=samples.counting_rule,
                     source=samples.source, **options) as w:
        w.append(samples)
        return w.finish()


def is_complete(path) -> bool:
    """True when path is an event store that finished writing."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT and _complete(f)
    except OSError:
        return False


def _complete(f: h5py.File) -> bool:
    return int(f.attrs.get("version", 0)) == 1 or bool(f.attrs.get("complete", False))


class EventStore:
    """Read access to an event store: `with EventStore(path) as s: s.sample(3)`."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataFormatError(f"{path}: not an HDF5 file ({exc})") from exc
        a = self._f.attrs
        if a.get("format") != FORMAT or int(a.get("version", 0)) not in READABLE_VERSIONS:
            self._f.close()
            raise DataFormatError(f"{path}: attribute format is not {FORMAT!r} version {READABLE_VERSIONS}")
        if not _complete(self._f):
            self._f.close()
            raise DataFormatError(f"{path}: incomplete event store (its conversion did not finish); "
                                  "delete it and convert again")
        self.offsets = self._f["samples/offsets"][:]
        self._ev = self._f["events"]
        self.sensor_size = tuple(int(v) for v in a["sensor_size"])
        self.counting_rule = str(a["counting_rule"])
        self.source = str(a["source"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    def _read_into(self, out: np.ndarray, start: int, stop: int) -> None:
        for name in ("x", "y", "p", "t"):
            out[name] = self._ev[name][start:stop]

    def sample(self, i: int) -> np.ndarray:
        """Events of sample i (times re-based to its window start)."""
        out = np.empty(int(self.offsets[i + 1] - self.offsets[i]), EVENT_DTYPE)
        self._read_into(out, int(self.offsets[i]), int(self.offsets[i + 1]))
        return out

    def batch(self, index) -> list[np.ndarray]:
        """Events of the samples at index, one array each."""
        return [self.sample(int(i)) for i in np.asarray(index).ravel()]

    def metadata(self) -> SampleSet:
        """Every sample's fields with no events (offsets all 0): what selecting and hashing need."""
        s = self._f["samples"]
        S = len(self)
        return SampleSet(np.empty(0, EVENT_DTYPE), np.zeros(S + 1, np.int64), s["labels"][:], s["durations"][:],
                         s["window_start"][:], s["users"][:], s["lighting"].asstr()[:].astype(str),
                         s["train"][:].astype(bool), s["trial"].asstr()[:].astype(str), self.sensor_size,
                         self.counting_rule, self.source)

    def columns(self, index) -> tuple[dict, np.ndarray]:
        """Event columns (COLUMN_DTYPES arrays, contiguous) of the samples at index, one after
        another, and their offsets int64 [len(index) + 1]: a batch read without an event array."""
        index = np.asarray(index, np.int64).ravel()
        lengths = self.offsets[index + 1] - self.offsets[index]
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        cols = {}
        for name, dt in EVENT_FIELDS.items():
            ds, out = self._ev[name], np.empty(int(offsets[-1]), dt)
            for k, i in enumerate(index):
                if lengths[k]:
                    ds.read_direct(out, np.s_[int(self.offsets[i]):int(self.offsets[i + 1])],
                                   np.s_[int(offsets[k]):int(offsets[k + 1])])
            cols[name] = out
        return cols, offsets

    def subset(self, index, meta: SampleSet | None = None) -> SampleSet:
        """The samples at index (int array, in that order) with their events, read by random access;
        meta: this store's :meth:`metadata` when the caller keeps it (saves re-reading it)."""
        index = np.asarray(index, np.int64).ravel()
        lengths = self.offsets[index + 1] - self.offsets[index]
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        events = np.empty(int(offsets[-1]), EVENT_DTYPE)
        for k, i in enumerate(index):
            self._read_into(events[offsets[k]:offsets[k + 1]], int(self.offsets[i]), int(self.offsets[i + 1]))
        m = meta if meta is not None else self.metadata()
        return SampleSet(events, offsets, m.labels[index], m.durations[index], m.window_start[index],
                         m.users[index], m.lighting[index], m.train[index], m.trial[index], m.sensor_size,
                         m.counting_rule, m.source)

    def samples(self) -> SampleSet:
        """The whole store as a SampleSet (in memory)."""
        return self.subset(np.arange(len(self)))


def load_store(path) -> SampleSet:
    """All samples of the event store at path."""
    with EventStore(path) as store:
        return store.samples()
