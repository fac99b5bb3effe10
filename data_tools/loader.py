"""Batches read from an event store on demand: the trainer's data without the dataset in memory.

A *batch source* is anything with ``n_samples``, ``n_steps``, ``n_inputs`` and
``select(index) -> SpikeTensor`` (the spikes of the samples at index, in that order). Two
implement it: :class:`data_tools.spikes.SpikeTensor` (a split encoded whole, in memory) and
:class:`StoreSplit` (a split of an event store: ``select`` reads those samples' events by
random access through the offsets index and encodes them then, with the same encoder, so
the spike tensors are exactly those of whole-set encoding; ``select = encode(read(index))``,
where ``read`` gives the batch's raw events, a :class:`RawBatch`, which gpusnn's cuda and
emulated backends bin on the device instead). Memory of a StoreSplit is its
index (8 bytes per sample) plus one batch's events and spikes.

The trainer pulls batches through :func:`data_tools.prefetch.prefetch`, so the next batch is
read and encoded in a background thread while the current one trains.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from data_tools.encode import apply_transform, encode_columns, n_inputs
from data_tools.event_store import EVENT_FIELDS, EventStore
from data_tools.samples import SampleSet
from data_tools.spikes import SpikeTensor


class BatchSource(Protocol):
    """What the trainer reads batches from (see the module docstring)."""

    n_samples: int
    n_steps: int
    n_inputs: int

    def select(self, index) -> SpikeTensor: ...


@dataclass(frozen=True)
class RawBatch:
    """A batch's events before encoding: columns x, y, p, t [N] (data_tools.event_store's
    EVENT_FIELDS dtypes; sample k is offsets[k]:offsets[k + 1], t in us re-based to its window),
    offsets int64 [B + 1], durations int64 [B] (us) and the sensor_size (W, H, P)."""

    columns: dict
    offsets: np.ndarray
    durations: np.ndarray
    sensor_size: tuple

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])


@dataclass
class LoaderStats:
    """Seconds spent reading events and encoding them, and the batches and events served."""

    read_s: float = 0.0
    encode_s: float = 0.0
    batches: int = 0
    events: int = 0


@dataclass(eq=False)
class StoreSplit:
    """Samples index (store sample ids, int64 [n]) of the event store at path, encoded on demand
    with n_steps, downsample, binning and mode (see :func:`data_tools.encode.encode`) after an
    optional per-sample transform. Picklable; each process opens the store itself."""

    path: Path
    index: np.ndarray
    n_steps: int
    downsample: int = 4
    binning: str = "duration"
    mode: str = "count"
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    stats: LoaderStats = field(default_factory=LoaderStats)

    def __post_init__(self):
        self.path = Path(self.path)
        self.index = np.asarray(self.index, np.int64)
        self._open_in = None
        self._store = self._meta = None
        with EventStore(self.path) as s:
            self.sensor_size = s.sensor_size
        self.n_inputs = n_inputs(self.sensor_size, self.downsample)

    @property
    def n_samples(self) -> int:
        return int(self.index.size)

    def n_events(self) -> int:
        """Events of the split's samples in the store (before any transform)."""
        offsets = self._opened().offsets
        return int((offsets[self.index + 1] - offsets[self.index]).sum())

    def _opened(self) -> EventStore:
        if self._open_in != os.getpid():           # a forked worker opens its own handle
            self._store = EventStore(self.path)
            self._meta = self._store.metadata()
            self._open_in = os.getpid()
        return self._store

    def samples(self, index) -> SampleSet:
        """Events and fields of the split's samples at index (ints 0..n_samples-1)."""
        store = self._opened()
        return store.subset(self.index[self._check(index)], self._meta)

    def _check(self, index) -> np.ndarray:
        index = np.asarray(index, np.int64).ravel()
        if index.size and (index.min() < 0 or index.max() >= self.n_samples):
            raise IndexError(f"sample index out of range 0..{self.n_samples - 1}")
        return index

    @property
    def encoding(self) -> dict:
        """The encoder's options of this split: downsample, binning and mode."""
        return {"downsample": self.downsample, "binning": self.binning, "mode": self.mode}

    def read(self, index) -> RawBatch:
        """The raw events of the split's samples at index, in that order (after the transform,
        if any): what :meth:`encode` turns into the batch's spike tensor on the host, or a
        device encoder (gpusnn's GpuBackend.encode_batch) on the device."""
        t0 = time.perf_counter()
        if self.transform is not None:
            s = apply_transform(self.samples(index), self.transform)
            raw = RawBatch({name: s.events[name] for name in EVENT_FIELDS}, np.asarray(s.offsets, np.int64),
                           np.asarray(s.durations, np.int64), tuple(s.sensor_size))
        else:
            ids = self.index[self._check(index)]
            cols, offsets = self._opened().columns(ids)
            raw = RawBatch(cols, offsets, np.asarray(self._meta.durations[ids], np.int64), self.sensor_size)
        st = self.stats
        st.read_s += time.perf_counter() - t0
        st.batches += 1
        st.events += raw.n_events
        return raw

    def encode(self, raw: RawBatch) -> SpikeTensor:
        """The spike tensor of a batch read by :meth:`read`, encoded on the host."""
        t0 = time.perf_counter()
        c = raw.columns
        out = encode_columns(c["x"], c["y"], c["p"], c["t"], raw.offsets, raw.durations, raw.sensor_size,
                             self.n_steps, **self.encoding)
        self.stats.encode_s += time.perf_counter() - t0
        return out

    def select(self, index) -> SpikeTensor:
        """Spike tensor of the split's samples at index, in that order: encode(read(index))."""
        return self.encode(self.read(index))

    def view(self, index) -> "StoreSplit":
        """The split's samples at index as a new split (nothing is read)."""
        return StoreSplit(self.path, self.index[np.asarray(index, np.int64)], self.n_steps, self.downsample,
                          self.binning, self.mode, self.transform)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_store=None, _meta=None, _open_in=None)
        return state


PROBE_SAMPLES = 64
PROBE_CHUNK = 8


def spikes_per_step(source: BatchSource, probe: int = PROBE_SAMPLES) -> float:
    """Mean input spikes per sample and step: exact for a SpikeTensor, over the first `probe`
    samples for another source (read PROBE_CHUNK samples at a time, so memory stays below a batch)."""
    if isinstance(source, SpikeTensor):
        return source.n_spikes() / max(source.n_samples * source.n_steps, 1)
    n = min(probe, source.n_samples)
    spikes = sum(source.select(np.arange(a, min(a + PROBE_CHUNK, n))).n_spikes() for a in range(0, n, PROBE_CHUNK))
    return spikes / max(n * source.n_steps, 1)


def take(source: BatchSource, index) -> BatchSource:
    """The samples at index of a batch source, as a batch source of the same kind (a view of a
    StoreSplit, a new tensor of a SpikeTensor)."""
    return source.view(index) if isinstance(source, StoreSplit) else source.select(index)
