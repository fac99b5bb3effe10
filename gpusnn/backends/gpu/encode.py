"""Wrapper of kernels/encode.cu: decoded events -> spike tensor on the device, per batch.

The device twin of data_tools.encode.encode (same convention, same tensor: tested equal,
emulated). Two ways in:

- ``encode_batch(rt, events, offsets, durations, n_steps, ...)``: one batch's events (host
  arrays, as the loader hands them over) go to the device and are binned there;
- ``upload_events(rt, events, offsets, durations, sensor_size)`` once per run (or per chunk
  of samples, joined by ``concat_events``), then
  ``encode_samples(rt, store, samples, n_steps, ...)`` per batch: only the B sample indices
  go to the device, the events never move again.

Either returns a SpikeTensor on the device (binary mode: no counts; count mode: coalesced,
one entry per (sample, step, id) with its number of events in counts).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.encode import BINNINGS, MODES, n_inputs
from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu.compact import GRID_BITS, GRID_COUNTS, compact, grid_words
from gpusnn.backends.gpu.runtime import KernelRuntime, i32, i64
from gpusnn.errors import ConfigError, ShapeError


@dataclass(frozen=True)
class DeviceEvents:
    """Samples' events on the device: x, y int16, p uint8, t int64 [N] (us, re-based per
    sample, time order within a sample), offsets int64 [S + 1], lengths int64 [S] and
    durations int64 [S] (us) as device arrays; sensor_size (W, H, P) of the sensor."""

    x: object
    y: object
    p: object
    t: object
    offsets: object
    lengths: object
    durations: object
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
    return DeviceEvents(col(events["x"], np.int16), col(events["y"], np.int16), col(events["p"], np.uint8),
                        col(events["t"], np.int64), col(offsets, np.int64), col(np.diff(offsets), np.int64),
                        col(durations, np.int64), tuple(int(v) for v in sensor_size))


def concat_events(rt: KernelRuntime, parts: list[DeviceEvents]) -> DeviceEvents:
    """The samples of the device stores parts, one after another, as one device store (so a
    store can be uploaded a chunk of samples at a time, without its whole events on the host)."""
    xp = rt.xp
    if len(parts) == 1:
        return parts[0]
    cat = {name: xp.concatenate([getattr(q, name) for q in parts]) for name in ("x", "y", "p", "t", "lengths",
                                                                                "durations")}
    return DeviceEvents(cat["x"], cat["y"], cat["p"], cat["t"], rt.exclusive_scan(cat["lengths"]), cat["lengths"],
                        cat["durations"], parts[0].sensor_size)


def encode_samples(rt: KernelRuntime, store: DeviceEvents, samples, n_steps: int, *, downsample: int = 4,
                   binning: str = "duration", mode: str = "binary") -> SpikeTensor:
    """The spike tensor [B = len(samples), n_steps, n_inputs] of the given samples of a
    device store, binned on the device (data_tools.encode's convention and result).

    Host-to-device traffic: the B sample indices; device-to-host: two scalars (the batch's
    event count, to size the launch, and nnz, to size the spike list).
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
    idx = rt.to_device(host_idx)
    batch_offsets = rt.exclusive_scan(xp.take(store.lengths, idx))
    n_events = rt.scalar(batch_offsets[-1], "encode events")
    grid = xp.zeros((B * T, words), xp.uint32)
    rt.launch("encode", "bin_events", n_events,
              (store.x, store.y, store.p, store.t, store.offsets, idx, batch_offsets, store.durations,
               i64(n_events), i32(B), i32(T), i32(W), i32(H), i32(downsample), i32(BINNINGS.index(binning)),
               i32(grid_mode), grid, i32(words)))
    indptr, ids, counts = compact(rt, grid, grid_mode)
    return SpikeTensor(indptr, ids, B, T, n_in, counts)


def encode_batch(rt: KernelRuntime, events: np.ndarray, offsets, durations, n_steps: int, *, sensor_size,
                 downsample: int = 4, binning: str = "duration", mode: str = "binary") -> SpikeTensor:
    """One batch's events (EVENT_DTYPE [N] or its columns, offsets int64 [B + 1], durations int64 [B] us)
    to the device and into its spike tensor there; equal to data_tools.encode.encode."""
    store = upload_events(rt, events, offsets, durations, sensor_size)
    return encode_samples(rt, store, np.arange(store.n_samples), n_steps, downsample=downsample,
                          binning=binning, mode=mode)
