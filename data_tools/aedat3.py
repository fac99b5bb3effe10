"""AEDAT 3.1 reader and writer (little-endian packets; polarity events only).

File: a `#` text header (first line `#!AER-DAT3.1`, last `#!END-HEADER`, CRLF), then packets.
Packet header, 28 bytes, little-endian int16/int32 (see :data:`PACKET_HEADER`); payload of
eventCapacity * eventSize bytes of which the first eventNumber events are real. Polarity event
(type 1): uint32 data at byte 0, int32 timestamp at byte eventTSOffset (4); valid = bit 0,
polarity = bit 1 (1 = ON), y = bits 2-16, x = bits 17-31, origin top-left; the full
timestamp in microseconds is (eventTSOverflow << 31) | timestamp.

The reader memory-maps the file, walks packet headers (one small Python step per packet,
none per event) and decodes all polarity payloads with vectorised NumPy. Packets of other
types are skipped by their eventSize; padding (capacity > number) and events whose valid
bit is 0 are dropped.
"""
from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import DVS128_SENSOR, EVENT_DTYPE
from data_tools.textheader import TextHeader, format_header, parse_header

log = logging.getLogger(__name__)

PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                          ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_HEADER_STRUCT = struct.Struct("<hhiiiiii")
POLARITY = 1
SPECIAL = 0
#: Smallest eventSize of each known type (bytes); other types only need a positive size.
MIN_EVENT_SIZES = {SPECIAL: 8, POLARITY: 8}
POLARITY_EVENT = np.dtype([("data", "<u4"), ("ts", "<i4")])
TS_BITS = 31


