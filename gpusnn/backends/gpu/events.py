"""Raw AEDAT 3.1 bytes -> sparse spike tensor on the device (wrapper of kernels/events.cu).

The host walks only the 28-byte packet headers (with data_tools.aedat3.walk_packets, the host
reader's parser) into a PacketTable; the file bytes go to the device once, where every
polarity event is decoded, downsampled and binned by a kernel.
Encoding convention (same as data_tools.encode): input id = (p * H' + y') * W' + x' with
x' = x // f, y' = y // f, W' = W // f, H' = H // f; sample b's window [t0, t0 + D) is cut
into T steps, step = ((t - t0) * T) // D + 1; invalid events and events outside the window
are dropped. Binary mode keeps one spike per (sample, step, id), count mode keeps every
event as a coalesced tensor (one entry per (sample, step, id) with its count); ids are
sorted within each row either way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.aedat3 import POLARITY, header_sensor, read_header, walk_packets
from data_tools.spikes import SpikeTensor
from gpusnn.backends.gpu.compact import GRID_BITS, GRID_COUNTS, compact, grid_words
from gpusnn.backends.gpu.runtime import KernelRuntime, i32, i64
from gpusnn.errors import ShapeError


@dataclass(frozen=True)
class PacketTable:
    """The polarity packets of a file that hold events (all host arrays, one row per packet).

    first int64 [n + 1]: index of each packet's first event (prefix sum of eventNumber);
    offset int64 [n]: byte offset of the payload in the file; size int32 [n]: bytes per event;
    ts_offset int32 [n]: byte offset of the timestamp in an event; overflow int32 [n].
    """

    first: np.ndarray
    offset: np.ndarray
    size: np.ndarray
    ts_offset: np.ndarray
    overflow: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.first[-1])


def polarity_packets(raw, name: str = "<bytes>") -> PacketTable:
    """Walk the packet headers of an AEDAT 3.1 file (headers only, never the events) with the
    host reader's parser (data_tools.aedat3), keeping the polarity packets that hold events."""
    rows = [(h.number, h.payload, h.size, h.ts_offset, h.overflow)
            for h in walk_packets(raw, read_header(name, raw).data_offset, name) if h.type == POLARITY and h.number]
    cols = np.array(rows, np.int64).reshape(-1, 5)
    return PacketTable(np.concatenate(([0], np.cumsum(cols[:, 0]))).astype(np.int64), cols[:, 1].copy(),
                       cols[:, 2].astype(np.int32), cols[:, 3].astype(np.int32), cols[:, 4].astype(np.int32))


def _upload(rt: KernelRuntime, raw, table: PacketTable) -> tuple:
    """Kernel arguments describing the events: bytes, packet table, n_pkt, n_events."""
    data = rt.to_device(np.frombuffer(raw, np.uint8))
    cols = [rt.to_device(c) for c in (table.first, table.offset, table.size, table.ts_offset, table.overflow)]
    return (data, *cols, i32(len(table.offset)), i64(table.n_events))


def decode_polarity(rt: KernelRuntime, raw, name: str = "<bytes>") -> dict:
    """Every polarity event of the file, decoded on the device: x, y int16, p uint8,
    t int64 [us], valid uint8, each [n_events] (events with valid = 0 included)."""
    xp = rt.xp
    table = polarity_packets(raw, name)
    n = table.n_events
    out = {"x": rt.empty(n, xp.int16), "y": rt.empty(n, xp.int16), "p": rt.empty(n, xp.uint8),
           "t": rt.empty(n, xp.int64), "valid": rt.empty(n, xp.uint8)}
    rt.launch("events", "aedat_decode", n, _upload(rt, raw, table) + tuple(out.values()))
    return out


def aedat_to_spikes(rt: KernelRuntime, raw, t0, duration, n_steps: int, *, width: int | None = None,
                    height: int | None = None, factor: int = 1, binary: bool = True,
                    name: str = "<bytes>") -> SpikeTensor:
    """The samples with windows [t0[b], t0[b] + duration[b]) [us] of one recording as a
    SpikeTensor (B x n_steps x 2 * (height // factor) * (width // factor)) on the device.
    width, height: the sensor size, by default the one the file's `#Source` line names."""
    xp = rt.xp
    if width is None or height is None:
        chip = header_sensor(read_header(name, raw), name)
        width, height = chip.width, chip.height
    t0 = np.ascontiguousarray(t0, np.int64)
    duration = np.ascontiguousarray(duration, np.int64)
    if t0.ndim != 1 or t0.shape != duration.shape:
        raise ShapeError(f"t0 and duration must be 1-D of equal length, got {t0.shape} and {duration.shape}")
    if duration.size and duration.min() <= 0:
        raise ShapeError("sample durations must be positive")
    if factor < 1 or width // factor < 1 or height // factor < 1:
        raise ShapeError(f"downsample factor {factor} does not fit a {width} x {height} sensor")
    B, T = t0.size, int(n_steps)
    n_in = 2 * (height // factor) * (width // factor)
    mode = GRID_BITS if binary else GRID_COUNTS
    words = grid_words(n_in, mode)
    grid = xp.zeros((B * T, words), xp.uint32)
    table = polarity_packets(raw, name)
    rt.launch("events", "aedat_bin", table.n_events,
              _upload(rt, raw, table) + (rt.to_device(t0), rt.to_device(duration), i32(B), i32(T), i32(width),
                                         i32(height), i32(factor), i32(mode), grid, i32(words)))
    indptr, ids, counts = compact(rt, grid, mode)
    return SpikeTensor(indptr, ids, B, T, n_in, counts)
