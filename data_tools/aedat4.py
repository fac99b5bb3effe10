"""AEDAT 4.0 through the optional `aedat` package (pip install gpusnn[aedat4]).

The sensor size is the event stream's sizeX / sizeY in the file's stream description (the
IOHeader's XML, which the `aedat` decoder exposes per stream), never the data's maximum;
event streams of different sizes in one file are an error. Frame, IMU and trigger packets
are skipped and counted. The IOHeader is checked here first (:func:`check_ioheader`): the
`aedat` decoder reads it without verification and panics, or aborts the interpreter, on a
corrupt one.
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE, empty_events

#: Packet keys of the non-event streams the reader skips, and what is counted for each.
SKIPPED = {"frame": "frames", "imus": "imu samples", "triggers": "triggers"}


@dataclass(frozen=True)
class Aedat4Recording:
    """events EVENT_DTYPE [N] (every event stream, file order); sensor_size (W, H, 2) from
    the stream description; skipped: {"frames": packets, "imu samples": n, "triggers": n}."""

    events: np.ndarray
    sensor_size: tuple
    skipped: dict


MAGIC = b"#!AER-DAT4.0\r\n"


def _u(buf: bytes, pos: int, fmt: str) -> int:
    return struct.unpack_from(fmt, buf, pos)[0]


def check_ioheader(head: bytes, path) -> None:
    """Check the IOHeader flatbuffer (root table, vtable and fields inside the header, the
    description string inside it and UTF-8) before the `aedat` decoder reads it unchecked: a
    corrupt one makes that decoder panic or abort the interpreter. head: the file's first
    bytes (magic, uint32 length, the flatbuffer)."""
    def bad(pos, what):
        return DataFormatError(f"{path}: byte offset {pos}: not a readable AEDAT 4 file ({what})")
    if not head.startswith(MAGIC):
        raise bad(0, f"expected {MAGIC!r}")
    if len(head) < len(MAGIC) + 4:
        raise bad(len(MAGIC), "truncated IOHeader length")
    n, b = _u(head, len(MAGIC), "<I"), len(MAGIC) + 4
    io = head[b:b + n]
    if len(io) < n or n < 8:
        raise bad(b, f"IOHeader of {n} bytes, {len(io)} present")
    root = _u(io, 0, "<I")
    vt = root - _u(io, root, "<i") if root % 4 == 0 and root + 4 <= n else -1
    if not 0 <= vt <= n - 4 or not 4 <= _u(io, vt, "<H") <= n - vt or root + _u(io, vt + 2, "<H") > n:
        raise bad(b, "IOHeader table or vtable outside the header")
    vt_size = _u(io, vt, "<H")
    offs = [_u(io, vt + 4 + 2 * k, "<H") if 4 + 2 * k + 2 <= vt_size else 0 for k in range(3)]
    if any(o and root + o + size > n for o, size in zip(offs, (4, 8, 4))) or not offs[2]:
        raise bad(b, "IOHeader fields outside the header or no description")
    s = root + offs[2] + _u(io, root + offs[2], "<I")
    if s + 4 > n or s + 4 + _u(io, s, "<I") > n:
        raise bad(b, "IOHeader description outside the header")
    try:
        io[s + 4:s + 4 + _u(io, s, "<I")].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(b + s + 4 + exc.start, "the stream description is not UTF-8") from None


def _decoder(path):
    try:
        import aedat
    except ImportError as exc:  # optional dependency
        raise ImportError("reading AEDAT 4 files needs the 'aedat' package: pip install aedat "
                          "(or gpusnn[aedat4])") from exc
    size = Path(path).stat().st_size
    if size == 0:
        raise DataFormatError(f"{path}: byte offset 0: empty file (no AEDAT 4 header, no events)")
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 4)
        head += f.read(min(_u(head, len(MAGIC), "<I"), size) if len(head) == len(MAGIC) + 4 else 0)
    check_ioheader(head, path)
    try:
        return aedat.Decoder(str(path))
    except BaseException as exc:
        _let_exits_through(exc)
        raise DataFormatError(f"{path}: byte offset 0: not a readable AEDAT 4 file ({exc})") from exc


def _let_exits_through(exc: BaseException) -> None:
    """The Rust decoder raises Exception on bad input, or pyo3's PanicException (derived from
    BaseException) when it panics; both become DataFormatError, interpreter exits do not."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def stream_sensor_size(streams: dict, path) -> tuple:
    """(W, H, 2) of the event streams in a decoder's id_to_stream(); DataFormatError when
    there is none or their sizes differ."""
    sizes = {(int(s["width"]), int(s["height"])) for s in streams.values() if s.get("type") == "events"}
    if len(sizes) != 1 or min(min(sizes)) <= 0:
        raise DataFormatError(f"{path}: the stream description must give one event-stream size (sizeX, sizeY); "
                              f"found {sorted(sizes) or 'no event stream'}")
    (w, h), = sizes
    return (w, h, 2)


def decode_aedat4(path) -> Aedat4Recording:
    """All polarity events of an AEDAT 4.0 file with the sensor size and the skipped counts."""
    decoder = _decoder(path)
    size = stream_sensor_size(decoder.id_to_stream(), path)
    parts, skipped = [], Counter()
    try:
        for packet in decoder:
            ev = packet.get("events")
            if ev is not None and len(ev):
                out = np.empty(len(ev), EVENT_DTYPE)
                out["x"], out["y"], out["p"], out["t"] = ev["x"], ev["y"], ev["on"], ev["t"]
                parts.append(out)
            for key, name in SKIPPED.items():
                if key in packet:
                    skipped[name] += 1 if key == "frame" else len(packet[key])
    except BaseException as exc:
        _let_exits_through(exc)
        raise DataFormatError(f"{path}: corrupt AEDAT 4 packet ({exc})") from exc
    return Aedat4Recording(np.concatenate(parts) if parts else empty_events(), size, dict(skipped))


def read_aedat4(path) -> np.ndarray:
    """All polarity events of an AEDAT 4.0 file (every event stream), in file order. [N]"""
    return decode_aedat4(path).events
