"""AEDAT 3.1 reader and writer (little-endian packets; polarity events only).

File: a `#` text header (first line `#!AER-DAT3.1`, last `#!END-HEADER`, CRLF), then packets.
Packet header, 28 bytes, little-endian int16/int32 (see :data:`PACKET_HEADER`); payload of
eventCapacity * eventSize bytes of which the first eventNumber events are real. Polarity event
(type 1): uint32 data at byte 0, int32 timestamp at byte eventTSOffset (4); valid = bit 0,
polarity = bit 1 (1 = ON), y = bits 2-16, x = bits 17-31, origin top-left; the full
timestamp in microseconds is (eventTSOverflow << 31) | timestamp.

The reader memory-maps the file, walks packet headers (one small Python step per packet,
none per event; :func:`walk_packets`, also used by the device event path), gathers the
polarity records with one copy per packet and checks them with whole-array passes
(:func:`read_records`); :func:`decode_fields` splits the bit fields of any run of records
straight into the store's column types (what conversion uses for each label window). Packets of other types (special, frame, IMU6, IMU9,
...) are skipped by their eventSize and counted by :func:`inspect_aedat3`; padding
(capacity > number) and events whose valid bit is 0 are dropped.

The sensor comes from the `#Source N: <chip>` header lines (:func:`header_sensor`: DVS128,
DAVIS240A/B/C, DAVIS346A/B/C; DAVIS polarity packets share the DVS128 event layout), or is
forced by the caller; an unknown chip, a missing `#Source` line or sources of different
sizes are errors naming the line.
"""
from __future__ import annotations

import logging
import re
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE
from data_tools.sensors import DAVIS240, DAVIS346, DVS128, Sensor, get_sensor, sensor_from_name
from data_tools.textheader import TextHeader, format_header, parse_header

log = logging.getLogger(__name__)