def _map(path) -> np.ndarray:
    """The whole file as a read-only uint8 array (memory-mapped when non-empty)."""
    if Path(path).stat().st_size == 0:
        return np.empty(0, np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def read_header(path, buf=None) -> TextHeader:
    """Parse the AEDAT 3.x text header of path (DataFormatError if it is malformed)."""
    buf = _map(path) if buf is None else buf
    return parse_header(buf, path, magic=b"#!AER-DAT3", end_marker=b"#!END-HEADER")


def _walk_packets(buf, start: int, path) -> Iterator[tuple[int, tuple]]:
    """Yield (payload byte offset, header tuple in PACKET_HEADER order) for every packet,
    checking each header against the format and the file size."""
    n, pos = len(buf), start
    while pos < n:
        if n - pos < PACKET_HEADER.itemsize:
            raise DataFormatError(f"{path}: byte offset {pos}: truncated packet header "
                                  f"({n - pos} bytes left, {PACKET_HEADER.itemsize} needed)")
        hdr = _HEADER_STRUCT.unpack(bytes(buf[pos:pos + PACKET_HEADER.itemsize]))
        etype, _, size, ts_off, overflow, capacity, number, _ = hdr
        need = MIN_EVENT_SIZES.get(etype, 1)
        if size < need:
            raise DataFormatError(f"{path}: byte offset {pos}: eventSize {size} is inconsistent with event type "
                                  f"{etype} (expected at least {need} bytes)")
        if etype == POLARITY and not 4 <= ts_off <= size - 4:
            raise DataFormatError(f"{path}: byte offset {pos + 8}: eventTSOffset {ts_off} does not fit a "
                                  f"{size}-byte polarity event (expected 4)")
        if capacity < 0 or not 0 <= number <= capacity or overflow < 0:
            raise DataFormatError(f"{path}: byte offset {pos}: bad packet header (eventCapacity {capacity}, "
                                  f"eventNumber {number}, eventTSOverflow {overflow}); expected "
                                  "0 <= eventNumber <= eventCapacity and a non-negative overflow")
        payload = pos + PACKET_HEADER.itemsize
        if capacity * size > n - payload:
            raise DataFormatError(f"{path}: byte offset {pos}: packet larger than the file: {capacity} events x "
                                  f"{size} bytes = {capacity * size} bytes declared, {n - payload} left")
        yield payload, hdr
        pos = payload + capacity * size


def _decode(buf, packets: list[tuple[int, tuple]], path) -> np.ndarray:
    """Decode the polarity packets among packets into an event array (valid events only).

    Each packet is decoded straight into its slice of the output (a packet fits in cache,
    so the data word is read from memory once and no full-size temporaries are made).
    """
    pol = [(off, h) for off, h in packets if h[0] == POLARITY and h[6] > 0]
    total = sum(h[6] for _, h in pol)
    out = np.empty(total, EVENT_DTYPE)
    x, y, p, t = (out[f] for f in ("x", "y", "p", "t"))
    o = 0
    for off, (_, _, size, ts_off, overflow, _, number, _) in pol:
        if size == POLARITY_EVENT.itemsize and ts_off == 4:
            ev = np.frombuffer(buf, POLARITY_EVENT, count=number, offset=off)
        else:
            dt = np.dtype({"names": ["data", "ts"], "formats": ["<u4", "<i4"], "offsets": [0, ts_off],
                           "itemsize": size})
            ev = np.frombuffer(buf, dt, count=number, offset=off)
        data, ts = ev["data"], ev["ts"]
        if ts.min() < 0:
            bad = int(np.argmax(ts < 0))
            raise DataFormatError(f"{path}: byte offset {off + bad * size + ts_off}: negative 32-bit timestamp "
                                  f"{int(ts[bad])} (timestamps are 31-bit, non-negative)")
        valid = (data & 1).astype(bool)
        if not valid.all():
            data, ts = data[valid], ts[valid]
        n = data.size
        x[o:o + n] = data >> 17
        y[o:o + n] = (data >> 2) & 0x7FFF
        p[o:o + n] = (data >> 1) & 1
        t[o:o + n] = ts
        if overflow:
            t[o:o + n] |= np.int64(overflow) << TS_BITS
        o += n
    return out[:o] if o < total else out


def read_aedat3(path) -> np.ndarray:
    """All valid polarity events of an AEDAT 3.1 file, in file order. Event array [N]."""
    buf = _map(path)
    header = read_header(path, buf)
    return _decode(buf, list(_walk_packets(buf, header.data_offset, path)), path)


def iter_aedat3(path, chunk_events: int = 1 << 22) -> Iterator[np.ndarray]:
    """Stream a file too large for memory: yield event arrays of whole packets, each holding
    about chunk_events events (at least one packet), in file order."""
    buf = _map(path)
    header = read_header(path, buf)
    group, count = [], 0
    for off, hdr in _walk_packets(buf, header.data_offset, path):
        group.append((off, hdr))
        count += hdr[6] if hdr[0] == POLARITY else 0
        if count >= chunk_events:
            yield _decode(buf, group, path)
            group, count = [], 0
    if count:
        yield _decode(buf, group, path)


def inspect_aedat3(path) -> dict:
    """Header fields, packet statistics and the packet types seen (no event decoding)."""
    buf = _map(path)
    header = read_header(path, buf)
    types, n_packets, n_slots = Counter(), 0, 0
    for _, hdr in _walk_packets(buf, header.data_offset, path):
        types[int(hdr[0])] += 1
        n_packets += 1
        n_slots += hdr[5]
    return {"format": "AEDAT " + header.version.removeprefix("AER-DAT"), "header": header.fields,
            "header_bytes": header.data_offset, "packets": n_packets, "event_slots": n_slots,
            "packet_types": {str(k): v for k, v in sorted(types.items())}}


def _packets(events: np.ndarray, packet_events: int, spare_capacity: int, source: int) -> Iterator[bytes]:
    """Packets of one overflow epoch (events all share t >> 31)."""
    overflow = int(events["t"][0]) >> TS_BITS
    word = (np.uint32(1) | (events["p"].astype(np.uint32) << 1) | (events["y"].astype(np.uint32) << 2)
            | (events["x"].astype(np.uint32) << 17))
    ev = np.zeros(events.size, POLARITY_EVENT)
    ev["data"] = word
    ev["ts"] = (events["t"] & ((1 << TS_BITS) - 1)).astype(np.int32)
    for start in range(0, events.size, packet_events):
        chunk = ev[start:start + packet_events]
        cap = chunk.size + spare_capacity
        hdr = _HEADER_STRUCT.pack(POLARITY, source, POLARITY_EVENT.itemsize, 4, overflow, cap, chunk.size, chunk.size)
        yield hdr + chunk.tobytes() + bytes(spare_capacity * POLARITY_EVENT.itemsize)


def write_aedat3(path, events: np.ndarray, *, packet_events: int = 4096, spare_capacity: int = 0,
                 sensor_size=DVS128_SENSOR, header_fields: dict | None = None, source: int = 1) -> None:
    """Write events (event array, t >= 0 in us, sorted by time) as AEDAT 3.1 polarity packets of
    at most packet_events events, each with spare_capacity padding events; packets never span a
    timestamp overflow (t >> 31) boundary."""
    t = events["t"]
    if t.size and (t.min() < 0 or np.any(t[1:] < t[:-1])):
        raise ValueError("write_aedat3 needs non-negative, time-sorted timestamps")
    fields = {"Format": "RAW", f"Source {source}": f"DVS{sensor_size[0]}",
              "Sensor-Size": f"{sensor_size[0]}x{sensor_size[1]}", **(header_fields or {})}
    epoch = t >> TS_BITS
    cuts = np.flatnonzero(np.diff(epoch)) + 1
    with open(path, "wb") as f:
        f.write(format_header("#!AER-DAT3.1", fields, "#!END-HEADER"))
        for part in np.split(events, cuts) if t.size else []:
            for packet in _packets(part, packet_events, spare_capacity, source):
                f.write(packet)
    log.debug("wrote %d events to %s", t.size, path)
