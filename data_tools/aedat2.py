"""AEDAT 2.0 (jAER) reader and writer for the DVS128: big-endian (int32 address, int32
timestamp in us) pairs after optional `#` header lines.

DVS128 address: bit 0 polarity, bits 1-7 x, bits 8-14 y, bit 15 external/special event.
Special events (bit 15) and addresses with bit 31 set are skipped.

Orientation and polarity differ between tools, so they are a :class:`Convention`:

- :data:`DOC` (default): the format document: x and y as stored, (0, 0) lower left,
  polarity bit 1 = ON.
- :data:`TOP_LEFT`: like DOC but y flipped (y = 127 - raw) so that (0, 0) is top-left as in
  AEDAT 3.1 and tonic's DVS Gesture.
- :data:`JAER`: jAER's DVS128 extractor: x flipped (x = 127 - raw), raw polarity 0 = ON.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import EVENT_DTYPE
from data_tools.textheader import format_header, parse_header

_EVENT = np.dtype([("addr", ">i4"), ("ts", ">i4")])
SENSOR = 128


@dataclass(frozen=True)
class Convention:
    """How raw DVS128 address fields map to event x, y, p."""

    flip_x: bool = False
    flip_y: bool = False
    on_bit: int = 1


DOC = Convention()
TOP_LEFT = Convention(flip_y=True)
JAER = Convention(flip_x=True, on_bit=0)
CONVENTIONS = {"doc": DOC, "top-left": TOP_LEFT, "jaer": JAER}


def read_aedat2(path, convention: Convention = DOC) -> np.ndarray:
    """DVS128 polarity events of an AEDAT 2.0 file, in file order. Event array [N]; timestamps
    are the stored 32-bit values made monotonic across wrap-arounds (+2**32 per wrap)."""
    size = Path(path).stat().st_size
    buf = np.memmap(path, dtype=np.uint8, mode="r") if size else np.empty(0, np.uint8)
    start = parse_header(buf, path, magic=b"", end_marker=None).data_offset
    if (size - start) % _EVENT.itemsize:
        raise DataFormatError(f"{path}: byte offset {size - (size - start) % _EVENT.itemsize}: truncated event "
                              f"({(size - start) % _EVENT.itemsize} trailing bytes, events are 8 bytes)")
    raw = np.frombuffer(buf, _EVENT, offset=start)
    addr = raw["addr"].astype(np.int64) & 0xFFFFFFFF
    keep = (addr & ((1 << 15) | (1 << 31))) == 0
    addr = addr[keep]
    ts = raw["ts"][keep].astype(np.int64) & 0xFFFFFFFF
    if ts.size > 1:
        ts += np.concatenate(([0], np.cumsum(np.diff(ts) < -(1 << 31)))) << 32
    out = np.empty(addr.size, EVENT_DTYPE)
    x = (addr >> 1) & 0x7F
    y = (addr >> 8) & 0x7F
    out["x"] = SENSOR - 1 - x if convention.flip_x else x
    out["y"] = SENSOR - 1 - y if convention.flip_y else y
    out["p"] = (addr & 1) == convention.on_bit
    out["t"] = ts
    return out


def write_aedat2(path, events: np.ndarray, convention: Convention = DOC, header_fields: dict | None = None) -> None:
    """Write DVS128 events (x, y in 0..127) as AEDAT 2.0 under convention (the inverse of
    read_aedat2); timestamps are stored modulo 2**32."""
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    if x.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) >= SENSOR):
        raise ValueError("AEDAT 2.0 DVS128 events need x and y in 0..127")
    x = SENSOR - 1 - x if convention.flip_x else x
    y = SENSOR - 1 - y if convention.flip_y else y
    bit = np.where(events["p"], convention.on_bit, 1 - convention.on_bit)
    raw = np.empty(x.size, _EVENT)
    raw["addr"] = (y << 8) | (x << 1) | bit
    raw["ts"] = (events["t"] & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    with open(path, "wb") as f:
        f.write(format_header("#!AER-DAT2.0", {"Format": "DVS128", **(header_fields or {})}, None))
        f.write(raw.tobytes())
