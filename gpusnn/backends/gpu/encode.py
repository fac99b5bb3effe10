"""Wrapper of kernels/encode.cu: decoded events -> spike tensor on the device, per batch.

The device twin of data_tools.encode.encode (same convention, same tensor: tested equal,
emulated). Two ways in:

- ``encode_batch(rt, events, offsets, durations, n_steps, ...)``: one batch's events (host
  arrays, as the loader hands them over) go to the device and are binned there;
- ``upload_events(rt, events, offsets, durations, sensor_size)`` once per run (or per chunk
  of samples, joined by ``concat_events``), then
  ``encode_samples(rt, store, samples, n_steps, ...)`` per batch: only the B sample indices
  go to the device, the events never move again.

Either returns the batch in the static form the forward and gradient kernels read as it is,
with no device-to-host read (no synchronisation):

- binary mode: a SpikeGrid (the occupancy grid bin_events fills; no compaction at all);
- count mode: PaddedSpikes, the coalesced CSR list (one entry per (sample, step, id) with its
  number of events in counts) compacted on the device into arrays of a capacity known on the
  host, min(the batch's events, B * T * n_inputs) (each event makes at most one entry); the
  entries past indptr[-1] are padding.

``.to(np)`` of either gives the SpikeTensor data_tools.encode.encode makes (tested equal).
The batch's event count sizes the launch: it comes from the host copy of the samples'
lengths (DeviceEvents.host_lengths), not from the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.encode import BINNINGS, MODES, n_inputs
from gpusnn.backends.gpu.compact import (
    GRID_BITS,
    GRID_COUNTS,
    PaddedSpikes,
    SpikeGrid,
    compact,
    grid_words,
)
from gpusnn.backends.gpu.runtime import KernelRuntime, i32, i64
from gpusnn.errors import ConfigError, ShapeError


@dataclass(frozen=True)
class DeviceEvents:
    """Samples' events on the device: x, y int16, p uint8, t int64 [N] (us, re-based per
    sample, time order within a sample), offsets int64 [S + 1], lengths int64 [S] and
    durations int64 [S] (us) as device arrays; host_lengths int64 [S], the lengths on the
    host (to size a batch without a device read); sensor_size (W, H, P) of the sensor."""

    x: object
    y: object
    p: object
    t: object
    offsets: object
    lengths: object
    durations: object
    host_lengths: np.ndarray
    sensor_size: tuple

    @property
    def n_samples(self) -> int:
        return int(self.durations.shape[0])


def _time_ordered(events, offsets: np.ndarray):
    """events with their events sorted by time within each sample (stable, as the host encoder
    does; the columns of a mapping reordered alike); returns the input itself when it already is."""
    t = events["t"]
    sample = np.repeat(np.arange(offsets.size - 1, dtype=np.int64), np.diff(offsets))
    if t.size > 1 and np.any((np.diff(t) < 0) & (np.diff(sample) == 0)):
        order = np.lexsort((t, sample))
        events = {name: np.asarray(events[name])[order] for name in ("x", "y", "p", "t")}
    return events


def upload_events(rt: KernelRuntime, events, offsets, durations, sensor_size) -> DeviceEvents:
    """Copy S samples' events to the device, once.

    events: an EVENT_DTYPE array [N] (data_tools.events) or a mapping of its columns x, y, p, t
    [N] (as data_tools.loader.RawBatch holds them); offsets int64 [S + 1] delimit the samples;
    durations int64 [S] (us) their windows.
    """
    offsets = np.ascontiguousarray(offsets, np.int64)
    durations = np.ascontiguousarray(durations, np.int64)
    n = int(np.asarray(events["t"]).shape[0])
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) < 0):
        raise ShapeError(f"offsets must rise from 0 to the {n} events, got {offsets.size} values")
    if durations.shape != (offsets.size - 1,):
        raise ShapeError(f"durations has shape {durations.shape}, expected ({offsets.size - 1},)")
    events = _time_ordered(events, offsets)
    col = rt.to_device                       # one counted upload per column
    lengths = np.diff(offsets)
    return DeviceEvents(col(events["x"], np.int16), col(events["y"], np.int16), col(events["p"], np.uint8),
                        col(events["t"], np.int64), col(offsets, np.int64), col(lengths, np.int64),
                        col(durations, np.int64), lengths, tuple(int(v) for v in sensor_size))


def concat_events(rt: KernelRuntime, parts: list[DeviceEvents]) -> DeviceEvents:
    """The samples of the device stores parts, one after another, as one device store (so a
    store can be uploaded a chunk of samples at a time, without its whole events on the host)."""
    xp = rt.xp
    if len(parts) == 1:
        return parts[0]
    cat = {name: xp.concatenate([getattr(q, name) for q in parts]) for name in ("x", "y", "p", "t", "lengths",
                                                                                "durations")}
    return DeviceEvents(cat["x"], cat["y"], cat["p"], cat["t"], rt.exclusive_scan(cat["lengths"]), cat["lengths"],
                        cat["durations"], np.concatenate([q.host_lengths for q in parts]), parts[0].sensor_size)


def encode_samples(rt: KernelRuntime, store: DeviceEvents, samples, n_steps: int, *, downsample: int = 4,
                   binning: str = "duration", mode: str = "binary") -> SpikeGrid | PaddedSpikes:
    """The spikes [B = len(samples), n_steps, n_inputs] of the given samples of a device
    store, binned on the device (data_tools.encode's convention and result): a SpikeGrid in
    binary mode, PaddedSpikes (coalesced, with counts) in count mode (module docstring).

    Host-to-device traffic: one copy of the B sample indices and their B + 1 batch offsets;
    device-to-host: none. Launches: one zeroing and bin_events (binary); count mode adds the
    scan of the rows' entries (a cumsum; bin_events counts them) and grid_compact.
    """
    xp = rt.xp
    if binning not in BINNINGS or mode not in MODES:
        raise ConfigError(f"binning must be one of {BINNINGS} and mode one of {MODES}, got {binning!r}, {mode!r}")
    if n_steps < 1 or downsample < 1:
        raise ConfigError(f"n_steps and downsample must be >= 1, got {n_steps}, {downsample}")
    host_idx = np.asarray(samples.get() if hasattr(samples, "get") else samples, np.int64)
    if host_idx.ndim != 1 or (host_idx.size and (host_idx.min() < 0 or host_idx.max() >= store.n_samples)):
        raise ShapeError(f"sample indices must be 1-D in 0..{store.n_samples - 1}")
    W, H, _ = store.sensor_size
    B, T = host_idx.size, int(n_steps)
    n_in = n_inputs(store.sensor_size, downsample)
    grid_mode = GRID_BITS if mode == "binary" else GRID_COUNTS
    words = grid_words(n_in, grid_mode)
    host_offsets = np.zeros(B + 1, np.int64)
    np.cumsum(store.host_lengths[host_idx], out=host_offsets[1:])
    n_events = int(host_offsets[-1])
    packed = rt.to_device(np.concatenate([host_idx, host_offsets]))    # one upload: indices, then offsets
    idx, batch_offsets = packed[:B], packed[B:]
    n_rows = B * T
    # one zeroing for the grid and, in count mode, the rows' entry counts (int64 [n_rows + 1])
    # that bin_events keeps, placed first in the buffer so that both views are aligned
    head = 2 * (n_rows + 1) if grid_mode == GRID_COUNTS else 0
    buf = xp.zeros(head + n_rows * words, xp.uint32)
    grid = buf[head:].reshape(n_rows, words)
    row_entries = buf[:head].view(xp.int64) if head else packed       # bits mode: unused
    rt.launch("encode", "bin_events", n_events,
              (store.x, store.y, store.p, store.t, store.offsets, idx, batch_offsets, store.durations,
               i64(n_events), i32(B), i32(T), i32(W), i32(H), i32(downsample), i32(BINNINGS.index(binning)),
               i32(grid_mode), grid, i32(words), row_entries))
    if grid_mode == GRID_BITS:
        return SpikeGrid(grid, B, T, n_in)
    indptr = xp.cumsum(row_entries)          # row_entries[0] = 0: the rows' CSR offsets
    _, ids, counts = compact(rt, grid, grid_mode, capacity=min(n_events, n_rows * n_in), indptr=indptr)
    return PaddedSpikes(indptr, ids, counts, B, T, n_in)


def encode_batch(rt: KernelRuntime, events: np.ndarray, offsets, durations, n_steps: int, *, sensor_size,
                 downsample: int = 4, binning: str = "duration", mode: str = "binary") -> SpikeGrid | PaddedSpikes:
    """One batch's events (EVENT_DTYPE [N] or its columns, offsets int64 [B + 1], durations int64 [B] us)
    to the device and into its static spike form there (encode_samples); .to(np) of it equals
    data_tools.encode.encode."""
    store = upload_events(rt, events, offsets, durations, sensor_size)
    return encode_samples(rt, store, np.arange(store.n_samples), n_steps, downsample=downsample,
                          binning=binning, mode=mode)
