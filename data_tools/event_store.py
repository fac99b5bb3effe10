"""The HDF5 event store: a whole dataset converted once into one file, loaded per sample or
per batch without reparsing the event files.

Schema (format attribute "gpusnn-event-store", version 1):

    /events/x, /events/y   int16 [N]    pixel column and row
    /events/p              uint8 [N]    polarity, 1 = ON
    /events/t              int64 [N]    us since the sample's window start
                           (chunked, gzip level 1 + shuffle)
    /samples/offsets       int64 [S+1]  sample i = events[offsets[i]:offsets[i+1]]
    /samples/labels        int64 [S]    class 0..10
    /samples/durations     int64 [S]    window length (us)
    /samples/window_start  int64 [S]    window start in the recording clock (us)
    /samples/users         int64 [S]    subject number
    /samples/lighting      str   [S]    lighting condition
    /samples/train         bool  [S]    True = train split
    /samples/trial         str   [S]    source trial (file) name
    attrs: format, version, sensor_size (W, H, P), counting_rule, source, class_names
"""
from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE, GESTURE_CLASSES
from data_tools.samples import SampleSet

log = logging.getLogger(__name__)

FORMAT = "gpusnn-event-store"
VERSION = 1
CHUNK = 1 << 16
_STR = h5py.string_dtype()


def write_store(path, samples: SampleSet) -> None:
    """Write samples to an HDF5 event store at path (atomically: tmp file then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    ev = samples.events
    with h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, version=VERSION, sensor_size=np.asarray(samples.sensor_size, np.int64),
                       counting_rule=samples.counting_rule, source=samples.source,
                       class_names=np.asarray(GESTURE_CLASSES, dtype=_STR))
        g = f.create_group("events")
        for name, data in (("x", ev["x"]), ("y", ev["y"]), ("p", ev["p"].astype(np.uint8)), ("t", ev["t"])):
            g.create_dataset(name, data=data, chunks=(min(CHUNK, max(1, data.size)),), compression="gzip",
                             compression_opts=1, shuffle=True)
        s = f.create_group("samples")
        for name in ("offsets", "labels", "durations", "window_start", "users", "train"):
            s.create_dataset(name, data=getattr(samples, name))
        for name in ("lighting", "trial"):
            s.create_dataset(name, data=np.asarray(getattr(samples, name), dtype=object), dtype=_STR)
    tmp.replace(path)
    log.info("wrote %d samples (%d events) to %s", len(samples), ev.size, path)


class EventStore:
    """Read access to an event store: `with EventStore(path) as s: s.sample(3)`."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataFormatError(f"{path}: not an HDF5 file ({exc})") from exc
        if self._f.attrs.get("format") != FORMAT:
            self._f.close()
            raise DataFormatError(f"{path}: attribute format is not {FORMAT!r}")
        self.offsets = self._f["samples/offsets"][:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()

    def __len__(self) -> int:
        return self.offsets.size - 1

    def _events(self, start: int, stop: int) -> np.ndarray:
        g = self._f["events"]
        out = np.empty(stop - start, EVENT_DTYPE)
        for name in ("x", "y", "p", "t"):
            out[name] = g[name][start:stop]
        return out

    def sample(self, i: int) -> np.ndarray:
        """Events of sample i (times re-based to its window start)."""
        return self._events(int(self.offsets[i]), int(self.offsets[i + 1]))

    def batch(self, index) -> list[np.ndarray]:
        """Events of the samples at index, one array each."""
        return [self.sample(int(i)) for i in np.asarray(index).ravel()]

    def samples(self) -> SampleSet:
        """The whole store as a SampleSet."""
        s = self._f["samples"]
        a = self._f.attrs
        return SampleSet(self._events(0, int(self.offsets[-1])), self.offsets, s["labels"][:], s["durations"][:],
                         s["window_start"][:], s["users"][:], s["lighting"].asstr()[:].astype(str),
                         s["train"][:].astype(bool), s["trial"].asstr()[:].astype(str),
                         tuple(int(v) for v in a["sensor_size"]), str(a["counting_rule"]), str(a["source"]))


def load_store(path) -> SampleSet:
    """All samples of the event store at path."""
    with EventStore(path) as store:
        return store.samples()
