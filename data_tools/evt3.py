"""Prophesee RAW files in the EVT 3.0 encoding (reader only).

File: `% key value` header lines (as EVT 2.0, see :mod:`data_tools.evt2`; `% evt 3.0` or
`% format EVT3;...` names the encoding), then little-endian 16-bit words, type = w >> 12
(Prophesee's "EVT 3.0 Format" document):

    0x0 EVT_ADDR_Y    y = w & 0x7FF (bit 11: system type, ignored)
    0x2 EVT_ADDR_X    one CD event at x = w & 0x7FF, polarity bit 11, the current y and time
    0x3 VECT_BASE_X   base x = w & 0x7FF and polarity bit 11 for the vectors that follow
    0x4 VECT_12       events at base x + i for each set bit i of w & 0xFFF; base x += 12
    0x5 VECT_8        events at base x + i for each set bit i of w & 0xFF; base x += 8
    0x6 EVT_TIME_LOW  the low 12 bits of the 24-bit time base
    0x8 EVT_TIME_HIGH the high 12 bits of the 24-bit time base
    0x7 CONTINUED_4, 0xA EXT_TRIGGER, 0xE OTHERS, 0xF CONTINUED_12: skipped

An event's time in microseconds is (time_high << 12) | time_low with the latest of each
before it (0 before the first), time_high unwrapped across its 12-bit rollover (+2**24 us
whenever it decreases). Decoding is vectorised: state is forward-filled by index with
running maxima, vectors are expanded as a bit matrix; no Python step per word.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools.errors import DataFormatError
from data_tools.events import make_events
from data_tools.evt2 import check_encoding, read_header

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, CONTINUED_4, TIME_HIGH = 0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8
EXT_TRIGGER, OTHERS, CONTINUED_12 = 0xA, 0xE, 0xF
KNOWN_TYPES = (ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, CONTINUED_4, TIME_HIGH, EXT_TRIGGER, OTHERS,
               CONTINUED_12)


def latest(is_kind: np.ndarray, values: np.ndarray, default: int = 0) -> np.ndarray:
    """For each word, values at the latest word with is_kind at or before it (default before
    the first). is_kind bool [N], values int64 [N] -> int64 [N]."""
    last = np.maximum.accumulate(np.where(is_kind, np.arange(is_kind.size), -1))
    return np.where(last >= 0, values[np.maximum(last, 0)], default)


def time_base(kind: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """The microsecond time in force at each word (int64 [N]); see the module docstring."""
    is_high = kind == TIME_HIGH
    high = payload[is_high]
    wraps = np.concatenate(([0], np.cumsum(high[1:] < high[:-1]))) if high.size else high
    unwrapped = np.zeros(kind.size, np.int64)
    unwrapped[is_high] = high + (wraps << 12)
    return (latest(is_high, unwrapped) << 12) | latest(kind == TIME_LOW, payload)


def decode_words(w: np.ndarray) -> np.ndarray:
    """CD events (event array [N], file order; vector events in increasing x) of EVT 3.0 words
    (uint16 [M]) whose types are all known."""
    kind = (w >> 12).astype(np.int64)
    payload = (w & 0xFFF).astype(np.int64)
    t = time_base(kind, payload)
    y = latest(kind == ADDR_Y, payload & 0x7FF)
    is_base = kind == VECT_BASE_X
    step = np.where(kind == VECT_12, 12, np.where(kind == VECT_8, 8, 0))
    before = np.cumsum(step) - step                           # sum of steps of earlier words
    base_x = latest(is_base, payload & 0x7FF) + before - latest(is_base, before)
    base_p = latest(is_base, payload >> 11)
    single, vec12, vec8 = kind == ADDR_X, kind == VECT_12, kind == VECT_8
    carrier = np.flatnonzero(single | vec12 | vec8)
    mask = np.where(single, 1, np.where(vec12, payload, payload & 0xFF))[carrier]
    x0 = np.where(single, payload & 0x7FF, base_x)[carrier]
    p = np.where(single, payload >> 11, base_p)[carrier]
    row, bit = np.nonzero((mask[:, None] >> np.arange(12)) & 1)
    return make_events(x0[row] + bit, y[carrier][row], p[row] == 1, t[carrier][row])


def read_evt3(path, *, encoding: str | None = None) -> tuple[np.ndarray, dict]:
    """All CD events of an EVT 3.0 RAW file (event array [N], file order) and the header fields.

    encoding="evt3" reads a file whose header does not name its encoding (or has none).
    DataFormatError naming the file and byte offset for an empty file, a header of another
    encoding, a body that is not whole 16-bit words, or an unknown word type.
    """
    buf = Path(path).read_bytes()
    fields, start = read_header(buf, path)
    check_encoding(fields, "3.0", path, encoding == "evt3", len(buf))
    if (len(buf) - start) % 2:
        raise DataFormatError(f"{path}: byte offset {len(buf) - 1}: truncated word (1 trailing byte, words are 2 bytes)")
    w = np.frombuffer(buf, "<u2", offset=start)
    kind = w >> 12
    unknown = ~np.isin(kind, KNOWN_TYPES)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataFormatError(f"{path}: byte offset {start + 2 * i}: unknown EVT 3.0 word type 0x{int(kind[i]):X}")
    return decode_words(w), fields