#: The 28-byte AEDAT 3.1 packet header (one definition, also used by the device event path).
PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                          ("overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
#: The same layout for struct (derived from PACKET_HEADER, faster per packet than frombuffer).
_HEADER_STRUCT = struct.Struct("<" + "".join(PACKET_HEADER[name].char for name in PACKET_HEADER.names))
SPECIAL, POLARITY, FRAME, IMU6, IMU9 = 0, 1, 2, 3, 4
#: Names of the packet types the readers skip and count (others are counted by number).
TYPE_NAMES = {SPECIAL: "special", POLARITY: "polarity", FRAME: "frame", IMU6: "imu6", IMU9: "imu9"}
#: Smallest eventSize of each known type (bytes); other types only need a positive size.
MIN_EVENT_SIZES = {SPECIAL: 8, POLARITY: 8}
POLARITY_EVENT = np.dtype([("data", "<u4"), ("ts", "<i4")])
TS_BITS = 31


class PacketHeader(NamedTuple):
    """One packet header (fields as in PACKET_HEADER) and its byte offset in the file (a named
    tuple: one is made per packet, so it must be cheap)."""

    offset: int
    type: int
    source: int
    size: int
    ts_offset: int
    overflow: int
    capacity: int
    number: int
    valid: int

    @property
    def payload(self) -> int:
        """Byte offset of the first event."""
        return self.offset + PACKET_HEADER.itemsize

    @property
    def end(self) -> int:
        """Byte offset just past the payload (eventCapacity * eventSize bytes)."""
        return self.payload + self.capacity * self.size


def _map(path) -> np.ndarray:
    """The whole file as a read-only uint8 array (memory-mapped when non-empty)."""
    if Path(path).stat().st_size == 0:
        return np.empty(0, np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


def read_header(path, buf=None) -> TextHeader:
    """Parse the AEDAT 3.x text header of path (DataFormatError if it is malformed)."""
    buf = _map(path) if buf is None else buf
    return parse_header(buf, path, magic=b"#!AER-DAT3", end_marker=b"#!END-HEADER")


def parse_packet_header(buf, pos: int, path) -> PacketHeader:
    """The packet header at byte pos of buf (the whole file), checked against the format and
    the file size; DataFormatError naming path and the byte offset otherwise."""
    n = len(buf)
    if n - pos < PACKET_HEADER.itemsize:
        raise DataFormatError(f"{path}: byte offset {pos}: truncated packet header "
                              f"({n - pos} bytes left, {PACKET_HEADER.itemsize} needed)")
    h = PacketHeader(pos, *_HEADER_STRUCT.unpack_from(buf, pos))
    need = MIN_EVENT_SIZES.get(h.type, 1)
    if h.size < need:
        raise DataFormatError(f"{path}: byte offset {pos}: eventSize {h.size} is inconsistent with event type "
                              f"{h.type} (expected at least {need} bytes)")
    if h.type == POLARITY and not 4 <= h.ts_offset <= h.size - 4:
        raise DataFormatError(f"{path}: byte offset {pos + 8}: eventTSOffset {h.ts_offset} does not fit a "
                              f"{h.size}-byte polarity event (expected 4)")
    if h.capacity < 0 or not 0 <= h.number <= h.capacity or h.overflow < 0:
        raise DataFormatError(f"{path}: byte offset {pos}: bad packet header (eventCapacity {h.capacity}, "
                              f"eventNumber {h.number}, eventTSOverflow {h.overflow}); expected "
                              "0 <= eventNumber <= eventCapacity and a non-negative overflow")
    if h.end > n:
        raise DataFormatError(f"{path}: byte offset {pos}: packet larger than the file: {h.capacity} events x "
                              f"{h.size} bytes = {h.capacity * h.size} bytes declared, {n - h.payload} left")
    return h


def walk_packets(buf, start: int, path) -> Iterator[PacketHeader]:
    """Every packet header of buf from byte start (the end of the text header) to the end."""
    pos = start
    while pos < len(buf):
        h = parse_packet_header(buf, pos, path)
        yield h
        pos = h.end


#: Events whose bit fields are split at a time (the uint32 temporary stays in cache).
BLOCK = 1 << 16


class PolarityRecords(NamedTuple):
    """The valid polarity events of an AEDAT 3.1 file before their bit fields are split.

    records POLARITY_EVENT [N] contiguous: the 8-byte event records as in the file (data word:
    valid bit 0, polarity bit 1, y bits 2-16, x bits 17-31; ts: the low 31 timestamp bits);
    t [N] contiguous: full timestamps in us, int32 when no packet has a timestamp overflow,
    else int64. :func:`decode_fields` splits any contiguous run of records into x, y, p.
    """

    records: np.ndarray
    t: np.ndarray

    def time_sorted(self) -> PolarityRecords:
        """The events stably sorted by t (self, after an O(N) check, when they already are)."""
        t = self.t
        if t.size < 2 or np.all(t[1:] >= t[:-1]):
            return self
        order = np.argsort(t, kind="stable")
        return PolarityRecords(self.records[order], t[order])


def _record_dtype(h: PacketHeader) -> np.dtype:
    """The data word and timestamp of one event of a packet whose layout is not the plain 8 bytes."""
    return np.dtype({"names": ["data", "ts"], "formats": ["<u4", "<i4"], "offsets": [0, h.ts_offset],
                     "itemsize": h.size})


def _records(buf, packets: list[PacketHeader], path) -> PolarityRecords:
    """The valid events of the polarity packets among packets, in file order.

    One copy per packet gathers the records (capacity padding left out); the timestamp sign,
    overflow and valid-bit checks are then whole-array passes (no per-event Python).
    """
    pol = [h for h in packets if h.type == POLARITY and h.number > 0]
    counts = np.array([h.number for h in pol], np.int64)
    rec = np.empty(int(counts.sum()), POLARITY_EVENT)
    words = rec.view(np.uint64)                       # byte copies: the file's little-endian layout is kept
    o = 0
    for h in pol:
        n = h.number
        if h.size == POLARITY_EVENT.itemsize and h.ts_offset == 4:
            words[o:o + n] = np.frombuffer(buf, np.uint64, count=n, offset=h.payload)
        else:
            ev = np.frombuffer(buf, _record_dtype(h), count=n, offset=h.payload)
            rec["data"][o:o + n] = ev["data"]
            rec["ts"][o:o + n] = ev["ts"]
        o += n
    t = rec["ts"].astype(np.int32)                    # contiguous (and native-endian) copy
    if t.size and t.min() < 0:
        bad = int(np.argmax(t < 0))
        k = int(np.searchsorted(np.cumsum(counts), bad, "right"))
        h = pol[k]
        within = bad - int(counts[:k].sum())
        raise DataFormatError(f"{path}: byte offset {h.payload + within * h.size + h.ts_offset}: negative 32-bit "
                              f"timestamp {int(t[bad])} (timestamps are 31-bit, non-negative)")
    overflow = np.array([h.overflow for h in pol], np.int64)
    if overflow.any():
        t = t.astype(np.int64)
        t |= np.repeat(overflow << TS_BITS, counts)
    if rec.size and not np.bitwise_and.reduce(rec["data"]) & 1:    # some event has valid bit 0
        keep = (rec["data"] & 1).astype(bool)
        rec, t = rec[keep], t[keep]
    return PolarityRecords(rec, t)


def decode_fields(records: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> None:
    """Split records (POLARITY_EVENT [n], contiguous) into x (int16 [n]), y (any integer dtype
    [n]) and p (uint8 [n], 1 = ON), written in place: x and p straight from the record bytes,
    y through a uint32 temporary of at most BLOCK events."""
    np.right_shift(records.view("<u2")[1::4], 1, out=x.view(np.uint16))      # data bits 17-31
    np.right_shift(records.view(np.uint8)[0::8], 1, out=p)                    # data bit 1
    np.bitwise_and(p, 1, out=p)
    data = records["data"]
    tmp = np.empty(min(BLOCK, data.size), np.uint32)
    for s in range(0, data.size, BLOCK):
        part = tmp[:min(BLOCK, data.size - s)]
        np.right_shift(data[s:s + BLOCK], 2, out=part)                        # data bits 2-16
        np.bitwise_and(part, 0x7FFF, out=part)
        y[s:s + part.size] = part


def _events(r: PolarityRecords) -> np.ndarray:
    """The records as an event array (EVENT_DTYPE [N])."""
    n = r.t.size
    x, y, p = np.empty(n, np.int16), np.empty(n, np.int16), np.empty(n, np.uint8)
    decode_fields(r.records, x, y, p)
    out = np.empty(n, EVENT_DTYPE)
    out["x"], out["y"], out["p"], out["t"] = x, y, p.view(bool), r.t
    return out


def read_records(path) -> PolarityRecords:
    """All valid polarity events of an AEDAT 3.1 file as records, in file order."""
    buf = _map(path)
    header = read_header(path, buf)
    return _records(buf, list(walk_packets(buf, header.data_offset, path)), path)


def read_aedat3(path) -> np.ndarray:
    """All valid polarity events of an AEDAT 3.1 file, in file order. Event array [N]."""
    return _events(read_records(path))


def iter_aedat3(path, chunk_events: int = 1 << 22) -> Iterator[np.ndarray]:
    """Stream a file too large for memory: yield event arrays of whole packets, each holding
    about chunk_events events (at least one packet), in file order."""
    buf = _map(path)
    header = read_header(path, buf)
    group, count = [], 0
    for h in walk_packets(buf, header.data_offset, path):
        group.append(h)
        count += h.number if h.type == POLARITY else 0
        if count >= chunk_events:
            yield _events(_records(buf, group, path))
            group, count = [], 0
    if count:
        yield _events(_records(buf, group, path))


def sources(header: TextHeader) -> dict[int, str]:
    """The `#Source N: <name>` lines of a header: {N: name}."""
    out = {}
    for line in header.lines:
        m = re.fullmatch(r"Source (\d+):\s*(.*)", line.strip())
        if m:
            out[int(m.group(1))] = m.group(2).strip()
    return out


def header_sensor(header: TextHeader, path, sensor=None) -> Sensor:
    """The sensor of an AEDAT 3.1 file: the forced sensor if given, else the one every
    `#Source N:` line names; DataFormatError naming the line for an unknown chip, for
    sources of different sizes, or when there is no `#Source` line."""
    forced = get_sensor(sensor)
    if forced is not None:
        return forced
    named = sources(header)
    if not named:
        raise DataFormatError(f"{path}: header has no '#Source N: <chip>' line naming the sensor; name it with "
                              "sensor=... (CLI: --sensor dvs128|davis240|davis346)")
    found = {}
    for n, name in named.items():
        s = sensor_from_name(name)
        if s is None:
            raise DataFormatError(f"{path}: header line '#Source {n}: {name}' names a chip this reader does not "
                                  "know (known: DVS128, DAVIS240A/B/C, DAVIS346A/B/C); force a layout with "
                                  "sensor=... (CLI: --sensor dvs128|davis240|davis346)")
        found[s] = n
    if len(found) > 1:
        raise DataFormatError(f"{path}: header names sources of different sensors "
                              f"({', '.join(f'#Source {n}: {s.name}' for s, n in found.items())}); pass sensor=...")
    return next(iter(found))


def common_sensor(paths, sensor=None) -> Sensor:
    """The one sensor of several AEDAT 3.1 files (each from its `#Source` lines, or the forced
    sensor); DataFormatError naming two files whose sensor sizes differ."""
    first = None
    for path in paths:
        chip = header_sensor(read_header(path), path, sensor)
        if first is None:
            first = (path, chip)
        elif chip.size != first[1].size:
            raise DataFormatError(f"{path}: sensor {chip.name} ({chip.width} x {chip.height}) differs from "
                                  f"{first[0]}'s {first[1].name} ({first[1].width} x {first[1].height}); "
                                  "a dataset directory must hold recordings of one sensor size")
    return get_sensor(sensor) or (first[1] if first else DVS128)


def inspect_aedat3(path, sensor=None) -> dict:
    """Header fields, the sensor, packet statistics, the packet types seen and the records
    of non-polarity types that readers skip (no event decoding)."""
    buf = _map(path)
    header = read_header(path, buf)
    chip = header_sensor(header, path, sensor)
    types, events, n_packets, n_slots = Counter(), Counter(), 0, 0
    for h in walk_packets(buf, header.data_offset, path):
        types[h.type] += 1
        events[h.type] += h.number
        n_packets += 1
        n_slots += h.capacity
    skipped = {TYPE_NAMES.get(k, f"type {k}"): v for k, v in sorted(events.items()) if k != POLARITY}
    return {"format": "AEDAT " + header.version.removeprefix("AER-DAT"), "header": header.fields,
            "sensor": chip.name, "sensor_size": list(chip.size), "header_bytes": header.data_offset,
            "packets": n_packets, "event_slots": n_slots,
            "packet_types": {str(k): v for k, v in sorted(types.items())}, "skipped_records": skipped}


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
        hdr = np.array([(POLARITY, source, POLARITY_EVENT.itemsize, 4, overflow, cap, chunk.size, chunk.size)],
                       PACKET_HEADER)
        yield hdr.tobytes() + chunk.tobytes() + bytes(spare_capacity * POLARITY_EVENT.itemsize)


#: The `#Source` chip name cAER writes for each sensor (the writer uses it).
SOURCE_NAMES = {DVS128: "DVS128", DAVIS240: "DAVIS240C", DAVIS346: "DAVIS346B"}


def write_aedat3(path, events: np.ndarray, *, packet_events: int = 4096, spare_capacity: int = 0,
                 sensor=DVS128, header_fields: dict | None = None, source: int = 1) -> None:
    """Write events (event array, t >= 0 in us, sorted by time) of sensor (a Sensor or name)
    as AEDAT 3.1 polarity packets of at most packet_events events, each with spare_capacity
    padding events; packets never span a timestamp overflow (t >> 31) boundary."""
    t = events["t"]
    if t.size and (t.min() < 0 or np.any(t[1:] < t[:-1])):
        raise ValueError("write_aedat3 needs non-negative, time-sorted timestamps")
    chip = get_sensor(sensor)
    fields = {"Format": "RAW", f"Source {source}": SOURCE_NAMES[chip], **(header_fields or {})}
    epoch = t >> TS_BITS
    cuts = np.flatnonzero(np.diff(epoch)) + 1
    with open(path, "wb") as f:
        f.write(format_header("#!AER-DAT3.1", fields, "#!END-HEADER"))
        for part in np.split(events, cuts) if t.size else []:
            for packet in _packets(part, packet_events, spare_capacity, source):
                f.write(packet)
    log.debug("wrote %d events to %s", t.size, path)
