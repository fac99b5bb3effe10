"""Prophesee RAW files in the EVT 2.0 encoding (reader only).

File: text header lines starting with `% ` (each ending in LF; `% evt 2.0` or
`% format EVT2;width=W;height=H` names the encoding, and a file naming none is refused
unless the caller names it; newer files end the header with `% end`), then little-endian
32-bit words:

    type = w >> 28
    0x0 CD_OFF, 0x1 CD_ON   ts_low = (w >> 22) & 0x3F, x = (w >> 11) & 0x7FF, y = w & 0x7FF
    0x8 EVT_TIME_HIGH       ts_high = w & 0x0FFFFFFF: the upper 28 bits of the timestamp
    0xA EXT_TRIGGER, 0xE OTHERS, 0xF CONTINUED: not change-detection events (skipped)

A CD event's time in microseconds is (ts_high << 6) | ts_low with the latest EVT_TIME_HIGH
before it (0 before the first). Decoding is vectorised: no Python step per word.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import make_events

CD_OFF, CD_ON, TIME_HIGH = 0x0, 0x1, 0x8
KNOWN_TYPES = (CD_OFF, CD_ON, TIME_HIGH, 0xA, 0xE, 0xF)


def read_header(buf: bytes, path) -> tuple[dict, int]:
    """(fields, byte offset of the first word) of the `% key value` header."""
    fields, pos = {}, 0
    while buf.startswith(b"%", pos):
        end = buf.find(b"\n", pos)
        if end < 0:
            raise DataFormatError(f"{path}: byte offset {pos}: header line without a line end")
        line = buf[pos + 1:end].decode("ascii", "replace").strip()
        pos = end + 1
        if line == "end":
            break
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return fields, pos


def encoding(fields: dict) -> str | None:
    """The encoding the header names: "2.0" / "3.0" / ... from `% evt X` or the `EVTn` of
    `% format EVTn;...`; None when it names none."""
    if "evt" in fields:
        return fields["evt"]
    m = re.match(r"EVT(\d)(\d?)", fields.get("format", ""))
    return f"{m.group(1)}.{m.group(2) or 0}" if m else None


def check_encoding(fields: dict, expected: str, path, forced: bool, size: int) -> None:
    """DataFormatError unless the header names the expected encoding ("2.0" or "3.0"), or
    names none and the caller forced it; an empty file is always an error."""
    if size == 0:
        raise DataFormatError(f"{path}: byte offset 0: empty file (no header, no events)")
    found = encoding(fields)
    if found is None and not forced:
        raise DataFormatError(f"{path}: byte offset 0: no '% evt {expected}' (or '% format EVT...') header line "
                              f"naming the encoding; to read it as EVT {expected} name the format "
                              f"(encoding='evt{expected[0]}'; CLI: --format evt{expected[0]})")
    if found is not None and found != expected:
        raise DataFormatError(f"{path}: header says EVT {found}; this reader decodes EVT {expected}")


def body_words(buf: bytes, start: int, path, version: str, known) -> tuple[np.ndarray, np.ndarray]:
    """(words, their type field) of the body of an EVT 2.0 ("2.0": 32-bit words, type in bits
    28-31) or EVT 3.0 ("3.0": 16-bit words, type in bits 12-15) file from byte start;
    DataFormatError naming the byte offset for a truncated last word or a type not in known."""
    size = 4 if version == "2.0" else 2
    rest = (len(buf) - start) % size
    if rest:
        raise DataFormatError(f"{path}: byte offset {len(buf) - rest}: truncated word "
                              f"({rest} trailing byte{'s' if rest > 1 else ''}, words are {size} bytes)")
    w = np.frombuffer(buf, f"<u{size}", offset=start)
    kind = w >> (8 * size - 4)
    unknown = ~np.isin(kind, known)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataFormatError(f"{path}: byte offset {start + size * i}: unknown EVT {version} word type "
                              f"0x{int(kind[i]):X}")
    return w, kind


def sensor_size(fields: dict) -> tuple[int, int, int] | None:
    """(W, H, 2) from a `geometry WxH` or `format EVTn;width=W;height=H` field (decimal
    numbers), else None."""
    m = re.fullmatch(r"(\d+)x(\d+)", fields.get("geometry", ""))
    if m:
        return int(m.group(1)), int(m.group(2)), 2
    fmt = dict(kv.split("=", 1) for kv in fields.get("format", "").split(";") if "=" in kv)
    w, h = fmt.get("width", ""), fmt.get("height", "")
    if re.fullmatch(r"\d+", w) and re.fullmatch(r"\d+", h):
        return int(w), int(h), 2
    return None


def read_evt2(path, *, encoding: str | None = None) -> tuple[np.ndarray, dict]:
    """All CD events of an EVT 2.0 RAW file (event array [N], in file order) and the header fields.

    encoding="evt2" reads a file whose header does not name its encoding (or has none).
    Raises DataFormatError naming the file and byte offset for an empty file, a header of
    another encoding, a body that is not whole 32-bit words, or an unknown word type.
    """
    buf = Path(path).read_bytes()
    fields, start = read_header(buf, path)
    check_encoding(fields, "2.0", path, encoding == "evt2", len(buf))
    w, kind = body_words(buf, start, path, "2.0", KNOWN_TYPES)
    is_high = kind == TIME_HIGH
    last_high = np.maximum.accumulate(np.where(is_high, np.arange(w.size), -1))
    high = np.where(last_high >= 0, w[np.maximum(last_high, 0)] & 0x0FFFFFFF, 0).astype(np.int64)
    cd = kind <= CD_ON
    wc = w[cd]
    t = (high[cd] << 6) | ((wc >> 22) & 0x3F).astype(np.int64)
    return make_events((wc >> 11) & 0x7FF, wc & 0x7FF, kind[cd] == CD_ON, t), fields
