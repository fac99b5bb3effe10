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
whenever it decreases). Decoding is vectorised: the state at each event-carrying word is
found by forward-filling word indices, vectors are expanded as a bit matrix; no Python step
per word.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools.events import make_events
from data_tools.evt2 import body_words, check_encoding, read_header

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, CONTINUED_4, TIME_HIGH = 0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8
EXT_TRIGGER, OTHERS, CONTINUED_12 = 0xA, 0xE, 0xF
KNOWN_TYPES = (ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8, TIME_LOW, CONTINUED_4, TIME_HIGH, EXT_TRIGGER, OTHERS,
               CONTINUED_12)


def last_index(is_kind: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the latest word with is_kind at or before each word index in at (-1 where
    none): is_kind bool [M], at int [K] -> int32 [K]. One forward fill of int32 indices."""
    idx = np.where(is_kind, np.arange(is_kind.size, dtype=np.int32), np.int32(-1))
    np.maximum.accumulate(idx, out=idx)
    return idx[at]


def state_at(is_kind: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """values (per word, [M]) of the latest word with is_kind at or before each index of at;
    0 where none precedes. -> int64 [K]"""
    j = last_index(is_kind, at)
    return np.where(j >= 0, values[np.maximum(j, 0)], 0).astype(np.int64)


def time_at(kind: np.ndarray, payload: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The microsecond time in force at word indices at (int64 [K]); module docstring."""
    is_high = kind == TIME_HIGH
    high = payload.astype(np.int32)
    hi_at = np.flatnonzero(is_high)
    if hi_at.size > 1:
        wraps = np.cumsum(high[hi_at[1:]] < high[hi_at[:-1]], dtype=np.int32)
        high[hi_at[1:]] += wraps << 12                                # 12-bit rollovers
    return (state_at(is_high, high, at) << 12) | state_at(kind == TIME_LOW, payload, at)


def decode_words(w: np.ndarray) -> np.ndarray:
    """CD events (event array [N], file order; vector events in increasing x) of EVT 3.0 words
    (uint16 [M]) whose types are all known. The state (y, time, vector base) in force at each
    word that carries events is found by forward-filling word indices."""
    kind = w >> 12
    payload = w & 0xFFF
    single, vec12, vec8 = kind == ADDR_X, kind == VECT_12, kind == VECT_8
    carrier = np.flatnonzero(single | vec12 | vec8)
    is_single = single[carrier]
    in_vec = ~is_single
    vec = carrier[in_vec]
    masks = np.where(vec12[vec], payload[vec], payload[vec] & 0xFF).astype("<u2")
    bits = np.unpackbits(masks.view(np.uint8).reshape(-1, 2), axis=1, bitorder="little")[:, :12]
    counts = np.ones(carrier.size, np.int64)
    counts[in_vec] = bits.sum(axis=1)
    row = np.repeat(np.arange(carrier.size), counts)              # events in file order
    bit = np.zeros(row.size, np.int64)                            # x offset within a vector
    bit[in_vec[row]] = np.nonzero(bits)[1]                        # row-major: x increasing
    y = state_at(kind == ADDR_Y, payload & 0x7FF, carrier)
    t = time_at(kind, payload, carrier)
    x0 = (payload[carrier] & 0x7FF).astype(np.int64)
    p = (payload[carrier] >> 11).astype(np.int64)
    if vec.size:
        # a vector starts at the latest VECT_BASE_X plus 12 / 8 per vector word since it
        before = np.cumsum(np.where(vec12, 12, np.where(vec8, 8, 0)), dtype=np.int32)
        before -= np.where(vec12, 12, np.where(vec8, 8, 0)).astype(np.int32)   # steps of earlier words
        base = last_index(kind == VECT_BASE_X, vec)
        has = base >= 0
        b = np.maximum(base, 0)
        x0[in_vec] = np.where(has, (payload[b] & 0x7FF) + before[vec] - before[b], before[vec])
        p[in_vec] = np.where(has, payload[b] >> 11, 0)
    return make_events(x0[row] + bit, y[row], p[row] == 1, t[row])


def read_evt3(path, *, encoding: str | None = None) -> tuple[np.ndarray, dict]:
    """All CD events of an EVT 3.0 RAW file (event array [N], file order) and the header fields.

    encoding="evt3" reads a file whose header does not name its encoding (or has none).
    DataFormatError naming the file and byte offset for an empty file, a header of another
    encoding, a body that is not whole 16-bit words, or an unknown word type.
    """
    buf = Path(path).read_bytes()
    fields, start = read_header(buf, path)
    check_encoding(fields, "3.0", path, encoding == "evt3", len(buf))
    w, _ = body_words(buf, start, path, "3.0", KNOWN_TYPES)
    return decode_words(w), fields
